"""anemoi-inference's forecast from one initial date, for make test-anemoi to compare with wxpipe's predict.

Runs in anemoi-training's environment (make anemoi-env): anemoi-inference's SimpleRunner, its input states read
from the dataset through anemoi-datasets. Writes ``forecast`` (steps, variables, values) and ``names`` to an .npz.

    python inference_reference.py CHECKPOINT DATASET DATE HOURS OUT.npz
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import zipfile

import numpy as np
from anemoi.datasets import open_dataset
from anemoi.inference.runners.simple import SimpleRunner


def main(checkpoint: str, dataset: str, date: str, hours: str, out: str) -> None:
    start = dt.datetime.fromisoformat(date)
    ds = open_dataset(dataset)
    runner = SimpleRunner(checkpoint, device="cpu")
    with zipfile.ZipFile(checkpoint) as archive:
        member = next(n for n in archive.namelist() if n.endswith("anemoi-metadata/anemoi.json"))
        meta = json.loads(archive.read(member))
    inputs = list(meta["metadata_inference"]["data"]["data_indices"]["input"])
    k, step = runner.checkpoint.multi_step_input, runner.checkpoint.timestep
    dates = [np.datetime64(d, "s") for d in ds.dates]
    rows = [dates.index(np.datetime64(start - (k - 1 - i) * step, "s")) for i in range(k)]
    fields = {v: ds[rows, ds.name_to_index[v], 0, :] for v in inputs}
    state = {"date": start, "fields": fields, "latitudes": ds.latitudes, "longitudes": ds.longitudes}
    steps, names = [], []
    for output in runner.run(input_states={"data": state}, lead_time=f"{hours}h"):
        produced = output["data"]["fields"]
        names = [v for v in ds.variables if v in produced]
        steps.append(np.stack([produced[v] for v in names]))
    np.savez(out, forecast=np.stack(steps), names=np.array(names))


if __name__ == "__main__":
    main(*sys.argv[1:])
