"""YAML loading that remembers where each key was written, so errors can name file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import WxpipeError

Location = tuple[str | int, ...]
MERGE = "tag:yaml.org,2002:merge"


def _construct(node: yaml.Node, where: Location, lines: dict[Location, int], path: Path, seen: set[int]) -> Any:
    """Turn a composed node into plain Python, recording the line of every key and item.

    ``seen`` holds the nodes on the way down: an alias to one of them (``a: &x [*x]``) would
    recurse forever, so it is an error naming its line."""
    lines[where] = node.start_mark.line + 1
    if isinstance(node, (yaml.MappingNode, yaml.SequenceNode)):
        if id(node) in seen:
            raise WxpipeError(f"{path}:{node.start_mark.line + 1}: a recursive alias (a value that contains itself)")
        seen = seen | {id(node)}
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        merged: list[yaml.Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == MERGE:  # ``<<: *defaults`` (or a list of them), as anemoi's recipes write
                merged += value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
                continue
            key = _scalar(key_node, path)
            out[key] = _construct(value_node, (*where, key), lines, path, seen)
            lines[(*where, key)] = key_node.start_mark.line + 1
        for source in merged:  # keys written here win, then the first mapping merged
            if not isinstance(source, yaml.MappingNode):
                raise WxpipeError(f"{path}:{source.start_mark.line + 1}: << merges mappings only")
            for key, value in _construct(source, where, {}, path, seen).items():
                if key not in out:
                    out[key] = value
                    lines[(*where, key)] = lines[where]
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*where, i), lines, path, seen) for i, item in enumerate(node.value)]
    return _scalar(node, path)


def _scalar(node: yaml.Node, path: Path | None = None) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    except ValueError as exc:  # YAML took it for a date (2020-13-01) that the calendar lacks
        where = f"{path}:{node.start_mark.line + 1}" if path else f"line {node.start_mark.line + 1}"
        msg = f"{node.value!r} is not a date ({exc}); expected ISO 8601 like 2020-01-01T06:00"
        raise WxpipeError(f"{where}: {msg}") from None
    finally:
        loader.dispose()


def read_text(path: str | Path) -> str:
    """A text file's content; a missing, unreadable or binary file is a one-line error naming it."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise WxpipeError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise WxpipeError(f"{path}: is a folder, not a file") from None
    except OSError as exc:
        raise WxpipeError(f"{path}: cannot be read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise WxpipeError(f"{path}: not a text file (byte {exc.start} is not UTF-8); expected YAML") from None
    if "\x00" in text:
        raise WxpipeError(f"{path}: not a text file (it holds NUL bytes); expected YAML") from None
    return text


def load_with_lines(path: str | Path, what: str = "file") -> tuple[dict[str, Any], dict[Location, int]]:
    """Load ``path`` as a YAML mapping; return ``(data, lines)`` with ``lines[key path] = line number``.

    ``what`` (``recipe``, ``config``) names the file in the error when its top level is not a mapping.
    Every problem is a :class:`WxpipeError` of one or two lines naming the file and, where one
    exists, the line.
    """
    text = read_text(path)
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = exc.problem or exc.context or "unreadable"
        if exc.context and exc.problem and exc.context_mark:  # where the unfinished construct began
            problem += f" ({exc.context} at line {exc.context_mark.line + 1})"
        raise WxpipeError(f"{where}: not valid YAML: {problem}") from None
    except yaml.YAMLError as exc:  # a reader error: control characters
        raise WxpipeError(f"{path}: not valid YAML: {exc}".splitlines()[0]) from None
    lines: dict[Location, int] = {}
    if node is None:
        return {}, lines
    try:
        data = _construct(node, (), lines, Path(path), set())
    except yaml.YAMLError as exc:  # a bad scalar: an unknown tag, a malformed timestamp
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise WxpipeError(f"{where}: not valid YAML: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(data, dict):
        kind = "a list" if isinstance(data, list) else f"{type(data).__name__} {str(data)[:40]!r}"
        raise WxpipeError(f"{path}: a {what} is a mapping of keys (key: value lines); this file holds {kind}")
    return data, lines


def line_of(lines: dict[Location, int], where: Location) -> int | None:
    """The line of the deepest known prefix of ``where`` (errors may point below the YAML)."""
    for n in range(len(where), -1, -1):
        if where[:n] in lines:
            return lines[where[:n]]
    return None
