"""MLflow plumbing shared by training and evaluation (neither imports the other: this sits between them).

A :class:`mlflow.tracking.MlflowClient` bound to one URI is used rather than the fluent API, so nothing
depends on process-global state (an active run, a global tracking URI). The URI is the config's, else
``MLFLOW_TRACKING_URI``, else the embedded sqlite store (:func:`resolve_uri`); credentials come only from
MLflow's own variables, so a URI holding them is refused and what is recorded is :func:`redact`-ed.

With a sqlite store, artefacts go beside the database (``results/mlflow-artifacts`` for the default one),
never to ./mlruns. MLflow 3 turns a relative ``artifact_location`` into an absolute ``file://`` URI against
the working directory when the experiment is created, so the location is derived from the database's own
path instead: the artefacts land beside it from whatever directory a job runs.

Compute nodes without internet log offline (``mlflow.mode``, :func:`open_store`): to a sqlite store beside
the model (:func:`wxpipe.paths.offline_store`), which ``wxpipe mlflow-sync`` copies to the server after
the job and records in ``synced.json`` (:func:`synced` follows it). Evaluation logs the same way, to a
store beside its scores (:func:`wxpipe.paths.evaluation_store`), in a run of its own that only links to
the training run (:func:`training_link`).
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from . import paths
from .errors import WxpipeError
from .provenance import git_commit, git_dirty

log = logging.getLogger(__name__)

DEFAULT_URI = "sqlite:///results/mlflow.db"
URI_VARIABLE = "MLFLOW_TRACKING_URI"
CREDENTIALS = "set MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD (or MLFLOW_TRACKING_TOKEN) in the environment"
ANSWER_SECONDS = 5  # how long a tracking server has to answer the first request, which is not retried
MAX_PARAMS = 100  # MLflow's limit per log_batch call
MAX_METRICS = 1000
QUICK = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0", "MLFLOW_HTTP_REQUEST_TIMEOUT": str(ANSWER_SECONDS)}
SYNCED = "synced.json"  # beside a store that wxpipe mlflow-sync copied: its runs' ids at the destination
TRAINING_RUN = "wxpipe.training_run_id"  # an evaluation run's link to its model's training run
TRAINING_URI = "wxpipe.training_tracking_uri"
PARENT = "mlflow.parentRunId"


class ServerUnreachable(WxpipeError):
    """A tracking server that did not answer in time (rather than one that answered with an error)."""


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


def resolve_uri(configured: str | None = None) -> str:
    """The tracking URI: the config's, else ``MLFLOW_TRACKING_URI``, else the embedded sqlite store."""
    if configured:
        return configured
    uri = os.environ.get(URI_VARIABLE) or DEFAULT_URI
    if has_credentials(uri):
        raise WxpipeError(f"{URI_VARIABLE} holds credentials ({redact(uri)} with user:password@): {CREDENTIALS}")
    return uri


def recorded_uri(configured: str | None = None) -> str:
    """The resolved URI as states, params and checkpoints record it (never with credentials)."""
    return redact(resolve_uri(configured))


def has_credentials(uri: str) -> bool:
    parts = urlsplit(uri)
    return parts.username is not None or parts.password is not None


def offline_uri(folder: Path) -> str:
    """The offline store of the run whose checkpoint is in ``folder`` (:func:`wxpipe.paths.offline_store`)."""
    return f"sqlite:///{Path(folder) / paths.OFFLINE_STORE}"


def open_store(mode: str, configured: str | None, folder: Path, recorded: str | None = None) -> tuple[str, Any]:
    """The URI a run logs to and a client for it.

    ``online``: ``recorded`` (the store a resumed run's state was logged to), else :func:`resolve_uri`;
    ``offline``: the offline store of the run whose checkpoint is in ``folder``, always (a compute node
    reaches nothing else); ``fallback``: as online, but a server that does not answer means the offline
    store, said in one warning line.
    """
    offline = offline_uri(folder)
    if mode == "offline":
        return offline, client(offline)
    uri = recorded or resolve_uri(configured)
    if mode == "online" or uri == offline:
        return uri, client(uri)
    try:
        return uri, client(uri)
    except ServerUnreachable as exc:
        log.warning("%s; logging offline to %s", exc, offline)
    return offline, client(offline)


