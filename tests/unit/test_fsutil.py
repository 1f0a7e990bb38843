"""One atomic writer for the project: a kill mid-write leaves the final name absent and a temporary that
every cleaner recognises (finalise, verify, copy)."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from wxpipe.fsutil import atomic_path, is_temporary, remove_temps, write_atomic


def test_a_killed_write_leaves_only_a_recognised_temporary(tmp_path: Path) -> None:
    target = tmp_path / "data" / "0.0.0.0"
    pid = os.fork()
    if pid == 0:  # the child dies inside the write, after the temporary has bytes
        try:
            real = os.replace

            def die(*args: object) -> None:
                os.kill(os.getpid(), signal.SIGKILL)

            os.replace = die  # type: ignore[assignment]
            write_atomic(target, b"half a chunk")
            os.replace = real
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFSIGNALED(status)
    left = [p for p in target.parent.iterdir()]
    assert not target.exists() and len(left) == 1 and is_temporary(left[0].name), left
    assert remove_temps(tmp_path) == 1 and not any(target.parent.iterdir())
    write_atomic(target, b"whole")
    assert target.read_bytes() == b"whole" and [p.name for p in target.parent.iterdir()] == ["0.0.0.0"]


@pytest.mark.parametrize(
    ("name", "temporary"),
    [(".0.0.0.0.tmp123", True), ("0.3fa9.partial", True), (".x.wxpipe-part77", True), ("0.0.0.0", False)],
)
def test_temporary_names(name: str, temporary: bool) -> None:
    assert is_temporary(name) is temporary


def test_a_folder_replaces_an_older_folder_whole(tmp_path: Path) -> None:
    store = tmp_path / "forecasts.zarr"
    (store / "a").mkdir(parents=True)
    (store / "a" / "0").write_bytes(b"old")
    with atomic_path(store) as tmp:
        tmp.mkdir()
        (tmp / "new").write_bytes(b"new")
    assert sorted(p.name for p in store.iterdir()) == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["forecasts.zarr"]  # no temporary, no old copy left


def test_a_failed_folder_is_removed_and_the_older_one_kept(tmp_path: Path) -> None:
    store = tmp_path / "forecasts.zarr"
    store.mkdir()
    (store / "old").write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_path(store) as tmp:
        (tmp / "a").mkdir(parents=True)
        (tmp / "a" / "0").write_bytes(b"half")
        raise RuntimeError("killed")
    assert [p.name for p in tmp_path.iterdir()] == ["forecasts.zarr"]
    assert (store / "old").read_bytes() == b"old"
