"""The lineage commands: publish finished records to their stage's place, join records into a catalogue."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import WxpipeError


def cmd_publish(args: argparse.Namespace) -> None:
    from ..lineage import publish

    if len(args.records) != len(args.to):
        raise WxpipeError(f"publish: {len(args.records)} records but {len(args.to)} targets")
    for src, dst in zip(args.records, args.to, strict=True):
        publish(src, dst)
        print(dst)


def cmd_lineage(args: argparse.Namespace) -> None:
    """``wxpipe lineage ACTION``: each action's module is imported only when it runs."""
    if args.action == "catalogue":
        from .. import paths
        from ..lineage import records_under, write_catalogue
        from ..site import build_site

        if not args.items:
            raise WxpipeError("lineage catalogue: give the output folder, then the records (or --records DIR)")
        out, records = Path(args.items[0]).as_posix(), [Path(p) for p in args.items[1:]]
        cat = write_catalogue(records or records_under(args.records), Path(out))
        pages = build_site(cat, Path(paths.site(out)))
        print(f"{paths.site_index(out)}: {len(cat['records'])} records, {len(cat['edges'])} links, {len(pages)} pages")
    elif args.action == "show":
        from ..lineage_chain import show

        if len(args.items) != 1:
            raise WxpipeError("lineage show: give one output path or record id")
        print(show(args.records, args.items[0], everything=args.all))
    elif args.action == "verify":
        from ..lineage_chain import verify

        drift = verify(args.records, sites=not args.offline, full=args.full, strict=args.strict)
        if drift:
            down = sum(d.what == "unreachable" for d in drift)
            unreachable = f", {down} at sites that could not be reached (--strict)" if down else ""
            raise WxpipeError(f"lineage verify: {len(drift) - down} recorded checksum(s) no longer hold{unreachable}")
    else:
        from ..lineage_export import export

        if args.prov is None and args.crate is None:
            raise WxpipeError("lineage export: give --prov FILE, --crate FOLDER or both")
        export(args.records, prov=args.prov, crate=args.crate)
