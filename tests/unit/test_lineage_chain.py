"""`wxpipe lineage show` and `verify` over records written by `write_record`; what a record says about its run."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from wxpipe import digest, provenance
from wxpipe.digest import tree_digest
from wxpipe.errors import WxpipeError
from wxpipe.lineage import describe_file, describe_tree, record_git, write_record
from wxpipe.lineage_chain import Drift, show, verify


def _chain(tmp_path: Path) -> dict[str, dict[str, object]]:
    """archive (a folder of files) -> init part -> dataset (a store) -> checkpoint (a file), under tmp_path."""
    grib = tmp_path / "results/demo/grib"
    grib.mkdir(parents=True)
    for i in range(3):
        (grib / f"20200101{i:02d}.grib2").write_bytes(bytes([i]) * (100 + i))
    store = tmp_path / "results/datasets/demo.zarr"
    (store / "data").mkdir(parents=True)
    (store / "zarr.json").write_text("{}")
    (store / "data/0.0").write_bytes(b"\1" * 64)
    ckpt = tmp_path / "results/models/demo/checkpoint.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"weights")
    lin = tmp_path / "results/lineage"
    recs = {
        "archive": write_record(lin / "demo/archive.json", "archive", [describe_tree(grib)], params={"seed": 1}),
        "init": write_record(
            lin / "init/demo.json", "part", [{"path": str(store), "stage": "init"}], [lin / "demo/archive.json"]
        ),
        "dataset": write_record(
            lin / "dataset/demo.json", "dataset", [describe_tree(store, uuid="u1")], [lin / "init/demo.json"]
        ),
        "checkpoint": write_record(
            lin / "train/demo.json", "checkpoint", [describe_file(ckpt)], [lin / "dataset/demo.json"]
        ),
    }
    write_record(lin / ".pending/train/demo.json", "checkpoint", [{"path": "elsewhere"}])
    return recs


def test_tree_digest_names_its_algorithm_and_follows_content(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "a/x").write_bytes(b"1")
    first = tree_digest(tmp_path)
    assert first.startswith("sha256-tree:") and len(first) == len("sha256-tree:") + 64
    assert describe_tree(tmp_path)["digest"] == first
    (tmp_path / "a/x").write_bytes(b"2")
    assert tree_digest(tmp_path) != first
    (tmp_path / "a/x").write_bytes(b"1")
    (tmp_path / ".snakemake_timestamp").touch()  # Snakemake marks a directory output after the job
    (tmp_path / "a/.x.tmp123").write_bytes(b"half")  # a writer's temporary
    assert tree_digest(tmp_path) == first
    content = {"path": str(tmp_path), "size": 1, "files": 1, "digest": first}  # the stamp and temporary left out
    assert describe_tree(tmp_path) == content
    (tmp_path / "a/x").rename(tmp_path / "a/y")
    assert tree_digest(tmp_path) != first


def test_a_large_store_gets_a_digest_of_its_shape(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Above the limit the metadata is hashed and the chunks counted by name and size, so writing a record of a
    large dataset does not read it all again; verify recomputes by the recorded algorithm."""
    monkeypatch.setattr(digest, "FULL_LIMIT", 4)
    (tmp_path / ".zarray").write_text('{"shape": [2]}')
    (tmp_path / "0").write_bytes(b"abcd")
    shape = tree_digest(tmp_path)
    assert shape.startswith("sha256-shape:")
    (tmp_path / "0").write_bytes(b"abce")  # same size: a shape digest cannot see it
    assert digest.recompute(shape, tmp_path) == shape
    (tmp_path / ".zarray").write_text('{"shape": [3]}')
    assert digest.recompute(shape, tmp_path) != shape
    assert digest.recompute(tree_digest(tmp_path, algorithm="sha256-tree"), tmp_path).startswith("sha256-tree:")


def test_show_by_id_and_by_path_lists_the_chain_down_to_the_archive(tmp_path: Path) -> None:
    recs = _chain(tmp_path)
    lin = tmp_path / "results/lineage"
    by_id = show(lin, str(recs["checkpoint"]["id"]), root=tmp_path)
    by_path = show(lin, "results/models/demo/checkpoint.pt", root=tmp_path)
    assert by_id == by_path
    lines = by_id.splitlines()
    assert lines[0] == f"checkpoint {recs['checkpoint']['id']}"
    kinds = {"checkpoint", "dataset", "part", "archive"}
    heads = [ln.split()[1] for ln in lines if ln.split()[0] in kinds]
    assert heads == [str(recs[k]["id"]) for k in ("checkpoint", "dataset", "init", "archive")]
    archive_line = next(ln for ln in lines if ln.strip() == f"archive {recs['archive']['id']}")
    assert archive_line.startswith(" " * 12)
    out = recs["checkpoint"]["outputs"][0]  # type: ignore[index]
    assert f"sha256:{out['sha256']}" in by_id
    assert str(recs["dataset"]["outputs"][0]["digest"]) in by_id  # type: ignore[index]
    assert str(recs["archive"]["outputs"][0]["digest"]) in by_id  # type: ignore[index]
    assert "git " in by_id and "command " in by_id


