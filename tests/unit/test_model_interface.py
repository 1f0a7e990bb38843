"""The model interface: metadata that round-trips through JSON, and checkpoints loaded by their engine."""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from wxpipe.errors import WxpipeError
from wxpipe.model import Forecaster, ModelMetadata, Variable, embed_metadata, load, read_metadata


def _metadata(**overrides: Any) -> ModelMetadata:
    fields: dict[str, Any] = {
        "engine": "wxpipe",
        "variables": (
            Variable("2t", "prognostic", mean=280.0, stdev=10.0),
            Variable("lsm", "constant", mean=0.5, stdev=0.5),
            Variable("tp", "diagnostic", mean=0.002, stdev=0.001),
            Variable("sst", "forcing", mean=290.0, stdev=5.0),
            Variable("cos_local_time", "forcing", computed=True),
        ),
        "grid": "0123456789abcdef",
        "points": 40,
        "frequency_seconds": 21600,
        "dataset_uuid": "d-1",
        "training_step": 300,
        "run_id": "r-1",
        "tracking_uri": "https://mlflow.example.org/x",
    }
    return ModelMetadata(**{**fields, **overrides})


def test_metadata_round_trips_through_json() -> None:
    meta = _metadata(lineage="abc")
    assert ModelMetadata.from_json(meta.to_json()) == meta
    assert ModelMetadata.from_dict(meta.to_dict()) == meta
    bare = _metadata(run_id=None, tracking_uri=None)
    assert ModelMetadata.from_json(bare.to_json()) == bare


def test_roles_decide_what_goes_in_and_comes_out() -> None:
    meta = _metadata()
    assert meta.inputs == ["2t", "lsm", "sst"]  # not the diagnostic, not what the engine computes
    assert meta.outputs == ["2t", "tp"]
    assert meta.frequency.total_seconds() == 21600


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"tracking_uri": "https://user:secret@mlflow.example.org"}, "password"),
        ({"variables": (Variable("2t", "prognostic"), Variable("2t", "forcing"))}, "repeat"),
        ({"variables": (Variable("sst", "forcing"),)}, "at least one prognostic"),
        ({"input_steps": 0}, "positive"),
    ],
)
def test_metadata_refuses_what_cannot_be(change: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _metadata(**change)


def test_reading_metadata_is_strict() -> None:
    data = _metadata().to_dict()
    with pytest.raises(ValueError, match="unknown keys"):
        ModelMetadata.from_dict({**data, "colour": "blue"})
    with pytest.raises(ValueError, match="version"):
        ModelMetadata.from_dict({**data, "version": 99})
    with pytest.raises(ValueError, match="role"):
        ModelMetadata.from_dict({**data, "variables": [{"name": "2t", "role": "output"}]})


def test_loads_a_checkpoint_through_its_engine(trained: Any) -> None:
    checkpoint = trained.result.checkpoint
    model = load(checkpoint)
    assert isinstance(model, Forecaster)
    assert model.metadata == read_metadata(checkpoint)
    ds = trained.dataset
    t = ds.index_of(np.datetime64("2020-01-11T00:00:00"))
    states = np.repeat(ds.data[t][None, :, :, :].transpose(0, 2, 1, 3)[:, :, None], 2, axis=1)  # 2 members
    out = model.predict(states, ds.dates[[t]][:, None], [2, 1])
    assert out.shape == (1, 2, 2, len(ds.variables), len(ds.latitudes)) and out.dtype == np.float32
    np.testing.assert_array_equal(out[:, 0], out[:, 1])
    truth = ds.data[t + 1, :, 0]
    assert np.abs(out[0, 0, 1] - truth).mean() < np.abs(states[0, 0, 0] - truth).mean()  # beats persistence
    with pytest.raises(ValueError, match="do not fit"):
        model.predict(states[:, :, :, :2], ds.dates[[t]][:, None], [1])


def test_refuses_checkpoints_without_a_known_engine(tmp_path: Path) -> None:
    junk = tmp_path / "junk.ckpt"
    junk.write_bytes(b"not a zip")
    with pytest.raises(WxpipeError, match="cannot read checkpoint"):
        load(junk)
    bare = tmp_path / "bare.ckpt"
    with zipfile.ZipFile(bare, "w") as z:
        z.writestr("bare/data.pkl", b"")
    with pytest.raises(WxpipeError, match=r"no wxpipe-model\.json"):
        read_metadata(bare)
    embed_metadata(bare, _metadata(engine="elsewhere"))
    assert read_metadata(bare).engine == "elsewhere"
    with pytest.raises(WxpipeError, match="engine 'elsewhere' is not one of"):
        load(bare)
