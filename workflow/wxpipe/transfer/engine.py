"""One copy procedure for every pair of sites: manifest at the source, check at the destination, mark complete.

1. The source manifest (path, size, SHA-256 of every file). A local source is hashed, except files whose size
   and modification time are those recorded by the destination's marker of an earlier copy from this source;
   a remote source must be a complete copy, whose marker holds its manifest.
2. The destination is checked against it: a file is kept when it has the right size and either its stamp
   (mtime, ETag) is the one the marker recorded when it was last verified, or its checksum matches (read from
   the bytes, or from the SHA-256 an S3 object carries). Anything else is missing, truncated or corrupt: sent.
3. The marker is removed, the files are sent (each atomically), and every sent file is verified: in flight
   when the backend hashes the bytes it writes, otherwise by hashing it at the destination.
4. Only then are files the source lacks removed from the destination (``delete``; else they are kept, listed
   in a warning and in the marker's ``extra``), and the marker written, with the manifest and the stamps of
   the verified files.

Symbolic links are never followed out of a tree: one in a local source is refused, as is a linked folder at a
local destination on the path of a file to write. Temporary files (ours, zarr-python's ``*.partial``) are
never content: not listed, not sent; a killed copy's own at a ``file:`` destination are removed.

A rerun that finds both sides as the marker recorded them (same files, sizes and stamps) stops after the two
listings: nothing is hashed, sent or written. ``verify="full"`` hashes every source file and re-reads every
destination file, trusting no stamp.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from ..errors import WxpipeError
from .base import Entry, Manifest, Stat, Store, manifest_digest, manifest_from_json, manifest_to_json
from .local import links_on_paths

log = logging.getLogger(__name__)

Verify = Literal["quick", "full"]
UNKNOWN = ""  # a checksum not computed yet: the file is sent anyway and hashed from the bytes sent


def source_manifest(
    src: Store,
    listing: dict[str, Stat],
    previous: dict[str, Any] | None,
    old: Manifest,
    dst_listing: dict[str, Stat],
    threads: int,
    full: bool,
) -> Manifest:
    """The manifest of ``src``, hashing only what must be compared now.

    A local file vouched for by the previous copy's marker (same size and mtime) keeps its checksum; a file the
    destination lacks (or holds with another size) is sent anyway, so it is hashed from the bytes sent
    (``UNKNOWN`` until then); the rest is hashed here. ``old`` is the previous marker's manifest.
    """
    if src.local_root is None:
        return _remote_source_manifest(src, listing, threads, full)
    known: dict[str, str] = {}
    if previous and previous.get("source") == src.url and not full:
        stamps = previous.get("source_stamps", {})
        for e in old:
            st = listing.get(e.path)
            if st is not None and st.size == e.size and stamps.get(e.path) == st.stamp:
                known[e.path] = e.sha256
    todo = [p for p, st in listing.items() if p not in known and (d := dst_listing.get(p)) and d.size == st.size]
    if todo:
        log.info("hashing %d of %d source files", len(todo), len(listing))
    known.update(src.hashes(todo, threads))
    missing = [p for p in todo if p not in known]
    if missing:
        raise WxpipeError(f"copy: {missing[0]} vanished from {src.url} while it was being hashed")
    return [Entry(p, st.size, known.get(p, UNKNOWN)) for p, st in listing.items()]


def _remote_source_manifest(src: Store, listing: dict[str, Stat], threads: int, full: bool) -> Manifest:
    marker = src.read_marker()
    if marker is None:
        raise WxpipeError(f"copy: {src.url} is not a complete, verified wxpipe copy (no marker); copy from its origin")
    manifest = manifest_from_json(marker["manifest"])
    gone = lost_files(manifest, listing)  # known from the listing: fail before reading a byte
    if gone:
        raise WxpipeError(f"copy: {src.url} lost or truncated {len(gone)} files since it was verified, e.g. {gone[0]}")
    bad = other_bytes(src, manifest, marker.get("stamps", {}), listing, threads, full)
    if bad:
        raise WxpipeError(f"copy: {len(bad)} files of {src.url} differ from its manifest, e.g. {bad[0]}")
    return manifest


def lost_files(manifest: Manifest, listing: dict[str, Stat]) -> list[str]:
    """The files of a copy's manifest that its listing lacks or holds with another size (lost or truncated)."""
    return [e.path for e in manifest if e.path not in listing or listing[e.path].size != e.size]


