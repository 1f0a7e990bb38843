"""The lineage commands: publish finished records to their stage's place, join records into a catalogue."""

from __future__ import annotations

import argparse

from ..errors import WxpipeError


def cmd_publish(args: argparse.Namespace) -> None:
    from ..lineage import publish

    if len(args.records) != len(args.to):
        raise WxpipeError(f"publish: {len(args.records)} records but {len(args.to)} targets")
    for src, dst in zip(args.records, args.to, strict=True):
        publish(src, dst)
        print(dst)


def cmd_lineage(args: argparse.Namespace) -> None:
    from ..lineage import write_catalogue

    cat = write_catalogue(args.records, args.out)
    print(f"{args.out}/catalogue.json: {len(cat['records'])} records, {len(cat['edges'])} links")
