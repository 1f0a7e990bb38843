"""The anemoi model, run in anemoi-training's environment for wxpipe's predict stage, behind a pipe.

The checkpoint can only be unpickled where anemoi-models is installed (its torch, zarr 2), while predict reads
datasets and writes forecasts files with wxpipe's (zarr 3). So :mod:`.forecaster` starts this module there
(``python -m wxpipe.anemoi.worker CHECKPOINT``) and sends it numpy arrays. The model is rolled out here, on the
device, as anemoi-inference does: each call's prognostic outputs become the newest input states and the
forcings of those dates are filled in from what the caller gave.

Protocol, on stdin/stdout (anything the model prints goes to stderr): the worker first writes a JSON line
``{"device", "memory_mb", "versions"}``; then for each request (a JSON line ``{"calls": N}``, then the input
states (batch, k, grid, inputs) and the forcings (batch, N * output_steps, grid, forcings), each sent by
:func:`send_array`) it writes a JSON line ``{"ok": true}`` and the outputs (batch, N * output_steps, grid,
outputs), or
``{"ok": false, "error": ...}``. An empty line ends it.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from .layout import Layout, read_meta

if TYPE_CHECKING:
    import torch

AUTOCAST = {"16": "float16", "16-mixed": "float16", "bf16": "bfloat16", "bf16-mixed": "bfloat16"}


def rollout(
    model: Any, layout: Layout, states: torch.Tensor, forcings: torch.Tensor, calls: int, autocast: str | None = None
) -> torch.Tensor:
    """``calls`` model calls from ``states`` (batch, k, grid, inputs): the outputs (batch, calls * output_steps,
    grid, outputs), each call's prognostic outputs carried into the next call's input window with the
    ``forcings`` (batch, steps, grid, forcings) of their dates."""
    import torch

    k, n = layout.input_steps, layout.output_steps
    into = layout.positions(layout.prognostic, layout.inputs)
    out_of = layout.positions(layout.prognostic, layout.outputs)
    forced = layout.positions(layout.forcings, layout.inputs)
    cast = (
        torch.autocast(states.device.type, dtype=getattr(torch, autocast))
        if autocast
        else torch.autocast(states.device.type, enabled=False)
    )
    outputs = []
    for call in range(calls):
        with torch.inference_mode(), cast:
            y = model.predict_step({"data": states})["data"]
        y = (y.unsqueeze(1) if y.ndim == 4 else y)[:, :, 0].float()  # (batch, n, grid, outputs): one member
        outputs.append(y)
        if call == calls - 1:
            break
        new = states.new_empty((states.shape[0], n, states.shape[2], states.shape[3]))
        new[..., into] = y[..., out_of]
        if forced:
            new[..., forced] = forcings[:, call * n : (call + 1) * n]
        states = torch.cat([states, new], dim=1)[:, -k:]
    return torch.cat(outputs, dim=1)


def _device() -> tuple[Any, int | None]:
    import torch

    if not torch.cuda.is_available():
        return torch.device("cpu"), None
    device = torch.device("cuda", torch.cuda.current_device())
    free, _ = torch.cuda.mem_get_info(device)
    return device, free // 2**20


def serve(checkpoint: Path, stdin: IO[bytes], stdout: IO[bytes]) -> None:
    """Load the model and answer requests until an empty line."""
    import torch

    meta = read_meta(checkpoint)
    layout = Layout.of(meta, checkpoint)
    precision = str((meta.get("config") or {}).get("training", {}).get("precision", "32"))
    device, memory_mb = _device()
    model = torch.load(checkpoint, map_location=device, weights_only=False).eval()
    versions = {"torch": torch.__version__, "python": sys.version.split()[0]}
    send(stdout, {"device": str(device), "memory_mb": memory_mb, "versions": versions})
    while line := stdin.readline().strip():
        request = json.loads(line)
        states, forcings = read_array(stdin), read_array(stdin)
        try:
            y = rollout(
                model,
                layout,
                torch.from_numpy(states).to(device),
                torch.from_numpy(forcings).to(device),
                int(request["calls"]),
                AUTOCAST.get(precision),
            )
        except (RuntimeError, ValueError, IndexError) as exc:
            send(stdout, {"ok": False, "error": f"{type(exc).__name__}: {exc}"})
            continue
        send(stdout, {"ok": True})
        send_array(stdout, y.cpu().numpy())


def send(stream: IO[bytes], message: dict[str, Any]) -> None:
    """One JSON line."""
    stream.write(json.dumps(message).encode() + b"\n")
    stream.flush()


def send_array(stream: IO[bytes], array: np.ndarray) -> None:
    """A JSON line with the shape and dtype, then the bytes (not ``.npy`` through numpy: on a pipe it may read
    past the array)."""
    array = np.ascontiguousarray(array)
    send(stream, {"shape": list(array.shape), "dtype": array.dtype.str})
    stream.write(array.data)
    stream.flush()


def read_array(stream: IO[bytes]) -> np.ndarray:
    """The inverse of :func:`send_array`; an error when the stream ends first."""
    head = json.loads(stream.readline() or b"null")
    if head is None:
        raise EOFError("the stream ended before an array")
    dtype = np.dtype(head["dtype"])
    size = int(np.prod(head["shape"], dtype=np.int64)) * dtype.itemsize
    raw = stream.read(size)
    if len(raw) != size:
        raise EOFError(f"the stream ended {size - len(raw)} bytes into an array")
    return np.frombuffer(raw, dtype=dtype).reshape(head["shape"]).copy()


def main() -> None:
    """Keep stdout for the protocol: whatever the model or its libraries print goes to stderr."""
    protocol = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    serve(Path(sys.argv[1]), sys.stdin.buffer, protocol)


if __name__ == "__main__":
    main()