def other_bytes(
    store: Store, manifest: Manifest, stamps: dict[str, Any], listing: dict[str, Stat], threads: int, full: bool
) -> list[str]:
    """The files of a copy, listed at their recorded size, whose bytes are not the manifest's.

    Read-only. A file with the stamp the marker recorded is trusted; any other is checked by the checksum the
    backend keeps (an S3 object's metadata; ssh hashes at the site), every file by its bytes when ``full``."""
    doubt = [
        e
        for e in manifest
        if (st := listing.get(e.path)) is not None and st.size == e.size and (full or stamps.get(e.path) != st.stamp)
    ]
    got = (store.hashes if full else store.claimed_hashes)([e.path for e in doubt], threads) if doubt else {}
    return [e.path for e in doubt if got.get(e.path) != e.sha256]


def copy_faults(
    store: Store, marker: dict[str, Any], listing: dict[str, Stat], threads: int, full: bool
) -> tuple[list[str], list[str]]:
    """The files of a complete copy that no longer hold its marker's manifest: (:func:`lost_files`,
    :func:`other_bytes`), both, for a report of everything that drifted."""
    manifest = manifest_from_json(marker["manifest"])
    return lost_files(manifest, listing), other_bytes(store, manifest, marker.get("stamps", {}), listing, threads, full)


def to_send(
    dst: Store,
    manifest: Manifest,
    listing: dict[str, Stat],
    previous: dict[str, Any] | None,
    old: Manifest,
    threads: int,
    full: bool,
) -> Manifest:
    """The entries the destination lacks or holds with other bytes."""
    old_sha = {e.path: e.sha256 for e in old}
    old_stamps: dict[str, str] = previous.get("stamps", {}) if previous else {}
    present = [e for e in manifest if (st := listing.get(e.path)) is not None and st.size == e.size]
    doubt = [
        e for e in present if full or old_sha.get(e.path) != e.sha256 or old_stamps.get(e.path) != listing[e.path].stamp
    ]
    if doubt:
        log.info("checking %d files already at %s", len(doubt), dst.url)
    # a file rewritten since it was verified is read; one never verified (an interrupted copy) may be vouched for
    # by the checksum the backend stored with it
    changed = [e.path for e in doubt if full or e.path in old_stamps]
    got = dst.hashes(changed, threads)
    got.update(dst.claimed_hashes([e.path for e in doubt if e.path not in got and e.path not in changed], threads))
    good = {e.path for e in present} - {e.path for e in doubt if got.get(e.path) != e.sha256}
    return [e for e in manifest if e.path not in good]


def _transfer(src: Store, dst: Store, todo: Sequence[Entry], threads: int, moving: threading.Event) -> dict[str, str]:
    """Send ``todo``; ``moving`` is set once the first file is in place."""
    from ..progress import progress  # tqdm: imported once there is something to send (or by copy() meanwhile)

    total = sum(e.size for e in todo)
    done = {"files": 0}
    with progress(total=total, desc=f"copy to {dst.url}", unit="B", unit_scale=True, unit_divisor=1024) as bar:
        bar.set_postfix_str(f"0/{len(todo)} files")

        def advance(nbytes: int) -> None:
            moving.set()
            done["files"] += 1
            bar.update(nbytes)
            bar.set_postfix_str(f"{done['files']}/{len(todo)} files", refresh=False)

        if src.local_root is not None:
            return dst.upload(src.local_root, todo, threads, advance)
        assert dst.local_root is not None
        return src.download(todo, dst.local_root, threads, advance)


def copy(src: Store, dst: Store, threads: int = 4, verify: Verify = "quick", delete: bool = False) -> dict[str, Any]:
    """Copy the tree ``src`` to ``dst``, verify it, then mark it complete; returns the summary (the marker).

    ``delete``: once the copy is verified, remove the destination's files that the source lacks (a mirror)."""
    if src.local_root is None and dst.local_root is None:
        raise WxpipeError(f"copy {src.url} -> {dst.url}: one side must be a local (file:) folder")
    if threads < 1:
        raise WxpipeError(f"copy: --threads must be at least 1, not {threads}")
    t0 = time.monotonic()
    full = verify == "full"
    src_listing, dst_listing, previous = _listings(src, dst)
    _refuse_source_links(src)
    if not src_listing:
        raise WxpipeError(f"copy: {src.url} holds no files")
    if removed := dst.remove_temporaries():
        log.info("removed %d temporary files a killed copy left at %s", removed, dst.url)
    if previous and not full and _unchanged(previous, src, src_listing, dst_listing, delete):
        return _as_before(dst, previous, t0)
    old = manifest_from_json(previous["manifest"]) if previous else []
    manifest = source_manifest(src, src_listing, previous, old, dst_listing, threads, full)
    todo = to_send(dst, manifest, dst_listing, previous, old, threads, full)
    if dst.local_root is not None:
        links_on_paths(dst.local_root, dst.links, [e.path for e in todo])
    if previous is not None:
        dst.remove_marker()
    n, mb = len(manifest), sum(e.size for e in todo) / 1e6
    log.info("copy %s -> %s: %d of %d files to send (%.1f MB)", src.url, dst.url, len(todo), n, mb)
    sums, checked = _send(src, dst, todo, threads)
    manifest, todo = _with_sums(manifest, sums), _with_sums(todo, sums)
    dst_listing = dst.listing()
    _verify(dst, manifest, dst_listing, todo, checked, threads, full)
    extra = _extra(dst_listing, manifest)
    if delete and extra:
        log.info("deleting %d files at %s that %s lacks", len(extra), dst.url, src.url)
        dst.delete(extra)
    summary = _summary(src, dst, manifest, todo, verify, extra, delete, src_listing, dst_listing)
    dst.write_marker(summary)
    _warn_extra(dst, summary["extra"])
    summary["seconds"] = round(time.monotonic() - t0, 3)
    return summary


