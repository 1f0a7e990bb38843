"""``wxpipe <stage>``: every Snakemake rule is one of these commands, runnable by hand with the same arguments."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._malloc import keep_freed_buffers
from .errors import WxpipeError

if TYPE_CHECKING:
    from .dataset import Dataset
    from .rechunk import Layout
    from .statistics import Summary

log = logging.getLogger("wxpipe")
BLAS_COMMANDS = {"train", "evaluate"}  # the commands whose numpy may gain from a threaded BLAS
Handler = Callable[[argparse.Namespace], None]


def _settings(text: str) -> dict[str, Any]:
    """Settings as YAML/JSON text, or ``@file``."""
    import yaml  # here: ~40 ms of import that `wxpipe copy` (a no-op rerun) does without

    data = yaml.safe_load(Path(text[1:]).read_text() if text.startswith("@") else text)
    if not isinstance(data, dict):
        raise WxpipeError(f"settings must be a mapping, got {text[:60]!r}")
    return data


def _finish(args: argparse.Namespace, what: str, path: Path | None = None) -> None:
    """Print the command's last line: what it made, its size on disk (``path``) and the time it took."""
    from .progress import done

    size = None
    if path is not None:
        from .fsutil import tree_size

        size = tree_size(path)[0] if path.is_dir() else path.stat().st_size
    print(done(what, args.clock, size))


def _lineage_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--lineage", type=Path, help="write this rule's lineage record here")
    p.add_argument("--upstream", type=Path, nargs="*", default=[], help="lineage records of the inputs")


def _record(
    args: argparse.Namespace, kind: str, outputs: list[dict[str, Any]], params: dict[str, Any], **extra: Any
) -> None:
    if args.lineage:
        from .lineage import write_record

        write_record(args.lineage, kind, outputs, args.upstream, params, args.started, extra)  # type: ignore[arg-type]


def cmd_demo(args: argparse.Namespace) -> None:
    from .lineage import describe_tree
    from .sources.demo import write_demo_archive
    from .timeutil import date_range, parse_frequency

    dates = date_range(args.start, args.end, parse_frequency(args.frequency))
    write_demo_archive(args.out, dates, grid=args.grid, seed=args.seed)
    _finish(args, f"{args.out}: demo archive, {len(dates)} GRIB2 files on {args.grid}", args.out)
    params = {"start": args.start, "end": args.end, "frequency": args.frequency, "grid": args.grid, "seed": args.seed}
    _record(args, "archive", [describe_tree(args.out)], params)


def cmd_recipe(args: argparse.Namespace) -> None:
    from .recipe import load_recipe
    from .survey import check_first_date

    recipe = load_recipe(args.file)
    notes = check_first_date(recipe, args.file)  # the first date's files hold every param, level, member
    names = recipe.variables()
    print(f"{args.file}: valid; {len(recipe.dates.all())} dates, {len(names)} variables: {' '.join(names)}")
    for note in notes:
        print(f"  {note}")


def cmd_config(args: argparse.Namespace) -> None:
    from .config import load_config

    cfg = load_config(args.file)
    print(f"{args.file}: valid; datasets {', '.join(cfg.datasets)}")


def cmd_schema(args: argparse.Namespace) -> None:
    from .config import export_schemas

    args.out.mkdir(parents=True, exist_ok=True)
    for p in export_schemas(args.out):
        print(p)


def cmd_profiles(args: argparse.Namespace) -> None:
    from .profiles import install

    try:
        lines = install(args.source)
    except OSError as exc:
        raise WxpipeError(f"profiles install: {exc}") from None
    print("\n".join(lines))


def cmd_init(args: argparse.Namespace) -> None:
    from . import create
    from .dataset import open_dataset
    from .lineage import describe_file

    create.init(args.recipe, args.store)
    ds = open_dataset(args.store)
    shape = " x ".join(
        f"{n} {w}" for n, w in zip(ds.data.shape, ("dates", "variables", "members", "points"), strict=True)
    )
    _finish(args, f"{args.store}: initialised, {shape}, no data yet", args.store)
    _record(
        args,
        "part",
        [{"path": str(args.store), "uuid": ds.uuid, "stage": "init"}],
        {"recipe": describe_file(args.recipe)},
    )


