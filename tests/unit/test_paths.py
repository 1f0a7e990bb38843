"""The layout of results/ (users and tests rely on every path) and what the rules plan from it."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from wxpipe import paths, smk, smk_copies
from wxpipe.config import Config

REPO = Path(__file__).resolve().parents[2]


def test_every_path_as_users_know_it() -> None:
    assert paths.dataset("{dataset}") == "results/datasets/{dataset}.zarr"
    assert paths.layout("ts") == "results/layouts/ts.zarr"
    assert paths.statistics_part(paths.part("demo", "1-of-2")) == "results/statistics/demo/part-1-of-2.npz"
    assert paths.model("{run}") == "results/models/{run}/checkpoint.pt"
    assert paths.evaluation("r") == "results/evaluation/r"
    assert paths.evaluation("r", "scores.json") == "results/evaluation/r/scores.json"
    assert paths.catalogue("json") == "results/catalogue/catalogue.json"
    assert paths.site_index() == "results/catalogue/site/index.html"
    assert paths.record("load", paths.part("{dataset}")) == "results/lineage/load/{dataset}/part-{part}.json"
    assert paths.record("transfer", paths.site_key("s", "d")) == "results/lineage/transfer/s/d.json"
    assert paths.pending("train", "r") == "results/lineage/.pending/train/r.json"
    assert paths.marker("rechunk_init", "ts") == "results/lineage/.pending/rechunk_init/ts.done"
    assert paths.log("dataset") == "results/logs/dataset.log"
    assert paths.log("init", "d") == "results/logs/init/d.log"
    assert paths.benchmark("lineage") == "results/benchmarks/lineage.tsv"
    assert paths.benchmark("load", paths.part("d", "2-of-2")) == "results/benchmarks/load/d/part-2-of-2.tsv"


def _config(site: str | None) -> Config:
    run = {"dataset": "d", "site": site, "train": {"start": "2020-01-01", "end": "2020-01-02"}}
    run |= {"validation": {"start": "2020-01-03", "end": "2020-01-04"}}
    return Config.model_validate(
        {
            "datasets": {"d": {"recipe": "r.yaml", "parts": 2}},
            "layouts": {"l": {"dataset": "d", "chunks": {"dates": 2, "values": 4}, "parts": 3}},
            "sites": {"here": {"url": "file:sites/here/"}, "bucket": {"url": "s3://b/p"}},
            "transfers": [{"dataset": "d", "site": "here"}, {"layout": "l", "site": "bucket"}],
            "training": {"t": run},
            "evaluation": {"period": {"start": "2020-01-05", "end": "2020-01-06"}},
        }
    )


def test_a_run_with_a_site_reads_and_follows_the_copy() -> None:
    cfg = _config("here")
    assert smk.dataset_copy(cfg, "t") == "sites/here/d.zarr"
    assert smk.dataset_copy_records(cfg, "t") == [
        "results/lineage/statistics/d.json",
        "results/lineage/transfer/here/d.json",
    ]
    assert smk_copies.site_location(cfg, "here", "d") == "file:sites/here/d.zarr"


def test_a_model_transfer_sends_its_bundle_under_models() -> None:
    cfg = _config(None)
    cfg = Config.model_validate(
        {
            **cfg.model_dump(mode="json"),
            "transfers": [{"model": "t", "site": "bucket"}, {"layout": "l", "site": "bucket"}],
        }
    )
    stages = smk.stages(cfg)  # after the evaluation: a stage of its own, or the transfer stage would be a cycle
    assert stages["transfer"] == ["bucket/l"] and stages["transfer_models"] == ["bucket/t"]
    assert list(stages).index("transfer_models") > list(stages).index("evaluate")
    assert smk_copies.model_location(cfg, "bucket", "t") == "s3://b/p/models/t"
    assert smk_copies.model_records("t") == ["results/lineage/train/t.json", "results/lineage/evaluate/t.json"]
    files = smk_copies.bundle_files("t")
    assert files["checkpoint.pt"] == paths.model("t")
    assert files["evaluation/scores.json"] == paths.evaluation("t", "scores.json")
    assert files["lineage/train.json"] == paths.record("train", "t")


def test_a_model_transfer_names_a_training_run() -> None:
    import pydantic
    import pytest

    data = _config(None).model_dump(mode="json")
    with pytest.raises(pydantic.ValidationError, match=r"transfers\.0\.model: no training run 'x'"):
        Config.model_validate({**data, "transfers": [{"model": "x", "site": "bucket"}]})


def test_a_run_without_a_site_reads_the_original() -> None:
    cfg = _config(None)
    assert smk.dataset_copy(cfg, "t") == "results/datasets/d.zarr"
    assert smk.dataset_copy_records(cfg, "t") == ["results/lineage/statistics/d.json"]


def test_evaluation_reads_the_climatology_and_the_references_it_is_given() -> None:
    cfg = _config(None)
    assert smk.evaluation_inputs(cfg, "t") == {} and smk.evaluation_args(cfg, "t") == ""
    ev = cfg.evaluation
    assert ev is not None
    clim = {"period": {"start": "2020-01-01", "end": "2020-01-04"}}
    ref = {"name": "hres", "leads": {1: "d"}}
    cfg = cfg.model_copy(
        update={"evaluation": ev.model_validate({**ev.model_dump(), "climatology": clim, "reference": ref})}
    )
    assert smk.stages(cfg)["climatology"] == ["d"]
    assert (
        smk.evaluation_args(cfg, "t")
        == "--climatology results/climatology/d.zarr --reference 1=results/datasets/d.zarr"
    )
    assert smk.evaluation_upstream(cfg, "t") == [
        "results/lineage/predict/t.json",
        "results/lineage/statistics/d.json",
        "results/lineage/climatology/d.json",
        "results/lineage/statistics/d.json",
    ]


def test_stage_targets_and_their_parts() -> None:
    cfg = _config(None)
    assert smk.stages(cfg) == {
        "dataset": ["d"],
        "statistics": ["d"],
        "rechunk": ["l"],
        "transfer": ["here/d", "bucket/l"],
        "train": ["t"],
        "predict": ["t"],
        "climatology": [],
        "evaluate": ["t"],
        "compare": ["runs"],
        "transfer_models": [],
    }
    assert smk.load_records(cfg, "d") == [f"results/lineage/load/d/part-{i}-of-2.json" for i in (1, 2)]
    assert smk.layout_markers(cfg, "l")[-1] == "results/lineage/.pending/rechunk_part/l/part-3-of-3.done"
    assert smk_copies.transfer_source(cfg, "bucket", "l") == (
        "results/layouts/l.zarr",
        "results/lineage/rechunk/l.json",
    )
    assert smk.layout_source(cfg, "l") == "results/datasets/d.zarr"


# What the Snakefile's parse runs: the config check (every recipe and its inputs), the load parts'
# inputs, the digest param. None of it needs ecCodes, PyTorch, xarray or MLflow.
PARSE = """
import sys, yaml
from wxpipe import smk
cfg = smk.load_config(yaml.safe_load(open("config/config.yaml")), ["config/config.yaml"])
for d in cfg.datasets:
    smk.recipe_digest(cfg, d), smk.uses_demo(cfg, d)
    [smk.part_inputs(cfg, d, p) for p in smk.part_names(cfg, d)]
