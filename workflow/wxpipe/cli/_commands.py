"""The command table: every ``wxpipe`` subcommand, its help and its arguments, in the order ``--help`` lists them.

A command that writes a lineage record takes ``--lineage`` and ``--upstream`` first (:data:`LINEAGE`).
Handlers import their stage only when they run, so building the parser imports none (``wxpipe --help``
stays fast and needs neither zarr nor torch).
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

from . import _data, _layout, _ml, _mlflow, _records, _sites
from ._parser import Arg, Command, arg


def _date(text: str) -> dt.datetime:
    """An ISO 8601 date; argparse names this function in its message for a bad one (``invalid _date value``)."""
    return dt.datetime.fromisoformat(text)


def threads(default: int, what: str) -> Arg:
    """``--threads``, its default said in its help."""
    return arg("--threads", type=int, default=default, help=f"{what} threads (default {default})")


def settings(what: str) -> Arg:
    """``--settings``: a stage's settings, given inline or as a file."""
    return arg("--settings", required=True, help=f"{what} settings as YAML/JSON, or @file")


UP_TO_4 = min(4, os.cpu_count() or 1)
PERIOD = "(default: the dataset's statistics period)"
LAYOUT = "dates=N,values=M"
CHECKED_PERIOD = "check the parts cover this period"

LINEAGE = (
    arg("--lineage", type=Path, help="write this rule's lineage record here"),
    arg("--upstream", type=Path, nargs="*", default=[], help="lineage records of the inputs"),
)
VALIDATE = (arg("action", choices=["validate"]), arg("file", type=Path))
STORE = arg("store", type=Path)
RECIPE_STORE = (arg("recipe", type=Path), STORE)
SRC_DST = (arg("src", type=Path), arg("dst", type=Path))
PART = arg("--part", default="1/1", help="i/N")
STATISTICS_PERIOD = (
    arg("--start", type=_date, help=f"first date {PERIOD}"),
    arg("--end", type=_date, help=f"last date {PERIOD}"),
)
TARGET_LAYOUT = (
    *SRC_DST,
    arg("--chunks", metavar=LAYOUT, help="dates and grid points per target chunk"),
    arg("--shards", metavar=LAYOUT, help="dates and points per shard (multiples of the chunks)"),
    arg("--zarr-format", type=int, choices=[2, 3], help="default 2, or 3 with --shards"),
)
SITE_OPTIONS = (
    arg("--endpoint-url", help="S3 endpoint (default: AWS for the region)"),
    arg("--region", help="S3 region (default: AWS_REGION or us-east-1)"),
    arg("--profile", help="S3 profile in the shared credentials file (default: environment keys)"),
    arg("--ssh-config", help="ssh config file for ssh:// hosts (default: WXPIPE_SSH_CONFIG or ssh's own)"),
)
CHECKPOINT = (*LINEAGE, arg("dataset", type=Path), arg("checkpoint", type=Path))
# the training run a model or its forecasts belong to (evaluation.other_datasets is keyed by it)
RUN_NAME = arg("--name", default=None, help="the training run, for evaluation.other_datasets")
MEMORY = arg("--memory-mb", type=int, default=4000, help="the job's memory: bounds the forecasts handled at once")

