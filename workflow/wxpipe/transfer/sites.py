"""From a location (a path, or a ``file:``, ``s3://`` or ``ssh://`` URL) to the backend that serves it."""

from __future__ import annotations

from pathlib import Path

from ..errors import WxpipeError
from .base import Store
from .local import LocalStore

SCHEMES = ("file", "s3", "ssh")


def file_path(url: str) -> Path:
    """``file:///abs/path`` → ``/abs/path``; ``file:rel/path`` → ``rel/path`` (relative to the working directory).

    A URL without a path (``file:``, ``file://``, ``file:///``) is an error: it would mean the working
    directory or ``/``, never what a user meant by a site.
    """
    rest = url.removeprefix("file:")
    if rest.startswith("//"):
        host, _, path = rest[2:].partition("/")
        if host not in ("", "localhost"):
            raise WxpipeError(f"{url!r}: a file: URL names no other host (write file:///absolute/path)")
        rest = "/" + path
    if not rest.strip("/"):
        raise WxpipeError(f"{url!r}: no path (write file:relative/path or file:///absolute/path)")
    return Path(rest)


def check_url(url: str) -> str:
    """A site URL as written in a config or on the command line, checked; returned without a trailing ``/``."""
    from urllib.parse import urlsplit

    scheme = scheme_of(url)
    if scheme == "file":
        file_path(url if url.startswith("file:") else f"file:{url}")
        return url.rstrip("/") or url
    parts = urlsplit(url)
    if scheme == "s3" and parts.netloc:
        return url.rstrip("/")
    if scheme == "ssh" and parts.hostname and parts.path.strip("/"):
        if parts.netloc.startswith("-"):  # ssh would take it for an option (-oProxyCommand=...)
            raise WxpipeError(f"{url!r}: an ssh host may not begin with '-'")
        return url.rstrip("/")
    raise WxpipeError(f"site url {url!r}: use file:PATH, s3://bucket/prefix or ssh://host/absolute/path")


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
    check_url(where)
    if scheme == "s3":
        from .s3 import S3Store

        return S3Store(where, endpoint_url=endpoint_url, region=region, profile=profile, transfers=transfers)
    if scheme == "ssh":
        from .ssh import SSHStore

        return SSHStore(where, ssh_config=ssh_config, transfers=transfers)
    if where.startswith("file:"):
        return LocalStore(file_path(where), url=where.rstrip("/"))
    return LocalStore(Path(where))
