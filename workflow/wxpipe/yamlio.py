"""YAML loading that remembers where each key was written, so errors can name file and line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

Location = tuple[str | int, ...]


def _construct(node: yaml.Node, where: Location, lines: dict[Location, int]) -> Any:
    """Turn a composed node into plain Python, recording the line of every key and item."""
    lines[where] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key = _scalar(key_node)
            out[key] = _construct(value_node, (*where, key), lines)
            lines[(*where, key)] = key_node.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*where, i), lines) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    finally:
        loader.dispose()


def load_with_lines(path: str | Path) -> tuple[Any, dict[Location, int]]:
    """Load ``path`` as YAML and return ``(data, lines)`` with ``lines[key path] = line number``."""
    text = Path(path).read_text()
    node = yaml.compose(text, Loader=yaml.SafeLoader)
    lines: dict[Location, int] = {}
    if node is None:
        return {}, lines
    return _construct(node, (), lines), lines


def line_of(lines: dict[Location, int], where: Location) -> int | None:
    """The line of the deepest known prefix of ``where`` (errors may point below the YAML)."""
    for n in range(len(where), -1, -1):
        if where[:n] in lines:
            return lines[where[:n]]
    return None
