"""One exception type for user-facing errors: the CLI prints its message without a traceback."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pydantic and yaml are imported by the code that raises their errors; `wxpipe copy` skips them
    import pydantic

    from .yamlio import Location


class WxpipeError(Exception):
    """A problem with the user's input or data; the message names the file, key or date at fault."""


def some(items: Sequence[str], shown: int = 5) -> str:
    """The first ``shown`` of ``items`` for a message, and how many more there are (``a, b and 4 more``)."""
    more = f" and {len(items) - shown} more" if len(items) > shown else ""
    return ", ".join(items[:shown]) + more


def validation_error(
    exc: pydantic.ValidationError,
    source: str | Path,
    lines: Mapping[Location, int] | None = None,
    prefix: Location = (),
) -> WxpipeError:
    """Rewrite a pydantic error as ``file:line: key.path: message`` lines."""
    from .yamlio import line_of

    out = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not _is_union_tag(p))
        where: Location = (*prefix, *loc)
        line = line_of(dict(lines), where) if lines else None
        key = ".".join(str(p) for p in where) or "(top level)"
        pos = f"{source}:{line}" if line else f"{source}"
        msg = err["msg"]
        if err["type"] == "extra_forbidden":
            msg = "unknown key (misspelled?)"
        elif err["type"].startswith(("datetime_", "date_")):
            msg = f"{err['input']!r} is not a date: {msg}; expected ISO 8601 like 2020-01-01T06:00 or 2020-01-01"
        out.append(f"{pos}: {key}: {msg}")
    return WxpipeError("validation failed\n  " + "\n  ".join(out))


def _is_union_tag(part: Any) -> bool:
    # pydantic inserts the model name of a union member into loc; it is noise for the user
    return isinstance(part, str) and part[:1].isupper()