def _listings(src: Store, dst: Store) -> tuple[dict[str, Stat], dict[str, Stat], dict[str, Any] | None]:
    """Both sides listed at once (a no-op rerun costs one round trip), and the destination's marker."""
    with ThreadPoolExecutor(1) as pool:
        remote = pool.submit(dst.snapshot)
        src_listing = src.listing()
        if src.local_root is None or dst.local_root is None:  # while the remote side answers: tqdm's ~0.1 s import
            from ..progress import progress  # noqa: F401
        dst_listing, previous = remote.result()
    return src_listing, dst_listing, previous


def _as_before(dst: Store, previous: dict[str, Any], t0: float) -> dict[str, Any]:
    """The summary of a rerun that found both sides as the marker recorded them: the marker, nothing sent."""
    log.info("%s is complete and unchanged: nothing to send", dst.url)
    if "manifest_sha256" not in previous:  # a marker written before markers carried it
        previous["manifest_sha256"] = manifest_digest(previous["manifest"])
    _warn_extra(dst, previous.get("extra", []))
    done = {"sent_files": 0, "sent_bytes": 0, "deleted": 0, "seconds": round(time.monotonic() - t0, 3)}
    return {**previous, **done}


def _send(src: Store, dst: Store, todo: Sequence[Entry], threads: int) -> tuple[dict[str, str], set[str]]:
    """Send ``todo``; returns the checksums of every file sent and the paths the backend verified in flight.

    A backend that cannot hash the bytes it sends: the source is hashed meanwhile, from the moment the first
    file has arrived (the transfer's processes start first: hashing threads would hold them back), unless the
    transfer failed."""
    deferred = [e.path for e in todo if e.sha256 == UNKNOWN]
    moving, failed = threading.Event(), threading.Event()

    def hash_late() -> dict[str, str]:
        moving.wait()
        return {} if failed.is_set() else src.hashes([] if dst.hashes_in_flight else deferred, threads)

    with ThreadPoolExecutor(1) as background:
        late = background.submit(hash_late)
        try:
            checked = _transfer(src, dst, todo, threads, moving) if todo else {}
        except BaseException:
            failed.set()
            raise
        finally:
            moving.set()
        sums = {**late.result(), **checked}
    lost = [p for p in deferred if p not in sums]
    if lost:
        raise WxpipeError(f"copy: {lost[0]} vanished from {src.url} during the copy")
    return sums, set(checked)


def _with_sums(entries: Manifest, sums: dict[str, str]) -> Manifest:
    """``entries`` with every checksum still ``UNKNOWN`` taken from ``sums`` (the bytes sent)."""
    return [e if e.sha256 else Entry(e.path, e.size, sums[e.path]) for e in entries]


def _summary(
    src: Store,
    dst: Store,
    manifest: Manifest,
    sent: Manifest,
    verify: Verify,
    extra: list[str],
    delete: bool,
    src_listing: dict[str, Stat],
    dst_listing: dict[str, Stat],
) -> dict[str, Any]:
    """The marker of a verified copy; ``extra``: the destination's files the source lacks (gone if ``delete``)."""
    as_json = manifest_to_json(manifest)
    return {
        "source": src.url,
        "destination": dst.url,
        "files": len(manifest),
        "bytes": sum(e.size for e in manifest),
        "sent_files": len(sent),
        "sent_bytes": sum(e.size for e in sent),
        "verified": verify,
        "deleted": len(extra) if delete else 0,
        "extra": [] if delete else extra,
        "completed": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "manifest": as_json,
        "manifest_sha256": manifest_digest(as_json),
        "stamps": {e.path: dst_listing[e.path].stamp for e in manifest},
        "source_stamps": {e.path: src_listing[e.path].stamp for e in manifest},
    }


