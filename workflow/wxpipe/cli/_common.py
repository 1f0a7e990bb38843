"""What every command ends with: its last line on stdout and, when asked for, its lineage record."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..lineage import Kind


def finish(args: argparse.Namespace, what: str, path: Path | None = None) -> None:
    """Print the command's last line: what it made, its size on disk (``path``) and the time it took."""
    from ..progress import done

    size = None
    if path is not None:
        from ..fsutil import tree_size

        size = tree_size(path)[0] if path.is_dir() else path.stat().st_size
    print(done(what, args.clock, size))


def record(
    args: argparse.Namespace, kind: Kind, outputs: list[dict[str, Any]], params: dict[str, Any], **extra: Any
) -> None:
    """Write the rule's lineage record when ``--lineage`` names one."""
    if args.lineage:
        from ..lineage import write_record

        write_record(args.lineage, kind, outputs, args.upstream, params, args.started, extra)
