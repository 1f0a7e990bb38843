"""What the Snakefile asks of the package: file lists and settings, so rules stay pure dataflow."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shlex
from pathlib import Path
from typing import Any

from . import paths
from .config import Config, params_of, validate_config
from .create import input_files
from .dataset import Part, load_dates
from .errors import WxpipeError, some
from .lineage import params_hash
from .recipe import Recipe, load_recipe
from .sources.demo import demo_path
from .timeutil import date_range
from .timeutil import format_frequency as format_frequency


@functools.cache
def _recipe(path: Path) -> Recipe:
    """A dataset's recipe, parsed once per Snakemake process: the config check, every load part's inputs
    and the rules' digest param all ask for it while the DAG is built."""
    return load_recipe(path)


def load_config(config: dict[str, Any], files: list[str], check_inputs: bool = True) -> Config:
    """The config Snakemake loaded, validated, and every dataset's recipe with it: a mistake in either, or
    an input file that is absent and that no rule makes, is found before the DAG is built, as one message.

    Snakemake would drop a job whose input is absent when its output exists (an edited recipe that needs
    other files would leave the old dataset in place without a word), so absent inputs are refused here;
    only by the controller (``check_inputs``): a job re-reads the Snakefile, and a stat of every input of a
    long archive on Lustre would slow each job's start.
    """
    cfg = validate_config(config, files)
    made = set(demo_files(cfg))
    for name, ds in cfg.datasets.items():
        try:
            recipe = _recipe(ds.recipe)
            paths = input_files(recipe, recipe.dates.all()) if check_inputs else []
            absent = [p for p in paths if str(p) not in made and not p.exists()]
        except WxpipeError as exc:
            raise WxpipeError(f"datasets.{name}.recipe: {exc}") from None
        if absent:
            shown = some([str(p) for p in absent], 3)
            raise WxpipeError(
                f"datasets.{name}.recipe: {ds.recipe}: input files {shown} do not exist (declare their dates "
                "missing in the recipe's dates.missing, or fix the path)"
            )
    return cfg