COMMANDS = (
    Command(
        "demo",
        _data.cmd_demo,
        "write the demo GRIB2 archive (one file per date)",
        (
            *LINEAGE,
            arg("out", type=Path),
            arg("--start", type=_date, required=True),
            arg("--end", type=_date, required=True),
            arg("--frequency", default="6h"),
            arg("--grid", default="O32", choices=["O32", "O48"]),
            arg("--seed", type=int, default=0),
        ),
    ),
    Command(
        "recipe",
        _data.cmd_recipe,
        "check a recipe, and that its first date's files hold what it asks for: `wxpipe recipe validate FILE`",
        VALIDATE,
    ),
    Command("config", _data.cmd_config, "check a workflow config: `wxpipe config validate FILE`", VALIDATE),
    Command("schema", _data.cmd_schema, "export the JSON schemas of config and recipe", (arg("out", type=Path),)),
    Command(
        "profiles",
        _sites.cmd_profiles,
        "link the site profiles into Snakemake's config directory: `snakemake --profile lumi`",
        (
            arg("action", choices=["install"]),
            arg("source", type=Path, nargs="?", default=Path("profiles"), help="profiles folder (default: profiles)"),
        ),
    ),
    Command("init", _data.cmd_init, "write an empty dataset with all its metadata", (*LINEAGE, *RECIPE_STORE)),
    Command(
        "load",
        _data.cmd_load,
        "write one part (a chunk-aligned range of dates) of a dataset",
        (
            *LINEAGE,
            *RECIPE_STORE,
            PART,
            arg("--resume", action="store_true", help="keep the chunks an interrupted run already loaded"),
            threads(1, "decoding"),
        ),
    ),
    Command(
        "create",
        _data.cmd_create,
        "init, load and finalise in one process",
        (
            *RECIPE_STORE,
            arg("--overwrite", action="store_true", help="replace a complete dataset at STORE"),
            arg("--no-statistics", action="store_true", help="skip the statistics (`wxpipe statistics`)"),
            threads(UP_TO_4, "decoding"),
        ),
    ),
    Command(
        "finalise",
        _data.cmd_finalise,
        "check every date is loaded or declared missing, then mark complete",
        (*LINEAGE, STORE),
    ),
    Command(
        "inspect",
        _data.cmd_inspect,
        "know your data: a recipe's input files or a GRIB archive before a build; "
        "a dataset's or layout's progress, summary and access patterns after",
        (
            arg("target", help="a recipe (.yaml), a GRIB file, folder or glob, or a dataset or layout (.zarr)"),
            arg("--parts", type=int, help="for an unfinished build: which of N load parts are done"),
            arg("--batch-size", type=int, default=4, help="samples in a batch, to size it (default 4)"),
            arg(
                "--sample-dates",
                type=int,
                default=2,
                help="dates in a training sample (default 2: input state + target)",
            ),
        ),
    ),
    Command(
        "statistics",
        _data.cmd_statistics,
        "per-variable statistics over the statistics period, in one process",
        (
            *LINEAGE,
            STORE,
            *STATISTICS_PERIOD,
            arg("--threads", type=int, default=UP_TO_4, help="reading threads (default: up to 4)"),
        ),
    ),
    Command(
        "statistics-part",
        _data.cmd_statistics_part,
        "statistics of one part (whole chunks) of the statistics period, to a .npz for statistics-merge",
        (
            STORE,
            PART,
            arg("--out", type=Path, required=True, help="the part's .npz (written atomically)"),
            *STATISTICS_PERIOD,
            arg("--threads", type=int, default=1, help="reading threads (default 1: parts run side by side)"),
        ),
    ),
    Command(
        "statistics-merge",
        _data.cmd_statistics_merge,
        "merge the parts of statistics-part and write them into the dataset",
        (
            *LINEAGE,
            STORE,
            arg("parts", type=Path, nargs="+", help="every part's .npz, 1/N .. N/N"),
            arg("--start", type=_date, help=CHECKED_PERIOD),
            arg("--end", type=_date, help=CHECKED_PERIOD),
        ),
    ),
    Command(
        "rechunk-init",
        _layout.cmd_rechunk_init,
        "write an empty layout (metadata, small arrays, done flags) for parts",
        TARGET_LAYOUT,
    ),
    Command(
        "rechunk",
        _layout.cmd_rechunk,
        "write a dataset in another chunking, or (--part) one part of a layout",
        (
            *TARGET_LAYOUT,
            arg("--max-mem", default="1GB", help="memory for one region read at once (default 1GB)"),
            arg("--part", help="i/N: write this share of the target chunks of a rechunk-init layout"),
            arg("--resume", action="store_true", help="keep the chunks an interrupted part flagged"),
            threads(UP_TO_4, "reading and encoding"),
        ),
    ),
    Command(
        "verify",
        _layout.cmd_verify,
        "compare a layout with its source region by region; record it if identical",
        (*LINEAGE, *SRC_DST, arg("--max-mem", default="1GB", help="memory for the two regions compared at once")),
    ),
    Command(
        "copy",
        _sites.cmd_copy,
        "copy a dataset or layout between sites (path, file:, s3://, ssh://), verified",
        (
            *LINEAGE,
            arg("src", help="a folder, or file:PATH, s3://bucket/prefix, ssh://host/abs/path"),
            arg("dst", help="the same forms; one of src and dst must be local"),
            threads(4, "hashing and local copy"),
            arg("--transfers", type=int, help="files in flight: S3 requests (default 32), rsync processes (2)"),
            arg("--verify", choices=["quick", "full"], default="quick", help="full: re-read every file"),
            arg(
                "--delete",
                action="store_true",
                help="once the copy is verified, delete destination files the source lacks",
            ),
            *SITE_OPTIONS,
            arg("--url", help="the location to record (default: dst)"),
        ),
    ),
    Command(
        "bundle",
        _sites.cmd_bundle,
        "gather a model's files under one folder (hard links) for `wxpipe copy` to send to a site",
        (
            arg("out", type=Path, help="the bundle folder (replaced whole)"),
            arg("files", nargs="+", metavar="NAME=PATH", help="a file and its name inside the bundle"),
        ),
    ),
    Command(
        "train",
        _ml.cmd_train,
        "train a forecaster, logged to MLflow",
        (
            *CHECKPOINT,
            arg("--name", required=True, help="run name"),
            settings("training"),
            arg("--ranks", type=int, default=1, help="in a SLURM job: data-parallel ranks started with srun"),
            arg("--cpus-per-rank", type=int, default=1, help="srun --cpus-per-task for each rank"),
        ),
    ),
    Command(
        "loss-curve",
        _ml.cmd_loss_curve,
        "draw a run's loss curve (PNG) from the loss.json training writes beside its checkpoint",
        (arg("history", type=Path, help="results/models/RUN/loss.json"), arg("out", type=Path)),
    ),
    Command(
        "mlflow-sync",
        _mlflow.cmd_mlflow_sync,
        "copy the runs of an offline MLflow store (sqlite, or a file store such as mlruns/) to the tracking server",
        (
            arg("store", type=Path, help="training's offline store (results/models/RUN/mlflow/), or a file store"),
            arg("--to", help="tracking URI (default: --settings' mlflow.tracking_uri, else as training resolves it)"),
            arg("--settings", help="the run's training settings as YAML/JSON, or @file (for its tracking URI)"),
            arg("--marker", type=Path, help="write this done-marker; an absent STORE then only writes it"),
        ),
    ),
    Command(
        "predict",
        _ml.cmd_predict,
        "roll a checkpoint out over the evaluation period into a forecasts file (Zarr v2)",
        (*CHECKPOINT, arg("out", type=Path), settings("evaluation"), threads(1, "torch"), RUN_NAME, MEMORY),
    ),
    Command(
        "climatology",
        _ml.cmd_climatology,
        "the mean by day of year and hour of the evaluation's climatology period, for the days it verifies",
        (*LINEAGE, arg("dataset", type=Path), arg("out", type=Path), settings("evaluation")),
    ),
    Command(
        "evaluate",
        _ml.cmd_evaluate,
        "score a forecasts file against the dataset, persistence, the climatology and a reference forecast",
        (
            *LINEAGE,
            arg("dataset", type=Path),
            arg("forecasts", type=Path),
            arg("out", type=Path),
            settings("evaluation"),
            RUN_NAME,
            arg("--climatology", type=Path, help="the climatology store (wxpipe climatology)"),
            arg("--reference", nargs="*", default=[], help="LEAD=PATH: the reference dataset of each lead (steps)"),
            MEMORY,
        ),
    ),
    Command(
        "compare",
        _ml.cmd_compare,
        "put several evaluations (scores.nc) in one scorecard, with paired-bootstrap significance",
        (
            *LINEAGE,
            arg("out", type=Path),
            arg("scores", type=Path, nargs="+", help="scores.nc of each evaluation; baselines from the first"),
            arg("--baseline", default="persistence", help="skill against this forecast (a baseline or a run)"),
            arg("--resamples", type=int, default=1000, help="bootstrap resamples of the initial dates"),
            arg("--region", default="global", help="the region the scorecard shows"),
        ),
    ),
    Command(
        "publish",
        _records.cmd_publish,
        "copy finished records from the pending folder to their stage's place",
        (
            arg("records", type=Path, nargs="+"),
            arg("--to", type=Path, nargs="+", required=True, help="one target per record, in order"),
        ),
    ),
    Command(
        "lineage",
        _records.cmd_lineage,
        "catalogue: the catalogue in OUT, its site in OUT/site (of RECORDS..., or of every record under --records); "
        "show: the chain that made an artefact (PATH or ID); verify: re-check every recorded checksum; export: the "
        "catalogue as W3C PROV-JSON and an RO-Crate",
        (
            arg("action", choices=["catalogue", "show", "verify", "export"]),
            arg("items", nargs="*", help="catalogue: OUT, then records (none: all of --records); show: a path or id"),
            arg(
                "--records",
                type=Path,
                default=Path("results/lineage"),
                help="the records' folder (catalogue without records, show, verify, export)",
            ),
            arg("--prov", type=Path, help="export: write PROV-JSON here"),
            arg("--crate", type=Path, help="export: write a Workflow Run RO-Crate into this folder"),
            arg("--full", action="store_true", help="verify: re-read every file of a copy at a remote site"),
            arg("--offline", action="store_true", help="verify: leave copies at remote sites unchecked"),
            arg("--strict", action="store_true", help="verify: a site that cannot be reached fails the check too"),
            arg("--all", action="store_true", help="show: every file a part read, not the first 20"),
        ),
    ),
)
