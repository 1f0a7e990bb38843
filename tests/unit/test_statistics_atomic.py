"""Statistics replace as one set: a kill after any filesystem operation of the write leaves either a whole set
or one every reader refuses, and the next run writes the new set whole; concurrent writers are refused.

The kill is injected (the child process SIGKILLs itself right after its n-th create, rename, delete or
folder operation, for n = 1, 2, ... until a write completes), not timed with sleeps.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import shutil
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from wxpipe import statistics
from wxpipe.dataset import Dataset, open_dataset
from wxpipe.errors import WxpipeError
from wxpipe.summary import summary

MUTATIONS = ("replace", "rename", "unlink", "rmdir", "mkdir", "link")


def _die_after(n: int) -> None:
    """In this (child) process, SIGKILL right after the n-th filesystem mutation."""
    count = [0]
    for name in MUTATIONS:
        real = getattr(os, name)

        def wrapped(*args: Any, _real: Any = real, **kwargs: Any) -> Any:
            out = _real(*args, **kwargs)
            count[0] += 1
            if count[0] == n:
                os.kill(os.getpid(), signal.SIGKILL)
            return out

        setattr(os, name, wrapped)


def _write_killed_after(path: Path, s: statistics.Summary, n: int) -> bool:
    """Write ``s`` in a forked child that dies after its n-th mutation; whether it was killed."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            _die_after(n)
            statistics.write(path, s)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    return os.WIFSIGNALED(status)


def _set(ds: Dataset) -> dict[str, np.ndarray]:
    return ds.statistics()


def test_a_kill_after_any_step_leaves_one_whole_set_or_a_refused_one(
    tmp_path: Path, make_dataset: Callable[..., Dataset]
) -> None:
    ds = make_dataset(tmp_path / "ds.zarr", n_dates=16, missing=())
    d = ds.dates.astype("datetime64[s]").tolist()
    old = statistics.compute(ds, d[0], d[7], False, {"6h": 1}, None, 1)  # its tendency arrays must go
    new = statistics.compute(ds, d[4], d[15], False, {}, None, 1)  # other period, no tendency arrays
    period = {id(old): (old.start, old.end), id(new): (new.start, new.end)}
    statistics.write(ds.path, old)
    pristine = tmp_path / "pristine.zarr"
    shutil.copytree(ds.path, pristine)
    before = _set(open_dataset(pristine))
    n, states = 0, set()
    while True:
        n += 1
        shutil.rmtree(ds.path)
        shutil.copytree(pristine, ds.path)  # the old set, whole, before each try
        killed = _write_killed_after(ds.path, new, n)
        after = open_dataset(ds.path)
        try:
            got = _set(after)
        except WxpipeError as exc:
            assert "statistics incomplete" in str(exc) and "rerun `wxpipe statistics`" in str(exc)
            assert "statistics  INCOMPLETE" in summary(ds.path)
            states.add("refused")
        else:  # a whole set: the old one (killed before it flagged anything) or the new one, with its period
            which = new if np.array_equal(got["mean"], new.moments.mean) else old
            assert all(np.array_equal(got[k], v) for k, v in which.moments.arrays().items() if k in got)
            if which is old:
                assert all(np.array_equal(got[k], before[k]) for k in got)
            start, end = period[id(which)]
            assert after.attrs["statistics_start_date"] == start.isoformat()
            assert after.attrs["statistics_end_date"] == end.isoformat()
            states.add("old" if which is old else "new")
        statistics.write(ds.path, new)  # the rerun ends with the new set, whatever the kill left
        final = open_dataset(ds.path)
        assert np.array_equal(_set(final)["stdev"], new.moments.stdev)
        assert not [k for k in final.root.array_keys() if k.startswith("statistics_tendencies_")]
        if not killed:
            break
    assert n > 10 and states >= {"refused", "new"}, (n, states)


def test_a_second_writer_is_refused_while_the_first_holds_the_store(
    tmp_path: Path, make_dataset: Callable[..., Dataset]
) -> None:
    ds = make_dataset(tmp_path / "ds.zarr", n_dates=8, missing=())
    s = statistics.compute(ds, dt.datetime(2020, 1, 1), dt.datetime(2020, 1, 2), False, {}, None, 1)
    fd = os.open(ds.path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # as a first `wxpipe statistics` holds it while it writes
        with pytest.raises(WxpipeError, match="another process is writing its statistics now"):
            statistics.write(ds.path, s)
    finally:
        os.close(fd)
    statistics.write(ds.path, s)
    assert np.array_equal(open_dataset(ds.path).statistics()["mean"], s.moments.mean)
