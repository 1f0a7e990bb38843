"""Copy the runs of a local MLflow store to a tracking server: what a compute node logged offline reaches the
server from the login node after the job (``wxpipe mlflow-sync``, the ``sync_mlflow`` rule).

The source is a sqlite store (training's offline store, :func:`wxpipe.paths.offline_store`) or an MLflow
file store (``mlruns/``, as anemoi-training writes offline; MLflow reads one only with
``MLFLOW_ALLOW_FILE_STORE=true``, set here for the sync alone). Each run is copied whole: its experiment
by name, name, tags, params, metric histories with their steps and timestamps, artefacts, status and
times; an evaluation run's link to its training run is followed to where that run is now
(:func:`wxpipe.tracking.training_link`), so it nests under its training run's copy. The copy carries
``wxpipe.synced_from`` (the source run's id), by which a later sync finds it and
adds only the metric points logged since (an offline run resumed after a first sync). ``synced.json``
beside the store maps each source run to its copy; it is written last, so an interrupted sync leaves no
record of a copy that is not whole, and the next sync completes it.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import paths, tracking
from .errors import WxpipeError
from .fsutil import atomic_write_text

log = logging.getLogger(__name__)

SYNCED_FROM = "wxpipe.synced_from"
SYNCED_STORE = "wxpipe.synced_store"
SQLITE_MAGIC = b"SQLite format 3\x00"
FILE_STORE = {"MLFLOW_ALLOW_FILE_STORE": "true"}
QUIET = {"MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}  # one line per run is the progress
TERMINATED = ("FINISHED", "FAILED", "KILLED")


@dataclass(frozen=True)
class Store:
    """A local MLflow store: its sqlite file or file-store folder, and the URI MLflow opens it by."""

    path: Path
    uri: str

    @property
    def file_store(self) -> bool:
        return self.uri.startswith("file:")

    @property
    def record(self) -> Path:
        """``synced.json``, beside the database or the file store's folder."""
        return self.path.parent / tracking.SYNCED


def find_store(path: Path) -> Store:
    """The store at ``path``: a sqlite file, a folder holding training's ``mlflow.db``, a file store folder
    (experiments as folders with a ``meta.yaml``), or a folder holding such an ``mlruns/``."""
    path = Path(path)
    db = path / Path(paths.OFFLINE_STORE).name
    if path.is_dir() and db.is_file():
        path = db
    if path.is_file():
        with open(path, "rb") as f:
            if f.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC:
                return Store(path, f"sqlite:///{path}")
    elif path.is_dir():
        for folder in (path, path / "mlruns"):
            if folder.is_dir() and any((d / "meta.yaml").is_file() for d in folder.iterdir() if d.is_dir()):
                return Store(folder, folder.resolve().as_uri())
    raise WxpipeError(f"{path}: not an MLflow store (a sqlite database, or a file store folder such as mlruns/)")


def sync(store: Store, to: str) -> dict[str, str]:
    """Copy every run of ``store`` to the tracking URI ``to``; source run id -> the copy's run id."""
    if tracking.has_credentials(to):
        raise WxpipeError(f"{tracking.redact(to)} with user:password@: {tracking.CREDENTIALS}")
    target = tracking.sqlite_path(to)
    if not store.file_store and target is not None and target.resolve() == store.path.resolve():
        raise WxpipeError(f"{store.path} is the destination itself")
    dst = tracking.client(to)  # an unreachable server fails here, before anything is written
    copies: dict[str, str] = {}
    with tracking.environment({**QUIET, **(FILE_STORE if store.file_store else {})}):
        from mlflow.tracking import MlflowClient

        src = MlflowClient(store.uri)
        for experiment in src.search_experiments():
            for run in _runs(src, experiment.experiment_id):
                copies[run.info.run_id] = _sync_run(src, dst, to, run, experiment.name, store)
    _write_record(store, to, copies)
    return copies


