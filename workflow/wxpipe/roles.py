"""Which dataset variables are forcings by default, from the dataset's attributes alone.

Both engines ask here: the built-in one (:mod:`wxpipe.train.variables`) and anemoi-training's, whose
environment reads the attributes with its own zarr, so this module imports nothing but the standard library.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def forcings(variables: Sequence[str], attrs: Mapping[str, Any]) -> list[str]:
    """The dataset's constant fields and the variables its forcings source computed (wxpipe's and
    anemoi-datasets' records alike), in dataset order."""
    meta: Mapping[str, Mapping[str, Any]] = attrs.get("variables_metadata") or {}
    constant = set(attrs.get("constant_fields") or [])

    def is_forcing(name: str) -> bool:
        m = meta.get(name) or {}
        return name in constant or m.get("computed") == "forcing" or bool(m.get("computed_forcing"))

    return [v for v in variables if is_forcing(v)]
