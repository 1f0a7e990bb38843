"""When ``wxpipe train`` starts ranks with srun, and how a global batch is split among them; two gloo ranks
on CPU (started as srun would, one thread each) read only their shares and resume after kill -9."""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from wxpipe.config import TrainingConfig, params_of
from wxpipe.dataset import Dataset
from wxpipe.train import distributed, load_checkpoint, state_folder
from wxpipe.train.order import Position, batches
from wxpipe.train.state import load_state

RANKS = 2
STEPS = 12
EVERY = 4
PER_RANK = 4  # the global batch is PER_RANK x RANKS samples

# one rank of ``wxpipe train``: appends the sample starts of each batch it reads to $WXPIPE_TEST_READS,
# and sends itself ``sig`` as optimiser step ``at`` begins (``at`` 0: never)
RANK_SCRIPT = """
import json, os, signal, sys
from wxpipe.cli import main
from wxpipe.train import loop
read, step, steps = loop.prefetched, loop._train_step, []
def recording(*args, **kwargs):
    for batch in read(*args, **kwargs):
        with open(os.environ["WXPIPE_TEST_READS"], "a") as f:
            f.write(json.dumps(batch.starts.tolist()) + "\\n")
        yield batch
def signalled(run, batch):
    steps.append(1)
    if len(steps) == {at}:
        os.kill(os.getpid(), signal.{sig})
    step(run, batch)
loop.prefetched, loop._train_step = recording, signalled
sys.exit(main(sys.argv[1:]))
"""


def test_srun_starts_the_ranks_from_a_jobs_batch_script() -> None:
    argv = ["train", "ds.zarr", "ckpt.pt", "--ranks", "4"]
    assert distributed.srun_command(argv, 1, environ={}) is None
    # one rank inside a step runs there; in the batch script srun starts it, so SLURM's signal reaches it
    assert distributed.srun_command(argv, 1, environ={"SLURM_JOB_ID": "7", "SLURM_STEP_ID": "0"}) is None
    single = distributed.srun_command(argv, 1, environ={"SLURM_JOB_ID": "7"})
    assert single is not None and "--ntasks=1" in single
    assert distributed.srun_command(argv, 4, environ={}) is None  # no allocation: one local process
    assert distributed.srun_command(argv, 4, environ={"SLURM_JOB_ID": "7", distributed.LAUNCHED: "1"}) is None
    cmd = distributed.srun_command(argv, 4, 7, environ={"SLURM_JOB_ID": "7"})
    assert cmd == [
        "srun",
        "--ntasks=4",
        "--cpus-per-task=7",
        "--kill-on-bad-exit=1",
        sys.executable,
        "-m",
        "wxpipe.cli",
        *argv,
    ]


def test_site_launcher_replaces_plain_srun() -> None:
    env = {"SLURM_JOB_ID": "7", "WXPIPE_SRUN": "srun --cpu-bind=mask_cpu:0xfe"}
    cmd = distributed.srun_command(["train"], 2, environ=env)
    assert cmd is not None and cmd[:2] == ["srun", "--cpu-bind=mask_cpu:0xfe"]


@pytest.mark.parametrize(("size", "world"), [(8, 2), (7, 2), (3, 4), (1, 8), (16, 8)])
def test_shards_cover_the_global_batch_once(size: int, world: int) -> None:
    batch = np.arange(100, 100 + size)
    parts = [distributed.shard(batch, distributed.Context(rank=r, world_size=world)) for r in range(world)]
    assert np.array_equal(np.concatenate(parts), batch)


def test_single_process_context_changes_nothing() -> None:
    ctx = distributed.Context()
    model = torch.nn.Linear(2, 2)
    assert not ctx.distributed and ctx.leader
    assert distributed.wrap(model, ctx) is model
    assert distributed.total(3.0, ctx) == 3.0
    alone = distributed.setup()  # not started by srun: no process group
    assert (alone.rank, alone.world_size, alone.backend) == (0, 1, "")
    assert alone.device == ("cuda:0" if torch.cuda.is_available() else "cpu")


def test_parameter_fingerprint_sees_every_weight() -> None:
    torch.manual_seed(0)
    a, b = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    b.load_state_dict(a.state_dict())
    assert distributed.parameters_sha256(a) == distributed.parameters_sha256(b)
    with torch.no_grad():
        b.bias[1] += 1e-6
    assert distributed.parameters_sha256(a) != distributed.parameters_sha256(b)


