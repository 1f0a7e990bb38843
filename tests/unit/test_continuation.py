"""A stopped SLURM training job requeues itself only when its step advanced (scontrol faked here; the real
cluster runs it in tests/slurm/test_profiles.py)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
import torch

from wxpipe.train import continuation
from wxpipe.train.state import STATE_FILE, saved_step


@pytest.fixture
def scontrol(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A PATH whose ``scontrol`` appends its arguments to a file."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls"
    bin_dir.mkdir()
    fake = bin_dir / "scontrol"
    fake.write_text(f'#!/bin/sh\necho "$@" >> {calls}\n')
    fake.chmod(0o755)
    return {"PATH": str(bin_dir), "SLURM_JOB_ID": "42"}, calls


def _state(folder: Path, step: int) -> Path:
    folder.mkdir(exist_ok=True)
    torch.save({"step": step, "model": {"w": torch.zeros(3)}}, folder / STATE_FILE)
    return folder


def test_only_a_batch_script_is_a_batch_job() -> None:
    assert continuation.batch_job({"SLURM_JOB_ID": "42"}) == "42"
    assert continuation.batch_job({"SLURM_JOB_ID": "42", "SLURM_STEP_ID": "0"}) is None
    assert continuation.batch_job({}) is None


def test_the_saved_step_is_read(tmp_path: Path) -> None:
    assert saved_step(tmp_path) is None
    assert saved_step(_state(tmp_path / "s", 37)) == 37


def test_progress_requeues_the_job(tmp_path: Path, scontrol: tuple[dict[str, str], Path]) -> None:
    env, calls = scontrol
    folder = _state(tmp_path / "s", 120)
    assert continuation.requeue(folder, 40, env)
    assert calls.read_text().split() == ["requeue", "42"]
    assert continuation.requeue(folder, None, env)  # the job started without a state


def test_no_progress_is_not_requeued(
    tmp_path: Path, scontrol: tuple[dict[str, str], Path], caplog: pytest.LogCaptureFixture
) -> None:
    env, calls = scontrol
    folder = _state(tmp_path / "s", 40)
    with caplog.at_level(logging.ERROR):
        assert not continuation.requeue(folder, 40, env)
        assert not continuation.requeue(tmp_path / "none", None, env)
    assert not calls.exists()
    assert "made no progress (step 40 at its start, 40 now)" in caplog.text


def test_outside_a_batch_job_nothing_is_requeued(tmp_path: Path, scontrol: tuple[dict[str, str], Path]) -> None:
    env, calls = scontrol
    folder = _state(tmp_path / "s", 120)
    assert not continuation.requeue(folder, 40, {**env, "SLURM_STEP_ID": "0"})
    assert not continuation.requeue(folder, 40, {"PATH": env["PATH"]})
    assert not calls.exists()


def test_a_refused_requeue_says_why(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text("#!/bin/sh\necho 'Requested operation is presently disabled' >&2\nexit 1\n")
    (bin_dir / "scontrol").chmod(0o755)
    with caplog.at_level(logging.ERROR):
        assert not continuation.requeue(_state(tmp_path / "s", 9), 1, {"PATH": str(bin_dir), "SLURM_JOB_ID": "7"})
    assert "presently disabled" in caplog.text and "sbatch --requeue" in caplog.text
