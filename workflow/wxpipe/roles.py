"""What the config's variable names stand for, from the dataset's variables and attributes alone: the default
forcings, parameters and levels, each variable's normaliser.

Both engines ask here: the built-in one (:mod:`wxpipe.train.variables`) and anemoi-training's, whose
environment reads the attributes with its own zarr, so this module imports no array library.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ._training import NormaliserConfig
from .errors import WxpipeError


def forcings(variables: Sequence[str], attrs: Mapping[str, Any]) -> list[str]:
    """The dataset's constant fields and the variables its forcings source computed (wxpipe's and
    anemoi-datasets' records alike), in dataset order."""
    meta: Mapping[str, Mapping[str, Any]] = attrs.get("variables_metadata") or {}
    constant = set(attrs.get("constant_fields") or [])

    def is_forcing(name: str) -> bool:
        m = meta.get(name) or {}
        return name in constant or m.get("computed") == "forcing" or bool(m.get("computed_forcing"))

    return [v for v in variables if is_forcing(v)]


def split_level(name: str) -> tuple[str, int | None]:
    """``t_850`` -> (``t``, 850); ``2t`` -> (``2t``, None): the dataset's ``{param}_{levelist}`` names."""
    param, _, level = name.rpartition("_")
    return (param, int(level)) if param and level.isdigit() else (name, None)


def matching(names: Iterable[str], name: str) -> list[str]:
    """The variables ``name`` stands for: itself, or every level of a parameter."""
    return [v for v in names if v == name or split_level(v)[0] == name]


def normalisers(names: tuple[str, ...], cfg: NormaliserConfig) -> tuple[str, ...]:
    """Each variable's normaliser: the one listing it (or its parameter), else the default."""
    chosen: dict[str, str] = {}
    for kind, listed in cfg.listed().items():
        for name in listed:
            matched = matching(names, name)
            if not matched:
                raise WxpipeError(f"training.normaliser.{kind}: {name!r} is no variable or parameter of {list(names)}")
            for v in matched:
                if chosen.get(v, kind) != kind:
                    raise WxpipeError(f"training.normaliser: {v!r} is given both {chosen[v]} and {kind}")
                chosen[v] = kind
    return tuple(chosen.get(v, cfg.default) for v in names)