def test_show_starts_a_shared_path_from_its_last_writer(tmp_path: Path) -> None:
    recs = _chain(tmp_path)
    text = show(tmp_path / "results/lineage", str(tmp_path / "results/datasets/demo.zarr"), root=tmp_path)
    assert text.splitlines()[0] == f"dataset {recs['dataset']['id']}"
    assert text.count(f"part {recs['init']['id']}") == 1


def test_show_refers_back_to_a_record_reached_twice(tmp_path: Path) -> None:
    a = tmp_path / "a.txt"
    a.write_text("a")
    write_record(tmp_path / "r/up.json", "archive", [describe_file(a)])
    write_record(tmp_path / "r/left.json", "dataset", [{"path": "l"}], [tmp_path / "r/up.json"])
    write_record(tmp_path / "r/right.json", "statistics", [{"path": "r"}], [tmp_path / "r/up.json"])
    top = write_record(tmp_path / "r/top.json", "evaluation", [], [tmp_path / "r/left.json", tmp_path / "r/right.json"])
    text = show(tmp_path / "r", str(top["id"]), root=tmp_path)
    up = read_id(tmp_path / "r/up.json")
    assert text.count(f"archive {up}") == 1
    assert f"{up} (shown above)" in text


def read_id(path: Path) -> str:
    return str(json.loads(path.read_text())["id"])


def test_show_unknown_target_says_how_many_records_were_searched(tmp_path: Path) -> None:
    _chain(tmp_path)
    with pytest.raises(WxpipeError, match=r"'nope'.*4 records searched"):
        show(tmp_path / "results/lineage", "nope", root=tmp_path)


def test_verify_reports_changed_and_missing_outputs(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    recs = _chain(tmp_path)
    lin = tmp_path / "results/lineage"
    with caplog.at_level(logging.INFO, logger="wxpipe.lineage_chain"):
        assert verify(lin, root=tmp_path) == []
    assert "3 ok" in caplog.text and "1 superseded" in caplog.text
    (tmp_path / "results/models/demo/checkpoint.pt").write_bytes(b"tampered")
    (tmp_path / "results/datasets/demo.zarr/data/0.0").write_bytes(b"\2" * 64)
    for f in (tmp_path / "results/demo/grib").iterdir():
        f.unlink()
    (tmp_path / "results/demo/grib").rmdir()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="wxpipe.lineage_chain"):
        drift = verify(lin, root=tmp_path)
    by_what = {(d.record, d.what) for d in drift}
    assert by_what == {
        (recs["checkpoint"]["id"], "changed"),
        (recs["dataset"]["id"], "changed"),
        (recs["archive"]["id"], "missing"),
    }
    changed = next(d for d in drift if d.record == recs["checkpoint"]["id"])
    assert isinstance(changed, Drift) and changed.path.endswith("checkpoint.pt")
    assert changed.expected == recs["checkpoint"]["outputs"][0]["sha256"]  # type: ignore[index]
    assert "changed: " in caplog.text and "missing: " in caplog.text


