"""anemoi-training as an engine: the Hydra overrides wxpipe generates for a run, read back with Hydra's own parser."""

from __future__ import annotations

from typing import Any

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

from wxpipe.anemoi import Run, hydra_value, overrides, user_overrides
from wxpipe.config import TrainingConfig
from wxpipe.errors import WxpipeError

ATTRS = {
    "frequency": "6h",
    "constant_fields": ["lsm"],
    "variables_metadata": {"cos_latitude": {"computed_forcing": True}},
}
VARIABLES = ["2t", "msl", "tp", "lsm", "cos_latitude"]


def _config(**extra: Any) -> TrainingConfig:
    return TrainingConfig.model_validate(
        {
            "engine": "anemoi",
            "dataset": "demo",
            "train": {"start": "2020-01-01T00:00", "end": "2020-02-29T18:00"},
            "validation": {"start": "2020-03-01T00:00", "end": "2020-03-10T18:00"},
            "variables": {"diagnostic": ["tp"]},
            "normaliser": {"std": ["tp"]},
            "steps": 30,
            "batch_size": 2,
            "seed": 7,
            "mlflow": {"experiment": "wxpipe-demo"},
            **extra,
        }
    )


RUN = Run(
    name="gnn",
    dataset="results/sites/scratch/demo.zarr",
    variables=VARIABLES,
    attrs=ATTRS,
    output="results/models/gnn/anemoi",
    tracking_uri="sqlite:///results/mlflow.db",
    offline=False,
)


def _applied(args: list[str]) -> Any:
    """The overrides applied by Hydra's parser to an empty config, as a plain nested dict."""
    cfg = OmegaConf.create({})
    for override in OverridesParser.create().parse_overrides(args):
        OmegaConf.update(cfg, override.key_or_group, override.value(), force_add=True)
    return OmegaConf.to_container(cfg)


def test_wxpipe_sets_dataset_periods_roles_folders_mlflow_and_hardware() -> None:
    cfg = _applied(overrides(_config(), RUN, "training.gnn"))
    assert cfg["system"]["input"]["dataset"] == "results/sites/scratch/demo.zarr"
    assert cfg["system"]["output"]["root"] == "results/models/gnn/anemoi"
    assert cfg["system"]["input"]["graph"] == "results/models/gnn/anemoi/graph.pt"
    assert cfg["system"]["hardware"] == {"accelerator": "cpu", "num_gpus_per_node": 1, "num_nodes": 1}
    data = cfg["data"]["datasets"]["data"]
    assert (data["forcing"], data["diagnostic"]) == (["lsm", "cos_latitude"], ["tp"])  # the built-in engine's defaults
    normaliser = data["processors"]["normalizer"]["config"]  # every list set whole, only the dataset's variables
    assert normaliser == {"default": "mean-std", "mean-std": [], "std": ["tp"], "min-max": [], "max": [], "none": []}
    training = cfg["dataloader"]["training"]["datasets"]["data"]
    assert (training["start"], training["end"]) == ("2020-01-01T00:00:00", "2020-02-29T18:00:00")
    assert cfg["dataloader"]["validation"]["datasets"]["data"]["end"] == "2020-03-10T18:00:00"
    assert cfg["training"]["precision"] == "32" and cfg["training"]["max_steps"] == 30  # a string, as anemoi wants
    assert cfg["dataloader"]["batch_size"]["training"] == 2
    assert cfg["diagnostics"]["checkpoint"]["every_n_train_steps"] == {"save_frequency": 100, "num_models_saved": 1}
    mlflow = cfg["diagnostics"]["log"]["mlflow"]
    assert mlflow["enabled"] is True and mlflow["run_name"] == "gnn" and mlflow["experiment_name"] == "wxpipe-demo"
    assert (cfg["data"]["frequency"], cfg["task"]["timestep"]) == ("6h", "6h")
    assert RUN.environment(_config())["ANEMOI_BASE_SEED"] == "7"


def test_the_anemoi_block_adds_its_keys_nested_or_dotted_alike() -> None:
    nested = _config(anemoi={"model": {"num_channels": 16}, "graph.nodes.hidden.node_builder.resolution": 2})
    dotted = _config(
        anemoi={"model.num_channels": 16, "graph": {"nodes": {"hidden": {"node_builder": {"resolution": 2}}}}}
    )
    assert overrides(nested, RUN, "training.gnn") == overrides(dotted, RUN, "training.gnn")
    cfg = _applied(overrides(nested, RUN, "training.gnn"))
    assert cfg["model"]["num_channels"] == 16 and cfg["graph"]["nodes"]["hidden"]["node_builder"]["resolution"] == 2


@pytest.mark.parametrize(
    ("block", "named"),
    [
        ({"system.input.dataset": "/elsewhere.zarr"}, "training.gnn.anemoi.system.input.dataset: wxpipe sets"),
        ({"system": {"hardware": {"num_nodes": 4}}}, "training.gnn.anemoi.system.hardware.num_nodes"),
        ({"data.datasets.data": {"forcing": []}}, "wxpipe sets data.datasets.data.forcing"),
        ({"diagnostics.log.mlflow": "off"}, "wxpipe sets diagnostics.log.mlflow.enabled"),
    ],
)
def test_a_key_wxpipe_sets_is_refused_in_the_block_naming_it(block: dict[str, Any], named: str) -> None:
    with pytest.raises(WxpipeError, match=named.replace(".", r"\.")):
        overrides(_config(anemoi=block), RUN, "training.gnn")


def test_each_engine_reads_its_own_keys() -> None:
    with pytest.raises(ValueError, match="hidden, neighbours: the built-in engine's keys"):
        _config(hidden=128, neighbours=5)
    with pytest.raises(ValueError, match="anemoi: Hydra overrides are for engine: anemoi"):
        TrainingConfig.model_validate({**_config().model_dump(exclude={"engine"}), "anemoi": {"model.x": 1}})


@pytest.mark.parametrize(
    "value", ["/scratch/my data/demo.zarr", "it's", "6h", "2020-01-01T00:00:00", 3, 0.5, True, None, ["a", "b c"]]
)
def test_values_survive_hydras_grammar(value: Any) -> None:
    assert _applied([f"++x={hydra_value(value)}"]) == {"x": value}


def test_a_key_hydra_cannot_read_is_refused() -> None:
    with pytest.raises(WxpipeError, match=r"anemoi\.model\.bad key: not a Hydra key"):
        user_overrides({"model": {"bad key": 1}})


def test_the_conda_file_and_the_container_follow_the_pins() -> None:
    """Both are generated (make anemoi-files) from requirements/anemoi.txt and its constraints."""
    from wxpipe.anemoi import pins

    assert pins.ENV.read_text() == pins.conda_file()
    assert pins.CONTAINER.read_text() == pins.container_file()
    for requirement in pins.requirements():
        assert f"      - {requirement}\n" in pins.conda_file()
    constraints = pins.CONSTRAINTS.read_text()
    assert "anemoi-training==0.17.1" in constraints and "zarr==2.18.7" in constraints