def cmd_load(args: argparse.Namespace) -> None:
    from . import create
    from .dataset import Part, open_dataset

    part = Part.parse(args.part)
    rng = create.load(args.recipe, args.store, part, args.threads, args.resume)
    ds = open_dataset(args.store)
    _finish(args, f"{args.store}: part {args.part} loaded, dates {rng.start}..{rng.stop - 1} ({len(rng)})")
    out = {"path": str(args.store), "uuid": ds.uuid, "stage": f"load {args.part}", "dates": [rng.start, rng.stop]}
    _record(args, "part", [out], {"part": args.part})


def cmd_finalise(args: argparse.Namespace) -> None:
    from .dataset import finalise
    from .lineage import describe_tree

    ds = finalise(args.store)
    shape = f"{len(ds.dates)} dates x {len(ds.variables)} variables x {len(ds.latitudes)} points"
    _finish(args, f"{args.store}: complete, {shape}", args.store)
    _record(args, "dataset", [describe_tree(args.store, uuid=ds.uuid)], {"recipe": ds.attrs["recipe"]})


def cmd_create(args: argparse.Namespace) -> None:
    from . import create

    ds = create.create(args.recipe, args.store, args.threads, args.overwrite, not args.no_statistics)
    period = f"{ds.attrs['statistics_start_date']} .. {ds.attrs['statistics_end_date']}"
    stats = "no statistics" if args.no_statistics else f"statistics of {period}"
    _finish(args, f"{args.store}: complete, {len(ds.dates)} dates x {len(ds.variables)} variables, {stats}", args.store)


def cmd_inspect(args: argparse.Namespace) -> None:
    from .survey import inspect, is_store

    if is_store(args.target):
        from .summary import summary

        print(summary(args.target, args.parts, args.batch_size, args.sample_dates))
    else:
        print(inspect(args.target, args.batch_size, args.sample_dates))


def cmd_statistics(args: argparse.Namespace) -> None:
    from . import statistics
    from .dataset import open_dataset

    ds = open_dataset(args.store)
    _write_statistics(args, ds, statistics.of_dataset(ds, args.start, args.end, None, args.threads))


def cmd_statistics_part(args: argparse.Namespace) -> None:
    from . import statistics
    from .dataset import Part, open_dataset

    ds = open_dataset(args.store)
    s = statistics.of_dataset(ds, args.start, args.end, Part.parse(args.part), args.threads)
    statistics.save_part(args.out, s)
    _finish(args, f"{args.out}: statistics part {args.part} of {args.store}, dates {s.dates[0]}..{s.dates[1] - 1}")


def cmd_statistics_merge(args: argparse.Namespace) -> None:
    from . import statistics
    from .dataset import open_dataset

    ds = open_dataset(args.store)
    s = statistics.merge_parts([statistics.load_part(p) for p in args.parts], uuid=ds.uuid)
    start, end = statistics.period_of(ds, args.start, args.end)
    if (args.start or args.end) and (s.start, s.end) != (start, end):
        raise WxpipeError(f"statistics parts cover {s.start} .. {s.end}, not {start} .. {end}")
    _write_statistics(args, ds, s)


def _write_statistics(args: argparse.Namespace, ds: Dataset, s: Summary) -> None:
    from . import statistics
    from .lineage import describe_tree

    statistics.write(args.store, s)
    _finish(args, f"{args.store}: statistics of {len(s.variables)} variables over {s.start} .. {s.end} written")
    params = {
        "start": s.start.isoformat(),
        "end": s.end.isoformat(),
        "allow_nans": s.allow_nans,
        "tendencies": s.tendencies,
    }
    _record(args, "statistics", [describe_tree(args.store, uuid=ds.uuid)], params)


def _layout(args: argparse.Namespace) -> Layout:
    from .rechunk import Layout, parse_extent

    if args.chunks is None:
        raise WxpipeError("--chunks dates=N,values=M is needed")
    shards = parse_extent(args.shards) if args.shards else None
    return Layout(parse_extent(args.chunks), shards, args.zarr_format or (3 if shards else 2))


def cmd_rechunk_init(args: argparse.Namespace) -> None:
    from .rechunk import init

    p = init(args.src, args.dst, _layout(args))
    unit = "shards" if p.shards else "chunks"
    _finish(args, f"{args.dst}: empty layout, chunks {p.chunks}, shards {p.shards}; {p.n_units} {unit} to write")


