"""What anemoi-datasets 0.5.47 understands and wxpipe does not, so it is refused as such.

A key that anemoi knows but wxpipe does not implement is not a typo: the user copied a working
anemoi recipe. It is refused as ``not supported by wxpipe: <feature>`` at the key's line, so the
message says what to change, while a key that neither tool knows stays ``unknown key (misspelled?)``.
The names are those of anemoi-datasets 0.5.47's and anemoi-transform 0.5.1's registries.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import pydantic_core

from ..yamlio import Location

# sources of anemoi-datasets (``source_registry``) that wxpipe does not read
SOURCES = frozenset(
    [
        "accumulate",
        "anemoi-dataset",
        "bufr",
        "csv",
        "dop-zarr",
        "eccc-fstd",
        "empty",
        "fdb",
        "from-trajectories",
        "grib-index",
        "hindcasts",
        "mars",
        "odb",
        "opendap",
        "planetary-computer",
        "recentre",
        "repeated-dates",
        "source",
        "tabular-filters-dev",
        "xarray",
        "xarray-kerchunk",
        "zenodo",
    ]
)
# filters of anemoi-transform (``filter_registry``) other than ``rename``
FILTERS = frozenset(
    [
        "accum-to-interval",
        "add-azimuth",
        "add-forcings",
        "add-healpix",
        "add-msg-angles",
        "apply-column-transformations",
        "apply-mask-fields",
        "assign-to-grid",
        "clear-step",
        "clip",
        "clip-fields",
        "clip-tabular",
        "convert",
        "cos-sin-from-rad",
        "cos-sin-mean-wave-direction",
        "d-to-q-height",
        "d-to-r",
        "ddff-to-uv",
        "drop",
        "drop-duplicates",
        "drop-nans-tabular",
        "earthkitfieldlambda",
        "exclude-dates",
        "fill-orography",
        "filter-query",
        "fraction-of-snow-cover",
        "geopotential-to-height",
        "geopotential-to-height-tabular",
        "glacier-mask",
        "height-to-geopotential",
        "icon-refinement-level",
        "impute-nans",
        "impute-nans-fields",
        "impute-nans-tabular",
        "irregular-to-grid",
        "land-parameters",
        "levtype-sol-to-soil",
        "lnsp-to-sp",
        "mask",
        "mask-dewpoint-temperature",
        "mask-infs",
        "mask-outside-range",
        "mask-tabular",
        "mask-values-custom",
        "noop",
        "oras6-clipping",
        "orog-to-z-fields",
        "q-to-d-height",
        "q-to-r",
        "q-to-r-height",
        "q-to-r-height-with-p",
        "r-to-d",
        "r-to-q",
        "r-to-q-height",
        "r-to-q-height-with-p",
        "radiance-to-brightness-temperature",
        "regrid",
        "remove-extreme-values",
        "remove-nans",
        "remove-nans-fields",
        "rename-fields",
        "rename-tabular",
        "repeat-members",
        "rescale",
        "rodeo-opera-clipping",
        "rodeo-opera-preprocessing",
        "rotate-winds",
        "snow-depth-m",
        "soil-to-levtype-sol",
        "sort-by",
        "sp-to-lnsp",
        "sum",
        "superob",
        "timeseries",
        "unrotate-winds",
        "uv-to-ddff",
        "w-to-wz",
        "wz-to-w",
        "z-to-orog-fields",
    ]
)
# keys of a ``grib`` source that anemoi passes to earthkit-data (MARS and ecCodes selection, flavours)
GRIB_KEYS = frozenset(
    [
        "flavour",
        "grid_definition",
        "grid",
        "area",
        "rotation",
        "frame",
        "resol",
        "bitmap",
        "level",
        "step",
        "time",
        "date",
        "class",
        "stream",
        "type",
        "expver",
        "domain",
        "origin",
        "shortName",
        "paramId",
        "typeOfLevel",
        "topLevel",
        "bottomLevel",
        "stepType",
        "dataDate",
        "dataTime",
        "validityDate",
        "validityTime",
        "valid_datetime",
        "base_datetime",
        "edition",
        "centre",
        "levtype_sol",
    ]
)
# top-level keys of anemoi's recipe (its Recipe model allows any) that wxpipe does not implement
TOP_LEVEL = {
    "data_sources": "named data_sources (write the source under input)",
    "base_dates": "the trajectories layout (base_dates)",
    "steps": "the trajectories layout (steps)",
    "additions": "top-level additions (write statistics.tendencies)",
    "env": "top-level env",
    "naming_scheme": "naming_scheme (write build.variable_naming)",
    "checks": "checks (anemoi's test harness)",
}
# MARS level types other than the two wxpipe reads
LEVTYPES = frozenset(["ml", "pt", "pv", "sol", "dp", "o2d", "o3d", "al", "hl", "cat"])


def _norm(name: str) -> str:
    return name.replace("_", "-")


def action_feature(key: str) -> str | None:
    """How to name ``key`` of an input-tree item if it is an anemoi source or filter wxpipe lacks."""
    if _norm(key) in SOURCES:
        return f"the {key} source"
    if _norm(key) in FILTERS:
        return f"the {key} filter"
    return None


def grib_feature(key: str) -> str | None:
    """How to name ``key`` of a ``grib`` source if anemoi would select or transform with it."""
    if key in GRIB_KEYS or ":" in key:
        return f"the grib key {key}"
    return None


def unsupported(problems: Iterable[tuple[Location, str]]) -> None:
    """Raise ``not supported by wxpipe: <feature>`` for each (key path, feature), if any."""
    errors = [
        {
            "type": pydantic_core.PydanticCustomError(
                "unsupported", "not supported by wxpipe: {feature}", {"feature": f}
            ),
            "loc": loc,
            "input": None,
        }
        for loc, f in problems
    ]
    if errors:
        raise pydantic_core.ValidationError.from_exception_data("Recipe", errors)  # type: ignore[arg-type]


def refuse_keys(data: object, known: Iterable[str], feature: Mapping[str, str] | None = None, kind: str = "") -> None:
    """Refuse the keys of ``data`` (a mapping being validated) that anemoi knows and wxpipe does not.

    ``kind`` chooses the table: ``action`` for input-tree items, ``grib`` for a grib source;
    ``feature`` maps further keys to their description. Keys in ``known`` are left to the model.
    """
    if not isinstance(data, Mapping):
        return
    known = set(known)
    found: list[tuple[Location, str]] = []
    for key in data:
        if not isinstance(key, str) or key in known:
            continue
        what = (feature or {}).get(key)
        if what is None and kind == "action":
            what = action_feature(key)
        if what is None and kind == "grib":
            what = grib_feature(key)
        if what is not None:
            found.append(((key,), what))
    unsupported(found)
