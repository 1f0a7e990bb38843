"""Guards against scores that flatter a model: an evaluation period that the model trained or was validated
on, or that its normaliser's statistics include; and a checkpoint scored on a dataset it was not trained on.

The periods are checked with the config, before any job runs (so ``snakemake -n`` refuses already); the
datasets by predict and evaluate, which see the stores. The config check runs while Snakemake parses, so
this module imports nothing heavy (the recipe module only for a dataset whose statistics period the config
leaves to its recipe).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import WxpipeError

if TYPE_CHECKING:
    from .config import Config
    from .dataset import Dataset

log = logging.getLogger(__name__)

Span = tuple[dt.datetime, dt.datetime]
ALLOW = "set evaluation.allow_overlap: true to score anyway, with the overlap recorded in scores.json"


def span_text(span: Span) -> str:
    """``2020-03-11 .. 2020-03-31T18:00``: a date alone at midnight."""
    return " .. ".join(d.date().isoformat() if d.time() == dt.time() else d.isoformat(timespec="minutes") for d in span)


def _meet(a: Span, b: Span) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def check_periods(cfg: Config) -> list[str]:
    """Refuse (``ValueError``, as a config validator raises) an evaluation period that overlaps a training run's
    ``train`` or ``validation`` period, or the statistics period of a dataset a run trains on, unless
    ``evaluation.allow_overlap``: then warn and return the overlaps, each a sentence naming both periods."""
    if cfg.evaluation is None:
        return []
    found = period_overlaps(cfg)
    if found and not cfg.evaluation.allow_overlap:
        raise ValueError("; ".join(found) + f" ({ALLOW})")
    for line in found:
        log.warning("%s: scored anyway, as evaluation.allow_overlap says", line)
    return found


def period_overlaps(cfg: Config) -> list[str]:
    """The overlaps :func:`check_periods` refuses."""
    assert cfg.evaluation is not None
    ev = (cfg.evaluation.period.start, cfg.evaluation.period.end)
    head = f"evaluation.period {span_text(ev)} overlaps"
    found = []
    for name, run in cfg.training.items():
        for key, period in (("train", run.train), ("validation", run.validation)):
            if _meet(ev, (period.start, period.end)):
                found.append(f"{head} training.{name}.{key} {span_text((period.start, period.end))}")
    for dataset in dict.fromkeys(run.dataset for run in cfg.training.values()):
        stats = statistics_period(cfg, dataset)
        if stats is not None and _meet(ev, stats[0]):
            runs = ", ".join(f"training.{n}" for n, r in cfg.training.items() if r.dataset == dataset)
            found.append(
                f"{head} the statistics period of datasets.{dataset} {span_text(stats[0])} ({stats[1]}; "
                f"the normaliser of {runs})"
            )
    return found


def statistics_period(cfg: Config, dataset: str) -> tuple[Span, str] | None:
    """The dataset's statistics period as the statistics stage will compute it, and where it comes from:
    ``datasets.<name>.statistics.start``/``end`` where set, else the recipe's, whose default is anemoi's
    (:meth:`~wxpipe.recipe.Recipe.statistics_period`, what a build stores and ``period_of`` falls back to).
    None when the recipe cannot be read: its own check reports that."""
    ds = cfg.datasets.get(dataset)
    if ds is None:
        return None
    start, end = ds.statistics.start, ds.statistics.end
    if start is not None and end is not None:
        return (start, end), f"datasets.{dataset}.statistics"
    from .recipe import load_recipe

    try:
        recipe = load_recipe(ds.recipe)
    except (OSError, WxpipeError):
        return None
    default = recipe.statistics_period()
    own = recipe.statistics.start is not None or recipe.statistics.end is not None
    origin = f"the statistics block of {ds.recipe}" if own else f"anemoi's default for {ds.recipe}"
    given = [f"datasets.{dataset}.statistics.{k}" for k, v in (("start", start), ("end", end)) if v is not None]
    where = f"{given[0]}, else {origin}" if given else f"{origin}, unless datasets.{dataset}.statistics sets start/end"
    return (start or default.start, end or default.end), where


def check_trained_on(
    model_uuid: str, source: str | Path, dataset: Dataset, other_datasets: Mapping[str, str], run: str | None
) -> dict[str, str] | None:
    """Refuse to score a model on a store that holds another dataset than the one it was trained on (a copy
    holds the same; a layout its dataset's), unless ``evaluation.other_datasets`` names that store's dataset
    for the run: then warn and return what to record with the scores."""
    scored = dataset.source_uuid
    if scored == model_uuid:
        return None
    if run is not None and other_datasets.get(run) == scored:
        log.warning(
            "%s: trained on dataset %s, scored on %s (dataset %s), as evaluation.other_datasets.%s says",
            source,
            model_uuid,
            dataset.path,
            scored,
            run,
        )
        return {
            "run": run,
            "trained_on": model_uuid,
            "scored_on": scored,
            "path": str(dataset.path),
            "allowed_by": f"evaluation.other_datasets.{run}",
        }
    name = run or "<run>"
    raise WxpipeError(
        f"{source}: trained on dataset {model_uuid}, but {dataset.path} holds dataset {scored}: a model is scored "
        f"only on its own dataset or a copy of it (to score it there anyway, name it in the config: "
        f"evaluation.other_datasets: {{{name}: {scored}}})"
    )
