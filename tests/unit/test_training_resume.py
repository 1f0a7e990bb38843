"""Training resumes after a kill: kill -9 and signals, the same MLflow run, bit-identical weights, and the
rules that say when a saved state is continued, refused or moved aside."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from wxpipe.cli import main
from wxpipe.config import TrainingConfig, params_of
from wxpipe.dataset import Dataset
from wxpipe.errors import WxpipeError
from wxpipe.tracking import experiment_id
from wxpipe.train import EXIT_STOPPED, load_checkpoint, state_folder, train
from wxpipe.train.order import Position, batches
from wxpipe.train.resume import Settings, plan_start, seed_weights
from wxpipe.train.state import History, RunInfo, TrainingState, load_state

STEPS = 30
EVERY = 10

# the real command in a child process, which sends itself ``sig`` as optimiser step ``at`` begins
SELF_SIGNAL = """
import os, signal, sys
from wxpipe.cli import main
from wxpipe.train import loop
step, calls = loop._train_step, []
def signalled(run, batch):
    calls.append(1)
    if len(calls) == {at}:
        os.kill(os.getpid(), signal.{sig})
    step(run, batch)
loop._train_step = signalled
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One MLflow database for the module (its set-up is the slow part); each test has its experiment."""
    return tmp_path_factory.mktemp("mlflow")


@pytest.fixture
def config(store: Path, training_config: Any, request: pytest.FixtureRequest) -> Callable[..., TrainingConfig]:
    uri = f"sqlite:///{store}/mlflow.db"

    def make(**overrides: Any) -> TrainingConfig:
        mlflow = {"tracking_uri": uri, "experiment": request.node.name}
        cfg: TrainingConfig = training_config(
            store, **{"steps": STEPS, "checkpoint_every": EVERY, "mlflow": mlflow, **overrides}
        )
        return cfg

    return make


@pytest.fixture(scope="module")
def uninterrupted(tiny_dataset: Dataset, store: Path, training_config: Any) -> Any:
    """The weights of the run trained without a break (one thread, like the resumed ones)."""
    mlflow = {"tracking_uri": f"sqlite:///{store}/mlflow.db", "experiment": "uninterrupted"}
    cfg = training_config(store, steps=STEPS, checkpoint_every=EVERY, mlflow=mlflow)
    result = train(tiny_dataset, cfg, store / "uninterrupted" / "checkpoint.pt", "uninterrupted", {}, threads=1)
    return load_checkpoint(result.checkpoint)[0]


def _argv(dataset: Dataset, cfg: TrainingConfig, checkpoint: Path, name: str = "resume") -> list[str]:
    settings = json.dumps(params_of(cfg))
    return ["train", str(dataset.path), str(checkpoint), "--name", name, "--settings", settings]


def _same_weights(checkpoint: Path, reference: torch.nn.Module) -> None:
    model, _ = load_checkpoint(checkpoint)
    for (name, a), (_, b) in zip(model.state_dict().items(), reference.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


def _runs(cfg: TrainingConfig) -> list[Any]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(cfg.mlflow.tracking_uri)
    experiment = client.get_experiment_by_name(cfg.mlflow.experiment)
    return list(client.search_runs([experiment.experiment_id])) if experiment else []


def _signal_at(monkeypatch: pytest.MonkeyPatch, at: int, sig: signal.Signals) -> None:
    """Send this process ``sig`` as optimiser step ``at`` begins (in-process twin of SELF_SIGNAL)."""
    from wxpipe.train import loop

    step, calls = loop._train_step, []

    def signalled(run: Any, batch: Any) -> None:
        calls.append(1)
        if len(calls) == at:
            os.kill(os.getpid(), sig)
        step(run, batch)

    monkeypatch.setattr(loop, "_train_step", signalled)


def _stopped(
    dataset: Dataset, cfg: TrainingConfig, checkpoint: Path, at: int, sig: signal.Signals, mp: pytest.MonkeyPatch
) -> TrainingState:
    """The state of a run that ``sig`` stopped at step ``at``."""
    _signal_at(mp, at, sig)
    with pytest.raises(WxpipeError, match=f"stopped by {sig.name} at step {at} of"):
        train(dataset, cfg, checkpoint, "r", {})
    mp.undo()
    saved = load_state(state_folder(checkpoint))
    assert saved is not None and saved.step == at
    return saved


def test_kill_9_then_the_same_command_continues_bit_for_bit(
    tiny_dataset: Dataset, config: Any, tmp_path: Path, uninterrupted: Any, caplog: pytest.LogCaptureFixture
) -> None:
    cfg = config()
    checkpoint = tmp_path / "models" / "r" / "checkpoint.pt"
    argv = _argv(tiny_dataset, cfg, checkpoint)
    script = SELF_SIGNAL.format(at=25, sig="SIGKILL")
    child = subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, timeout=600)
    assert child.returncode == -signal.SIGKILL, child.stderr
    folder = state_folder(checkpoint)
    saved = load_state(folder)
    assert saved is not None and saved.step == 20 and not checkpoint.exists()
    assert [r.info.status for r in _runs(cfg)] == ["RUNNING"]  # what kill -9 leaves

    with caplog.at_level(logging.INFO):
        assert main(argv) == 0
    assert f"resuming resume at step 20 of {STEPS} from {folder / 'last.pt'}" in caplog.text
    _same_weights(checkpoint, uninterrupted)
    runs = _runs(cfg)
    assert [(r.info.run_id, r.info.status) for r in runs] == [(saved.run.run_id, "FINISHED")]
    from mlflow.tracking import MlflowClient

    history = MlflowClient(cfg.mlflow.tracking_uri).get_metric_history(saved.run.run_id, "train_loss")
    by_step: dict[int, set[float]] = {}
    for m in history:
        by_step.setdefault(m.step, set()).add(m.value)
    assert sorted(by_step) == [10, 20, 30] and all(len(v) == 1 for v in by_step.values())


def test_sigterm_saves_the_state_and_exits_then_a_rerun_finishes(
    tiny_dataset: Dataset,
    config: Any,
    tmp_path: Path,
    uninterrupted: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = config()
    checkpoint = tmp_path / "checkpoint.pt"
    argv = _argv(tiny_dataset, cfg, checkpoint)
    handler = signal.getsignal(signal.SIGTERM)
    _signal_at(monkeypatch, 15, signal.SIGTERM)
    with pytest.raises(SystemExit) as stopped, caplog.at_level(logging.INFO):
        main(argv)
    assert stopped.value.code == EXIT_STOPPED
    folder = state_folder(checkpoint)
    assert f"stopped by SIGTERM at step 15 of {STEPS}: state saved in {folder}, rerun to continue" in caplog.text
    saved = load_state(folder)
    assert saved is not None and saved.step == 15
    assert [r.info.status for r in _runs(cfg)] == ["KILLED"]
    assert signal.getsignal(signal.SIGTERM) == handler

    monkeypatch.undo()
    assert main(argv) == 0
    _same_weights(checkpoint, uninterrupted)  # a stop between two saves loses nothing either
    assert [(r.info.run_id, r.info.status) for r in _runs(cfg)] == [(saved.run.run_id, "FINISHED")]


def test_an_identity_change_is_refused_naming_the_key(
    tiny_dataset: Dataset, config: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkpoint = tmp_path / "checkpoint.pt"
    _stopped(tiny_dataset, config(), checkpoint, 5, signal.SIGUSR1, monkeypatch)
    folder = state_folder(checkpoint)
    with pytest.raises(WxpipeError) as refused:
        train(tiny_dataset, config(hidden=16, seed=3), checkpoint, "r", {})
    message = str(refused.value)
    assert str(folder) in message and "hidden 32 -> 16" in message and "seed 0 -> 3" in message
    assert "remove it or rename the run to start afresh" in message
    saved = load_state(folder)
    assert saved is not None and saved.step == 5  # untouched
    assert [r.info.status for r in _runs(config())] == ["KILLED"]


def test_an_identity_change_forks_when_asked(
    tiny_dataset: Dataset,
    config: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from mlflow.tracking import MlflowClient

    checkpoint = tmp_path / "checkpoint.pt"
    parent = _stopped(tiny_dataset, config(), checkpoint, 5, signal.SIGUSR1, monkeypatch)
    with caplog.at_level(logging.INFO):
        child = train(tiny_dataset, config(seed=3, steps=10, fork=True), checkpoint, "r", {})
    assert f"forking r from step 5 of MLflow run {parent.run.run_id}: every weight" in caplog.text
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("checkpoint.state.")]
    assert len(aside) == 1 and (moved := load_state(aside[0])) is not None and moved.step == 5
    now = load_state(state_folder(checkpoint))
    assert now is not None and now.run.run_id == child.run_id != parent.run.run_id and now.step == 10
    tags = MlflowClient(config().mlflow.tracking_uri).get_run(child.run_id).data.tags
    assert (tags["wxpipe.forked_from"], tags["wxpipe.forked_at_step"]) == (parent.run.run_id, "5")
    statuses = {r.info.run_id: r.info.status for r in _runs(config())}
    assert statuses == {parent.run.run_id: "KILLED", child.run_id: "FINISHED"}


def test_a_fork_starts_from_the_weights_that_fit() -> None:
    torch.manual_seed(0)
    old, new = (
        torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 2)),
        torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Linear(8, 3)),
    )
    parent = _state(10)
    parent = TrainingState(
        *(parent.run, parent.dataset_uuid, parent.identity, parent.schedule, 10, Position(), 1),
        *(old.state_dict(), {}, [], History()),
    )
    left = seed_weights(new, parent)  # type: ignore[arg-type]
    assert left == ["1.weight", "1.bias"]
    assert torch.equal(new[0].weight, old[0].weight) and torch.equal(new[0].bias, old[0].bias)
    assert not torch.equal(new[1].weight[:2], old[1].weight)


def test_a_signal_before_the_first_step_stops_at_once(
    tiny_dataset: Dataset, config: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from wxpipe.train import loop

    def signalled(*args: Any) -> Any:
        os.kill(os.getpid(), signal.SIGUSR1)
        raise AssertionError("the handler raises")

    monkeypatch.setattr(loop, "plan_start", signalled)
    with pytest.raises(WxpipeError, match="stopped by SIGUSR1 outside the training steps"):
        train(tiny_dataset, config(), tmp_path / "checkpoint.pt", "r", {})


def test_raising_steps_trains_the_finished_run_longer(
    tiny_dataset: Dataset, config: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from mlflow.tracking import MlflowClient

    checkpoint = tmp_path / "checkpoint.pt"
    client = MlflowClient(config().mlflow.tracking_uri)
    experiment = experiment_id(client, config().mlflow.experiment, config().mlflow.tracking_uri)
    tags = {"mlflow.runName": "r", "wxpipe.state": str(state_folder(checkpoint))}
    orphan = client.create_run(experiment, tags=tags).info.run_id  # killed before its first state
    first = train(tiny_dataset, config(steps=20), checkpoint, "r", {})
    assert client.get_run(orphan).info.status == "KILLED"
    with caplog.at_level(logging.INFO):
        longer = train(tiny_dataset, config(steps=STEPS), checkpoint, "r", {})
    assert "resuming r at step 20 of 30" in caplog.text
    assert longer.run_id == first.run_id
    assert load_checkpoint(checkpoint)[1].training_step == STEPS
    saved = load_state(state_folder(checkpoint))
    assert saved is not None and saved.step == STEPS and saved.finished
    assert {r.info.run_id: r.info.status for r in _runs(config())} == {first.run_id: "FINISHED", orphan: "KILLED"}


def test_a_rebuilt_dataset_moves_the_state_aside(
    tiny_dataset: Dataset, make_dataset: Any, config: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mlflow.tracking import MlflowClient

    checkpoint = tmp_path / "checkpoint.pt"
    old = _stopped(tiny_dataset, config(), checkpoint, 12, signal.SIGTERM, monkeypatch)
    MlflowClient(config().mlflow.tracking_uri).update_run(old.run.run_id, "RUNNING")  # as kill -9 leaves it

    rebuilt = make_dataset(tmp_path / "rebuilt.zarr", seed=1)
    assert rebuilt.uuid != tiny_dataset.uuid
    new = train(rebuilt, config(steps=10), checkpoint, "r", {})
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("checkpoint.state.")]
    assert len(aside) == 1 and (aside[0] / "last.pt").exists()
    moved = load_state(aside[0])
    assert moved is not None and moved.dataset_uuid == tiny_dataset.uuid
    now = load_state(state_folder(checkpoint))
    assert now is not None and now.dataset_uuid == rebuilt.uuid and now.run.run_id == new.run_id
    statuses = {r.info.run_id: r.info.status for r in _runs(config())}
    assert statuses == {old.run.run_id: "KILLED", new.run_id: "FINISHED"}


def _state(step: int, steps: int = 30, uuid: str = "u", **identity: str) -> TrainingState:
    return TrainingState(
        *(RunInfo("r", "id", "0"), uuid, {"hidden": "32", **identity}, {"steps": str(steps), "learning_rate": "0.1"}),
        *(step, Position(), 1, {}, {}, [], History()),
    )


def _settings(steps: int = 30, lr: str = "0.1", hidden: str = "32") -> Settings:
    return Settings({"hidden": hidden}, {"steps": str(steps), "learning_rate": lr})


def test_plan_start_rules(tmp_path: Path) -> None:
    folder = tmp_path / "x.state"
    assert plan_start(None, folder, "u", _settings()).state is None
    running, finished = _state(10), _state(30)
    # a run in progress continues under any schedule, and refuses an identity change or a step it passed
    go_on = plan_start(running, folder, "u", _settings(steps=40, lr="0.2"))
    assert go_on.state is running and go_on.changes == {"learning_rate": ("0.1", "0.2"), "steps": ("30", "40")}
    with pytest.raises(WxpipeError, match="hidden 32 -> 64; set fork: true"):
        plan_start(running, folder, "u", _settings(hidden="64"))
    forked = plan_start(running, folder, "u", _settings(hidden="64"), fork=True)
    assert forked.fork and forked.state is None and forked.replaced is running and "forked: hidden" in forked.reason
    with pytest.raises(WxpipeError, match="past steps: 5"):
        plan_start(running, folder, "u", _settings(steps=5))
    # a finished run trains longer, or writes its checkpoint again; any other change is a new model
    assert plan_start(finished, folder, "u", _settings(steps=50)).state is finished
    assert plan_start(finished, folder, "u", _settings()).state is finished
    for other in (_settings(lr="0.2"), _settings(hidden="64"), _settings(steps=20)):
        fresh = plan_start(finished, folder, "u", other)
        assert fresh.state is None and fresh.replaced is finished and not fresh.fork
    # asked to fork, an identity change starts from the finished run's weights; a schedule change does not
    assert plan_start(finished, folder, "u", _settings(hidden="64"), fork=True).fork
    assert not plan_start(finished, folder, "u", _settings(lr="0.2"), fork=True).fork
    # another build of the dataset: afresh, whatever the rest
    rebuilt = plan_start(running, folder, "v", _settings(hidden="64"))
    assert rebuilt.state is None and rebuilt.replaced is running and "uuid u -> v" in rebuilt.reason


def test_batches_resume_at_their_position() -> None:
    starts = np.arange(100, 111)
    whole = [(b.tolist(), p) for b, p in _take(batches(starts, 4, 7, Position()), 8)]
    assert [len(b) for b, _ in whole[:3]] == [4, 4, 3] and whole[2][1] == Position(1, 0)
    assert sorted(x for b, _ in whole[:3] for x in b) == list(range(100, 111))
    again = [(b.tolist(), p) for b, p in _take(batches(starts, 4, 7, whole[4][1]), 3)]
    assert again == whole[5:8]


def _take(it: Any, n: int) -> list[Any]:
    return [next(it) for _ in range(n)]
