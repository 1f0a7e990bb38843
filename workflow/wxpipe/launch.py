"""Starting ranks in a SLURM job: the one srun line both training engines use. Light (no torch), so it also
runs in anemoi-training's environment."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

log = logging.getLogger(__name__)


def srun_prefix(
    ranks: int, cpus_per_rank: int = 1, environ: Mapping[str, str] | None = None, per_node: int | None = None
) -> list[str] | None:
    """``srun`` and its options to start a command as ``ranks`` tasks of this SLURM job (None: run it here),
    ``per_node`` of them on each node when given (Lightning wants it said: SLURM_NTASKS_PER_NODE).

    The task count comes from the rule (Snakemake's jobstep hides SLURM_NTASKS from the rule's shell), and
    ``WXPIPE_SRUN`` may replace plain ``srun`` with a site's launcher options (e.g. CPU binding).
    """
    env = os.environ if environ is None else environ
    if not env.get("SLURM_JOB_ID"):
        if ranks > 1:
            log.warning("%d ranks asked for outside a SLURM job: none started by srun", ranks)
        return None
    if ranks <= 1 and env.get("SLURM_STEP_ID"):
        return None
    # --kill-on-bad-exit: a failing rank ends the others rather than leaving them waiting in a collective
    launcher = env.get("WXPIPE_SRUN", "srun").split()
    spread = [] if per_node is None else [f"--ntasks-per-node={per_node}"]
    return [*launcher, f"--ntasks={ranks}", *spread, f"--cpus-per-task={cpus_per_rank}", "--kill-on-bad-exit=1"]
