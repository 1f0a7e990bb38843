"""``python -m bench NAME|all``: the benchmarks of :data:`BENCHES` against their anchors (bench/README.md)."""

from __future__ import annotations

import importlib
import logging
import sys

BENCHES = ("create", "compat", "statistics", "rechunk", "transfer", "grid", "loader", "training")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    usage = f"usage: python -m bench {{{','.join(BENCHES)},all}} [options]  (python -m bench create --help)"
    if not args or args[0] in ("-h", "--help"):
        print(usage)
        return
    what, rest = args[0], args[1:]
    if what == "all":  # each with its defaults; options go to the first (create), as before
        for i, name in enumerate(BENCHES):
            importlib.import_module(f"bench.{name}").main(rest if i == 0 else [])
    elif what in BENCHES:
        importlib.import_module(f"bench.{what}").main(rest)
    else:
        sys.exit(usage)


if __name__ == "__main__":
    main()