def recipe_digest(cfg: Config, dataset: str) -> str:
    """SHA-256 of the dataset's recipe as parsed (canonical JSON): the rules' rerun trigger.

    The recipe file is no input of the rules, so a comment, a reformatting or a ``touch`` reruns nothing
    (at N320 a rebuild is ~72 core-hours); a change of meaning changes this digest, a rule ``param``,
    and Snakemake's ``params`` trigger reruns the dataset and what follows.
    """
    recipe = _recipe(cfg.datasets[dataset].recipe)
    canonical = json.dumps(json.loads(recipe.model_dump_json()), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def demo_files(cfg: Config) -> list[str]:
    """Every GRIB file of the demo archive (the demo rule's outputs)."""
    if cfg.demo is None:
        return []
    dates = date_range(cfg.demo.start, cfg.demo.end, cfg.demo.frequency)
    return [str(demo_path(cfg.demo.out, d)) for d in dates]


def stages(cfg: Config) -> dict[str, list[str]]:
    """Each stage target and the keys of the records it publishes (``results/lineage/<stage>/<key>.json``)."""
    datasets, runs = list(cfg.datasets), list(cfg.training)
    return {
        "dataset": datasets,
        "statistics": datasets,
        "rechunk": list(cfg.layouts),
        "transfer": [paths.site_key(t.site, t.name) for t in cfg.transfers if t.model is None],
        "train": runs,
        "predict": runs,
        "climatology": climatology_datasets(cfg) if runs else [],
        "evaluate": runs,
        "compare": ["runs"] if runs else [],
        "transfer_models": [paths.site_key(t.site, t.model) for t in cfg.transfers if t.model is not None],
    }


def runs_pattern(cfg: Config, engine: str) -> str:
    """A wildcard pattern matching exactly the runs trained by ``engine`` (one that matches nothing when none is)."""
    runs = [re.escape(r) for r, t in cfg.training.items() if t.engine == engine]
    return "|".join(runs) if runs else "(?!)"


def offline_store(cfg: Config, run: str) -> str:
    """Where a run's offline MLflow store is: the built-in engine's sqlite beside the checkpoint, or anemoi-training's
    file store in its folder (anemoi runs always log offline: its mlflow-skinny has no sqlite)."""
    if cfg.training[run].engine == "anemoi":
        return str(Path(paths.model(run)).parent / "anemoi" / "logs" / "mlflow")
    return paths.offline_store(run)


def climatology_datasets(cfg: Config) -> list[str]:
    """The datasets whose climatology the evaluation needs: those the runs train on, when it has a climatology."""
    if cfg.evaluation is None or cfg.evaluation.climatology is None:
        return []
    return list(dict.fromkeys(t.dataset for t in cfg.training.values()))


def compared_runs(cfg: Config) -> list[str]:
    """The runs the compare target puts side by side: ``evaluation.compare``, else every run."""
    return list(cfg.evaluation.compare if cfg.evaluation and cfg.evaluation.compare else cfg.training)


def evaluation_inputs(cfg: Config, run: str) -> dict[str, str]:
    """What a run's evaluation reads besides its forecasts and dataset copy: the climatology of its dataset and its
    record, and the records of the reference datasets (``ref<lead>_record``; :func:`evaluation_args` names them)."""
    ev, dataset = cfg.evaluation, cfg.training[run].dataset
    inputs = {}
    if ev is not None and ev.climatology is not None:
        inputs["climatology"] = paths.climatology(dataset)
        inputs["climatology_record"] = paths.record("climatology", dataset)
    for lead, name in (ev.reference.leads if ev is not None and ev.reference else {}).items():
        inputs[f"ref{lead}_record"] = paths.record("statistics", name)
    return inputs


def evaluation_upstream(cfg: Config, run: str) -> list[str]:
    """The lineage records a run's evaluation derives from: its forecasts, the dataset copy, the baselines."""
    baselines = [v for k, v in evaluation_inputs(cfg, run).items() if k.endswith("_record")]
    return [paths.record("predict", run), *dataset_copy_records(cfg, run), *baselines]


def evaluation_args(cfg: Config, run: str) -> str:
    """The evaluate command's ``--climatology`` and ``--reference LEAD=PATH`` arguments, quoted."""
    ev, args = cfg.evaluation, []
    if ev is not None and ev.climatology is not None:
        args.append(f"--climatology {shlex.quote(paths.climatology(cfg.training[run].dataset))}")
    if ev is not None and ev.reference is not None:
        refs = (f"{lead}={paths.dataset(name)}" for lead, name in ev.reference.leads.items())
        args.append("--reference " + " ".join(shlex.quote(r) for r in refs))
    return " ".join(args)


OFFLINE_MODES = ("offline", "fallback")


def stage_waits(cfg: Config, stage: str) -> list[str]:
    """What a stage target waits for besides the records it publishes: for ``train`` and ``evaluate``, the
    MLflow syncs of the runs that log offline or may (``mlflow.mode``; anemoi-training's always), so the target
    ends with every run on the server (the ``sync_mlflow`` and ``sync_mlflow_evaluation`` rules); for ``train``,
    the loss curves too."""
    if stage == "train":
        curves = [paths.loss(r, "png") for r in cfg.training]
        offline = [r for r, t in cfg.training.items() if t.mlflow.mode in OFFLINE_MODES or t.engine == "anemoi"]
        return [*curves, *(paths.marker("mlflow-sync", r) for r in offline)]
    if stage == "evaluate" and cfg.evaluation is not None and cfg.evaluation.mlflow.mode in OFFLINE_MODES:
        return [paths.marker("mlflow-sync-evaluation", r) for r in cfg.training]
    return []


def _parts(n: int) -> list[str]:
    return [f"{i}-of-{n}" for i in range(1, n + 1)]


def part_names(cfg: Config, dataset: str, stage: str = "load") -> list[str]:
    """Snakemake's names of a dataset's parts (``1-of-2``, ``2-of-2``) for ``load`` or ``statistics``."""
    return _parts(cfg.datasets[dataset].parts if stage == "load" else cfg.datasets[dataset].statistics.parts)


def load_records(cfg: Config, dataset: str) -> list[str]:
    """The records of a dataset's load parts: what ``finalise`` waits for and the catalogue joins."""
    return [paths.record("load", paths.part(dataset, p)) for p in part_names(cfg, dataset)]


def statistics_parts(cfg: Config, dataset: str) -> list[str]:
    """The moments of a dataset's statistics parts, which the merge reads."""
    return [paths.statistics_part(paths.part(dataset, p)) for p in part_names(cfg, dataset, "statistics")]


def part_arg(wildcards: Any) -> str:
    """A job's ``{part}`` wildcard (``1-of-2``) as ``--part`` takes it (``1/2``); a rule's ``params`` function."""
    return str(wildcards.part).replace("-of-", "/")


def max_mem(wildcards: Any, resources: Any) -> str:
    """``--max-mem`` for a rechunk job: 60% of its ``mem_mb``, the rest headroom for the process itself."""
    return f"{int(resources.mem_mb * 0.6)}MB"


def statistics_period(cfg: Config, dataset: str) -> list[str]:
    """``--start``/``--end`` for a period set in config (none: the recipe's period applies)."""
    st = cfg.datasets[dataset].statistics
    return (["--start", st.start.isoformat()] if st.start else []) + (["--end", st.end.isoformat()] if st.end else [])


def part_inputs(cfg: Config, dataset: str, part: str) -> list[str]:
    """The source files one load part reads (so Snakemake knows which rule makes them)."""
    recipe = _recipe(cfg.datasets[dataset].recipe)
    i, n = (int(x) for x in part.split("-of-"))
    rng = load_dates(recipe, Part(i, n))
    return [str(p) for p in input_files(recipe, recipe.dates.all()[rng.start : rng.stop])]


def first_inputs(cfg: Config, dataset: str) -> list[str]:
    recipe = _recipe(cfg.datasets[dataset].recipe)
    return [str(p) for p in input_files(recipe, recipe.dates.all())[:1]]


def uses_demo(cfg: Config, dataset: str) -> bool:
    """Whether the dataset reads the demo archive (then the archive's record is an upstream)."""
    if cfg.demo is None:
        return False
    demo = set(demo_files(cfg))
    return any(f in demo for f in first_inputs(cfg, dataset))


def config_hash(cfg: Config) -> str:
    """A short hash of the whole validated config, which every job's lineage record carries (``config_hash``)."""
    return params_hash(cfg.model_dump(mode="json", by_alias=True))


def settings(cfg: Config, section: str, name: str | None = None) -> str:
    """A config slice as JSON, for ``--settings`` (and as ``params:`` so a change reruns the rule)."""
    model = getattr(cfg, section)
    if name is not None:
        model = model[name]
    return json.dumps(params_of(model), sort_keys=True)


def site_path(cfg: Config, site: str, name: str) -> str:
    """Where a copy lies on a ``file:`` site (what a stage running there reads), as a normalised local path."""
    return str(Path(paths.site_copy(str(cfg.sites[site].path), name)))


def dataset_copy(cfg: Config, run: str) -> str:
    """The dataset a run trains on and is scored on: the copy at its ``site`` (bring the code to the data), or
    the original. Training and evaluation both ask here, so a model is never scored on another copy; a run
    with ``loader.layout`` trains on that layout of the same data (:func:`training_source`)."""
    t = cfg.training[run]
    return paths.dataset(t.dataset) if t.site is None else site_path(cfg, t.site, t.dataset)


def dataset_copy_records(cfg: Config, run: str) -> list[str]:
    """The lineage records of that copy: the statistics, and the transfer that made it when the run has a site."""
    t = cfg.training[run]
    records = [paths.record("statistics", t.dataset)]
    return records if t.site is None else [*records, paths.record("transfer", paths.site_key(t.site, t.dataset))]


def _layout_at_site(cfg: Config, run: str) -> bool:
    """Whether a run's ``loader.layout`` is copied to the run's site (then the run reads that copy)."""
    t = cfg.training[run]
    return t.site is not None and any(t.loader.layout == x.layout and t.site == x.site for x in cfg.transfers)


def training_source(cfg: Config, run: str) -> str:
    """The store a run trains from: its ``loader.layout`` (the layout's copy at the run's site when a transfer
    puts it there, else the layout in results/), or without one the dataset copy it is scored on."""
    t = cfg.training[run]
    if t.loader.layout is None:
        return dataset_copy(cfg, run)
    if _layout_at_site(cfg, run):
        return site_path(cfg, str(t.site), t.loader.layout)
    return paths.layout(t.loader.layout)


def training_source_records(cfg: Config, run: str) -> list[str]:
    """The lineage records of that store: the layout's, and the transfer that copied it to the site."""
    t = cfg.training[run]
    if t.loader.layout is None:
        return dataset_copy_records(cfg, run)
    records = [paths.record("rechunk", t.loader.layout)]
    if _layout_at_site(cfg, run):
        records.append(paths.record("transfer", paths.site_key(str(t.site), t.loader.layout)))
    return records


def layout_source(cfg: Config, layout: str) -> str:
    """The store a layout rechunks: its dataset's."""
    return paths.dataset(cfg.layouts[layout].dataset)


def layout_upstream(cfg: Config, layout: str) -> str:
    """The record a layout follows: its dataset's statistics, which the layout copies with the data."""
    return paths.record("statistics", cfg.layouts[layout].dataset)


def layout_markers(cfg: Config, layout: str) -> list[str]:
    """The done-markers of a layout's rechunk parts, which its verification waits for."""
    return [paths.marker("rechunk_part", paths.part(layout, p)) for p in _parts(cfg.layouts[layout].parts)]


def layout_args(cfg: Config, layout: str) -> str:
    """``--chunks``, ``--zarr-format`` and ``--shards`` of a layout for ``wxpipe rechunk-init`` (numbers only)."""
    lay = cfg.layouts[layout]
    args = f"--chunks {lay.chunks.arg()} --zarr-format {lay.zarr_format}"
    return args + (f" --shards {lay.shards.arg()}" if lay.shards else "")


_ENV_REF = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


def unset_account_variables(workflow: Any) -> list[str]:
    """Environment variables that the profile's ``slurm_account`` names but the shell does not set.

    The HPC profiles charge jobs to ``$WXPIPE_ACCOUNT``; Snakemake expands it when a job is submitted,
    and an unset variable would reach ``sbatch -A`` as a literal ``$WXPIPE_ACCOUNT``. Checking the raw
    resource values first turns that into one clear message before anything is submitted.
    """
    settings = workflow.resource_settings
    tables = [settings.default_resources, *dict(settings.overwrite_resources or {}).values()]
    missing: list[str] = []
    for table in tables:
        resource = dict(table or {}).get("slurm_account")
        raw = getattr(resource, "raw", resource)
        if isinstance(raw, str):
            missing += [name for name in _ENV_REF.findall(raw) if name not in os.environ and name not in missing]
    return missing


GPU_STACKS = ("cuda", "rocm")


def gpu_stack() -> str:
    """``cuda`` (Leonardo, MareNostrum 5, JUPITER; the default) or ``rocm`` (LUMI), from ``WXPIPE_GPU_STACK``.

    It picks the training rules' conda env (envs/train-<stack>.yaml) and container; a typo is an
    error rather than a silent CUDA env on an AMD machine.
    """
    stack = os.environ.get("WXPIPE_GPU_STACK", "cuda").strip().lower() or "cuda"
    if stack not in GPU_STACKS:
        raise ValueError(f"WXPIPE_GPU_STACK={stack!r}: expected one of {', '.join(GPU_STACKS)}")
    return stack


def container_image(name: str) -> str:
    """The Apptainer image of a rule family (containers/<name>.def), in ``$WXPIPE_CONTAINERS`` (default
    ``containers/``): used only with ``--sdm apptainer``, so the images live on the site's shared storage."""
    return str(Path(os.environ.get("WXPIPE_CONTAINERS", "containers")) / f"wxpipe-{name}.sif")
