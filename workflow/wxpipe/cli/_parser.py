"""The parser built from the command table: argparse that answers a typo with the nearest valid word.

A command is data (:class:`Command`): its name, help, handler and arguments. :func:`build` turns a table of
them into one parser, so adding an option is one line of the table, not a block of ``add_argument`` calls.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

Handler = Callable[[argparse.Namespace], None]
Arg = tuple[tuple[str, ...], dict[str, Any]]


def arg(*flags: str, **options: Any) -> Arg:
    """One ``add_argument`` call, as data."""
    return flags, options


class Command(NamedTuple):
    """A ``wxpipe <name>`` subcommand: ``args`` in the order ``--help`` lists them.

    A named tuple, not a dataclass: ``dataclasses`` would add ~20 ms of imports to every command's start."""

    name: str
    handler: Handler
    help: str
    args: tuple[Arg, ...]


class _Parser(argparse.ArgumentParser):
    """argparse that answers a typo in a subcommand, choice or option with the nearest valid one."""

    def _check_value(self, action: argparse.Action, value: Any) -> None:
        if action.choices is not None and value not in action.choices:
            near = _nearest(str(value), [str(c) for c in action.choices])
            if near:
                raise argparse.ArgumentError(action, f"invalid choice: {value!r} (did you mean {near!r}?)")
        super()._check_value(action, value)

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


def build(commands: Sequence[Command], description: str | None) -> argparse.ArgumentParser:
    """``wxpipe [-v] [--version] <command> ...``, one subcommand per entry of ``commands``, in order."""
    ap = _Parser(prog="wxpipe", description=description)
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--version", action=_Version)
    sub = ap.add_subparsers(dest="command", required=True)
    for c in commands:
        p = sub.add_parser(c.name, help=c.help, description=c.help)
        p.set_defaults(func=c.handler)
        for flags, options in c.args:
            p.add_argument(*flags, **options)
    return ap
