"""The layout stage's commands: rechunk a dataset (whole, or a part of a ``rechunk-init`` layout) and verify it."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from .._malloc import keep_freed_buffers
from ..errors import WxpipeError
from ._common import finish, record

if TYPE_CHECKING:
    from ..rechunk import Layout


def _layout(args: argparse.Namespace) -> Layout:
    from ..rechunk import Layout, parse_extent

    if args.chunks is None:
        raise WxpipeError("--chunks dates=N,values=M is needed")
    shards = parse_extent(args.shards) if args.shards else None
    return Layout(parse_extent(args.chunks), shards, args.zarr_format or (3 if shards else 2))


def _bounded_malloc() -> None:
    """Regions are the unit of memory: give freed memory back beyond 32 MB (main() keeps 256 MB)."""
    keep_freed_buffers(mmap_threshold=16 << 20, trim_threshold=32 << 20)


def cmd_rechunk_init(args: argparse.Namespace) -> None:
    from ..rechunk import init

    p = init(args.src, args.dst, _layout(args))
    unit = "shards" if p.shards else "chunks"
    finish(args, f"{args.dst}: empty layout, chunks {p.chunks}, shards {p.shards}; {p.n_units} {unit} to write")


def cmd_rechunk(args: argparse.Namespace) -> None:
    from ..dataset import Part
    from ..rechunk import parse_size, rechunk, write_part

    _bounded_malloc()
    max_mem = parse_size(args.max_mem)
    if args.part is None:
        if args.resume:
            raise WxpipeError("--resume goes with --part (a layout made by rechunk-init)")
        out = rechunk(args.src, args.dst, _layout(args), max_mem, args.threads)
        finish(
            args, f"{args.dst}: chunks {out.data.chunks}, shards {out.data.shards}; `wxpipe verify` checks it", args.dst
        )
        return
    if args.chunks or args.shards or args.zarr_format:
        raise WxpipeError("with --part the layout is the one rechunk-init wrote; leave out --chunks/--shards")
    units = write_part(args.src, args.dst, Part.parse(args.part), max_mem, args.resume, args.threads)
    finish(args, f"{args.dst}: part {args.part} written, target chunks/shards {units.start}..{units.stop - 1}")


def cmd_verify(args: argparse.Namespace) -> None:
    from ..dataset import open_dataset
    from ..lineage import describe_tree
    from ..rechunk import parse_size, verify

    _bounded_malloc()
    n = verify(args.src, args.dst, parse_size(args.max_mem))
    finish(args, f"{args.dst}: identical to {args.src}, {n} regions compared", args.dst)
    layout = open_dataset(args.dst)
    out = describe_tree(args.dst, uuid=layout.uuid, source_uuid=layout.attrs.get("source_uuid"))
    params = {"source": str(args.src), **layout.attrs.get("wxpipe_layout", {"chunks": list(layout.data.chunks)})}
    record(args, "layout", [out], params)
