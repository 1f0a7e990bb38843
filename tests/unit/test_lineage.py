"""Lineage records: content-derived ids, resolvable inputs, no credentials."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wxpipe.errors import WxpipeError
from wxpipe.lineage import catalogue, describe_file, publish, write_catalogue, write_record


def test_ids_derive_from_content(tmp_path: Path) -> None:
    out = tmp_path / "a.txt"
    out.write_text("one")
    a = write_record(tmp_path / "r1.json", "dataset", [describe_file(out)], params={"x": 1})
    b = write_record(tmp_path / "r2.json", "dataset", [describe_file(out)], params={"x": 1})
    c = write_record(tmp_path / "r3.json", "dataset", [describe_file(out)], params={"x": 2})
    assert a["id"] == b["id"] != c["id"]
    out.write_text("two")
    d = write_record(tmp_path / "r4.json", "dataset", [describe_file(out)], params={"x": 1})
    assert d["id"] != a["id"]
    # a part made from other bytes of its GRIB is another part, though it wrote the same store region
    read = [{"path": "a.grib", "size": 4, "sha256": "00" * 32}]
    e, f = (
        write_record(tmp_path / f"r{i}.json", "part", [{"path": "s.zarr"}], extra={"sources": read}) for i in (5, 6)
    )
    g = write_record(
        tmp_path / "r7.json", "part", [{"path": "s.zarr"}], extra={"sources": [read[0] | {"sha256": "11" * 32}]}
    )
    assert e["id"] == f["id"] != g["id"]


def test_catalogue_joins_and_rejects_dangling(tmp_path: Path) -> None:
    up = write_record(tmp_path / "up.json", "dataset", [{"path": "d.zarr"}])
    down = write_record(tmp_path / "down.json", "statistics", [{"path": "d.zarr"}], inputs=[tmp_path / "up.json"])
    assert down["inputs"] == [up["id"]]
    cat = write_catalogue([tmp_path / "up.json", tmp_path / "down.json"], tmp_path / "cat")
    assert cat["edges"] == [[up["id"], down["id"]]]
    assert up["id"] in (tmp_path / "cat/catalogue.dot").read_text()
    assert json.loads((tmp_path / "cat/catalogue.json").read_text())["records"].keys() == {up["id"], down["id"]}
    with pytest.raises(WxpipeError, match=up["id"]):
        catalogue([tmp_path / "down.json"])


def test_credentials_never_recorded(tmp_path: Path) -> None:
    with pytest.raises(WxpipeError, match="credential"):
        write_record(tmp_path / "r.json", "copy", [], params={"s3": {"secret_access_key": "x"}})
    assert not (tmp_path / "r.json").exists()


def test_publish_copies_checked_records(tmp_path: Path) -> None:
    pending = tmp_path / "pending"
    rec = pending / "transfer/site/ds.json"
    write_record(rec, "copy", [{"path": "x"}])
    target = tmp_path / "final/transfer/site/ds.json"
    publish(rec, target)
    assert target.read_text() == rec.read_text()
    (pending / "broken.json").write_text("{")
    with pytest.raises(WxpipeError, match="not a lineage record"):
        publish(pending / "broken.json", tmp_path / "final/broken.json")
    assert not (tmp_path / "final/broken.json").exists()
