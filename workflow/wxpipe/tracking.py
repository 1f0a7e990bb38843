"""MLflow plumbing shared by training and evaluation (neither imports the other: this sits between them).

A :class:`mlflow.tracking.MlflowClient` bound to the configured URI is used rather than the fluent
API, so nothing depends on process-global state (an active run, a global tracking URI). With a
sqlite store, artifacts go beside the database (``<db dir>/mlflow-artifacts``), never to ./mlruns.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger(__name__)

MAX_PARAMS = 100  # MLflow's limit per log_batch call
MAX_METRICS = 1000


def redact(uri: str) -> str:
    """``scheme://user:pw@host`` -> ``scheme://host``: credentials never reach params or checkpoints."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))


def sqlite_path(uri: str) -> Path | None:
    """The database file of a ``sqlite:///relative`` or ``sqlite:////absolute`` URI, else None."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix):
        return None
    return Path(uri[len(prefix) :].split("?", 1)[0])


def client(uri: str) -> Any:
    """An MlflowClient for ``uri``; the sqlite file's folder is created first (MLflow does not)."""
    from mlflow.tracking import MlflowClient

    db = sqlite_path(uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    return MlflowClient(tracking_uri=uri)


def experiment_id(mlflow_client: Any, name: str, uri: str) -> str:
    """Get or create the experiment; a concurrent job creating it first is not an error."""
    from mlflow.exceptions import MlflowException

    found = mlflow_client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    db = sqlite_path(uri)
    location = (db.resolve().parent / "mlflow-artifacts").as_uri() if db is not None else None
    try:
        return str(mlflow_client.create_experiment(name, artifact_location=location))
    except MlflowException:
        found = mlflow_client.get_experiment_by_name(name)
        if found is None:
            raise
        return str(found.experiment_id)


def flatten(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> ``{"train.start": "...", ...}``, values as MLflow stores them (strings)."""
    out: dict[str, str] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = str(value)
    return out


def log_params(mlflow_client: Any, run_id: str, params: Mapping[str, str]) -> None:
    from mlflow.entities import Param

    items = [Param(k, v) for k, v in params.items()]
    for lo in range(0, len(items), MAX_PARAMS):
        mlflow_client.log_batch(run_id, params=items[lo : lo + MAX_PARAMS])


def log_metrics(mlflow_client: Any, run_id: str, metrics: Iterable[tuple[str, float, int]]) -> None:
    """Log ``(key, value, step)`` triples in as few calls as MLflow allows."""
    import time

    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    items = [Metric(k, float(v), now, int(s)) for k, v, s in metrics]
    for lo in range(0, len(items), MAX_METRICS):
        mlflow_client.log_batch(run_id, metrics=items[lo : lo + MAX_METRICS])


def set_tags(mlflow_client: Any, run_id: str, tags: Mapping[str, str]) -> None:
    from mlflow.entities import RunTag

    items = [RunTag(k, str(v)) for k, v in tags.items()]
    for lo in range(0, len(items), MAX_PARAMS):
        mlflow_client.log_batch(run_id, tags=items[lo : lo + MAX_PARAMS])


def reopen(mlflow_client: Any, run_id: str) -> bool:
    """Set a run RUNNING again to continue it; False when it is gone (deleted, or not in this store)."""
    if _active(mlflow_client, run_id) is None:
        return False
    mlflow_client.update_run(run_id, status="RUNNING")
    return True


def close_orphan(mlflow_client: Any, run_id: str) -> bool:
    """Mark a run that a killed process left RUNNING as KILLED; True when it was such a run."""
    run = _active(mlflow_client, run_id)
    if run is None or run.info.status != "RUNNING":
        return False
    mlflow_client.set_terminated(run_id, status="KILLED")
    return True


def close_orphans(mlflow_client: Any, experiment: str, tags: Mapping[str, str]) -> list[str]:
    """Mark KILLED the RUNNING runs of ``experiment`` that carry ``tags`` (runs of a process killed before
    it recorded its run anywhere); their ids."""
    found = mlflow_client.search_runs([experiment], filter_string="attributes.status = 'RUNNING'")
    orphans = [r.info.run_id for r in found if all(r.data.tags.get(k) == v for k, v in tags.items())]
    for run_id in orphans:
        mlflow_client.set_terminated(run_id, status="KILLED")
    return orphans


def _active(mlflow_client: Any, run_id: str) -> Any:
    """The run, or None when it is deleted or not in this store."""
    from mlflow.exceptions import MlflowException

    try:
        run = mlflow_client.get_run(run_id)
    except MlflowException:
        return None
    return run if run.info.lifecycle_stage == "active" else None
