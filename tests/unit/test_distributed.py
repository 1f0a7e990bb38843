"""When ``wxpipe train`` starts ranks with srun, and how a global batch is split among them."""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import pytest
import torch

from wxpipe.train import distributed


def test_srun_only_inside_a_job_with_several_ranks() -> None:
    argv = ["train", "ds.zarr", "ckpt.pt", "--ranks", "4"]
    assert distributed.srun_command(argv, 1, environ={"SLURM_JOB_ID": "7"}) is None
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
