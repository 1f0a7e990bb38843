"""Whether a copy at a remote site (``s3://``, ``ssh://``) is still the one its lineage record names.

``wxpipe lineage verify`` reaches the site with the connection options the copy recorded (``params.site``:
endpoint, region, profile name, ssh config; keys come from the environment as for ``wxpipe copy``), reads
the copy's marker and checks the files against the marker's manifest the way a copy's quick check does
(size and stamp, else the checksum the backend keeps) or, ``full``, by reading every file. Read-only: the
site is listed, its marker read and files hashed, never written. A site that cannot be reached (network,
keys) is reported as such, not as drift: nothing is known about the copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from .errors import WxpipeError

SITE_OPTIONS = ("endpoint_url", "region", "profile", "ssh_config")  # what a copy record keeps to reach its site


class Finding(NamedTuple):
    """What a remote copy was found to be: ``status`` is "ok", "missing", "changed" or "unreachable"."""

    status: str
    found: str


def site_options(opts: Mapping[str, Any]) -> dict[str, str]:
    """The connection options a copy record keeps (those set; none is a secret: a profile is a name), so that
    ``lineage verify`` can reach the site without the config; an endpoint's ``user:password@`` is dropped."""
    from .tracking import redact

    site = {k: str(opts[k]) for k in SITE_OPTIONS if opts.get(k) is not None}
    if "endpoint_url" in site:
        site["endpoint_url"] = redact(site["endpoint_url"])
    return site


class SiteProbe:
    """Checks remote copy outputs; a site that failed to answer once is not asked again (each try may cost a
    connection timeout)."""

    def __init__(self, full: bool = False, threads: int = 4) -> None:
        self.full = full
        self.threads = threads
        self._down: dict[tuple[str, str], str] = {}

    def __call__(self, params: Mapping[str, Any], out: Mapping[str, Any]) -> Finding:
        from urllib.parse import urlsplit

        url = str(out.get("url") or out.get("path", ""))
        site = params.get("site", {})
        opts = {k: site[k] for k in SITE_OPTIONS if isinstance(site, Mapping) and site.get(k) is not None}
        key = (urlsplit(url).netloc, repr(sorted(opts.items())))
        if key in self._down:
            return Finding("unreachable", self._down[key])
        try:
            return self._check(url, opts, str(out["manifest_sha256"]))
        except WxpipeError as exc:  # the backends' messages name the site, never a key
            self._down[key] = str(exc)
            return Finding("unreachable", str(exc))

    def _check(self, url: str, opts: Mapping[str, Any], recorded: str) -> Finding:
        from .transfer import open_store
        from .transfer.base import manifest_digest
        from .transfer.engine import copy_faults

        store = open_store(url, **opts)
        try:
            listing, marker = store.snapshot()
            if marker is None:
                return Finding("missing", f"no complete copy (no marker; {len(listing)} files)")
            digest = str(marker.get("manifest_sha256") or manifest_digest(marker["manifest"]))
            if digest != recorded:
                return Finding("changed", f"a copy with manifest-sha256:{digest} (copied {marker.get('completed')})")
            gone, bad = copy_faults(store, marker, listing, self.threads, self.full)
        finally:
            store.close()
        if gone or bad:
            what = [f"{len(gone)} files lost or truncated, e.g. {gone[0]}"] if gone else []
            what += [f"{len(bad)} files with other bytes, e.g. {bad[0]}"] if bad else []
            return Finding("changed", "; ".join(what))
        return Finding("ok", "")