def test_verify_recomputes_a_local_copys_manifest(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy at a file: site is checked against the manifest digest its record holds, marker order included."""
    from wxpipe.cli import main

    monkeypatch.chdir(tmp_path)
    src = tmp_path / "a.zarr"
    (src / "data").mkdir(parents=True)
    for i in range(3):
        (src / "data" / f"{i}.0").write_bytes(bytes([i]) * (50 + i))
    (src / ".zattrs").write_text("{}")
    rec = tmp_path / "r/transfer/site/a.json"
    assert main(["copy", str(src), "file:site/a.zarr", "--lineage", str(rec)]) == 0
    assert verify(tmp_path / "r", root=tmp_path) == []
    (tmp_path / "site/a.zarr/.snakemake_timestamp").touch()  # not content: still the copy it was
    assert verify(tmp_path / "r", root=tmp_path) == []
    (tmp_path / "site/a.zarr/data/1.0").write_bytes(b"\xff" * 51)
    (drift,) = verify(tmp_path / "r", root=tmp_path)
    assert drift.what == "changed" and drift.expected == json.loads(rec.read_text())["outputs"][0]["manifest_sha256"]


def test_verify_lists_outputs_without_a_checksum_as_unchecked(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = tmp_path / "store"
    out.mkdir()
    write_record(tmp_path / "r/a.json", "layout", [{"path": str(out), "size": 0}])
    write_record(tmp_path / "r/b.json", "copy", [{"path": "s3://bucket/x.zarr", "manifest_sha256": "0" * 64}])
    with caplog.at_level(logging.INFO, logger="wxpipe.lineage_chain"):
        assert verify(tmp_path / "r", root=tmp_path) == []
    assert "unchecked: " in caplog.text and "unchecked (remote): s3://bucket/x.zarr" in caplog.text


def test_command_line_is_recorded_with_secrets_blanked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    argv = ["/opt/env/bin/wxpipe", "copy", "--secret-key", "abc", "--url", "https://u:pw@host/x"]
    monkeypatch.setattr(sys, "argv", [*argv, "api_token=zzz", "--password=hunter2", "--keep", "plain"])
    rec = write_record(tmp_path / "r.json", "copy", [])
    cmd = rec["execution"]["command"]
    assert cmd.startswith("wxpipe copy --secret-key '***' --url https://host/x")
    assert "'api_token=***'" in cmd and "'--password=***'" in cmd and "--keep plain" in cmd
    for secret in ("abc", "pw@", "u:", "zzz", "hunter2"):
        assert secret not in cmd
    assert provenance.command_line(["wxpipe", "x", "--tracking-uri=https://a:b@h:5000"]) == (
        "wxpipe x --tracking-uri=https://h:5000"
    )


def test_git_dirty_and_config_hash_are_recorded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(provenance, "git_commit", lambda: "c0ffee")
    monkeypatch.setattr(provenance, "git_dirty", lambda: True)
    monkeypatch.setenv("WXPIPE_CONFIG_HASH", "cfg123")
    rec = write_record(tmp_path / "r.json", "dataset", [])
    assert rec["software"]["git"] == {"commit": "c0ffee", "dirty": True}
    assert rec["config_hash"] == "cfg123"
    assert record_git(rec) == ("c0ffee", True)
    assert record_git({"software": {"git": "old"}}) == ("old", None)
    assert "c0ffee (dirty)" in show(tmp_path, str(rec["id"]), root=tmp_path)
    monkeypatch.delenv("WXPIPE_CONFIG_HASH")
    monkeypatch.setattr(provenance, "git_dirty", lambda: None)
    again = write_record(tmp_path / "r.json", "dataset", [])
    assert again["config_hash"] is None and again["software"]["git"]["dirty"] is None
    assert again["id"] == rec["id"]


def test_verify_reaches_only_the_last_remote_copy_and_an_unreachable_site_fails_only_when_strict(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))  # no keys: nothing is contacted
    url = "s3://bucket/x.zarr"
    site = {"site": {"endpoint_url": "http://127.0.0.1:9", "profile": "p"}}
    old = write_record(tmp_path / "r/a.json", "copy", [{"path": url, "url": url, "manifest_sha256": "0" * 64}])
    new = write_record(
        tmp_path / "r/b.json", "copy", [{"path": url, "url": url, "manifest_sha256": "1" * 64}], [tmp_path / "r/a.json"]
    )
    with caplog.at_level(logging.INFO, logger="wxpipe.lineage_chain"):
        assert verify(tmp_path / "r", root=tmp_path, sites=True) == []
    assert f"superseded by {new['id']}: {url} ({old['id']})" in caplog.text
    assert f"unreachable: {url} ({new['id']})" in caplog.text and f"site {url}: no S3 credentials" in caplog.text
    rewritten = write_record(
        tmp_path / "r/b.json", "copy", [{"path": url, "url": url, "manifest_sha256": "1" * 64}], params=site
    )
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="wxpipe.lineage_chain"):
        drift = verify(tmp_path / "r", root=tmp_path, sites=True, strict=True)
    assert [(d.record, d.what) for d in drift] == [(rewritten["id"], "unreachable")]  # the later of two unrelated
    assert "profile 'p' asked for" in caplog.text  # the recorded profile name is the one used


def test_show_lists_twenty_sources_of_a_part_unless_asked_for_all(tmp_path: Path) -> None:
    sources = []
    for i in range(25):
        (tmp_path / f"{i:02d}.grib2").write_bytes(bytes([i]) * (10 + i))
        sources.append(describe_file(tmp_path / f"{i:02d}.grib2"))
    rec = write_record(tmp_path / "r/part.json", "part", [{"path": "ds.zarr"}], extra={"sources": sources})
    lines = show(tmp_path / "r", str(rec["id"]), root=tmp_path).splitlines()
    assert f"  sources: 25 files, {sum(s['size'] for s in sources)} bytes" in lines
    listed = [ln for ln in lines if ".grib2  " in ln]
    assert listed == [f"    {s['path']}  {s['size']} bytes  sha256:{s['sha256']}" for s in sources[:20]]
    assert lines[lines.index(listed[-1]) + 1] == "    … and 5 more (lineage show --all)"
    every = show(tmp_path / "r", str(rec["id"]), root=tmp_path, everything=True)
    assert every.count(".grib2  ") == 25 and "more (lineage show --all)" not in every
