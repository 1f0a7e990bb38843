"""The copy engine on file: sites: verified against the source manifest, resumed, and repaired when corrupted."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from wxpipe.fsutil import is_temporary
from wxpipe.transfer import MARKER, Entry, LocalStore, copy, copy_tree, make_manifest, verify_tree


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    src = tmp_path / "src.zarr"
    for i in range(30):
        p = src / "data" / f"{i}.0.0.0"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(os.urandom(1000 + i))
    (src / ".zattrs").write_text("{}")
    return src


def test_copy_verifies_and_marks_complete(tree: Path, tmp_path: Path) -> None:
    dst = tmp_path / "site/src.zarr"
    summary = copy_tree(tree, dst, threads=3)
    assert summary["files"] == summary["sent_files"] == 31
    assert verify_tree(dst, make_manifest(tree)) == []
    assert (dst / MARKER).exists()


def test_rerun_sends_only_what_differs(tree: Path, tmp_path: Path) -> None:
    dst = tmp_path / "site/src.zarr"
    copy_tree(tree, dst)
    (dst / "data/3.0.0.0").unlink()  # an interrupted copy
    corrupt = dst / "data/7.0.0.0"
    blob = bytearray(corrupt.read_bytes())
    blob[10] ^= 0xFF
    corrupt.write_bytes(bytes(blob))
    (dst / "data/9.0.0.0").write_bytes(b"short")  # truncated
    bad = {e.path for e in verify_tree(dst, make_manifest(tree))}
    assert bad == {"data/3.0.0.0", "data/7.0.0.0", "data/9.0.0.0"}
    summary = copy_tree(tree, dst)
    assert summary["sent_files"] == 3
    assert verify_tree(dst, make_manifest(tree)) == []


def test_quick_rerun_trusts_stamps_full_rerun_reads(tree: Path, tmp_path: Path) -> None:
    dst = tmp_path / "site/src.zarr"
    copy_tree(tree, dst)
    marker = (dst / MARKER).read_text()
    assert copy_tree(tree, dst)["sent_files"] == 0
    assert (dst / MARKER).read_text() == marker  # a complete, unchanged copy is not even re-marked
    chunk = dst / "data/4.0.0.0"
    st = chunk.stat()
    blob = bytearray(chunk.read_bytes())
    blob[0] ^= 0xFF
    chunk.write_bytes(bytes(blob))
    os.utime(chunk, ns=(st.st_atime_ns, st.st_mtime_ns))  # flipped behind an unchanged size and mtime
    assert copy_tree(tree, dst)["sent_files"] == 0  # the quick check trusts the stamp, as rsync does
    summary = copy(LocalStore(tree), LocalStore(dst), verify="full")
    assert summary["sent_files"] == 1 and summary["verified"] == "full"
    assert verify_tree(dst, make_manifest(tree)) == []


def test_changed_source_is_re_hashed_and_re_sent(tree: Path, tmp_path: Path) -> None:
    dst = tmp_path / "site/src.zarr"
    copy_tree(tree, dst)
    (tree / "data/2.0.0.0").write_bytes(b"new bytes")
    (tree / "data/new.0.0.0").write_bytes(b"another")
    summary = copy_tree(tree, dst)
    assert summary["sent_files"] == 2 and summary["files"] == 32
    assert (dst / "data/2.0.0.0").read_bytes() == b"new bytes"


def test_a_file_only_added_at_the_source_is_sent(tree: Path, tmp_path: Path) -> None:
    dst = tmp_path / "site/src.zarr"
    copy_tree(tree, dst)
    (tree / "data/extra.0.0.0").write_bytes(b"one more chunk")  # every other file as the marker recorded it
    summary = copy_tree(tree, dst)
    assert summary["sent_files"] == 1 and summary["files"] == 32
    assert (dst / "data/extra.0.0.0").read_bytes() == b"one more chunk"


def test_interrupted_copy_leaves_no_marker_and_no_torn_file(tree: Path, tmp_path: Path) -> None:
    dst = LocalStore(tmp_path / "site/src.zarr")
    calls = {"n": 0}
    real = dst.upload

    def failing(root: Path, entries: list[Entry], threads: int, advance: Any) -> dict[str, str]:
        real(root, entries[:10], threads, advance)  # ten files land, then the process dies
        calls["n"] += 1
        raise KeyboardInterrupt

    dst.upload = failing  # type: ignore[method-assign]
    with pytest.raises(KeyboardInterrupt):
        copy(LocalStore(tree), dst, threads=2)
    assert not (dst.root / MARKER).exists()
    assert [p.name for p in dst.root.rglob("*") if is_temporary(p.name)] == []
    assert copy_tree(tree, dst.root)["sent_files"] == 21


def test_remote_source_needs_a_marker(tree: Path, tmp_path: Path) -> None:
    from wxpipe.errors import WxpipeError
    from wxpipe.transfer.engine import _remote_source_manifest

    with pytest.raises(WxpipeError, match="not a complete, verified wxpipe copy"):
        _remote_source_manifest(LocalStore(tree), LocalStore(tree).listing(), 1, False)


class _CountedReads(LocalStore):
    """A store that notes every file it is asked to hash (by reading it, or by the checksum it keeps)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.asked: list[str] = []

    def hashes(self, paths: Any, threads: int) -> dict[str, str]:  # claimed_hashes too: a file: site keeps none
        self.asked += list(paths)
        return super().hashes(paths, threads)


