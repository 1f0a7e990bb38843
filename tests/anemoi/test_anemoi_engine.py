"""make test-anemoi: the anemoi engine for real, through Snakemake on the demo with one anemoi-training run
(~15 min, not part of make test: it needs make anemoi-env's 8 GB environment).

In order, on one copy of the project: the GNN's training is killed mid-run and the rerun continues anemoi's own
run; then the whole workflow scores the GNN beside the built-in models and compares them; then wxpipe's forecast
from the GNN's checkpoint is checked against anemoi-inference's for one initial date.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
from gnn_run import ANEMOI, BIN, STEPS, env

from wxpipe.forecasts import open_forecasts
from wxpipe.model import read_metadata


def _snakemake(project: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    res = subprocess.run(
        [str(BIN / "snakemake"), "--cores", "2", *args],
        cwd=project,
        env=env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert res.returncode == 0, res.stderr[-4000:]
    return res


def test_a_killed_training_continues_its_own_run(project: Path) -> None:
    """SIGKILL to the whole job (a node lost, a time limit) once anemoi saved a last.ckpt: the rerun goes on from
    there in the same anemoi run, and trains to the end."""
    target = "results/lineage/train/gnn.json"
    folder = project / "results/models/gnn/anemoi/checkpoint"
    job = subprocess.Popen(
        [str(BIN / "snakemake"), "--cores", "2", target],
        cwd=project,
        env=env(),
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 900
    while not list(folder.glob("*/last.ckpt")):
        assert job.poll() is None, "the workflow ended before anemoi saved a checkpoint"
        assert time.monotonic() < deadline, "no last.ckpt after 15 minutes"
        time.sleep(0.5)
    time.sleep(1)  # let the save finish: a torn last.ckpt is anemoi's to survive, not this test's
    os.killpg(job.pid, signal.SIGKILL)
    job.wait()
    [killed] = [p.name for p in folder.iterdir()]
    assert not (project / "results/models/gnn/checkpoint.pt").exists()
    _snakemake(project, "--unlock")
    _snakemake(project, "--rerun-incomplete", target)
    log = (project / "results/logs/train/gnn.log").read_text()
    assert f"continuing anemoi run {killed}" in log
    assert [p.name for p in folder.iterdir()] == [killed]
    # anemoi logs a continued run (from its last.ckpt) to a child of the killed one's MLflow run
    store = project / "results/models/gnn/anemoi/logs/mlflow"
    parents = [p.read_text().strip() for p in store.glob("*/*/tags/mlflow.parentRunId")]
    assert parents == [killed]
    record = json.loads((project / target).read_text())
    assert record["anemoi"]["run_id"] == killed
    assert read_metadata(project / "results/models/gnn/checkpoint.pt").training_step == STEPS


def test_the_gnn_is_scored_and_compared_with_the_built_in_models(project: Path) -> None:
    _snakemake(project, timeout=1500)
    scores = json.loads((project / "results/evaluation/gnn/scores.json").read_text())
    assert all(np.isfinite(scores["scores"]["rmse"]["gnn"]["global"]["2t"]))
    comparison = json.loads((project / "results/comparison/comparison.json").read_text())
    assert {"demo", "demo-narrow", "gnn"} <= set(comparison["runs"])
    gnn = comparison["scores"]["gnn"]["global"]["z_500"]
    assert all(np.isfinite(gnn["rmse"])) and len(gnn["skill"]) == len(comparison["leads_hours"])
    assert (project / "results/comparison/scorecard.png").stat().st_size > 10_000
    out = os.environ.get("WXPIPE_TEST_ANEMOI_OUT")
    if out:  # for the note and the README: the scorecard and the figures behind it
        Path(out).mkdir(parents=True, exist_ok=True)
        for name in ("scorecard.png", "comparison.json"):
            (Path(out) / name).write_bytes((project / "results/comparison" / name).read_bytes())


def test_wxpipe_predicts_what_anemoi_inference_predicts(project: Path, tmp_path: Path) -> None:
    """Variable order, normalisation and grid order: the forecasts file against anemoi-inference for the first
    initial date, every variable, every lead."""
    fc = open_forecasts(project / "results/forecasts/gnn.zarr")
    init = str(np.datetime_as_string(fc.init_dates[0], unit="s"))
    header = fc.header
    hours = int(max(header.leads) * header.frequency.total_seconds() // 3600)
    subprocess.run(
        [
            str(ANEMOI / "bin" / "python"),
            str(Path(__file__).with_name("inference_reference.py")),
            str(project / "results/models/gnn/checkpoint.pt"),
            str(project / "results/sites/scratch/demo.zarr"),
            init,
            str(hours),
            str(tmp_path / "reference.npz"),
        ],
        check=True,
        capture_output=True,
    )
    reference = np.load(tmp_path / "reference.npz")
    assert list(reference["names"]) == header.variables
    ours = np.asarray(fc.forecast[0])[:, 0]  # (leads, variables, values)
    for j, lead in enumerate(header.leads):
        np.testing.assert_allclose(ours[j], reference["forecast"][lead - 1], rtol=1e-5, atol=1e-6)
