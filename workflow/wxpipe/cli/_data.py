"""The data stages' commands: the demo archive, recipe and config checks, dataset creation, inspect, statistics."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from ..errors import WxpipeError
from ._common import finish, record

if TYPE_CHECKING:
    from ..dataset import Dataset
    from ..statistics import Summary


def cmd_demo(args: argparse.Namespace) -> None:
    from ..lineage import describe_tree
    from ..sources.demo import write_demo_archive
    from ..timeutil import date_range, parse_frequency

    dates = date_range(args.start, args.end, parse_frequency(args.frequency))
    write_demo_archive(args.out, dates, grid=args.grid, seed=args.seed)
    finish(args, f"{args.out}: demo archive, {len(dates)} GRIB2 files on {args.grid}", args.out)
    params = {"start": args.start, "end": args.end, "frequency": args.frequency, "grid": args.grid, "seed": args.seed}
    record(args, "archive", [describe_tree(args.out)], params)


def cmd_recipe(args: argparse.Namespace) -> None:
    from ..recipe import load_recipe
    from ..survey import check_first_date

    recipe = load_recipe(args.file)
    notes = check_first_date(recipe, args.file)  # the first date's files hold every param, level, member
    names = recipe.variables()
    print(f"{args.file}: valid; {len(recipe.dates.all())} dates, {len(names)} variables: {' '.join(names)}")
    for note in notes:
        print(f"  {note}")


def cmd_config(args: argparse.Namespace) -> None:
    from ..config import load_config

    cfg = load_config(args.file)
    print(f"{args.file}: valid; datasets {', '.join(cfg.datasets)}")


def cmd_schema(args: argparse.Namespace) -> None:
    from ..config import export_schemas

    args.out.mkdir(parents=True, exist_ok=True)
    for p in export_schemas(args.out):
        print(p)


def cmd_init(args: argparse.Namespace) -> None:
    from .. import create
    from ..dataset import open_dataset
    from ..lineage import describe_file

    create.init(args.recipe, args.store)
    ds = open_dataset(args.store)
    shape = " x ".join(
        f"{n} {w}" for n, w in zip(ds.data.shape, ("dates", "variables", "members", "points"), strict=True)
    )
    finish(args, f"{args.store}: initialised, {shape}, no data yet", args.store)
    record(
        args,
        "part",
        [{"path": str(args.store), "uuid": ds.uuid, "stage": "init"}],
        {"recipe": describe_file(args.recipe)},
    )


def cmd_load(args: argparse.Namespace) -> None:
    """One part; its record's ``sources`` name every file the part's dates read, with checksums."""
    from .. import create
    from ..dataset import Part, open_dataset

    part = Part.parse(args.part)
    rng = create.load(args.recipe, args.store, part, args.threads, args.resume)
    ds = open_dataset(args.store)
    dates = ds.dates[rng.start : rng.stop]
    sources = create.part_sources(args.recipe, dates, args.threads) if args.lineage else []
    finish(args, f"{args.store}: part {args.part} loaded, dates {rng.start}..{rng.stop - 1} ({len(rng)})")
    out = {"path": str(args.store), "uuid": ds.uuid, "stage": f"load {args.part}", "dates": [rng.start, rng.stop]}
    record(args, "part", [out], {"part": args.part}, sources=sources)


def cmd_finalise(args: argparse.Namespace) -> None:
    from ..dataset import finalise
    from ..lineage import describe_tree

    ds = finalise(args.store)
    shape = f"{len(ds.dates)} dates x {len(ds.variables)} variables x {len(ds.latitudes)} points"
    finish(args, f"{args.store}: complete, {shape}", args.store)
    record(args, "dataset", [describe_tree(args.store, uuid=ds.uuid)], {"recipe": ds.attrs["recipe"]})


def cmd_create(args: argparse.Namespace) -> None:
    from .. import create

    ds = create.create(args.recipe, args.store, args.threads, args.overwrite, not args.no_statistics)
    period = f"{ds.attrs['statistics_start_date']} .. {ds.attrs['statistics_end_date']}"
    stats = "no statistics" if args.no_statistics else f"statistics of {period}"
    finish(args, f"{args.store}: complete, {len(ds.dates)} dates x {len(ds.variables)} variables, {stats}", args.store)


def cmd_inspect(args: argparse.Namespace) -> None:
    from ..survey import inspect, is_store

    if is_store(args.target):
        from ..summary import summary

        print(summary(args.target, args.parts, args.batch_size, args.sample_dates))
    else:
        print(inspect(args.target, args.batch_size, args.sample_dates))


def cmd_statistics(args: argparse.Namespace) -> None:
    from .. import statistics
    from ..dataset import open_dataset

    ds = open_dataset(args.store)
    _write_statistics(args, ds, statistics.of_dataset(ds, args.start, args.end, None, args.threads))


def cmd_statistics_part(args: argparse.Namespace) -> None:
    from .. import statistics
    from ..dataset import Part, open_dataset

    ds = open_dataset(args.store)
    s = statistics.of_dataset(ds, args.start, args.end, Part.parse(args.part), args.threads)
    statistics.save_part(args.out, s)
    finish(args, f"{args.out}: statistics part {args.part} of {args.store}, dates {s.dates[0]}..{s.dates[1] - 1}")


def cmd_statistics_merge(args: argparse.Namespace) -> None:
    from .. import statistics
    from ..dataset import open_dataset

    ds = open_dataset(args.store)
    s = statistics.merge_parts([statistics.load_part(p) for p in args.parts], uuid=ds.uuid)
    start, end = statistics.period_of(ds, args.start, args.end)
    if (args.start or args.end) and (s.start, s.end) != (start, end):
        raise WxpipeError(f"statistics parts cover {s.start} .. {s.end}, not {start} .. {end}")
    _write_statistics(args, ds, s)


def _write_statistics(args: argparse.Namespace, ds: Dataset, s: Summary) -> None:
    from .. import statistics
    from ..lineage import describe_tree

    statistics.write(args.store, s)
    finish(args, f"{args.store}: statistics of {len(s.variables)} variables over {s.start} .. {s.end} written")
    params = {
        "start": s.start.isoformat(),
        "end": s.end.isoformat(),
        "allow_nans": s.allow_nans,
        "tendencies": s.tendencies,
    }
    out = describe_tree(args.store, uuid=ds.uuid)
    out["nans"] = dict(zip(s.variables, s.moments.nans.tolist(), strict=True))  # over the period, per variable
    record(args, "statistics", [out], params)
