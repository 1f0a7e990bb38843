"""``python -m bench create|compat|statistics|rechunk|transfer|grid|all``: benchmarks against anchors."""

from __future__ import annotations

import logging
import sys


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    usage = (
        "usage: python -m bench {create,compat,statistics,rechunk,transfer,grid,all} [options]"
        "  (python -m bench create --help)"
    )
    if not args or args[0] in ("-h", "--help"):
        print(usage)
        return
    what, rest = args[0], args[1:]
    if what == "create":
        from . import create

        create.main(rest)
    elif what == "compat":
        from . import compat

        compat.main(rest)
    elif what == "statistics":
        from . import statistics

        statistics.main(rest)
    elif what == "rechunk":
        from . import rechunk

        rechunk.main(rest)
    elif what == "transfer":
        from . import transfer

        transfer.main(rest)
    elif what == "grid":
        from . import grid

        grid.main(rest)
    elif what == "all":
        from . import compat, create, grid, rechunk, statistics, transfer

        create.main(rest)
        compat.main([])
        statistics.main([])
        rechunk.main([])
        transfer.main([])
        grid.main([])
    else:
        sys.exit(usage)


if __name__ == "__main__":
    main()