def _runs(client: Any, experiment_id: str) -> list[Any]:
    """Every active run of an experiment, oldest first (search_runs pages through them)."""
    runs: list[Any] = []
    token = None
    while True:
        page = client.search_runs([experiment_id], order_by=["attributes.start_time ASC"], page_token=token)
        runs += list(page)
        token = page.token
        if not token:
            return runs


def _sync_run(src: Any, dst: Any, to: str, run: Any, experiment: str, store: Store) -> str:
    """Copy one run, or what it gained since its last sync; its id at the destination."""
    info, data = run.info, run.data
    exp_id = tracking.experiment_id(dst, experiment, to)
    query = f"tags.`{SYNCED_FROM}` = '{info.run_id}'"
    found = dst.search_runs([exp_id], filter_string=query, max_results=1)
    link = tracking.training_link(dst, to, data.tags.get(tracking.TRAINING_RUN), data.tags.get(tracking.TRAINING_URI))
    tags = {**data.tags, **link, SYNCED_FROM: info.run_id, SYNCED_STORE: str(store.path)}
    if found:
        copy = found[0]
        tracking.set_tags(dst, copy.info.run_id, {k: v for k, v in tags.items() if copy.data.tags.get(k) != v})
    else:
        copy = dst.create_run(exp_id, start_time=info.start_time, tags=tags, run_name=info.run_name)
        if run.inputs is not None and run.inputs.dataset_inputs:
            dst.log_inputs(copy.info.run_id, datasets=run.inputs.dataset_inputs)
    run_id: str = copy.info.run_id
    tracking.log_params(dst, run_id, {k: v for k, v in data.params.items() if k not in copy.data.params})
    points = _new_points(src, dst, info.run_id, run_id, sorted(data.metrics))
    tracking.log_points(dst, run_id, points)
    files = _copy_artifacts(src, dst, info.run_id, run_id)
    if info.status in TERMINATED:
        dst.set_terminated(run_id, status=info.status, end_time=info.end_time)
    else:
        dst.update_run(run_id, status=info.status)
    log.info(
        "%s run %s (%s) -> %s at %s: %d params, %d new metric points, %d artefacts, %s",
        *("updated" if found else "copied", info.run_name, info.run_id, run_id, tracking.redact(to)),
        *(len(data.params), len(points), files, info.status),
    )
    return run_id


def _new_points(src: Any, dst: Any, src_id: str, dst_id: str, keys: list[str]) -> list[tuple[str, float, int, int]]:
    """The metric points of the source run logged after the copy's last point of the same key.

    Each history is logged in (timestamp, step) order, so a copy that a killed sync left short still
    holds a prefix of it and gains exactly the rest."""
    points: list[tuple[str, float, int, int]] = []
    for key in keys:
        last = max(((m.timestamp, m.step) for m in dst.get_metric_history(dst_id, key)), default=None)
        history = sorted(src.get_metric_history(src_id, key), key=lambda m: (m.timestamp, m.step))
        points += [(key, m.value, m.step, m.timestamp) for m in history if last is None or (m.timestamp, m.step) > last]
    return points


def _copy_artifacts(src: Any, dst: Any, src_id: str, dst_id: str) -> int:
    """Copy every artefact of the source run (again: a resumed run rewrites its checkpoint); how many files."""
    with tempfile.TemporaryDirectory(prefix="wxpipe-sync-") as tmp:
        local = Path(src.download_artifacts(src_id, "", tmp))
        files = sum(1 for p in local.rglob("*") if p.is_file())
        if files:
            dst.log_artifacts(dst_id, str(local))
    return files


def _write_record(store: Store, to: str, copies: dict[str, str]) -> None:
    """Add this sync's copies to ``synced.json`` (a run synced to another destination before is redirected)."""
    record = store.record
    runs: dict[str, Any] = json.loads(record.read_text()).get("runs", {}) if record.is_file() else {}
    runs.update({src: {"run_id": dst, "tracking_uri": tracking.redact(to)} for src, dst in copies.items()})
    atomic_write_text(record, json.dumps({"store": str(store.path), "runs": runs}, indent=2, sort_keys=True) + "\n")
