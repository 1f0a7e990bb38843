"""The recipe's compressor as each Zarr format wants it."""

from __future__ import annotations

from typing import Any, Literal

from ..recipe import Blosc, Compressor, NoCompression, Zstd

_SHUFFLES: dict[bool | str, Literal["shuffle", "noshuffle", "bitshuffle"]] = {
    True: "shuffle",
    False: "noshuffle",
    "bitshuffle": "bitshuffle",
}


def codecs(compressor: Compressor | None, zarr_format: int) -> Any:
    """The recipe's compressor in the form each Zarr format wants; by default Blosc lz4 level 5 with
    byte shuffle, as anemoi-datasets writes."""
    import numcodecs
    from zarr.codecs import BloscCodec, ZstdCodec

    c = compressor or Blosc.model_validate({"name": "blosc"})
    if isinstance(c, NoCompression):
        return None
    if isinstance(c, Zstd):
        return numcodecs.Zstd(level=c.level) if zarr_format == 2 else ZstdCodec(level=c.level)
    shuffle = _SHUFFLES[c.shuffle]
    if zarr_format == 2:
        flag = {"shuffle": numcodecs.Blosc.SHUFFLE, "noshuffle": numcodecs.Blosc.NOSHUFFLE}
        return numcodecs.Blosc(cname=c.cname, clevel=c.clevel, shuffle=flag.get(shuffle, numcodecs.Blosc.BITSHUFFLE))
    return BloscCodec(cname=c.cname, clevel=c.clevel, shuffle=shuffle)