@pytest.mark.parametrize("full", [False, True])
def test_a_remote_source_that_lost_a_file_fails_before_any_file_is_read(tree: Path, tmp_path: Path, full: bool) -> None:
    """A lost file is known from the listing alone: a full check of a TB copy must not read it all first."""
    from wxpipe.errors import WxpipeError
    from wxpipe.transfer.engine import _remote_source_manifest

    site = tmp_path / "site/src.zarr"
    copy_tree(tree, site, threads=2)
    (site / "data/3.0.0.0").unlink()
    for f in (site / "data").iterdir():
        os.utime(f, (1, 1))  # every stamp unlike the marker's: each remaining file is in doubt
    src = _CountedReads(site)
    with pytest.raises(WxpipeError, match=r"lost or truncated 1 files since it was verified, e.g. data/3.0.0.0"):
        _remote_source_manifest(src, src.listing(), 1, full)
    assert src.asked == []


@pytest.mark.parametrize("python", [True, False])
def test_remote_hash_script(tree: Path, python: bool) -> None:
    """The script ssh sites run remotely (Python's hashlib, or parallel sha256sum), run here by sh."""
    import subprocess

    from wxpipe.transfer.ssh import hash_script, parse_sums

    names = ["data/1.0.0.0", "data/2.0.0.0", ".zattrs", "missing/file"]
    script = hash_script(str(tree), 3, python)
    res = subprocess.run(["sh", "-c", script], input=b"\0".join(n.encode() for n in names) + b"\0", capture_output=True)
    assert res.returncode in (0, 123)
    expected = {e.path: e.sha256 for e in make_manifest(tree) if e.path in names}
    assert parse_sums(res.stdout) == expected


@pytest.mark.parametrize("python", [True, False])
def test_upload_hasher_creates_the_folder_and_ends_with_a_listing(tree: Path, tmp_path: Path, python: bool) -> None:
    """The session beside an upload's rsyncs: creates the folder, hashes, then lists what is there."""
    import shutil
    import subprocess

    from wxpipe.transfer.ssh import hash_script, parse_listing, parse_sums, split_at_sentinel

    dst = tmp_path / "new" / "copy.zarr"
    script = hash_script(str(dst), 2, python, upload=True)
    empty = subprocess.run(["sh", "-c", script], input=b"", capture_output=True, check=True).stdout
    assert dst.is_dir() and split_at_sentinel(empty) == ([], [b""])  # the sentinel first, nothing listed after
    shutil.rmtree(dst)
    shutil.copytree(tree, dst)
    names = ["data/1.0.0.0", ".zattrs"]
    res = subprocess.run(["sh", "-c", script], input=b"\0".join(n.encode() for n in names) + b"\0", capture_output=True)
    assert res.returncode == 0
    sums, after = split_at_sentinel(res.stdout)
    assert after is not None
    assert parse_sums(b"\0".join(sums)) == {e.path: e.sha256 for e in make_manifest(tree) if e.path in names}
    listing = parse_listing(after)
    assert {p: st.size for p, st in listing.items()} == {p: st.size for p, st in LocalStore(tree).listing().items()}