def _bounded_malloc() -> None:
    """Regions are the unit of memory: give freed memory back beyond 32 MB (main() keeps 256 MB)."""
    keep_freed_buffers(mmap_threshold=16 << 20, trim_threshold=32 << 20)


def cmd_rechunk(args: argparse.Namespace) -> None:
    from .dataset import Part
    from .rechunk import parse_size, rechunk, write_part

    _bounded_malloc()
    max_mem = parse_size(args.max_mem)
    if args.part is None:
        if args.resume:
            raise WxpipeError("--resume goes with --part (a layout made by rechunk-init)")
        out = rechunk(args.src, args.dst, _layout(args), max_mem, args.threads)
        _finish(
            args, f"{args.dst}: chunks {out.data.chunks}, shards {out.data.shards}; `wxpipe verify` checks it", args.dst
        )
        return
    if args.chunks or args.shards or args.zarr_format:
        raise WxpipeError("with --part the layout is the one rechunk-init wrote; leave out --chunks/--shards")
    units = write_part(args.src, args.dst, Part.parse(args.part), max_mem, args.resume, args.threads)
    _finish(args, f"{args.dst}: part {args.part} written, target chunks/shards {units.start}..{units.stop - 1}")


def cmd_verify(args: argparse.Namespace) -> None:
    from .dataset import open_dataset
    from .lineage import describe_tree
    from .rechunk import parse_size, verify

    _bounded_malloc()
    n = verify(args.src, args.dst, parse_size(args.max_mem))
    _finish(args, f"{args.dst}: identical to {args.src}, {n} regions compared", args.dst)
    layout = open_dataset(args.dst)
    out = describe_tree(args.dst, uuid=layout.uuid, source_uuid=layout.attrs.get("source_uuid"))
    params = {"source": str(args.src), **layout.attrs.get("wxpipe_layout", {"chunks": list(layout.data.chunks)})}
    _record(args, "layout", [out], params)


def cmd_copy(args: argparse.Namespace) -> None:
    from .transfer import copy, describe, open_store

    opts = {
        "endpoint_url": args.endpoint_url,
        "region": args.region,
        "profile": args.profile,
        "ssh_config": args.ssh_config,
        "transfers": args.transfers,
    }
    src, dst = open_store(args.src, **opts), open_store(args.dst, **opts)
    try:
        s = copy(src, dst, args.threads, args.verify, delete=args.delete)
    finally:
        src.close()
        dst.close()
    print(describe(s))
    location: dict[str, Any] = {
        "path": str(dst.local_root) if dst.local_root is not None else dst.url,  # what catalogues show
        "url": args.url or dst.url,
        "files": s["files"],
        "size": s["bytes"],
        "manifest_sha256": s["manifest_sha256"],
    }
    params = {"source": src.url, "threads": args.threads, "transfers": args.transfers, "verify": args.verify}
    params |= {"delete": args.delete, "deleted": s.get("deleted", 0), "extra_files": len(s.get("extra", []))}
    _record(args, "copy", [location], params)


def _tags(args: argparse.Namespace) -> dict[str, str]:
    from .lineage import read_record

    return {f"lineage.{read_record(p)['kind']}": read_record(p)["id"] for p in args.upstream}


def cmd_train(args: argparse.Namespace) -> None:
    from .config import TrainingConfig, params_of
    from .dataset import open_dataset
    from .lineage import describe_file
    from .train import distributed, train

    cfg = TrainingConfig.model_validate(_settings(args.settings))
    launch = distributed.srun_command(args.argv, args.ranks, args.cpus_per_rank)
    if launch is not None:  # in a SLURM job: one rank per task
        log.info("starting %d ranks: %s", args.ranks, " ".join(launch))
        code = subprocess.call(launch, env={**os.environ, distributed.LAUNCHED: "1"})
        if code:
            raise WxpipeError(f"srun exited with status {code}; every rank's messages are above")
        return
    ctx = distributed.setup()
    try:
        ds = open_dataset(args.dataset)
        res = train(ds, cfg, args.checkpoint, args.name, {**_tags(args), "dataset_uuid": ds.uuid}, ctx)
    finally:
        distributed.teardown(ctx)
    if not ctx.leader:
        return
    _finish(args, f"trained {args.name}: {json.dumps(res.metrics)}; mlflow run {res.run_id}", args.checkpoint)
    _record(
        args,
        "checkpoint",
        [describe_file(args.checkpoint)],
        params_of(cfg),
        mlflow={"run_id": res.run_id, "experiment_id": res.experiment_id, "metrics": res.metrics},
        distributed={"world_size": res.world_size, "parameters_sha256": res.parameters_sha256},
    )


