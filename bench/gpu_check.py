"""``make gpu-check``: the built-in model trained on one GPU through the production parts, in one command.

It runs on a GPU machine without internet, with that machine's ``python3`` and ``torch`` (and whatever else
it has); ``bench/gpu_check.sh`` first installs the wheels it lacks from ``.gpu-wheels/`` (``make gpu-wheels``
downloads them where PyPI is reachable). In order:

1. a generated dataset on the O96 grid (40 320 points; travelling waves, so there is something to learn)
   written straight to Zarr on local disk with :func:`wxpipe.dataset.init` and :class:`wxpipe.dataset.Writer`,
   its statistics written the way the statistics stage writes them (moments from numpy here);
2. :func:`wxpipe.train.train` on it: the built-in model at >= 10 M parameters, bf16 autocast, DDP over NCCL
   in a process group of one rank, the production loader reading the store from disk, logging to an MLflow
   file store, a checkpoint at the end;
3. :func:`wxpipe.predict.predict` with that checkpoint over the last dates (leads 1, 2 and 4 steps): the predict
   stage's forecaster on the GPU, its batch bounded by the GPU's free memory;
4. the figures: samples/s, step time, the GPU's share of it (the step minus the data wait), the data-wait
   fraction, peak GPU memory, parameters, forecasts/s and the forecaster's device; printed and written to
   ``gpu-check.json``.

Run it as ``python -m bench.gpu_check`` from the repository root (``PYTHONPATH=workflow`` where wxpipe is
not installed). ``--dry-run`` does the same on the CPU with tiny sizes and gloo (``make test`` runs it). The goal on one
H200 is a data wait under 5 % of the step time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import socket
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("gpu-check")

START = dt.datetime(2020, 1, 1)
STEP = dt.timedelta(hours=6)


@dataclass(frozen=True)
class Size:
    grid: int  # octahedral O<grid>
    variables: int
    dates: int
    steps: int
    batch: int
    hidden: int
    layers: int
    workers: int


FULL = Size(grid=96, variables=20, dates=240, steps=60, batch=8, hidden=1024, layers=11, workers=8)
DRY = Size(grid=8, variables=4, dates=40, steps=6, batch=2, hidden=32, layers=2, workers=2)


def write_dataset(path: Path, size: Size) -> Any:
    """A finalised store of ``size.variables`` travelling waves on O<grid>, with its statistics."""
    from wxpipe.dataset import Writer, finalise, init, open_dataset
    from wxpipe.recipe import Recipe
    from wxpipe.sources.demo import octahedral_grid
    from wxpipe.statistics import Moments, Summary, write

    _, lat, lon = octahedral_grid(size.grid)
    names = [f"v{i:02d}" for i in range(size.variables)]
    end = START + (size.dates - 1) * STEP
    recipe = Recipe.model_validate(
        {
            "name": path.stem,
            "description": "wxpipe gpu-check: travelling waves",
            "dates": {"start": START.isoformat(), "end": end.isoformat(), "frequency": "6h"},
            "input": {"grib": {"path": "unused/{date:strftime(%Y%m%d%H)}.grib", "param": names}},
        }
    )
    init(path, recipe, names, lat, lon, field_shape=[len(lat)], resolution=f"o{size.grid}")
    phi, lam = np.deg2rad(lat), np.deg2rad(lon)
    rng = np.random.default_rng(0)
    writer, n = Writer(path), size.variables
    sums, squares, low, high = np.zeros(n), np.zeros(n), np.full(n, np.inf), np.full(n, -np.inf)
    for t in range(size.dates):
        block = np.empty((1, n, 1, len(lat)), np.float32)
        for v in range(n):
            wave = np.cos(phi) * np.sin((v % 5 + 2) * lam - np.deg2rad(10.0 * t) + v)
            block[0, v, 0] = 10.0 * v + (1 + v % 3) * (wave + 0.05 * rng.standard_normal(len(lat)))
        writer.write(t, block)
        x = block[0, :, 0].astype(np.float64)
        sums, squares = sums + x.sum(axis=1), squares + (x**2).sum(axis=1)
        low, high = np.minimum(low, x.min(axis=1)), np.maximum(high, x.max(axis=1))
    writer.close()
    finalise(path)
    # the statistics stage's moments come from a numba kernel; sums in float64 are exact enough for waves
    count = np.full(n, size.dates * len(lat), np.int64)
    mean = sums / count
    moments = Moments(count, np.zeros(n), mean, squares - mean**2 * count, low, high, np.zeros(n, bool), count * 0)
    uuid = open_dataset(path).uuid
    write(path, Summary(uuid, names, START, end, False, {}, (0, 1), (0, size.dates), moments, {}))
    return open_dataset(path)


def training_config(size: Size, out: Path, precision: str) -> Any:
    from wxpipe.config import TrainingConfig

    split = START + int(size.dates * 0.8) * STEP
    return TrainingConfig.model_validate(
        {
            "dataset": "gpu-check",
            "train": {"start": START, "end": split - STEP},
            "validation": {"start": split, "end": START + (size.dates - 1) * STEP},
            "steps": size.steps,
            "batch_size": size.batch,
            "hidden": size.hidden,
            "layers": size.layers,
            "multistep_input": 2,
            "rollout": {"start": 2, "max": 2},
            "precision": precision,
            "warmup": max(1, size.steps // 10),
            "gradient_clip": 1.0,
            "checkpoint_every": size.steps,
            "loader": {"workers": size.workers, "prefetch": 4},
            "mlflow": {"tracking_uri": (out / "mlruns").resolve().as_uri(), "experiment": "gpu-check"},
        }
    )


def process_group(dry: bool) -> Any:
    """DDP's process group of one rank: NCCL on the GPU, gloo on the CPU (the dry run)."""
    import torch

    from wxpipe.train import distributed

    gpu = torch.cuda.is_available() and not dry
    backend = "nccl" if gpu else "gloo"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.distributed.init_process_group(backend, init_method=f"tcp://127.0.0.1:{port}", rank=0, world_size=1)
    if gpu:
        torch.cuda.set_device(0)
    return distributed.Context(0, 1, 0, backend, "cuda:0" if gpu else "cpu")


