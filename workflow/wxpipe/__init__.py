"""wxpipe: from GRIB archives to trained, evaluated weather-ML models, with lineage."""

from importlib import metadata

try:
    __version__ = metadata.version("wxpipe")
except metadata.PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0"
