"""The config's sites and transfers: where copies go and what is copied there.

Re-exported by :mod:`wxpipe.config` (``Config`` holds them); kept apart so that module stays small.
"""

from __future__ import annotations

from pathlib import Path

import pydantic

from ._strict import Name, StrictModel
from .errors import WxpipeError


class SiteConfig(StrictModel):
    """Where copies go: ``file:///abs/path`` or ``file:rel/path``, ``s3://bucket/prefix``, ``ssh://host/abs/path``.

    Credentials are never part of a site: S3 keys come from the AWS environment variables or the shared
    credentials file (``profile``), ssh keys from the user's ssh config.
    """

    url: str = pydantic.Field(description="file:PATH, s3://bucket/prefix or ssh://host/absolute/path")
    endpoint_url: str | None = pydantic.Field(None, description="s3: the S3 endpoint (default: AWS for the region)")
    region: str | None = pydantic.Field(None, description="s3: region (default: AWS_REGION or us-east-1)")
    profile: str | None = pydantic.Field(None, description="s3: profile in the AWS shared credentials file")
    ssh_config: Path | None = pydantic.Field(None, description="ssh: ssh config file (default: ssh's own)")
    transfers: int | None = pydantic.Field(
        None, ge=1, description="files in flight: S3 requests (default 32) or rsync processes (default 2)"
    )

    @pydantic.field_validator("url")
    @classmethod
    def _url(cls, url: str) -> str:
        from .transfer.sites import check_url

        if "://" not in url and not url.startswith("file:"):
            raise ValueError(f"site url {url!r}: use file:PATH, s3://bucket/prefix or ssh://host/absolute/path")
        try:
            return check_url(url)  # the same rules as `wxpipe copy`
        except WxpipeError as exc:
            raise ValueError(str(exc)) from None

    @pydantic.model_validator(mode="after")
    def _options(self) -> SiteConfig:
        for key in ("endpoint_url", "region", "profile"):
            if getattr(self, key) is not None and self.scheme != "s3":
                raise ValueError(f"{key} is for s3:// sites only")
        if self.ssh_config is not None and self.scheme != "ssh":
            raise ValueError("ssh_config is for ssh:// sites only")
        return self

    @property
    def scheme(self) -> str:
        return self.url.split(":", 1)[0]

    @property
    def path(self) -> Path:
        """The folder of a ``file:`` site (what a later stage on this machine reads)."""
        from .transfer.sites import file_path

        if self.scheme != "file":
            raise ValueError(f"site {self.url} is not a file: site; it has no local path")
        return file_path(self.url)


class TransferConfig(StrictModel):
    """Copy one dataset or one layout to a site, as ``<site>/<name>.zarr``, or one training run's model
    (checkpoint, loss curve, evaluation outputs and their lineage records) as ``<site>/models/<run>/``:
    exactly one of the three."""

    dataset: Name | None = None
    layout: Name | None = None
    model: Name | None = pydantic.Field(None, description="a training run: its checkpoint and evaluation outputs")
    site: Name
    mirror: bool = pydantic.Field(
        False,
        description="once the copy is verified, delete files at the site that the source no longer has"
        " (wxpipe copy --delete); otherwise they are kept and reported",
    )

    @pydantic.model_validator(mode="after")
    def _one(self) -> TransferConfig:
        if sum(x is not None for x in (self.dataset, self.layout, self.model)) != 1:
            raise ValueError("give one of dataset, layout or model")
        return self

    @property
    def name(self) -> str:
        """What the copy is called at the site (without ``.zarr``): the dataset, the layout, or ``models/<run>``."""
        from . import paths

        return paths.site_model_name(self.model) if self.model else str(self.dataset or self.layout)