def test_ssh_batches_come_in_two_rounds_of_most_then_the_rest_of_the_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file once; the first ``transfers`` batches hold ~80% of the bytes (hashed while the rest moves)."""
    import random

    from wxpipe.transfer.ssh import SSHStore

    monkeypatch.setenv("WXPIPE_SSH_CONTROL_DIR", "none")
    store = SSHStore("ssh://site/data/copy.zarr", transfers=3)
    rng = random.Random(0)
    entries = [Entry(f"c/{i}", rng.randint(1, 5000), "") for i in range(500)]
    rounds = store._rounds(entries)
    assert len(rounds) == 6
    assert sorted(e.path for g in rounds for e in g) == sorted(e.path for e in entries)
    first = sum(e.size for g in rounds[:3] for e in g)
    total = sum(e.size for e in entries)
    assert 0.8 * total <= first < 0.8 * total + 5000
    assert sorted(map(len, store._rounds(entries[:2]))) == [1, 1]  # fewer files than batches: one each


@pytest.mark.parametrize(
    ("line", "first"),
    [
        ("", "aes128-gcm@openssh.com"),  # OpenSSH's order (chacha20 first): AES-GCM is asked for first
        ("Ciphers chacha20-poly1305@openssh.com,aes256-gcm@openssh.com", None),  # the user's own list: untouched
        ("Ciphers chacha20-poly1305@openssh.com,aes256-ctr", None),
        ("Ciphers aes256-ctr,aes128-gcm@openssh.com", None),
    ],
)
def test_ssh_asks_for_aes_gcm_first_only_where_no_config_sets_ciphers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, line: str, first: str | None
) -> None:
    """Read from ``ssh -G`` with a real config file (no connection is made)."""
    from wxpipe.transfer import ssh

    config = tmp_path / "ssh_config"
    config.write_text(f"Host site\n  HostName 127.0.0.1\n  {line}\n")
    base = ["ssh", "-F", str(config)]
    monkeypatch.setattr(ssh, "_has_aes", lambda: True)
    allowed = ssh.subprocess.run([*base, "-G", "site"], capture_output=True, text=True, check=True).stdout
    allowed_set = {c for ln in allowed.splitlines() if ln.startswith("ciphers ") for c in ln.split()[1].split(",")}
    opts = ssh.cipher_options(base, "site")
    if first is None:
        assert opts == []
    else:
        assert opts[0] == "-o" and opts[1].startswith(f"Ciphers={first},")
        assert set(opts[1].removeprefix("Ciphers=").split(",")) == allowed_set  # reordered, nothing added
    monkeypatch.setattr(ssh, "_has_aes", lambda: False)
    assert ssh.cipher_options(base, "site") == []


class _LateStamps(LocalStore):
    """A server that lists every object with another stamp than its write answered (rclone serve s3 lists
    an empty ETag for a moment), and may hold other bytes than were sent."""

    corrupt: str | None = None

    def confirm(self, listing: dict[str, Any]) -> list[str]:
        if self.corrupt:
            (self.root / self.corrupt).write_bytes(b"x" * (self.root / self.corrupt).stat().st_size)
        return sorted(listing)


def test_listed_stamps_unlike_the_writes_are_re_read_not_failed(tree: Path, tmp_path: Path) -> None:
    from wxpipe.errors import WxpipeError

    summary = copy(LocalStore(tree), _LateStamps(tmp_path / "a.zarr"), threads=2)
    assert summary["sent_files"] == 31 and verify_tree(tmp_path / "a.zarr", make_manifest(tree)) == []
    bad = _LateStamps(tmp_path / "b.zarr")
    bad.corrupt = "data/4.0.0.0"  # same size, other bytes: only reading them finds it
    with pytest.raises(WxpipeError, match=r"1 files failed verification, e.g. data/4.0.0.0"):
        copy(LocalStore(tree), bad, threads=2)
    assert not (tmp_path / "b.zarr" / MARKER).exists()


def test_s3_requests_stop_at_the_first_failure_and_name_the_site() -> None:
    import time

    from wxpipe.errors import WxpipeError
    from wxpipe.transfer.credentials import Credentials
    from wxpipe.transfer.s3 import S3Store

    store = S3Store(
        "s3://bucket/p", "http://127.0.0.1:9", transfers=2, credentials=Credentials("KEYID-unit", "SECRET-unit")
    )  # never contacted
    ran: list[int] = []

    def job(i: int) -> None:
        if i == 3:
            raise OSError("connection reset by peer (SECRET-unit)")
        time.sleep(0.01)
        ran.append(i)

    with pytest.raises(WxpipeError) as err:
        store._each("upload", job, range(1000))
    assert "s3://bucket/p" in str(err.value) and "upload failed" in str(err.value)
    assert "SECRET-unit" not in str(err.value)  # the server's words are scrubbed of credentials
    assert len(ran) < 100  # what had not started was cancelled (all 1000 would take 5 s)


def _drop_array(tree: Path) -> list[str]:
    """Delete an 'array' (a folder of chunks) at the source, as a rebuilt dataset that lost a variable would."""
    old = tree / "old"
    for i in range(3):
        (old / "c" / str(i)).parent.mkdir(parents=True, exist_ok=True)
        (old / "c" / str(i)).write_bytes(os.urandom(50))
    (old / ".zarray").write_text("{}")
    return sorted(f"old/{p.relative_to(old).as_posix()}" for p in old.rglob("*") if p.is_file())


def test_files_the_source_lost_are_kept_and_reported_without_delete(
    tree: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import json
    import shutil

    from wxpipe.transfer import describe

    dst = tmp_path / "site/src.zarr"
    gone = _drop_array(tree)
    copy_tree(tree, dst)
    shutil.rmtree(tree / "old")
    for verify in ("quick", "full"):
        summary = copy(LocalStore(tree), LocalStore(dst), verify=verify)  # type: ignore[arg-type]
        assert summary["extra"] == gone and summary["files"] == 31
        assert all((dst / p).exists() for p in gone)  # kept: not asked to delete
        assert json.loads((dst / MARKER).read_text())["extra"] == gone
        assert f"WARNING: {len(gone)} files the source lacks kept" in describe(summary)
    assert "files the source lacks (kept; --delete removes them): old/.zarray" in caplog.text
    marker = (dst / MARKER).read_text()
    caplog.clear()
    again = copy_tree(tree, dst)  # a no-op rerun stays one, and still says what is extra
    assert again["sent_files"] == 0 and again["extra"] == gone and (dst / MARKER).read_text() == marker
    assert "files the source lacks" in caplog.text


def test_delete_removes_what_the_source_lost_once_the_copy_is_verified(tree: Path, tmp_path: Path) -> None:
    import json
    import shutil

    from wxpipe.transfer import describe

    dst = tmp_path / "site/src.zarr"
    gone = _drop_array(tree)
    copy_tree(tree, dst)
    shutil.rmtree(tree / "old")
    copy_tree(tree, dst)  # extras recorded, kept
    (tree / "data/2.0.0.0").write_bytes(b"changed too")
    summary = copy(LocalStore(tree), LocalStore(dst), delete=True)
    assert summary["deleted"] == len(gone) and summary["extra"] == [] and summary["sent_files"] == 1
    assert not (dst / "old").exists()  # the emptied folders too
    assert verify_tree(dst, make_manifest(tree)) == [] and f"deleted {len(gone)} files" in describe(summary)
    assert json.loads((dst / MARKER).read_text())["extra"] == []
    marker = (dst / MARKER).read_text()
    assert copy(LocalStore(tree), LocalStore(dst), delete=True)["sent_files"] == 0  # a no-op rerun
    assert (dst / MARKER).read_text() == marker


def test_delete_waits_for_verification(tree: Path, tmp_path: Path) -> None:
    import shutil

    from wxpipe.errors import WxpipeError

    dst = tmp_path / "b.zarr"
    gone = _drop_array(tree)
    copy_tree(tree, dst)
    shutil.rmtree(tree / "old")
    (tree / "data/4.0.0.0").write_bytes(os.urandom(1004))
    bad = _LateStamps(dst)
    bad.corrupt = "data/4.0.0.0"
    with pytest.raises(WxpipeError, match="failed verification"):
        copy(LocalStore(tree), bad, delete=True)
    assert all((dst / p).exists() for p in gone)  # nothing deleted before the copy was verified


def test_symlinks_in_the_source_are_refused(tree: Path, tmp_path: Path) -> None:
    from wxpipe.errors import WxpipeError

    outside = tmp_path / "outside"
    (outside / "d").mkdir(parents=True)
    (outside / "secret").write_text("not part of the tree")
    (outside / "d/chunk").write_text("nor this")
    (tree / "data/link.0.0.0").symlink_to(outside / "secret")
    with pytest.raises(WxpipeError, match=r"src\.zarr/data/link\.0\.0\.0 in the source is a symbolic link"):
        copy_tree(tree, tmp_path / "a.zarr")
    (tree / "data/link.0.0.0").unlink()
    (tree / "linked").symlink_to(outside / "d", target_is_directory=True)
    with pytest.raises(WxpipeError, match=r"src\.zarr/linked in the source is a symbolic link"):
        copy_tree(tree, tmp_path / "a.zarr")
    assert not (tmp_path / "a.zarr" / "data").exists()  # refused before anything was sent


def test_a_linked_folder_at_the_destination_is_not_written_through(tree: Path, tmp_path: Path) -> None:
    from wxpipe.errors import WxpipeError

    dst, outside = tmp_path / "site/src.zarr", tmp_path / "outside"
    outside.mkdir()
    dst.mkdir(parents=True)
    (dst / "data").symlink_to(outside, target_is_directory=True)
    with pytest.raises(WxpipeError, match=r"site/src\.zarr/data is a symbolic link; refusing to write data/"):
        copy_tree(tree, dst)
    assert list(outside.iterdir()) == []


def test_a_linked_file_at_the_destination_is_replaced_not_followed(tree: Path, tmp_path: Path) -> None:
    dst, outside = tmp_path / "site/src.zarr", tmp_path / "outside"
    copy_tree(tree, dst)
    outside.write_bytes((tree / "data/5.0.0.0").read_bytes())  # the right bytes, but outside the site
    (dst / "data/5.0.0.0").unlink()
    (dst / "data/5.0.0.0").symlink_to(outside)
    assert copy_tree(tree, dst)["sent_files"] == 1
    assert not (dst / "data/5.0.0.0").is_symlink() and verify_tree(dst, make_manifest(tree)) == []


def test_temporaries_are_never_copied_and_ours_are_cleaned_at_the_destination(tree: Path, tmp_path: Path) -> None:
    planted = ["data/c/0.1f2e3d4c5b6a.partial", "zarr.9a8b.partial", "data/.1.0.0.0.wxpipe-part4242", ".zattrs.tmp77"]
    for p in planted:
        (tree / p).parent.mkdir(parents=True, exist_ok=True)
        (tree / p).write_bytes(b"half-written")
    assert all(is_temporary(p) for p in planted) and not is_temporary("data/0.0.0.0")
    dst = tmp_path / "site/src.zarr"
    (dst / "data").mkdir(parents=True)
    killed = ["data/.3.0.0.0.wxpipe-part999", ".wxpipe-copy.json.tmp31337"]  # what a killed copy leaves
    for p in killed:
        (dst / p).write_bytes(b"torn")
    summary = copy_tree(tree, dst)
    assert summary["files"] == 31 and summary["extra"] == []
    assert all(not (dst / p).exists() for p in planted + killed)
    assert {e.path for e in make_manifest(tree)} == {e["path"] for e in summary["manifest"]}
