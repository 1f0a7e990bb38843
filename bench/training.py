"""``python -m bench training``: what the built-in model holds in memory per sample, measured to scale to N320.

For three model sizes (``hidden`` x ``layers``: ~30 k, ~1 M and ~11 M parameters) on 149 variables (the N320
training dataset's count), k = 2 input steps, 9 neighbours, and rollouts R = 1 and 4, one sample's loss
(:func:`wxpipe.train.objective.loss`) is run forward on the O32 grid (5 248 points) in fp32 and under bf16
autocast, and the bytes of every tensor autograd saves for the backward pass are summed
(``torch.autograd.graph.saved_tensors_hooks``). The model is the same MLP at every point, so those bytes
grow linearly with the points: divided by 5 248 they give bytes per sample per point, times 542 080 the
N320 figure. Weights, gradients and AdamW's two moments are 16 bytes per parameter (fp32). The tables of
docs/scaling.md ("Training at N320") are arithmetic on this section's figures.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from dataclasses import dataclass

import numpy as np

from ._env import machine, replace_section, revision, today

log = logging.getLogger("bench.training")

SECTION = "Training memory (built-in model)"
N320_POINTS = 542_080
VARIABLES = 149
SIZES = ((64, 2), (256, 4), (1024, 11))
ROLLOUTS = (1, 4)


@dataclass(frozen=True)
class Row:
    hidden: int
    layers: int
    parameters: int
    rollout: int
    precision: str
    saved_bytes: int
    points: int

    @property
    def per_point(self) -> float:
        return self.saved_bytes / self.points

    @property
    def n320_gib(self) -> float:
        return self.per_point * N320_POINTS / 2**30


def measure(hidden: int, layers: int, rollout: int, precision: str, grid: int = 32) -> Row:
    """Bytes autograd saves for one sample's loss on O<grid>."""
    import torch

    from wxpipe.grid import area_weights
    from wxpipe.sources.demo import octahedral_grid
    from wxpipe.train.features import neighbour_indices, neighbour_offsets
    from wxpipe.train.model import Hyper, Network
    from wxpipe.train.objective import loss

    _, lat, lon = octahedral_grid(grid)
    nb = neighbour_indices(lat, lon, 9)
    hyper = Hyper(VARIABLES, len(lat), 9, hidden, layers=layers, input_steps=2)
    ones = np.ones(VARIABLES)
    model = Network.build(hyper, nb, neighbour_offsets(lat, lon, nb), ones * 0, ones, ones)
    fields = np.random.default_rng(0).standard_normal((1, 2 + rollout, len(lat), VARIABLES)).astype(np.float32)
    dates = np.array(["2020-01-01T00"], dtype="datetime64[s]")
    weights = torch.as_tensor(area_weights(lat), dtype=torch.float32)
    saved = 0

    def pack(t: torch.Tensor) -> torch.Tensor:
        nonlocal saved
        saved += t.numel() * t.element_size()
        return t

    with (
        torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t),
        torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"),
    ):
        loss(model, fields, dates, weights, lat, lon, frequency=dt.timedelta(hours=6))
    params = sum(p.numel() for p in model.parameters())
    return Row(hidden, layers, params, rollout, precision, saved, len(lat))


def report(rows: list[Row], command: str) -> str:
    lines = [
        f"Measured {today()} ({revision()}) on {machine()}.",
        "",
        f"Command: `{command}`. One sample, k = 2, 9 neighbours, {VARIABLES} variables, O32 (5 248 points); "
        "saved = bytes autograd keeps for the backward pass (a tensor saved twice counts twice: an upper bound).",
        "",
        "| hidden x layers | parameters | weights + grads + AdamW (fp32) | rollout R | precision "
        "| saved per point | saved per sample at N320 |",
        "|---|---:|---:|---:|---|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r.hidden} x {r.layers} | {r.parameters:,} | {16 * r.parameters / 2**30:.3f} GiB | {r.rollout} "
            f"| {r.precision} | {r.per_point / 1024:.1f} KiB | **{r.n320_gib:.1f} GiB** |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench training", description=__doc__.split("\n\n")[0])
    parser.add_argument("--no-write", action="store_true", help="print, do not touch BENCHMARKS.md")
    args = parser.parse_args(argv)
    rows = []
    for hidden, layers in SIZES:
        for rollout in ROLLOUTS:
            for precision in ("fp32", "bf16"):
                rows.append(measure(hidden, layers, rollout, precision))
                log.info("%s", rows[-1])
    text = report(rows, "python -m bench training")
    print(text)
    if not args.no_write:
        replace_section(SECTION, text)


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO)
    main(sys.argv[1:])
