"""From a location (a path, or a ``file:``, ``s3://`` or ``ssh://`` URL) to the backend that serves it."""

from __future__ import annotations

from pathlib import Path

from ..errors import WxpipeError
from .base import Store
from .local import LocalStore

SCHEMES = ("file", "s3", "ssh")


def file_path(url: str) -> Path:
    """``file:///abs/path`` → ``/abs/path``; ``file:rel/path`` → ``rel/path`` (relative to the working directory)."""
    rest = url.removeprefix("file:")
    return Path(rest.removeprefix("//")) if rest.startswith("///") else Path(rest)


def scheme_of(where: str) -> str:
    if where.startswith("file:"):
        return "file"
    if "://" in where:
        scheme = where.split("://", 1)[0]
        if scheme not in SCHEMES:
            raise WxpipeError(f"{where!r}: unsupported scheme {scheme!r} (use file:, s3:// or ssh://)")
        return scheme
    return "file"


def open_store(
    where: str,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    profile: str | None = None,
    ssh_config: str | Path | None = None,
    transfers: int | None = None,
) -> Store:
    """The store at ``where``; S3 options apply to an s3:// location, ``ssh_config`` to an ssh:// one."""
    scheme = scheme_of(where)
    if scheme == "s3":
        from .s3 import S3Store

        return S3Store(where, endpoint_url=endpoint_url, region=region, profile=profile, transfers=transfers)
    if scheme == "ssh":
        from .ssh import SSHStore

        return SSHStore(where, ssh_config=ssh_config, transfers=transfers)
    if where.startswith("file:"):
        return LocalStore(file_path(where), url=where.rstrip("/"))
    return LocalStore(Path(where))
