"""``wxpipe copy`` against real servers on 127.0.0.1: S3 (rclone serve s3) and sshd with rsync.

Every copy runs the CLI in a subprocess, as a rule would. Trees are real Zarr stores (v2, and v3 sharded)
so the copies are compared both byte for byte and as arrays.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import obstore
import pytest
import zarr
from obstore.store import S3Store

from wxpipe.fsutil import file_sha256, tree_files

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
MARKER = ".wxpipe-copy.json"


def wxpipe(*args: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        [str(BIN / "wxpipe"), "copy", *args], capture_output=True, text=True, env=env or dict(os.environ), timeout=300
    )
    if check and res.returncode != 0:
        pytest.fail(f"wxpipe copy {' '.join(args)} failed:\n{res.stdout}\n{res.stderr}")
    return res


def make_store(path: Path, zarr_format: int = 2, shards: bool = False, dates: int = 40) -> Path:
    rng = np.random.default_rng(zarr_format + 10 * shards)
    root = zarr.open_group(str(path), mode="w", zarr_format=zarr_format)  # type: ignore[arg-type]
    kw: dict[str, Any] = {"shards": (8, 3, 1, 512)} if shards else {}
    arr = root.create_array("data", shape=(dates, 3, 1, 1024), chunks=(2, 3, 1, 256), dtype="float32", **kw)
    arr[:] = rng.standard_normal(arr.shape).astype("float32")
    root.attrs["variables"] = ["2t", "msl", "tp"]
    return path


def same_tree(a: Path, b: Path) -> None:
    files = tree_files(a)
    assert files == [f for f in tree_files(b) if f.name != MARKER]
    assert all(file_sha256(a / f) == file_sha256(b / f) for f in files)


def summary(res: subprocess.CompletedProcess[str]) -> str:
    return res.stdout.strip().splitlines()[-1]


def sent(res: subprocess.CompletedProcess[str]) -> int:
    return int(summary(res).split("; sent ")[1].split()[0])


@pytest.fixture
def s3(s3_server: Any) -> Any:
    return s3_server


def s3_args(server: Any) -> list[str]:
    return ["--endpoint-url", server.endpoint]


def s3_store(server: Any, prefix: str) -> S3Store:
    return S3Store(
        server.bucket,
        prefix=prefix,
        config={"endpoint": server.endpoint, "access_key_id": server.key, "secret_access_key": server.secret},
        client_options={"allow_http": True},
    )


@pytest.mark.parametrize(("zarr_format", "shards"), [(2, False), (3, False), (3, True)])
def test_s3_round_trip(s3: Any, tmp_path: Path, zarr_format: int, shards: bool) -> None:
    src = make_store(tmp_path / "src.zarr", zarr_format, shards)
    url = f"s3://{s3.bucket}/rt/v{zarr_format}{'s' if shards else ''}/src.zarr"
    record = tmp_path / "copy.json"
    up = wxpipe(str(src), url, *s3_args(s3), "--lineage", str(record), env=s3.env())
    assert sent(up) == len(tree_files(src))
    assert json.loads(record.read_text())["outputs"][0]["url"] == url
    down = wxpipe(url, str(tmp_path / "back.zarr"), *s3_args(s3), env=s3.env())
    assert sent(down) == len(tree_files(src))
    same_tree(src, tmp_path / "back.zarr")
    a, b = zarr.open_group(str(src), mode="r"), zarr.open_group(str(tmp_path / "back.zarr"), mode="r")
    np.testing.assert_array_equal(a["data"][:], b["data"][:])  # type: ignore[index]
    assert sent(wxpipe(str(src), url, *s3_args(s3), env=s3.env())) == 0  # complete: nothing re-sent


def test_s3_corruption_is_found_and_repaired(s3: Any, tmp_path: Path) -> None:
    src = make_store(tmp_path / "src.zarr")
    url = f"s3://{s3.bucket}/corrupt/src.zarr"
    wxpipe(str(src), url, *s3_args(s3), env=s3.env())
    store = s3_store(s3, "corrupt/src.zarr")
    flipped = bytearray((src / "data/3.0.0.0").read_bytes())
    flipped[17] ^= 0xFF
    obstore.put(store, "data/3.0.0.0", bytes(flipped))  # same size, other bytes
    obstore.put(store, "data/5.0.0.1", (src / "data/5.0.0.1").read_bytes()[:100])  # truncated
    obstore.delete(store, "data/7.0.0.2")  # lost
    res = wxpipe(str(src), url, *s3_args(s3), env=s3.env())
    assert sent(res) == 3
    down = tmp_path / "back.zarr"
    wxpipe(url, str(down), *s3_args(s3), "--verify", "full", env=s3.env())
    same_tree(src, down)


def _kill_midway(cmd: list[str], env: dict[str, str], arrived: Any) -> None:
    """Start a copy, kill -9 its whole process group once some files arrived (and it is still running)."""
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while arrived() < 20 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    running = proc.poll() is None
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert running, "the copy finished before it could be killed; make the tree bigger"


def settle(count: Any) -> None:
    """Wait until a count stops changing (processes outside our process group winding down)."""
    last, stable = -1, 0
    for _ in range(200):
        now = count()
        stable = stable + 1 if now == last else 0
        if stable >= 10:
            return
        last = now
        time.sleep(0.05)


def many_files(path: Path, n: int = 600) -> Path:
    for i in range(n):
        p = path / "data" / f"{i}.0.0.0"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(np.random.default_rng(i).bytes(16_000 + i))
    (path / ".zattrs").write_text("{}")
    return path


def test_s3_resume_after_kill(s3: Any, tmp_path: Path) -> None:
    src = many_files(tmp_path / "src.zarr")
    url = f"s3://{s3.bucket}/resume/src.zarr"
    backing = s3.data / s3.bucket / "resume/src.zarr"
    cmd = [str(BIN / "wxpipe"), "copy", str(src), url, *s3_args(s3), "--transfers", "1"]
    _kill_midway(cmd, s3.env(), lambda: len(list(backing.rglob("*.0.0.0"))) if backing.exists() else 0)
    store = s3_store(s3, "resume/src.zarr")
    listing = lambda: {m["path"]: m["size"] for batch in obstore.list(store) for m in batch}  # noqa: E731
    settle(lambda: len(listing()))  # the server may still commit the PUT whose body it had before the kill
    objects = listing()
    assert MARKER not in objects  # not complete
    assert 0 < len(objects) < len(tree_files(src))
    for name in objects:  # no torn object, nothing that is not a source file
        assert bytes(obstore.get(store, name).bytes()) == (src / name).read_bytes()
    res = wxpipe(str(src), url, *s3_args(s3), env=s3.env())
    assert sent(res) == len(tree_files(src)) - len(objects)
    wxpipe(url, str(tmp_path / "back.zarr"), *s3_args(s3), env=s3.env())
    same_tree(src, tmp_path / "back.zarr")


def ssh_env(ssh: Any) -> dict[str, str]:
    return {**os.environ, "WXPIPE_SSH_CONFIG": str(ssh.config)}


def test_ssh_round_trip_and_repair(ssh_server: Any, tmp_path: Path) -> None:
    src = make_store(tmp_path / "src.zarr", 3, shards=True)
    remote = tmp_path / "remote/src.zarr"
    url = f"ssh://{ssh_server.host}{remote}"
    env = ssh_env(ssh_server)
    assert sent(wxpipe(str(src), url, env=env)) == len(tree_files(src))
    same_tree(src, remote)
    assert sent(wxpipe(str(src), url, env=env)) == 0

    chunk = remote / "data/c/1/0/0/0"
    blob = bytearray(chunk.read_bytes())
    blob[40] ^= 0xFF
    chunk.write_bytes(bytes(blob))  # rewritten: the quick check sees its mtime change
    assert sent(wxpipe(str(src), url, env=env)) == 1
    same_tree(src, remote)

    st = chunk.stat()
    blob = bytearray(chunk.read_bytes())
    blob[41] ^= 0xFF
    chunk.write_bytes(bytes(blob))
    os.utime(chunk, ns=(st.st_atime_ns, st.st_mtime_ns))  # bytes flipped behind the stamp's back
    assert sent(wxpipe(str(src), url, "--verify", "full", env=env)) == 1
    same_tree(src, remote)

    back = tmp_path / "back.zarr"
    assert sent(wxpipe(url, str(back), env=env)) == len(tree_files(src))
    same_tree(src, back)
    np.testing.assert_array_equal(zarr.open_group(str(back), mode="r")["data"][:], zarr.open_group(str(src))["data"][:])  # type: ignore[index]


def test_ssh_resume_after_kill(ssh_server: Any, tmp_path: Path) -> None:
    src = many_files(tmp_path / "src.zarr", 1500)
    remote = tmp_path / "remote/src.zarr"
    url = f"ssh://{ssh_server.host}{remote}"
    env = ssh_env(ssh_server)
    cmd = [str(BIN / "wxpipe"), "copy", str(src), url, "--transfers", "1"]
    count = lambda: len(list(remote.rglob("*.0.0.0"))) if remote.exists() else 0  # noqa: E731
    _kill_midway(cmd, env, count)
    settle(count)  # the remote rsync (sshd's child) may finish the file it was writing
    assert not (remote / MARKER).exists()
    landed = [f for f in tree_files(remote) if (src / f).exists()]  # (rsync's own temporary names aside)
    assert 0 < len(landed) < len(tree_files(src))
    for f in landed:
        assert (remote / f).read_bytes() == (src / f).read_bytes()  # renamed into place only when whole
    res = wxpipe(str(src), url, env=env)
    assert sent(res) == len(tree_files(src)) - len(landed)  # only what is missing
    assert all(file_sha256(src / f) == file_sha256(remote / f) for f in tree_files(src))
    assert json.loads((remote / MARKER).read_text())["files"] == len(tree_files(src))


def test_unreachable_sites_fail_clearly(s3: Any, ssh_server: Any, tmp_path: Path) -> None:
    src = many_files(tmp_path / "src.zarr", 3)
    closed = f"http://127.0.0.1:{_closed_port()}"
    res = wxpipe(str(src), "s3://wxpipe/x.zarr", "--endpoint-url", closed, env=s3.env(), check=False)
    assert res.returncode == 1
    assert f"site s3://wxpipe/x.zarr (endpoint {closed})" in res.stderr and "Traceback" not in res.stderr
    bad = (
        (ssh_server.config.read_text())
        .replace("Host wxpipe-test", "Host nowhere")
        .replace(f"Port {_port_of(ssh_server)}", f"Port {_closed_port()}")
    )
    (tmp_path / "ssh_config").write_text(bad)
    res = wxpipe(str(src), "ssh://nowhere/tmp/x.zarr", "--ssh-config", str(tmp_path / "ssh_config"), check=False)
    assert res.returncode == 1
    assert "site ssh://nowhere/tmp/x.zarr: cannot reach nowhere over ssh" in res.stderr


def test_wrong_or_missing_keys_fail_clearly_and_never_leak(s3: Any, tmp_path: Path) -> None:
    src = many_files(tmp_path / "src.zarr", 3)
    env = {**s3.env(), "AWS_SECRET_ACCESS_KEY": "wrong-secret-value"}
    res = wxpipe(str(src), "s3://wxpipe/k.zarr", *s3_args(s3), env=env, check=False)
    assert res.returncode == 1 and "site s3://wxpipe/k.zarr" in res.stderr and "403" in res.stderr
    # the server's reason, not its XML cut short; and never the key
    assert "403 Forbidden: SignatureDoesNotMatch: The request signature" in res.stderr, res.stderr
    assert "wrong-secret-value" not in res.stdout + res.stderr and "<?xml" not in res.stderr
    res = wxpipe(
        str(src), "s3://wxpipe/k.zarr", *s3_args(s3), env={**s3.env(), "AWS_ACCESS_KEY_ID": "nokey"}, check=False
    )
    assert res.returncode == 1 and "InvalidAccessKeyId" in res.stderr, res.stderr
    env = {k: v for k, v in s3.env().items() if not k.startswith("AWS_ACCESS")} | {"HOME": str(tmp_path)}
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "credentials")
    res = wxpipe(str(src), "s3://wxpipe/k.zarr", *s3_args(s3), env=env, check=False)
    assert res.returncode == 1 and "site s3://wxpipe/k.zarr: no S3 credentials" in res.stderr
    (tmp_path / "credentials").write_text(f"[p]\naws_access_key_id = {s3.key}\naws_secret_access_key = {s3.secret}\n")
    (tmp_path / "credentials").chmod(0o640)
    res = wxpipe(str(src), "s3://wxpipe/k.zarr", *s3_args(s3), "--profile", "p", env=env, check=False)
    assert res.returncode == 1 and "is readable by group or others (mode 0640)" in res.stderr
    (tmp_path / "credentials").chmod(0o600)
    record = tmp_path / "record.json"
    res = wxpipe(str(src), "s3://wxpipe/k.zarr", *s3_args(s3), "--profile", "p", "--lineage", str(record), env=env)
    store = s3_store(s3, "k.zarr")
    marker = bytes(obstore.get(store, MARKER).bytes())
    for text in (res.stdout, res.stderr, record.read_text(), marker.decode()):
        assert s3.secret not in text and s3.key not in text


def _closed_port() -> int:
    """A loopback port nobody listens on (bound then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_of(ssh_server: Any) -> str:
    return next(ln.split()[1] for ln in ssh_server.config.read_text().splitlines() if ln.strip().startswith("Port"))


def _lose_an_array(src: Path) -> list[str]:
    """Give the source an array, then delete it there (a rebuilt dataset without that variable)."""
    root = zarr.open_group(str(src), mode="a")
    arr = root.create_array("old", shape=(4, 256), chunks=(2, 128), dtype="float32")
    arr[:] = 1.0
    files = [f"old/{f.as_posix()}" for f in tree_files(src / "old")]
    return sorted(files)


def test_s3_extras_kept_and_reported_then_deleted(s3: Any, tmp_path: Path) -> None:
    import shutil

    src = make_store(tmp_path / "src.zarr", 3, shards=True)
    gone = _lose_an_array(src)
    url = f"s3://{s3.bucket}/mirror/src.zarr"
    wxpipe(str(src), url, *s3_args(s3), env=s3.env())
    shutil.rmtree(src / "old")
    store = s3_store(s3, "mirror/src.zarr")
    objects = lambda: {m["path"] for batch in obstore.list(store) for m in batch}  # noqa: E731
    res = wxpipe(str(src), url, *s3_args(s3), "--verify", "full", env=s3.env())
    assert f"WARNING: {len(gone)} files the source lacks kept" in summary(res) and "old/" in res.stderr
    assert set(gone) <= objects()
    assert json.loads(bytes(obstore.get(store, MARKER).bytes()))["extra"] == gone
    res = wxpipe(str(src), url, *s3_args(s3), "--delete", env=s3.env())
    assert sent(res) == 0 and f"deleted {len(gone)} files" in summary(res)
    assert objects() == {str(f) for f in tree_files(src)} | {MARKER}
    res = wxpipe(str(src), url, *s3_args(s3), "--delete", env=s3.env())
    assert sent(res) == 0 and "deleted" not in summary(res) and "WARNING" not in summary(res)
    back = tmp_path / "back.zarr"  # downloading: the local destination is mirrored the same way
    wxpipe(url, str(back), *s3_args(s3), env=s3.env())
    (back / "data/stray").write_bytes(b"not at the site")
    assert "WARNING: 1 files the source lacks kept" in summary(wxpipe(url, str(back), *s3_args(s3), env=s3.env()))
    assert "deleted 1 files" in summary(wxpipe(url, str(back), *s3_args(s3), "--delete", env=s3.env()))
    same_tree(src, back)


def test_ssh_extras_kept_and_reported_then_deleted(ssh_server: Any, tmp_path: Path) -> None:
    import shutil

    src = make_store(tmp_path / "src.zarr", 2)
    gone = _lose_an_array(src)
    remote = tmp_path / "remote/src.zarr"
    url = f"ssh://{ssh_server.host}{remote}"
    env = ssh_env(ssh_server)
    wxpipe(str(src), url, env=env)
    shutil.rmtree(src / "old")
    (src / "data/0.0.0.0").write_bytes(b"rewritten")
    res = wxpipe(str(src), url, env=env)
    assert sent(res) == 1 and f"WARNING: {len(gone)} files the source lacks kept" in summary(res)
    assert all((remote / f).exists() for f in gone)
    assert json.loads((remote / MARKER).read_text())["extra"] == gone
    res = wxpipe(str(src), url, "--delete", env=env)
    assert sent(res) == 0 and f"deleted {len(gone)} files" in summary(res)
    assert not (remote / "old").exists()  # the emptied folders too
    same_tree(src, remote)
    assert sent(wxpipe(str(src), url, "--delete", env=env)) == 0