def test_an_empty_share_still_takes_part(make_dataset: Any, training_config: Any, tmp_path: Any) -> None:
    """A rank whose share of a short global batch is empty gives a zero loss with zero gradients."""
    from wxpipe.grid import area_weights
    from wxpipe.samples import read_batch
    from wxpipe.train.loop import _build_model, _loss

    ds = make_dataset(tmp_path / "d.zarr")
    cfg = training_config(tmp_path)
    model = _build_model(ds, cfg, np.arange(8))
    batch = read_batch(ds, np.array([], dtype=np.int64), (0, 1))
    assert batch.fields.shape == (0, 2, len(ds.latitudes), len(ds.variables))
    weights = torch.as_tensor(area_weights(ds.latitudes), dtype=torch.float32)
    loss = _loss(model, batch.fields, batch.dates, weights, ds.latitudes, ds.longitudes, reduce="sum")
    loss.backward()
    assert loss.item() == 0.0
    assert all(p.grad is not None and not p.grad.any() for p in model.parameters())


def _job_id() -> str:
    """A SLURM job id whose rendezvous port (submitit derives it from the id) is free here."""
    for job in random.sample(range(1000, 1_000_000), 100):  # random: two runs at once (xdist) rarely meet
        port = random.Random(str(job)).randint(20000, 60000)
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) != 0:
                return str(job)
    raise AssertionError("no free rendezvous port")