def cmd_evaluate(args: argparse.Namespace) -> None:
    from .config import EvaluationConfig, params_of
    from .dataset import open_dataset
    from .evaluate import evaluate
    from .lineage import describe_file

    cfg = EvaluationConfig.model_validate(_settings(args.settings))
    ds = open_dataset(args.dataset)
    evaluate(ds, args.checkpoint, cfg, args.out, {**_tags(args), "dataset_uuid": ds.uuid})
    _finish(args, f"{args.out}: scores of {args.checkpoint} over {cfg.period.start} .. {cfg.period.end}", args.out)
    outs = [describe_file(args.out / "scores.json"), describe_file(args.out / "scorecard.png")]
    _record(args, "evaluation", outs, params_of(cfg))


def cmd_publish(args: argparse.Namespace) -> None:
    from .lineage import publish

    if len(args.records) != len(args.to):
        raise WxpipeError(f"publish: {len(args.records)} records but {len(args.to)} targets")
    for src, dst in zip(args.records, args.to, strict=True):
        publish(src, dst)
        print(dst)


def cmd_lineage(args: argparse.Namespace) -> None:
    from .lineage import write_catalogue

    cat = write_catalogue(args.records, args.out)
    print(f"{args.out}/catalogue.json: {len(cat['records'])} records, {len(cat['edges'])} links")


