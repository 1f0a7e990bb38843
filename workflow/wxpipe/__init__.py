"""wxpipe: from GRIB archives to trained, evaluated weather-ML models, with lineage."""

# Bind Python's sqlite3 to the system SQLite before anything imports ecCodes: the eckitlib wheel bundles
# SQLite 3.26, and if it loads first, MLflow's sqlite store fails on its schema ("malformed database schema").
import sqlite3  # noqa: F401  isort: skip


def __getattr__(name: str) -> str:
    """``__version__``, looked up on first use (importlib.metadata costs ~50 ms at every CLI start)."""
    if name != "__version__":
        raise AttributeError(name)
    from importlib import metadata

    try:
        return metadata.version("wxpipe")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "0.0.0"