def _launch(
    argv: list[str], reads: Path, kill: dict[int, tuple[int, str]] | None = None
) -> list[subprocess.Popen[str]]:
    """The ranks srun would start on one node: ``kill`` maps a rank to the step it signals itself at."""
    drop = ("MASTER_ADDR", "MASTER_PORT", "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE")
    base = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("SLURM_")}
    job = _job_id()
    reads.parent.mkdir(parents=True, exist_ok=True)
    ranks = []
    for rank in range(RANKS):
        at, sig = (kill or {}).get(rank, (0, "SIGKILL"))
        env = {
            **base,
            distributed.LAUNCHED: "1",
            "SLURM_JOB_ID": job,
            "SLURM_NTASKS": str(RANKS),
            "SLURM_PROCID": str(rank),
            "SLURM_LOCALID": str(rank),
            "SLURM_NODEID": "0",
            "SLURM_JOB_NUM_NODES": "1",
            "SLURM_JOB_NODELIST": "localhost",
            "OMP_NUM_THREADS": "1",
            "CUDA_VISIBLE_DEVICES": "",
            "WXPIPE_TEST_READS": str(reads.with_suffix(f".{rank}.jsonl")),
        }
        script = RANK_SCRIPT.format(at=at, sig=sig)
        cmd = [sys.executable, "-c", script, *argv]
        ranks.append(subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    return ranks


def _finish(ranks: list[subprocess.Popen[str]]) -> tuple[list[int], str]:
    """Every rank's exit status and their messages, rank by rank."""
    outs = [r.communicate(timeout=300)[0] for r in ranks]
    return [r.returncode for r in ranks], "\n".join(f"--- rank {i}\n{o}" for i, o in enumerate(outs))


def _reads(reads: Path, rank: int) -> list[list[int]]:
    lines = reads.with_suffix(f".{rank}.jsonl").read_text().splitlines()
    return [json.loads(line) for line in lines]


@pytest.fixture(scope="module")
def ddp_config(tmp_path_factory: pytest.TempPathFactory, training_config: Any) -> TrainingConfig:
    store = tmp_path_factory.mktemp("ddp-mlflow")
    mlflow = {"tracking_uri": f"sqlite:///{store}/mlflow.db", "experiment": "ddp"}
    cfg: TrainingConfig = training_config(
        store, steps=STEPS, checkpoint_every=EVERY, batch_size=PER_RANK, mlflow=mlflow
    )
    return cfg


def _argv(dataset: Dataset, cfg: TrainingConfig, checkpoint: Path) -> list[str]:
    settings = json.dumps(params_of(cfg))
    return ["train", str(dataset.path), str(checkpoint), "--name", checkpoint.parent.name, "--settings", settings]


@pytest.fixture(scope="module")
def two_ranks(
    tiny_dataset: Dataset, ddp_config: TrainingConfig, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, str]:
    """An uninterrupted 2-rank gloo run: its checkpoint (what each rank read beside it) and fingerprint."""
    checkpoint = tmp_path_factory.mktemp("ddp") / "whole" / "checkpoint.pt"
    codes, out = _finish(_launch(_argv(tiny_dataset, ddp_config, checkpoint), checkpoint.parent / "reads"))
    assert codes == [0] * RANKS, out
    fingerprints = _fingerprints(out)
    assert len(fingerprints) == RANKS and len(set(fingerprints)) == 1, out
    return checkpoint, fingerprints[0]


def _fingerprints(out: str) -> list[str]:
    return [line.rsplit(" ", 1)[-1] for line in out.splitlines() if "parameters sha256" in line]


def test_each_rank_reads_only_its_share_of_the_global_batch(
    two_ranks: tuple[Path, str], tiny_dataset: Dataset, ddp_config: TrainingConfig
) -> None:
    """Per step the ranks read disjoint shares that together are the global batch one rank would read."""
    from wxpipe.train.objective import samples

    train_starts, _ = samples(tiny_dataset, ddp_config)
    plan = batches(train_starts, PER_RANK * RANKS, ddp_config.seed, Position())
    alone = [next(plan)[0].tolist() for _ in range(STEPS)]
    assert len(train_starts) % (PER_RANK * RANKS), "the epoch should end on a short batch, split unevenly"
    shares = [_reads(two_ranks[0].parent / "reads", rank) for rank in range(RANKS)]
    assert [len(s) for s in shares] == [STEPS] * RANKS
    for step, (whole, *parts) in enumerate(zip(alone, *shares, strict=True)):
        assert not set(parts[0]) & set(parts[1]), step
        assert sorted(parts[0] + parts[1]) == sorted(whole), step
        assert parts[0] + parts[1] == whole, step  # contiguous shares, in rank order
        assert 0 < len(parts[1]) <= len(parts[0]) <= PER_RANK, step


def test_two_ranks_killed_then_rerun_end_bit_identical(
    two_ranks: tuple[Path, str], tiny_dataset: Dataset, ddp_config: TrainingConfig, tmp_path: Path
) -> None:
    """kill -9 of both ranks after a state exists; the same 2-rank command continues to the same weights."""
    checkpoint = tmp_path / "killed" / "checkpoint.pt"
    argv = _argv(tiny_dataset, ddp_config, checkpoint)
    at = 2 * EVERY + 2
    ranks = _launch(argv, tmp_path / "first", kill={0: (at, "SIGKILL")})
    ranks[0].wait(timeout=300)
    ranks[1].send_signal(signal.SIGKILL)  # held in the step's all-reduce that rank 0 never joins
    codes, out = _finish(ranks)
    assert codes[0] == -signal.SIGKILL and codes[1] != 0, out  # rank 1 may have seen rank 0 go first
    saved = load_state(state_folder(checkpoint))
    assert saved is not None and saved.step == 2 * EVERY and saved.world_size == RANKS, out
    assert not checkpoint.exists()

    codes, out = _finish(_launch(argv, tmp_path / "again"))
    assert codes == [0] * RANKS, out
    assert f"resuming killed at step {2 * EVERY} of {STEPS}" in out
    whole, fingerprint = two_ranks
    assert _fingerprints(out) == [fingerprint] * RANKS, out
    resumed, reference = load_checkpoint(checkpoint)[0], load_checkpoint(whole)[0]
    for (name, a), (_, b) in zip(resumed.state_dict().items(), reference.state_dict().items(), strict=True):
        assert torch.equal(a, b), name


# 2 ranks sum each share's loss and all-reduce the gradients; one process sums the whole batch: the same
# arithmetic in another order, which after STEPS AdamW steps leaves the weights this close (measured: 4e-8)
DDP_ATOL = 1e-6


def test_two_ranks_match_one_process_on_the_same_global_batch(
    two_ranks: tuple[Path, str], tiny_dataset: Dataset, ddp_config: TrainingConfig, tmp_path: Path
) -> None:
    from wxpipe.train import train

    alone = ddp_config.model_copy(update={"batch_size": PER_RANK * RANKS})
    train(tiny_dataset, alone, tmp_path / "alone" / "checkpoint.pt", "alone", {}, threads=1)
    one, two = load_checkpoint(tmp_path / "alone" / "checkpoint.pt")[0], load_checkpoint(two_ranks[0])[0]
    worst = 0.0
    for (name, a), (_, b) in zip(one.named_parameters(), two.named_parameters(), strict=True):
        worst = max(worst, float((a - b).detach().abs().max()))
        assert torch.allclose(a, b, rtol=0, atol=DDP_ATOL), name
    moved = max(float(p.abs().max()) for name, p in one.named_parameters() if name.endswith(".weight"))
    assert 0 < worst < moved, "the two runs trained, and differ only by rounding"