print(sorted(m for m in ("eccodes", "gribapi", "torch", "xarray", "mlflow") if m in sys.modules))
"""


def test_planning_imports_nothing_heavy() -> None:
    res = subprocess.run([sys.executable, "-c", PARSE], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_anemoi_runs_train_in_their_own_rule_always_sync_and_are_scored() -> None:
    cfg = _config(None)
    run = cfg.training["t"].model_copy(update={"engine": "anemoi"})
    cfg = cfg.model_copy(update={"training": {"t": cfg.training["t"], "gnn": run}})
    assert smk.runs_pattern(cfg, "wxpipe") == "t" and smk.runs_pattern(cfg, "anemoi") == "gnn"
    assert re.fullmatch(smk.runs_pattern(cfg.model_copy(update={"training": {}}), "anemoi"), "gnn") is None
    assert smk.offline_store(cfg, "gnn") == "results/models/gnn/anemoi/logs/mlflow"
    assert smk.offline_store(cfg, "t") == paths.offline_store("t")
    assert paths.marker("mlflow-sync", "gnn") in smk.stage_waits(cfg, "train")
    assert paths.marker("mlflow-sync", "t") not in smk.stage_waits(cfg, "train")  # online: nothing to sync
    stages = smk.stages(cfg)  # predicted, scored and compared like a built-in run
    assert stages["train"] == stages["predict"] == stages["evaluate"] == ["t", "gnn"]
    assert smk.compared_runs(cfg) == ["t", "gnn"]
