"""The layout of ``results/``: every path a rule reads or writes, spelt once.

Users, tests and lineage records rely on these paths, so they change here or nowhere. Each function
takes names and Snakemake wildcard patterns alike: ``dataset("{dataset}")`` is a rule's pattern,
``dataset("demo")`` the store it names. Pure strings, no imports: the Snakefile and the unit tests use
it without loading anything else.
"""

from __future__ import annotations

RESULTS = "results"
LINEAGE = f"{RESULTS}/lineage"
PENDING = f"{LINEAGE}/.pending"
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"
CATALOGUE = f"{RESULTS}/catalogue"


def part(key: str, part: str = "{part}") -> str:
    """The key of one part of a dataset's or layout's job family: ``<key>/part-<i>-of-<n>``."""
    return f"{key}/part-{part}"


def site_key(site: str, name: str) -> str:
    """The key of a copy's records, logs and benchmarks: ``<site>/<name>``."""
    return f"{site}/{name}"


def dataset(name: str) -> str:
    return f"{RESULTS}/datasets/{name}.zarr"


def layout(name: str) -> str:
    return f"{RESULTS}/layouts/{name}.zarr"


def statistics_part(key: str) -> str:
    """A statistics part's moments (``key`` is a ``part`` key), kept until the merge has read them."""
    return f"{RESULTS}/statistics/{key}.npz"


def model(run: str) -> str:
    return f"{RESULTS}/models/{run}/checkpoint.pt"


def loss(run: str, ext: str) -> str:
    """A run's loss points (``json``, written beside the checkpoint by training) or their curve (``png``)."""
    return f"{RESULTS}/models/{run}/loss.{ext}" if ext == "json" else f"{RESULTS}/models/{run}/loss_curve.{ext}"


OFFLINE_STORE = "mlflow/mlflow.db"  # in the folder of a run's checkpoint


def offline_store(run: str) -> str:
    """A run's offline MLflow store (sqlite, its artefacts in ``artifacts/`` beside it), beside its checkpoint:
    what training logs to on a compute node and ``wxpipe mlflow-sync`` copies to the tracking server."""
    return f"{RESULTS}/models/{run}/{OFFLINE_STORE}"


def forecasts(run: str) -> str:
    """A run's forecasts over the evaluation period (Zarr v2): what ``predict`` writes and evaluation scores."""
    return f"{RESULTS}/forecasts/{run}.zarr"


def evaluation(run: str, file: str | None = None) -> str:
    """A run's evaluation folder, or a file in it."""
    folder = f"{RESULTS}/evaluation/{run}"
    return folder if file is None else f"{folder}/{file}"


def climatology(dataset: str) -> str:
    """A dataset's climatology (Zarr v2) for the evaluation's days: the climatology baseline, ACC's reference."""
    return f"{RESULTS}/climatology/{dataset}.zarr"


def comparison(file: str | None = None) -> str:
    """The folder where the compare target puts the evaluated runs side by side, or a file in it."""
    folder = f"{RESULTS}/comparison"
    return folder if file is None else f"{folder}/{file}"


def evaluation_store(run: str) -> str:
    """A run's evaluation's offline MLflow store, in its evaluation folder: as :func:`offline_store` is to training."""
    return evaluation(run, OFFLINE_STORE)


def catalogue(ext: str) -> str:
    """The lineage catalogue as ``json`` or ``dot``."""
    return f"{CATALOGUE}/catalogue.{ext}"


def site(folder: str = CATALOGUE) -> str:
    """The catalogue's static site, a folder of its own beside ``catalogue.json``: the rule's directory output,
    which ``snakemake --report`` embeds whole."""
    return f"{folder}/site"


def site_index(folder: str = CATALOGUE) -> str:
    """The site's first page, what a browser opens (its other pages sit beside it)."""
    return f"{site(folder)}/index.html"


def site_copy(root: str, name: str) -> str:
    """A dataset's or layout's copy under a site's URL or folder: ``<root>/<name>.zarr``."""
    return f"{root}/{name}.zarr"


def site_model_name(run: str) -> str:
    """A model's copy under a site's URL or folder: ``models/<run>``, apart from the ``.zarr`` copies."""
    return f"models/{run}"


def bundle(run: str) -> str:
    """What a model's transfers send, staged as links to the run's files (removed once every copy is made)."""
    return f"{RESULTS}/bundles/{run}"


def record(stage: str, key: str) -> str:
    """A published lineage record: what later stages follow and the catalogue joins."""
    return f"{LINEAGE}/{stage}/{key}.json"


def pending(stage: str, key: str) -> str:
    """A record its job wrote, before the stage target publishes it (so ``-R <stage>`` reruns the job)."""
    return f"{PENDING}/{stage}/{key}.json"


def marker(stage: str, key: str) -> str:
    """A job's done-marker, for a job whose work is in place in a store and leaves no record."""
    return f"{PENDING}/{stage}/{key}.done"


def log(stage: str, key: str | None = None) -> str:
    return f"{LOGS}/{stage}.log" if key is None else f"{LOGS}/{stage}/{key}.log"


def benchmark(stage: str, key: str | None = None) -> str:
    return f"{BENCHMARKS}/{stage}.tsv" if key is None else f"{BENCHMARKS}/{stage}/{key}.tsv"
