"""A model's bundle: the files its transfers send, linked under one folder, never half there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wxpipe.errors import WxpipeError
from wxpipe.transfer import copy_tree, make_manifest
from wxpipe.transfer.bundle import make_bundle, parse_files


def _files(tmp_path: Path) -> dict[str, Path]:
    (tmp_path / "m").mkdir()
    (tmp_path / "m/checkpoint.pt").write_bytes(b"weights" * 100)
    (tmp_path / "m/scores.json").write_text('{"rmse": 1}')
    return parse_files(
        [f"checkpoint.pt={tmp_path / 'm/checkpoint.pt'}", f"evaluation/scores.json={tmp_path / 'm/scores.json'}"]
    )


def test_the_bundle_links_the_files_under_their_names(tmp_path: Path) -> None:
    files = _files(tmp_path)
    out = tmp_path / "bundle"
    assert make_bundle(out, files) == 700 + 11
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file()) == [
        "checkpoint.pt",
        "evaluation/scores.json",
    ]
    assert os.path.samefile(out / "checkpoint.pt", files["checkpoint.pt"])  # a link, no byte copied
    assert (out / "checkpoint.pt").stat().st_mtime_ns == files["checkpoint.pt"].stat().st_mtime_ns


def test_a_new_bundle_replaces_the_old_and_copies_as_a_tree(tmp_path: Path) -> None:
    files = _files(tmp_path)
    out = tmp_path / "bundle"
    make_bundle(out, files)
    (out / "stale.txt").write_text("from an older bundle")
    make_bundle(out, files)
    assert not (out / "stale.txt").exists()
    (out / ".snakemake_timestamp").touch()  # Snakemake's stamp of a directory output: not content
    copy_tree(out, tmp_path / "site/models/r")
    assert not (tmp_path / "site/models/r/.snakemake_timestamp").exists()
    assert make_manifest(tmp_path / "site/models/r") == make_manifest(out)


def test_a_missing_file_fails_and_leaves_no_bundle(tmp_path: Path) -> None:
    files = _files(tmp_path) | {"loss.json": tmp_path / "m/loss.json"}
    with pytest.raises(WxpipeError, match=r"bundle .*bundle: no file .*m/loss.json"):
        make_bundle(tmp_path / "bundle", files)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


@pytest.mark.parametrize("pair", ["checkpoint.pt", "=x", "/abs=x", "../up=x", "a/../../b=x"])
def test_a_name_must_stay_inside_the_bundle(pair: str) -> None:
    with pytest.raises(WxpipeError, match="NAME=PATH"):
        parse_files([pair])