def client(uri: str) -> Any:
    """An MlflowClient for ``uri``; the sqlite file's folder is created first (MLflow does not), and a
    server is asked once with no retries, so an unreachable one fails in seconds, not MLflow's minutes."""
    from mlflow.tracking import MlflowClient

    db = sqlite_path(uri)
    if db is not None:
        db.parent.mkdir(parents=True, exist_ok=True)
    mlflow_client = MlflowClient(tracking_uri=uri)
    if urlsplit(uri).scheme in ("http", "https"):
        check_server(mlflow_client, uri)
    return mlflow_client


def check_server(mlflow_client: Any, uri: str, seconds: int = ANSWER_SECONDS) -> None:
    """Raise one line naming the (redacted) server when it does not answer within ``seconds``."""
    try:
        with environment({**QUICK, "MLFLOW_HTTP_REQUEST_TIMEOUT": str(seconds)}):
            mlflow_client.search_experiments(max_results=1)
    except Exception as exc:
        reason, answered = _reason(exc, seconds)
        error = WxpipeError if answered else ServerUnreachable
        raise error(f"MLflow tracking server {redact(uri)}: {reason}") from None


def _reason(exc: BaseException, seconds: int) -> tuple[str, bool]:
    """Why a request failed, in words that hold no credential (MLflow's own message repeats the URI), and
    whether the server answered at all."""
    import requests

    chain: list[BaseException] = [exc]
    while len(chain) < 20 and (inner := chain[-1].__cause__ or chain[-1].__context__) is not None:
        chain.append(inner)
    if isinstance(chain[-1], TimeoutError) or any(isinstance(e, requests.Timeout) for e in chain):
        return f"no answer within {seconds} s", False
    if any(isinstance(e, requests.ConnectionError) for e in chain):
        found = re.search(r"\[Errno -?\d+\][^\"')]*", str(chain[-1]))
        return f"cannot connect ({found.group(0) if found else type(chain[-1]).__name__}); is the server up?", False
    return "answered with an error: " + re.sub(r"//[^/\s@]+@", "//", str(exc).splitlines()[0])[:300], True


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Environment variables set for a block only: MLflow reads its settings from there, not from arguments."""
    before = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def experiment_id(mlflow_client: Any, name: str, uri: str) -> str:
    """Get or create the experiment; a concurrent job creating it first is not an error."""
    from mlflow.exceptions import MlflowException

    found = mlflow_client.get_experiment_by_name(name)
    if found is not None:
        return str(found.experiment_id)
    db = sqlite_path(uri)
    location = artifact_root(db).as_uri() if db is not None else None
    try:
        return str(mlflow_client.create_experiment(name, artifact_location=location))
    except MlflowException:
        found = mlflow_client.get_experiment_by_name(name)
        if found is None:
            raise
        return str(found.experiment_id)


def artifact_root(db: Path) -> Path:
    """Where the artefacts of a sqlite store go: ``artifacts/`` in an offline store's own folder, else
    ``mlflow-artifacts/`` beside the database (``results/`` holds much else)."""
    own = db.parts[-2:] == Path(paths.OFFLINE_STORE).parts
    return db.resolve().parent / ("artifacts" if own else "mlflow-artifacts")


def synced(uri: str, run_id: str) -> tuple[str, str]:
    """Where run ``run_id`` of the store at ``uri`` is now: its copy at the destination when
    ``wxpipe mlflow-sync`` copied it there (the store's ``synced.json``), else where it was."""
    db = sqlite_path(uri)
    record = db.parent / SYNCED if db is not None else None
    if record is None or not record.is_file():
        return uri, run_id
    copy = json.loads(record.read_text()).get("runs", {}).get(run_id)
    return (str(copy["tracking_uri"]), str(copy["run_id"])) if copy else (uri, run_id)


def same_store(a: str, b: str) -> bool:
    """Whether two tracking URIs name one store (sqlite by the database file, else by the redacted URI)."""
    da, db = sqlite_path(a), sqlite_path(b)
    if da is not None and db is not None:
        return da.resolve() == db.resolve()
    return redact(a).rstrip("/") == redact(b).rstrip("/")


def training_link(mlflow_client: Any, uri: str, run_id: str | None, training_uri: str | None) -> dict[str, str]:
    """Tags that link a run logged to ``uri`` (evaluation's) to training run ``run_id`` of ``training_uri``,
    followed to its synced copy: its id and store always, and ``mlflow.parentRunId`` when it is in the same
    store (MLflow then nests the run under it). Nothing is written to the training run; ``wxpipe mlflow-sync``
    links a synced evaluation run again at the destination."""
    if not (run_id and training_uri):
        return {}
    where, found = synced(training_uri, run_id)
    link = {TRAINING_RUN: found, TRAINING_URI: redact(where)}
    if same_store(where, uri) and active_run(mlflow_client, found) is not None:
        link[PARENT] = found
    return link


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
    """Log ``(key, value, step)`` triples, stamped now."""
    import time

    now = int(time.time() * 1000)
    log_points(mlflow_client, run_id, [(k, v, s, now) for k, v, s in metrics])


def log_points(mlflow_client: Any, run_id: str, points: Iterable[tuple[str, float, int, int]]) -> None:
    """Log ``(key, value, step, timestamp in ms)`` points in as few calls as MLflow allows."""
    from mlflow.entities import Metric

    items = [Metric(k, float(v), int(t), int(s)) for k, v, s, t in points]
    for lo in range(0, len(items), MAX_METRICS):
        mlflow_client.log_batch(run_id, metrics=items[lo : lo + MAX_METRICS])


def set_tags(mlflow_client: Any, run_id: str, tags: Mapping[str, str]) -> None:
    from mlflow.entities import RunTag

    items = [RunTag(k, str(v)) for k, v in tags.items()]
    for lo in range(0, len(items), MAX_PARAMS):
        mlflow_client.log_batch(run_id, tags=items[lo : lo + MAX_PARAMS])


@contextmanager
def new_run(mlflow_client: Any, experiment: str, name: str, tags: Mapping[str, str]) -> Iterator[str]:
    """A run for a block: its id, ended FINISHED after the block, else FAILED (KILLED on Ctrl-C), the
    latter with no retries so a server that went away does not hold the error back for minutes."""
    run_id: str = mlflow_client.create_run(experiment, run_name=name, tags=dict(tags)).info.run_id
    try:
        yield run_id
    except BaseException as exc:
        status = "KILLED" if isinstance(exc, KeyboardInterrupt) else "FAILED"
        try:
            with environment(QUICK):
                mlflow_client.set_terminated(run_id, status=status)
        except Exception as err:
            log.warning(
                "could not mark MLflow run %s %s: %s",
                run_id,
                status,
                re.sub(r"//[^/\s@]+@", "//", str(err).splitlines()[0])[:200],
            )
        raise
    mlflow_client.set_terminated(run_id, status="FINISHED")


def source_tags(command: str = "wxpipe train") -> dict[str, str]:
    """MLflow's source tags: the git commit wxpipe runs from and whether its tree has changes (no remote
    URL: one may hold a token)."""
    commit, dirty = git_commit(), git_dirty()
    tags = {"mlflow.source.type": "LOCAL", "mlflow.source.name": command}
    if commit is not None:
        tags["mlflow.source.git.commit"] = commit
    if dirty is not None:
        tags["wxpipe.git.dirty"] = str(dirty).lower()
    return tags


def log_dataset(
    mlflow_client: Any, run_id: str, name: str, digest: str, source: str | Path, profile: Mapping[str, int]
) -> None:
    """Log a dataset as an MLflow dataset input used for training (digest: the dataset's uuid)."""
    from mlflow.entities import Dataset, DatasetInput, InputTag

    dataset = Dataset(
        name=name,
        digest=digest[:36],  # MLflow's column width; a uuid fits
        source_type="local",
        source=json.dumps({"uri": str(source)}),
        profile=json.dumps(dict(profile)),
    )
    context = InputTag("mlflow.data.context", "training")
    mlflow_client.log_inputs(run_id, datasets=[DatasetInput(dataset, tags=[context])])


def reopen(mlflow_client: Any, run_id: str) -> bool:
    """Set a run RUNNING again to continue it; False when it is gone (deleted, or not in this store)."""
    if active_run(mlflow_client, run_id) is None:
        return False
    mlflow_client.update_run(run_id, status="RUNNING")
    return True


def close_orphan(mlflow_client: Any, run_id: str) -> bool:
    """Mark a run that a killed process left RUNNING as KILLED; True when it was such a run."""
    run = active_run(mlflow_client, run_id)
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


def active_run(mlflow_client: Any, run_id: str) -> Any:
    """The run, or None when it is deleted or not in this store."""
    from mlflow.exceptions import MlflowException

    try:
        run = mlflow_client.get_run(run_id)
    except MlflowException:
        return None
    return run if run.info.lifecycle_stage == "active" else None