def figures(result: Any, cfg: Any, size: Size, ctx: Any, seconds: dict[str, float]) -> dict[str, Any]:
    """What the run measured, from its MLflow metrics (the windows after the first: warm-up excluded)."""
    import torch
    from mlflow.tracking import MlflowClient

    client = MlflowClient(cfg.mlflow.tracking_uri)

    def window_means(name: str) -> float:
        points = sorted(client.get_metric_history(result.run_id, name), key=lambda m: m.step)
        values = [m.value for m in points[1:]] or [m.value for m in points]
        return float(np.mean(values)) if values else float("nan")

    step, wait = window_means("step_seconds"), window_means("data_wait_seconds")
    cuda = ctx.device.startswith("cuda")
    return {
        "device": torch.cuda.get_device_name(0) if cuda else platform.processor() or "cpu",
        "torch": torch.__version__,
        "cuda": torch.version.cuda if cuda else None,
        "python": platform.python_version(),
        "backend": ctx.backend,
        "precision": cfg.precision,
        "size": asdict(size),
        "parameters": int(client.get_run(result.run_id).data.params["model.parameters"]),
        "samples_per_second": size.batch / step if step > 0 else float("nan"),
        "step_seconds": step,
        "gpu_step_seconds": step - wait,
        "data_wait_fraction": window_means("data_wait_fraction"),
        "peak_gpu_memory_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
        "seconds": seconds,
        "mlflow_run": result.run_id,
    }


def forecast(ds: Any, checkpoint: Path, out: Path) -> dict[str, Any]:
    """The predict stage over the dataset's last quarter: how many forecasts, how fast, on which device."""
    from wxpipe.config import EvaluationConfig
    from wxpipe.model import load
    from wxpipe.predict import predict

    start, end = ds.dates[3 * len(ds.dates) // 4], ds.dates[-5]
    cfg = EvaluationConfig.model_validate({"period": {"start": str(start), "end": str(end)}, "leads": [1, 2, 4]})
    clock = time.perf_counter()
    made = predict(ds, checkpoint, cfg, out / "forecasts.zarr", memory_mb=16000)
    seconds = time.perf_counter() - clock
    count = len(made.init_dates)
    device = str(getattr(load(checkpoint), "device", "unknown"))
    return {"device": device, "forecasts": count, "seconds": seconds, "forecasts_per_second": count / seconds}


def run(out: Path, dry: bool) -> dict[str, Any]:
    size = DRY if dry else FULL
    out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 asks before it writes a file store
    from wxpipe.train import distributed, train

    clock = time.perf_counter()
    ds = write_dataset(out / "gpu-check.zarr", size)
    seconds = {"dataset": time.perf_counter() - clock}
    log.info("dataset %s: %d dates x %d variables x %d points", ds.path, *ds.data.shape[:2], ds.data.shape[-1])
    ctx = process_group(dry)
    cfg = training_config(size, out, "bf16")
    try:
        clock = time.perf_counter()
        result = train(ds, cfg, out / "model" / "checkpoint.pt", "gpu-check", {}, ctx, threads=2 if dry else 8)
        seconds["training"] = time.perf_counter() - clock
        report = figures(result, cfg, size, ctx, seconds)
    finally:
        distributed.teardown(ctx)
    report["predict"] = forecast(ds, result.checkpoint, out)
    (out / "gpu-check.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT") or "results/gpu-check"))
    parser.add_argument("--dry-run", action="store_true", help="tiny sizes on the CPU (what make test runs)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    report = run(args.out, args.dry_run)
    print(
        f"{report['device']} torch {report['torch']} ({report['backend']}, {report['precision']}), "
        f"{report['parameters']} parameters: {report['samples_per_second']:.1f} samples/s, "
        f"step {1000 * report['step_seconds']:.1f} ms of which GPU {1000 * report['gpu_step_seconds']:.1f} ms, "
        f"data wait {100 * report['data_wait_fraction']:.1f} %, peak GPU memory {report['peak_gpu_memory_gib']} GiB"
    )
    made = report["predict"]
    print(f"predict on {made['device']}: {made['forecasts']} forecasts, {made['forecasts_per_second']:.1f} forecasts/s")
    print(f"written: {args.out / 'gpu-check.json'}")


if __name__ == "__main__":
    main()
