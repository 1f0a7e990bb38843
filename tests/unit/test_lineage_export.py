"""The lineage export: PROV-JSON read back by the ``prov`` package, a Workflow Run RO-Crate checked by roc-validator.

The records are an archive -> dataset -> checkpoint -> evaluation chain written by ``write_record`` over real
small files, with one output removed afterwards and one pending record that the export must skip.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from prov import model as prov_model
from rocrate_validator import services
from rocrate_validator.models import Severity
from rocrate_validator.utils import document_loader as loader

from wxpipe.lineage import describe_file, describe_tree, write_record
from wxpipe.lineage_export import export

CRATE_CONTEXT = "https://w3id.org/ro/crate/1.1/context"
WORKFLOW_RUN_CRATE = "https://w3id.org/ro/wfrun/workflow/0.5"
PROV_KINDS = ("Activity", "Entity", "Usage", "Derivation", "Generation", "Association", "Agent")


def _file(path: str, text: str) -> str:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(text)
    return path


@pytest.fixture
def chain(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    """Four published records and one pending, in a project rooted at ``tmp_path`` (the working directory)."""
    monkeypatch.chdir(tmp_path)
    _file("Snakefile", "include: 'workflow/rules/dataset.smk'\n")
    _file("workflow/rules/dataset.smk", "rule dataset:\n    output: 'x'\n")
    lin = Path("results/lineage")
    for name in ("a.grib", "b.grib"):
        _file(f"archive/{name}", f"GRIB {name}")
    archive = write_record(lin / "demo/archive.json", "archive", [describe_tree("archive")])
    _file("results/datasets/demo.zarr/zarr.json", "{}")
    dataset = write_record(
        lin / "dataset/demo.json", "dataset", [describe_tree("results/datasets/demo.zarr", uuid="u-1")],
        inputs=[lin / "demo/archive.json"], params={"recipe": {"dates": ["2020-01-01", "2020-01-31"], "frequency": 6}},
    )  # fmt: skip
    ckpt = _file("results/checkpoints/demo.ckpt", "weights")
    checkpoint = write_record(
        lin / "train/demo.json", "checkpoint", [describe_file(ckpt)], inputs=[lin / "dataset/demo.json"],
        params={"epochs": 2, "lr": 1e-3, "model name": "demo"},
    )  # fmt: skip
    outs = [_file("results/evaluation/demo/scores.nc", "nc"), _file("results/evaluation/demo/scores.json", "{}")]
    evaluation = write_record(
        lin / "evaluate/demo.json", "evaluation", [describe_file(p) for p in outs],
        inputs=[lin / "train/demo.json", lin / "dataset/demo.json"], params={"leads": [1, 2], "baseline": None},
    )  # fmt: skip
    Path("results/evaluation/demo/scores.json").unlink()
    write_record(lin / ".pending/evaluate/other.json", "evaluation", [], inputs=[lin / "train/demo.json"])
    return {r["kind"]: r for r in (archive, dataset, checkpoint, evaluation)}


def _expected(records: dict[str, dict[str, Any]]) -> dict[str, int]:
    by_id = {r["id"]: r for r in records.values()}
    used = {r["id"]: sum(len(by_id[i]["outputs"]) for i in r["inputs"]) for r in records.values()}
    return {
        "activities": len(records),
        "entities": sum(len(r["outputs"]) for r in records.values()),
        "used": sum(used.values()),
        "derived": sum(len(r["outputs"]) * used[r["id"]] for r in records.values()),
    }


def test_prov_json_reads_back(chain: dict[str, dict[str, Any]], caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        export("results/lineage", prov=Path("out/lineage.prov.json"))
    assert "results/evaluation/demo/scores.json no longer exists" in caplog.text
    doc = prov_model.ProvDocument.deserialize(source="out/lineage.prov.json", format="json")
    want = _expected(chain)
    records = {kind: list(doc.get_records(getattr(prov_model, f"Prov{kind}"))) for kind in PROV_KINDS}
    assert {k: len(v) for k, v in records.items()} == {
        "Activity": want["activities"], "Entity": want["entities"], "Usage": want["used"],
        "Derivation": want["derived"], "Generation": want["entities"], "Association": len(chain), "Agent": 1,
    }  # fmt: skip
    (agent,) = records["Agent"]
    assert prov_model.PROV["SoftwareAgent"] in agent.get_asserted_types()
    assert "wasDerivedFrom" in doc.serialize(format="provn")
    raw = json.loads(Path("out/lineage.prov.json").read_text())
    ckpt = raw["activity"][f"wxpipe:record/{chain['checkpoint']['id']}"]
    assert ckpt["wxpipe:params.epochs"] == 2 and ckpt["wxpipe:params.model_name"] == "demo"
    entity = raw["entity"][f"wxpipe:entity/{chain['checkpoint']['id']}/0"]
    assert entity["wxpipe:sha256"] == chain["checkpoint"]["outputs"][0]["sha256"] and entity["wxpipe:exists"]
    assert raw["entity"][f"wxpipe:entity/{chain['evaluation']['id']}/1"]["wxpipe:exists"] is False


def test_crate_describes_every_run(chain: dict[str, dict[str, Any]]) -> None:
    crate = Path("results/crate")
    export("results/lineage", crate=crate)
    graph = {e["@id"]: e for e in json.loads((crate / "ro-crate-metadata.json").read_text())["@graph"]}
    root = graph["./"]
    assert {"@id": WORKFLOW_RUN_CRATE} in root["conformsTo"]
    main = graph[root["mainEntity"]["@id"]]
    assert "ComputationalWorkflow" in main["@type"] and (crate / main["@id"]).resolve() == Path("Snakefile").resolve()
    actions = {e["@id"]: e for e in graph.values() if e["@type"] == "CreateAction"}
    assert actions.keys() == {f"#{r['id']}" for r in chain.values()}
    evaluation = actions[f"#{chain['evaluation']['id']}"]
    assert evaluation["instrument"] == {"@id": main["@id"]} and "agent" not in evaluation
    assert evaluation["startTime"] == chain["evaluation"]["execution"]["start"]
    scores = graph[evaluation["result"][0]["@id"]]
    assert (crate / scores["@id"]).resolve() == Path("results/evaluation/demo/scores.nc").resolve()
    assert scores["sha256"] == chain["evaluation"]["outputs"][0]["sha256"] and scores["contentSize"] == "2"
    objects = {graph[o["@id"]]["@type"] for o in evaluation["object"]}
    assert objects == {"File", "Dataset"} and not list(crate.glob("*.zarr"))


@pytest.fixture
def offline_context(monkeypatch: pytest.MonkeyPatch) -> None:
    """RO-Crate's JSON-LD context from ``rocrate``'s copy, bioschemas terms as 1.1 names them: no network here."""
    ctx = json.loads(resources.files("rocrate").joinpath("data/ro-crate.jsonld").read_text())["@context"]
    ctx = {k: v.replace("https://bioschemas.org/terms/", "https://bioschemas.org/") for k, v in ctx.items()}
    fetch = loader._fetch_json_ld

    def local(url: str) -> Any:
        return {"@context": ctx} if url == CRATE_CONTEXT else fetch(url)

    monkeypatch.setattr(loader, "_fetch_json_ld", local)


def _required_issues(crate: Path) -> Iterator[str]:
    settings = services.ValidationSettings(
        rocrate_uri=str(crate.resolve()), profile_identifier="workflow-run-crate",
        requirement_severity=Severity.REQUIRED, offline=True,
        skip_checks=["ro-crate-1.1_3.1", "ro-crate-1.1_3.2"],  # they fetch the context over the network
    )  # fmt: skip
    result = services.validate(settings)
    yield from (f"{i.check.identifier}: {i.message}" for i in result.get_issues() if i.severity == Severity.REQUIRED)


@pytest.mark.usefixtures("offline_context")
def test_crate_passes_roc_validator(chain: dict[str, dict[str, Any]]) -> None:
    crate = Path("results/crate")
    export("results/lineage", crate=crate)
    assert list(_required_issues(crate)) == []
    broken = Path("results/broken-crate")
    shutil.copytree(crate, broken)
    doc = json.loads((broken / "ro-crate-metadata.json").read_text())
    doc["@graph"] = [e for e in doc["@graph"] if e.get("@type") != "CreateAction"]
    (broken / "ro-crate-metadata.json").write_text(json.dumps(doc))
    issues = list(_required_issues(broken))
    assert any("CreateAction" in issue for issue in issues), issues
