"""Training longer than one SLURM job: when a signal stopped the ranks with the state saved and the step
advanced in this job, the job puts itself back in the queue (``scontrol requeue``) and its next start
continues from the state.

The job keeps its id, so the Snakemake SLURM plugin sees one job that is pending or running again, not a
failure: this goes on job after job without spending the profile's ``retries``, which stay for crashes.
A job that made no progress (a time limit shorter than the start-up, a state that cannot be continued)
is not requeued: it ends with :data:`~.stop.EXIT_STOPPED`, a failure Snakemake retries as few times as
the profile says. The batch job must be requeueable (the profiles pass ``--requeue``).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

from .state import STATE_FILE, saved_step

log = logging.getLogger(__name__)

SCONTROL_SECONDS = 60


def batch_job(environ: Mapping[str, str] | None = None) -> str | None:
    """The SLURM job id when this process is a job's batch script (not a step srun started), else None."""
    env = os.environ if environ is None else environ
    if env.get("SLURM_JOB_ID") and not env.get("SLURM_STEP_ID"):
        return env["SLURM_JOB_ID"]
    return None


def requeue(folder: Path, before: int | None, environ: Mapping[str, str] | None = None) -> bool:
    """After the ranks stopped with the state saved: requeue this batch job when the step advanced.

    ``before`` is the state's step when the job started (None: there was no state). True when the job
    is requeued (SLURM ends this instance and starts it again later, continuing from the state).
    """
    env = os.environ if environ is None else environ
    job = batch_job(env)
    if job is None:
        return False
    after = saved_step(folder)
    if after is None or (before is not None and after <= before):
        log.error(
            "SLURM job %s made no progress (step %s at its start, %s now): not requeued; "
            "the job fails and Snakemake's retries decide",
            *(job, before, after),
        )
        return False
    scontrol = shutil.which("scontrol", path=env.get("PATH"))
    if scontrol is None:
        log.error("SLURM job %s: no scontrol on PATH to requeue it with", job)
        return False
    restarts = env.get("SLURM_RESTART_COUNT", "0")
    log.info(
        "step %s -> %d in SLURM job %s (start %d of it): requeueing the job to continue from %s",
        *(before or 0, after, job, int(restarts) + 1, folder / STATE_FILE),
    )
    res = subprocess.run(
        [scontrol, "requeue", job], capture_output=True, text=True, timeout=SCONTROL_SECONDS, check=False, env=env
    )
    if res.returncode != 0:
        log.error("scontrol requeue %s failed: %s (is the job requeueable? sbatch --requeue)", job, res.stderr.strip())
        return False
    return True
