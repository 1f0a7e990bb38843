"""anemoi-training as a training engine: the Hydra overrides wxpipe owns for a run (:mod:`.overrides`).

This package runs in anemoi-training's own environment (zarr 2, its torch) as well as in wxpipe's, so it
imports nothing heavy: no zarr, no torch, no dataset code.
"""

from .overrides import BUILTIN_ONLY, Run, hydra_value, overrides, user_overrides

__all__ = ["BUILTIN_ONLY", "Run", "hydra_value", "overrides", "user_overrides"]
