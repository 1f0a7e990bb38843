"""The site commands: install the Snakemake profiles, copy a dataset, layout or model bundle between sites."""

from __future__ import annotations

import argparse
from typing import Any

from ..errors import WxpipeError
from ._common import record


def cmd_profiles(args: argparse.Namespace) -> None:
    from ..profiles import install

    try:
        lines = install(args.source)
    except OSError as exc:
        raise WxpipeError(f"profiles install: {exc}") from None
    print("\n".join(lines))


def cmd_copy(args: argparse.Namespace) -> None:
    from ..lineage_remote import site_options
    from ..transfer import copy, describe, open_store

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
    params["site"] = site_options(opts)  # how `lineage verify` reaches the copy later, without the config
    record(args, "copy", [location], params)


def cmd_bundle(args: argparse.Namespace) -> None:
    from ..transfer.bundle import make_bundle, parse_files
    from ._common import finish

    files = parse_files(args.files)
    make_bundle(args.out, files)
    finish(args, f"{args.out}: {len(files)} files bundled", args.out)
