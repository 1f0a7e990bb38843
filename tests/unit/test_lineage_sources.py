"""A load part's record names the files it read, with checksums (real GRIB, netCDF and Zarr), and ``lineage show``,
``verify``, the PROV export and the site carry them down to those files."""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from prov import model as prov_model

from wxpipe import create
from wxpipe.cli import main
from wxpipe.digest import tree_digest
from wxpipe.lineage import read_record
from wxpipe.lineage_chain import show, verify
from wxpipe.lineage_export import entity_id, export, source_id
from wxpipe.sources.demo import demo_path, write_demo_archive

REPO = Path(__file__).resolve().parents[2]
DATES = np.arange(np.datetime64("2020-01-01T00:00:00"), np.datetime64("2020-01-03T00:00:00"), np.timedelta64(6, "h"))
MISSING = np.datetime64("2020-01-01T06:00:00")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A project whose demo archive (a relative path in the recipe) the CLI loads in two parts, writing records;
    2020-01-01T06 is declared missing and its file removed, so no part can have read it."""
    root = tmp_path_factory.mktemp("project")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        write_demo_archive(Path("archive"), DATES, grid="O32", seed=1)
        demo_path(Path("archive"), MISSING).unlink()
        recipe = yaml.safe_load((REPO / "config/recipes/demo.yaml").read_text())
        recipe["dates"].update(start=str(DATES[0]), end=str(DATES[-1]), missing=[str(MISSING)])
        for item in recipe["input"]["join"]:
            next(iter(item.values()))["path"] = "archive/{date:strftime(%Y%m%d%H)}.grib2"
        Path("recipe.yaml").write_text(yaml.safe_dump(recipe))
        assert main(["init", "recipe.yaml", "ds.zarr", "--lineage", "lineage/init.json"]) == 0
        for i in (1, 2):
            load = ["load", "recipe.yaml", "ds.zarr", "--part", f"{i}/2", "--threads", "2"]
            assert main([*load, "--lineage", f"lineage/part-{i}.json", "--upstream", "lineage/init.json"]) == 0
    return root


def _part(built: Path, i: int) -> dict[str, Any]:
    return read_record(built / f"lineage/part-{i}.json")


def test_a_part_records_exactly_the_files_of_its_dates(built: Path) -> None:
    seen = []
    for i in (1, 2):
        rec = _part(built, i)
        start, stop = rec["outputs"][0]["dates"]
        want = [str(demo_path(Path("archive"), d)) for d in DATES[start:stop] if d != MISSING]
        assert [s["path"] for s in rec["sources"]] == want  # relative, as the recipe gives them; each file once
        for s in rec["sources"]:
            data = (built / s["path"]).read_bytes()
            assert s == {"path": s["path"], "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        seen += want
    assert len(seen) == len(DATES) - 1
    assert "sources" not in read_record(built / "lineage/init.json")


def test_show_lists_a_parts_sources_with_their_checksums(built: Path) -> None:
    part = _part(built, 1)
    text = show(built / "lineage", str(built / "ds.zarr"), root=built)
    total = sum(s["size"] for s in part["sources"])
    assert f"  sources: {len(part['sources'])} files, {total} bytes" in text.splitlines()
    for s in part["sources"]:
        assert f"{s['path']}  {s['size']} bytes  sha256:{s['sha256']}" in text
    assert text.count(f"part {read_record(built / 'lineage/init.json')['id']} (init)") == 1  # the stage, named
    assert f"part {part['id']} (load 1/2)" in text


def test_verify_reports_a_source_changed_or_gone_after_the_build(built: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="wxpipe.lineage_chain"):
        assert verify(built / "lineage", root=built) == []
    assert "; sources: 7 ok" in caplog.text
    part = _part(built, 2)
    flipped, gone = (built / part["sources"][k]["path"] for k in (1, 2))
    original = flipped.read_bytes()
    caplog.clear()
    try:
        flipped.write_bytes(original[:100] + bytes([original[100] ^ 1]) + original[101:])
        gone.rename(gone.with_suffix(".away"))
        with caplog.at_level(logging.INFO, logger="wxpipe.lineage_chain"):
            drift = verify(built / "lineage", root=built)
    finally:
        flipped.write_bytes(original)
        gone.with_suffix(".away").rename(gone)
    assert {(d.record, d.path, d.what) for d in drift} == {
        (part["id"], part["sources"][1]["path"], "changed"),
        (part["id"], part["sources"][2]["path"], "missing"),
    }
    changed = next(d for d in drift if d.what == "changed")
    assert changed.expected == part["sources"][1]["sha256"] != changed.found
    assert "sources: 1 changed, 1 missing, 5 ok" in caplog.text
    assert f"source changed: {part['sources'][1]['path']}" in caplog.text


def test_prov_export_has_each_source_used_by_its_part(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(built)
    export("lineage", prov=Path("out/lineage.prov.json"))
    doc = prov_model.ProvDocument.deserialize(source="out/lineage.prov.json", format="json")
    used: dict[str, set[str]] = {}
    for u in doc.get_records(prov_model.ProvUsage):
        ends = dict(u.formal_attributes)
        used.setdefault(str(ends[prov_model.PROV_ATTR_ACTIVITY]), set()).add(str(ends[prov_model.PROV_ATTR_ENTITY]))
    sources = {
        str(e.identifier)
        for e in doc.get_records(prov_model.ProvEntity)
        if str(e.identifier).startswith("wxpipe:source/")
    }
    raw = json.loads(Path("out/lineage.prov.json").read_text())
    init = read_record("lineage/init.json")
    for i in (1, 2):
        part = _part(built, i)
        mine = {source_id(s) for s in part["sources"]}
        assert used[f"wxpipe:record/{part['id']}"] == mine | {entity_id(init, 0)}
        assert mine <= sources
        for s in part["sources"]:
            entity = raw["entity"][source_id(s)]
            assert entity["prov:location"] == s["path"] and entity["wxpipe:sha256"] == s["sha256"]
            assert entity["wxpipe:exists"] is True
        assert "wxpipe:sources" not in raw["activity"][f"wxpipe:record/{part['id']}"]
    assert len(sources) == len(DATES) - 1


def test_crate_has_each_source_as_an_object_of_its_part(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(built)
    export("lineage", crate=Path("out/crate"))
    graph = {e["@id"]: e for e in json.loads(Path("out/crate/ro-crate-metadata.json").read_text())["@graph"]}
    for i in (1, 2):
        part = _part(built, i)
        objects = [graph[o["@id"]] for o in graph[f"#{part['id']}"]["object"]]
        read = {e["name"]: e for e in objects if e["@type"] == "File"}
        assert read.keys() == {s["path"] for s in part["sources"]}
        assert all(read[s["path"]]["sha256"] == s["sha256"] for s in part["sources"])


def test_site_record_page_lists_the_sources_collapsed(built: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(built)
    assert main(["lineage", "catalogue", "out", "--records", "lineage"]) == 0
    part = _part(built, 1)
    html = (built / f"out/site/records/{part['id']}.html").read_text()
    block = html[html.index('<details class="sources">') : html.index("</details>")]
    assert f"{len(part['sources'])} files read" in block
    assert block.count('<tr class="source">') == len(part["sources"])
    for s in part["sources"]:
        assert s["path"] in block and f"sha256:{s['sha256']}" in block
    init = read_record("lineage/init.json")
    assert "<details" not in (built / f"out/site/records/{init['id']}.html").read_text()


def test_netcdf_and_zarr_sources_are_each_listed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import xarray as xr

    monkeypatch.chdir(tmp_path)
    times = DATES[:4]
    lat, lon = np.linspace(90, -90, 7), np.arange(0, 360, 60.0)
    values = np.random.default_rng(0).standard_normal((len(times), len(lat), len(lon))) + 250
    coords = {"time": times, "latitude": lat, "longitude": lon}
    xr.Dataset({"t": (("time", "latitude", "longitude"), values)}, coords=coords).to_netcdf("t.nc")
    xr.Dataset({"u": (("time", "latitude", "longitude"), values - 250)}, coords=coords).to_zarr("u.zarr", zarr_format=2)
    recipe = {
        "dates": {"start": str(times[0]), "end": str(times[-1]), "frequency": "6h"},
        "input": {
            "join": [{"netcdf": {"path": "t.nc", "param": ["t"]}}, {"xarray-zarr": {"url": "u.zarr", "param": ["u"]}}]
        },
    }
    Path("r.yaml").write_text(yaml.safe_dump(recipe))
    sources = create.part_sources("r.yaml", times[2:], threads=2)
    nc = Path("t.nc").read_bytes()
    assert sources[0] == {"path": "t.nc", "size": len(nc), "sha256": hashlib.sha256(nc).hexdigest()}
    store = sources[1]
    assert store["path"] == "u.zarr" and store["digest"] == tree_digest(Path("u.zarr")) and store["files"] > 2
    assert len(sources) == 2