def _refuse_source_links(src: Store) -> None:
    """A symbolic link in a local source would copy what lies outside it (or, to a folder, be left out)."""
    if src.local_root is not None and src.links:
        link = src.local_root / src.links[0]
        raise WxpipeError(f"copy: {link} in the source is a symbolic link; copy the tree it points into instead")


def _extra(listing: dict[str, Stat], manifest: Manifest) -> list[str]:
    """The destination's files that are not the source's."""
    wanted = {e.path for e in manifest}
    return [p for p in listing if p not in wanted]


def _warn_extra(dst: Store, extra: Sequence[str]) -> None:
    if extra:
        shown = ", ".join(extra[:10]) + (", ..." if len(extra) > 10 else "")
        log.warning("%s holds %d files the source lacks (kept; --delete removes them): %s", dst.url, len(extra), shown)


def _unchanged(
    previous: dict[str, Any], src: Store, src_listing: dict[str, Stat], dst: dict[str, Stat], delete: bool
) -> bool:
    """Whether the marker already describes this source and destination: the same files, sizes and stamps on
    both sides as when it was verified, and at the destination only the extra files it recorded (none to
    delete), so nothing is hashed, sent or written. A remote source must still be a complete copy (its own
    marker present). Reads the marker's JSON as it is (a rerun's whole work)."""
    stamps, src_stamps, old = previous.get("stamps", {}), previous.get("source_stamps", {}), previous["manifest"]
    extra = previous.get("extra", [])
    if previous.get("source") != src.url or len(src_listing) != len(old):
        return False
    if len(dst) != len(old) + len(extra) or (delete and extra) or any(p not in dst for p in extra):
        return False
    for e in old:
        path, size = e["path"], e["size"]
        s, d = src_listing.get(path), dst.get(path)
        if s is None or d is None or s.size != size or d.size != size:
            return False
        if s.stamp != src_stamps.get(path) or d.stamp != stamps.get(path):
            return False
    return src.local_root is not None or src.read_marker() is not None


def _verify(
    dst: Store,
    manifest: Manifest,
    listing: dict[str, Stat],
    sent: Sequence[Entry],
    checked: set[str],
    threads: int,
    full: bool,
) -> None:
    """Every file present with its size; every sent file (every file, when full) with its checksum."""
    bad = [e.path for e in manifest if (st := listing.get(e.path)) is None or st.size != e.size]
    # a listed stamp other than the one the upload got: re-read, since some servers list an object before
    # its ETag is known (rclone serve s3 lists "" for a moment); only content that differs is bad
    restamped = set(dst.confirm(listing))
    suspect = {e.path: e.sha256 for e in manifest if e.path in restamped and e.path not in bad}
    if suspect:
        log.info("re-reading %d files whose listed stamp differs from the upload's", len(suspect))
        got = dst.hashes(list(suspect), threads)
        bad += [p for p, sha in suspect.items() if got.get(p) != sha]
    doubt = sent if full else [e for e in sent if e.path not in checked]  # unsent files were read in to_send
    if doubt:
        log.info("verifying %d files at %s", len(doubt), dst.url)
        got = dst.hashes([e.path for e in doubt], threads)
        bad += [e.path for e in doubt if got.get(e.path) != e.sha256]
    if bad:
        raise WxpipeError(f"copy to {dst.url}: {len(bad)} files failed verification, e.g. {bad[0]}")


def describe(summary: dict[str, Any]) -> str:
    """The one-line summary printed at the end of a copy."""
    secs = max(float(summary.get("seconds", 0.0)), 1e-6)
    sent, extra, deleted = summary["sent_bytes"], summary.get("extra", []), summary.get("deleted", 0)
    line = (
        f"{summary['destination']}: {summary['files']} files, {summary['bytes'] / 2**20:.1f} MiB complete and verified"
        f" ({summary.get('verified', 'quick')}); sent {summary['sent_files']} files, {sent / 2**20:.1f} MiB"
        f" in {secs:.1f} s ({sent / 2**20 / secs:.1f} MiB/s)"
    )
    if deleted:
        line += f"; deleted {deleted} files the source lacks"
    if extra:
        line += f"; WARNING: {len(extra)} files the source lacks kept (--delete removes them), e.g. {extra[0]}"
    return line
