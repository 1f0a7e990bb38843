"""Data-parallel training under SLURM: one process per GPU, started by ``srun``, joined by torch.distributed.

A SLURM job with several tasks runs ``wxpipe train --ranks N`` once in its batch step; :func:`srun_command`
turns that into ``srun --ntasks=N ... wxpipe train`` (same arguments), so every task becomes one rank.
Each rank reads its rank, world size and rendezvous address from SLURM through submitit's
``TorchDistributedEnvironment`` and joins the process group: NCCL (RCCL on ROCm) when it has a GPU,
gloo on CPU. Outside SLURM, or with one task, training stays a single local process.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..launch import srun_prefix

log = logging.getLogger(__name__)

LAUNCHED = "WXPIPE_SRUN_LAUNCHED"  # set on the ranks srun starts, so they do not launch again


@dataclass(frozen=True)
class Context:
    """Where this process sits in the job: rank 0 of 1 when not distributed."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str = ""
    device: str = "cpu"

    @property
    def distributed(self) -> bool:
        """In a process group (DDP, collectives), even of one rank (``make gpu-check`` runs NCCL so)."""
        return bool(self.backend)

    @property
    def leader(self) -> bool:
        """Rank 0 alone talks to MLflow and writes the checkpoint and the lineage record."""
        return self.rank == 0


def srun_command(
    argv: Sequence[str], ranks: int, cpus_per_rank: int = 1, environ: Mapping[str, str] | None = None
) -> list[str] | None:
    """The ``srun`` line that runs this command as ``ranks`` tasks, or None when it should just run here.

    That is the case outside a SLURM job, on the ranks srun has started, and for one rank already inside
    a job step. One rank in a job's batch script is started by srun too: SLURM's warning signal
    (``--signal`` without ``B:``) reaches the processes of steps, not the batch script.
    """
    env = os.environ if environ is None else environ
    if env.get(LAUNCHED):
        return None
    launcher = srun_prefix(ranks, cpus_per_rank, env)
    return None if launcher is None else [*launcher, sys.executable, "-m", "wxpipe.cli", *argv]


def setup() -> Context:
    """Join the process group when srun started this process as one of several tasks.

    A GPU, when there is one, is used the same way by a single process and by each rank (untested
    here: the test machines have no GPU).
    """
    if not os.environ.get(LAUNCHED) or int(os.environ.get("SLURM_NTASKS", "1") or 1) <= 1:
        # one process: on the GPU when the job has one (the ranks below pick theirs by local rank)
        return Context(device="cuda:0" if torch.cuda.is_available() else "cpu")
    from submitit.helpers import TorchDistributedEnvironment

    # submitit recognises a SLURM task by this marker, which its own launcher sets and srun does not
    os.environ.setdefault("SUBMITIT_EXECUTOR", "slurm")
    env = TorchDistributedEnvironment().export()
    gpu = torch.cuda.is_available()
    backend = "nccl" if gpu else "gloo"
    device = "cpu"
    if gpu:
        torch.cuda.set_device(env.local_rank % torch.cuda.device_count())
        device = f"cuda:{torch.cuda.current_device()}"
    torch.distributed.init_process_group(backend=backend, init_method="env://")
    ctx = Context(env.rank, env.world_size, env.local_rank, backend, device)
    log.info(
        "rank %d/%d (local %d) on %s, %s backend, rendezvous %s:%s",
        *(ctx.rank, ctx.world_size, ctx.local_rank, ctx.device, backend, env.master_addr, env.master_port),
    )
    return ctx


def teardown(ctx: Context) -> None:
    if ctx.distributed and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def wrap(model: torch.nn.Module, ctx: Context) -> torch.nn.Module:
    """The model as the optimiser step sees it: DDP averages gradients across ranks; itself otherwise."""
    if not ctx.distributed:
        return model
    from torch.nn.parallel import DistributedDataParallel

    ids = [torch.device(ctx.device).index] if ctx.device.startswith("cuda") else None
    # the buffers (grid, normalisation) are constants, identical on every rank: never resend them per
    # step (on N320 the neighbour table alone is ~40 MB); newer torch names the switch differently
    params = inspect.signature(DistributedDataParallel.__init__).parameters
    quiet: dict[str, Any] = (
        {"forward_sync_buffers": False} if "forward_sync_buffers" in params else {"broadcast_buffers": False}
    )
    return DistributedDataParallel(model, device_ids=ids, **quiet)


def total(value: float, ctx: Context) -> float:
    """Sum of ``value`` over all ranks (the value itself when not distributed)."""
    if not ctx.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=ctx.device)
    torch.distributed.all_reduce(t)
    return float(t.item())


def shard(starts: Any, ctx: Context) -> Any:
    """This rank's contiguous share of a global batch of sample starts."""
    if ctx.world_size <= 1:
        return starts
    per = -(-len(starts) // ctx.world_size)
    return starts[ctx.rank * per : (ctx.rank + 1) * per]


def parameters_sha256(model: torch.nn.Module) -> str:
    """A fingerprint of the trained weights: equal on every rank when data parallelism worked."""
    h = hashlib.sha256()
    for name, p in sorted(model.state_dict().items()):
        h.update(name.encode())
        h.update(p.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()
