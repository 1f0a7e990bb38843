"""``wxpipe lineage verify`` of copies at remote sites, against real servers on 127.0.0.1 (S3 and sshd).

A small tree is copied with ``wxpipe copy --lineage``; then the copy is changed behind the record's back, at
the site (S3 objects rewritten or deleted through the server, files of the ssh site's folder edited), and
verify must say so, naming the copy's record, and exit 1. It reaches each site with the options the copy
recorded: the tests run verify without ``--endpoint-url`` or ``WXPIPE_SSH_CONFIG``.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import obstore
import pytest
from obstore.store import S3Store

pytestmark = pytest.mark.integration

BIN = Path(sys.executable).parent
MARKER = ".wxpipe-copy.json"


def wxpipe(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(BIN / "wxpipe"), *args], capture_output=True, text=True, env=env, timeout=120)


def copied(src: Path, url: str, records: Path, env: dict[str, str], *options: str) -> dict[str, Any]:
    """Copy ``src`` to ``url`` with a lineage record under ``records``; the record."""
    record = records / "transfer" / "copy.json"
    res = wxpipe("copy", str(src), url, *options, "--lineage", str(record), env=env)
    assert res.returncode == 0, res.stderr
    return json.loads(record.read_text())  # type: ignore[no-any-return]


def verify(records: Path, env: dict[str, str], *flags: str) -> subprocess.CompletedProcess[str]:
    return wxpipe("lineage", "verify", "--records", str(records), *flags, env=env)


def small_tree(path: Path) -> Path:
    for i in range(4):
        (path / "data").mkdir(parents=True, exist_ok=True)
        (path / "data" / f"{i}.0").write_bytes(bytes([i]) * (1000 + i))
    (path / ".zattrs").write_text("{}")
    return path


def flipped(data: bytes) -> bytes:
    return bytes([data[0] ^ 0xFF]) + data[1:]


def test_s3_copy_is_verified_at_the_site(s3_server: Any, tmp_path: Path) -> None:
    s3, records = s3_server, tmp_path / "lineage"
    src, url = small_tree(tmp_path / "a.zarr"), f"s3://{s3.bucket}/verify/a.zarr"
    rec = copied(src, url, records, s3.env(), "--endpoint-url", s3.endpoint)
    assert rec["params"]["site"] == {"endpoint_url": s3.endpoint}
    text = json.dumps(rec)
    assert s3.secret not in text and s3.key not in text
    env = s3.env()
    res = verify(records, env)
    assert res.returncode == 0 and f"ok: {url}" in res.stderr, res.stderr

    store = S3Store(
        s3.bucket,
        prefix="verify/a.zarr",
        config={"endpoint": s3.endpoint, "access_key_id": s3.key, "secret_access_key": s3.secret},
        client_options={"allow_http": True},
    )
    good = (src / "data/1.0").read_bytes()
    claimed = {"sha256": hashlib.sha256(good).hexdigest()}
    obstore.put(store, "data/1.0", flipped(good), attributes=claimed)  # other bytes that claim the old checksum
    assert verify(records, env).returncode == 0  # the quick check trusts the stored checksum
    res = verify(records, env, "--full")
    assert res.returncode == 1 and f"changed: {url} ({rec['id']})" in res.stderr, res.stderr
    assert "1 files with other bytes, e.g. data/1.0" in res.stderr

    obstore.put(store, "data/2.0", flipped((src / "data/2.0").read_bytes()))  # same size, no checksum
    res = verify(records, env)
    assert res.returncode == 1 and f"changed: {url} ({rec['id']})" in res.stderr, res.stderr

    copied(src, url, records, env, "--endpoint-url", s3.endpoint, "--verify", "full")  # repaired
    assert verify(records, env).returncode == 0
    obstore.delete(store, "data/3.0")
    res = verify(records, env)
    assert res.returncode == 1 and "1 files lost or truncated, e.g. data/3.0" in res.stderr, res.stderr

    keyless = {k: v for k, v in env.items() if not k.startswith("AWS_") or k == "AWS_EC2_METADATA_DISABLED"}
    keyless |= {"HOME": str(tmp_path), "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "none")}
    res = verify(records, keyless)
    assert res.returncode == 0 and f"unreachable: {url}" in res.stderr, res.stderr
    assert f"site {url}: no S3 credentials" in res.stderr
    assert verify(records, keyless, "--strict").returncode == 1
    res = verify(records, keyless, "--offline")
    assert res.returncode == 0 and f"unchecked (remote): {url}" in res.stderr


def test_ssh_copy_is_verified_at_the_site(ssh_server: Any, tmp_path: Path) -> None:
    records, remote = tmp_path / "lineage", tmp_path / "remote/a.zarr"
    src, url = small_tree(tmp_path / "a.zarr"), f"ssh://{ssh_server.host}{remote}"
    env = {k: v for k, v in os.environ.items() if k != "WXPIPE_SSH_CONFIG"}
    rec = copied(src, url, records, env, "--ssh-config", str(ssh_server.config))
    assert rec["params"]["site"] == {"ssh_config": str(ssh_server.config)}
    res = verify(records, env)
    assert res.returncode == 0 and f"ok: {url}" in res.stderr, res.stderr

    chunk, good = remote / "data/1.0", (remote / "data/1.0").read_bytes()
    st = chunk.stat()
    chunk.write_bytes(flipped(good))
    os.utime(chunk, ns=(st.st_atime_ns, st.st_mtime_ns))  # bytes flipped behind the stamp's back
    assert verify(records, env).returncode == 0
    res = verify(records, env, "--full")
    assert res.returncode == 1 and f"changed: {url} ({rec['id']})" in res.stderr, res.stderr

    chunk.write_bytes(flipped(good))  # a new stamp: the quick check hashes it at the site
    res = verify(records, env)
    assert res.returncode == 1 and "1 files with other bytes, e.g. data/1.0" in res.stderr, res.stderr
    chunk.write_bytes(good)
    assert verify(records, env).returncode == 0

    (remote / "data/3.0").unlink()
    res = verify(records, env)
    assert res.returncode == 1 and "1 files lost or truncated, e.g. data/3.0" in res.stderr, res.stderr
    (remote / MARKER).unlink()
    res = verify(records, env)
    assert res.returncode == 1 and f"missing: {url} ({rec['id']})" in res.stderr, res.stderr