def _date(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


class _Parser(argparse.ArgumentParser):
    """argparse that answers a typo in a subcommand, choice or option with the nearest valid one."""

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if action.choices is not None and value not in action.choices:
            near = _nearest(str(value), [str(c) for c in action.choices])
            if near:
                raise argparse.ArgumentError(action, f"invalid choice: {value!r} (did you mean {near!r}?)")
        super()._check_value(action, value)  # type: ignore[misc]

    def parse_args(self, args: Sequence[str] | None = None, namespace: Any = None) -> Any:  # type: ignore[override]
        ns, extra = self.parse_known_args(args, namespace)
        if extra:
            sub = self._command_parser(getattr(ns, "command", None))
            options = [o for a in sub._actions for o in a.option_strings]
            hints = [f" (did you mean {near}?)" if (near := _nearest(x.split("=")[0], options)) else "" for x in extra]
            shown = ", ".join(f"{x}{h}" for x, h in zip(extra, hints, strict=True))
            sub.error(f"unrecognized arguments: {shown}")
        return ns

    def _command_parser(self, command: str | None) -> argparse.ArgumentParser:
        for action in self._actions:
            if isinstance(action, argparse._SubParsersAction) and command in action.choices:
                return action.choices[command]  # type: ignore[no-any-return]
        return self


def _nearest(word: str, candidates: list[str]) -> str | None:
    import difflib

    found = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    return found[0] if found else None


class _Version(argparse.Action):
    """``--version``: the package's version is looked up only when asked (importlib.metadata is ~50 ms)."""

    def __init__(self, option_strings: list[str], dest: str = argparse.SUPPRESS, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="print the version and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        import wxpipe

        print(f"wxpipe {wxpipe.__version__}")
        parser.exit()


def parser() -> argparse.ArgumentParser:
    ap = _Parser(prog="wxpipe", description=__doc__)
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--version", action=_Version)
    sub = ap.add_subparsers(dest="command", required=True)

    def add(name: str, fn: Handler, help: str, lineage: bool = True) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=fn)
        if lineage:
            _lineage_args(p)
        return p

    p = add("demo", cmd_demo, "write the demo GRIB2 archive (one file per date)")
    p.add_argument("out", type=Path)
    p.add_argument("--start", type=_date, required=True)
    p.add_argument("--end", type=_date, required=True)
    p.add_argument("--frequency", default="6h")
    p.add_argument("--grid", default="O32", choices=["O32", "O48"])
    p.add_argument("--seed", type=int, default=0)

    p = add(
        "recipe",
        cmd_recipe,
        "check a recipe, and that its first date's files hold what it asks for: `wxpipe recipe validate FILE`",
        lineage=False,
    )
    p.add_argument("action", choices=["validate"])
    p.add_argument("file", type=Path)
    p = add("config", cmd_config, "check a workflow config: `wxpipe config validate FILE`", lineage=False)
    p.add_argument("action", choices=["validate"])
    p.add_argument("file", type=Path)
    p = add("schema", cmd_schema, "export the JSON schemas of config and recipe", lineage=False)
    p.add_argument("out", type=Path)
    p = add(
        "profiles",
        cmd_profiles,
        "link the site profiles into Snakemake's config directory: `snakemake --profile lumi`",
        lineage=False,
    )
    p.add_argument("action", choices=["install"])
    p.add_argument("source", type=Path, nargs="?", default=Path("profiles"), help="profiles folder (default: profiles)")

    for name, fn, text in [
        ("init", cmd_init, "write an empty dataset with all its metadata"),
        ("load", cmd_load, "write one part (a chunk-aligned range of dates) of a dataset"),
        ("create", cmd_create, "init, load and finalise in one process"),
    ]:
        p = add(name, fn, text, lineage=name != "create")
        p.add_argument("recipe", type=Path)
        p.add_argument("store", type=Path)
        if name == "load":
            p.add_argument("--part", default="1/1", help="i/N")
            p.add_argument("--resume", action="store_true", help="keep the chunks an interrupted run already loaded")
        if name == "create":
            p.add_argument("--overwrite", action="store_true", help="replace a complete dataset at STORE")
            p.add_argument("--no-statistics", action="store_true", help="skip the statistics (`wxpipe statistics`)")
        if name in ("load", "create"):
            default = 1 if name == "load" else min(4, os.cpu_count() or 1)
            p.add_argument("--threads", type=int, default=default, help=f"decoding threads (default {default})")
    p = add("finalise", cmd_finalise, "check every date is loaded or declared missing, then mark complete")
    p.add_argument("store", type=Path)
    p = add(
        "inspect",
        cmd_inspect,
        "know your data: a recipe's input files or a GRIB archive before a build; "
        "a dataset's or layout's progress, summary and access patterns after",
        lineage=False,
    )
    p.add_argument("target", help="a recipe (.yaml), a GRIB file, folder or glob, or a dataset or layout (.zarr)")
    p.add_argument("--parts", type=int, help="for an unfinished build: which of N load parts are done")
    p.add_argument("--batch-size", type=int, default=4, help="samples in a batch, to size it (default 4)")
    p.add_argument(
        "--sample-dates", type=int, default=2, help="dates in a training sample (default 2: input state + target)"
    )

    period = "(default: the dataset's statistics period)"
    p = add("statistics", cmd_statistics, "per-variable statistics over the statistics period, in one process")
    p.add_argument("store", type=Path)
    p.add_argument("--start", type=_date, help=f"first date {period}")
    p.add_argument("--end", type=_date, help=f"last date {period}")
    p.add_argument(
        "--threads", type=int, default=min(4, os.cpu_count() or 1), help="reading threads (default: up to 4)"
    )
    p = add(
        "statistics-part",
        cmd_statistics_part,
        "statistics of one part (whole chunks) of the statistics period, to a .npz for statistics-merge",
        lineage=False,
    )
    p.add_argument("store", type=Path)
    p.add_argument("--part", default="1/1", help="i/N")
    p.add_argument("--out", type=Path, required=True, help="the part's .npz (written atomically)")
    p.add_argument("--start", type=_date, help=f"first date {period}")
    p.add_argument("--end", type=_date, help=f"last date {period}")
    p.add_argument("--threads", type=int, default=1, help="reading threads (default 1: parts run side by side)")
    p = add(
        "statistics-merge", cmd_statistics_merge, "merge the parts of statistics-part and write them into the dataset"
    )
    p.add_argument("store", type=Path)
    p.add_argument("parts", type=Path, nargs="+", help="every part's .npz, 1/N .. N/N")
    p.add_argument("--start", type=_date, help="check the parts cover this period")
    p.add_argument("--end", type=_date, help="check the parts cover this period")

    layout = "dates=N,values=M"
    for name, fn, text in [
        ("rechunk-init", cmd_rechunk_init, "write an empty layout (metadata, small arrays, done flags) for parts"),
        ("rechunk", cmd_rechunk, "write a dataset in another chunking, or (--part) one part of a layout"),
    ]:
        p = add(name, fn, text, lineage=False)
        p.add_argument("src", type=Path)
        p.add_argument("dst", type=Path)
        p.add_argument("--chunks", metavar=layout, help="dates and grid points per target chunk")
        p.add_argument("--shards", metavar=layout, help="dates and points per shard (multiples of the chunks)")
        p.add_argument("--zarr-format", type=int, choices=[2, 3], help="default 2, or 3 with --shards")
        if name == "rechunk":
            p.add_argument("--max-mem", default="1GB", help="memory for one region read at once (default 1GB)")
            p.add_argument("--part", help="i/N: write this share of the target chunks of a rechunk-init layout")
            p.add_argument("--resume", action="store_true", help="keep the chunks an interrupted part flagged")
            default = min(4, os.cpu_count() or 1)
            p.add_argument(
                "--threads", type=int, default=default, help=f"reading and encoding threads (default {default})"
            )
    p = add("verify", cmd_verify, "compare a layout with its source region by region; record it if identical")
    p.add_argument("src", type=Path)
    p.add_argument("dst", type=Path)
    p.add_argument("--max-mem", default="1GB", help="memory for the two regions compared at once")

    p = add("copy", cmd_copy, "copy a dataset or layout between sites (path, file:, s3://, ssh://), verified")
    p.add_argument("src", help="a folder, or file:PATH, s3://bucket/prefix, ssh://host/abs/path")
    p.add_argument("dst", help="the same forms; one of src and dst must be local")
    p.add_argument("--threads", type=int, default=4, help="hashing and local copy threads (default 4)")
    p.add_argument("--transfers", type=int, help="files in flight: S3 requests (default 32), rsync processes (2)")
    p.add_argument("--verify", choices=["quick", "full"], default="quick", help="full: re-read every file")
    p.add_argument(
        "--delete", action="store_true", help="once the copy is verified, delete destination files the source lacks"
    )
    p.add_argument("--endpoint-url", help="S3 endpoint (default: AWS for the region)")
    p.add_argument("--region", help="S3 region (default: AWS_REGION or us-east-1)")
    p.add_argument("--profile", help="S3 profile in the shared credentials file (default: environment keys)")
    p.add_argument("--ssh-config", help="ssh config file for ssh:// hosts (default: WXPIPE_SSH_CONFIG or ssh's own)")
    p.add_argument("--url", help="the location to record (default: dst)")

    p = add("train", cmd_train, "train a forecaster, logged to MLflow")
    p.add_argument("dataset", type=Path)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("--name", required=True, help="run name")
    p.add_argument("--settings", required=True, help="training settings as YAML/JSON, or @file")
    p.add_argument("--ranks", type=int, default=1, help="in a SLURM job: data-parallel ranks started with srun")
    p.add_argument("--cpus-per-rank", type=int, default=1, help="srun --cpus-per-task for each rank")

    p = add("evaluate", cmd_evaluate, "score a checkpoint against persistence")
    p.add_argument("dataset", type=Path)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("out", type=Path)
    p.add_argument("--settings", required=True, help="evaluation settings as YAML/JSON, or @file")

    p = add(
        "publish", cmd_publish, "copy finished records from the pending folder to their stage's place", lineage=False
    )
    p.add_argument("records", type=Path, nargs="+")
    p.add_argument("--to", type=Path, nargs="+", required=True, help="one target per record, in order")

    p = add("lineage", cmd_lineage, "join lineage records into a catalogue", lineage=False)
    p.add_argument("out", type=Path)
    p.add_argument("records", type=Path, nargs="+")
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # to start the same command on every rank
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    args.started = dt.datetime.now(dt.UTC)
    args.clock = time.monotonic()
    keep_freed_buffers()
    if args.command not in BLAS_COMMANDS:
        # numpy's OpenBLAS starts a thread per core at import, which spins ~0.1 s of CPU per extra core; the data
        # stages make no BLAS calls worth threading, and parallel jobs on a node would each steal that CPU
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        args.func(args)
    except WxpipeError as exc:
        print(f"wxpipe {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `wxpipe inspect X | head`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
