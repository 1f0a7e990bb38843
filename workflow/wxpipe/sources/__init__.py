"""Readers of raw archives (GRIB, netCDF, Zarr) and the demo archive generator."""
