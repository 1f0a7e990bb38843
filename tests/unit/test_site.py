"""The lineage site: built from a small chain of records and a real tiny store, read back as HTML."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from wxpipe import paths
from wxpipe.cli import main
from wxpipe.dataset import Dataset
from wxpipe.fsutil import tree_size
from wxpipe.lineage import describe_file, describe_tree, read_record, write_record
from wxpipe.site._render import graph_svg, human_size

LINEAGE = Path("results/lineage")
LINK_ATTRS = ("href", "src", "xlink:href")
VOID = {"meta", "link", "img", "br", "hr", "input"}


class Page(HTMLParser):
    """One page: its links, its table rows' attributes and the text of each element with a class, by class."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.links: list[str] = []
        self.rows: list[dict[str, str | None]] = []
        self.text: dict[str, list[str]] = {}
        self._open: list[tuple[str, list[str], list[str]]] = []
        self.feed(path.read_text())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        self.links += [v for k, v in attrs if k in LINK_ATTRS and v]
        if tag == "tr":
            self.rows.append(found)
        if tag not in VOID:
            self._open.append((tag, (found.get("class") or "").split(), []))

    def handle_endtag(self, tag: str) -> None:
        while self._open:
            name, classes, parts = self._open.pop()
            text = "".join(parts).strip()
            for cls in classes:
                self.text.setdefault(cls, []).append(text)
            if self._open:
                self._open[-1][2].append(text)
            if name == tag:
                break

    def handle_data(self, data: str) -> None:
        if self._open:
            self._open[-1][2].append(data)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, make_dataset: Callable[..., Dataset]) -> dict[str, Any]:
    """A chain archive -> dataset -> copy -> checkpoint -> forecasts -> evaluation, under a project folder."""
    root = tmp_path_factory.mktemp("project")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        return _chain(root, make_dataset)


def _file(path: str, data: bytes = b"x") -> Path:
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def _chain(root: Path, make_dataset: Callable[..., Dataset]) -> dict[str, Any]:
    grib = _file("results/demo/grib/a.grib")
    archive = write_record(LINEAGE / "demo/archive.json", "archive", [describe_tree(grib.parent)])
    shutil.rmtree(grib.parent)
    ds = make_dataset(Path("results/datasets/tiny.zarr"))
    dataset = write_record(
        LINEAGE / "dataset/tiny.json",
        "dataset",
        [describe_tree(ds.path, uuid=ds.uuid)],
        [LINEAGE / "demo/archive.json"],
    )
    nans = {v: 10 * i for i, v in enumerate(ds.variables)}
    stats_out = describe_tree(ds.path, uuid=ds.uuid) | {"nans": nans}
    write_record(LINEAGE / "statistics/tiny.json", "statistics", [stats_out], [LINEAGE / "dataset/tiny.json"])
    read = [
        describe_file(_file("archive/b.grib", b"GRIB b")),
        {"path": str(grib), "size": 1, "sha256": "00" * 32},
    ]
    write_record(
        LINEAGE / "load/tiny.json", "part", [{"path": str(ds.path), "stage": "load 1/1"}], extra={"sources": read}
    )
    copy_out = {"path": "results/sites/scratch/tiny.zarr", "url": "file:results/sites/scratch/tiny.zarr"}
    write_record(
        LINEAGE / "transfer/scratch/tiny.json",
        "copy",
        [copy_out | {"manifest_sha256": "ab" * 32}],
        [LINEAGE / "dataset/tiny.json"],
    )
    lay = _file("results/layouts/tiny-ts.zarr/zarr.json", b"{}").parent
    lay_out = [describe_tree(lay)]
    write_record(
        LINEAGE / "rechunk/tiny-ts.json", "layout", lay_out, [LINEAGE / "dataset/tiny.json"], {"chunks": [8, 64]}
    )
    ckpt = _file("results/models/run/checkpoint.pt", b"weights")
    _file("results/models/run/loss_curve.png", b"png")
    mlflow = {"run_id": "r1", "experiment_id": "3", "tracking_uri": "http://mlflow.example:5000"}
    write_record(
        LINEAGE / "train/run.json",
        "checkpoint",
        [describe_file(ckpt)],
        [LINEAGE / "dataset/tiny.json", LINEAGE / "transfer/scratch/tiny.json", LINEAGE / "rechunk/tiny-ts.json"],
        params={"engine": "wxpipe"},
        extra={"mlflow": mlflow},
    )
    fc = _file("results/forecasts/run.zarr/zarr.json", b"{}").parent
    write_record(LINEAGE / "predict/run.json", "forecasts", [describe_tree(fc)], [LINEAGE / "train/run.json"])
    scores = {
        "forecasts": {"run": "model", "persistence": "persistence"},
        "leads_hours": [6, 12],
        "units": {"2t": "K"},
        "scores": {"rmse": {"run": {"global": {"2t": [0.5, 0.75]}}, "persistence": {"global": {"2t": [1.5, 2.25]}}}},
    }
    sj = _file("results/evaluation/run/scores.json", json.dumps(scores).encode())
    card = _file("results/evaluation/run/scorecard.png", b"png")
    write_record(
        LINEAGE / "evaluate/run.json",
        "evaluation",
        [describe_file(sj), describe_file(card)],
        [LINEAGE / "predict/run.json", LINEAGE / "dataset/tiny.json"],
    )
    model_copy = {"path": "s3://b/p/models/run", "url": "s3://b/p/models/run", "files": 4, "size": 1234}
    write_record(
        LINEAGE / "transfer_models/bucket/run.json",
        "copy",
        [model_copy | {"manifest_sha256": "cd" * 32}],
        [LINEAGE / "train/run.json", LINEAGE / "evaluate/run.json"],
    )
    assert main(["lineage", "catalogue", "results/catalogue", "--records", str(LINEAGE)]) == 0
    return {
        "root": root,
        "part": read_record(LINEAGE / "load/tiny.json"),
        "out": root / paths.site(),
        "ds": ds,
        "dataset": dataset,
        "archive": archive,
        "ckpt": root / ckpt,
    }


def test_index_lists_the_dataset_as_recorded(site: dict[str, Any]) -> None:
    ds, rec = site["ds"], site["dataset"]
    page = Page(site["out"] / "index.html")
    assert {"data-uuid": ds.uuid} in page.rows
    assert page.text["size"] == [human_size(rec["outputs"][0]["size"])]
    assert rec["outputs"][0]["size"] == tree_size(site["root"] / ds.path)[0]
    assert page.text["variables"] == [str(len(ds.variables))]
    dataset_page = Page(site["out"] / "datasets/tiny.html")
    assert dataset_page.text["uuid"] == [ds.uuid] == [rec["outputs"][0]["uuid"]]
    assert page.text["size"] == [t.split(" in ")[0] for t in dataset_page.text["size"]]
    assert len(dataset_page.text["missing"]) == 1 and dataset_page.text["present"]
    assert dataset_page.text["nans"] == [str(10 * i) for i in range(len(ds.variables))]  # the statistics record's
    layouts = (site["out"] / "datasets/tiny.html").read_text().split('id="layouts"')[1].split("</section>")[0]
    assert "tiny-ts" in layouts and "time series at a point (many dates per chunk); read by training run" in layouts


def test_every_relative_link_resolves(site: dict[str, Any]) -> None:
    pages = sorted(site["out"].rglob("*.html"))
    assert len(pages) >= 10
    root = site["root"].resolve()
    for html in pages:
        for link in Page(html).links:
            if link.startswith(("http://", "https://", "#")):
                continue
            target = (html.parent / link.split("#")[0]).resolve()
            assert target.exists() and target.is_relative_to(root), f"{html.name}: {link}"


def test_training_links_checkpoint_and_mlflow(site: dict[str, Any]) -> None:
    page = site["out"] / "trainings/run.html"
    links = {(page.parent / link).resolve() for link in Page(page).links if not link.startswith("http")}
    assert site["ckpt"].resolve() in links
    picture = (site["out"] / "pictures/results/models/run/loss_curve.png").resolve()  # the site's own copy
    assert (
        picture in links and picture.read_bytes() == (site["root"] / "results/models/run/loss_curve.png").read_bytes()
    )
    assert (site["out"] / "evaluations/run.html").resolve() in links  # what scored it
    assert "http://mlflow.example:5000/#/experiments/3/runs/r1" in Page(page).links
    assert "built-in" in page.read_text()


def test_evaluation_shows_rmse_from_scores(site: dict[str, Any]) -> None:
    path = site["out"] / "evaluations/run.html"
    assert "../pictures/results/evaluation/run/scorecard.png" in Page(path).links  # stands alone in a report
    assert Page(path).text["rmse"] == ["0.5", "0.75", "1.5", "2.25"]
    links = Page(path).links
    assert "../trainings/run.html" in links and "../datasets/tiny.html" in links


def test_gone_outputs_are_marked(site: dict[str, Any]) -> None:
    gone = (site["out"] / f"records/{site['archive']['id']}.html").read_text()
    assert "no longer on disk" in gone
    kept = (site["out"] / f"records/{site['dataset']['id']}.html").read_text()
    assert "no longer on disk" not in kept and "sha256-" in kept


def test_a_parts_page_lists_the_files_it_read(site: dict[str, Any]) -> None:
    page = Page(site["out"] / f"records/{site['part']['id']}.html")
    assert page.text["sources"][0].startswith("2 files read, 7 B")
    rows = [r for r in page.rows if r.get("class") == "source"]
    assert len(rows) == 2
    b = site["part"]["sources"][0]
    assert f"sha256:{b['sha256']}" in page.text["sources"][0]
    assert any(link.endswith("archive/b.grib") for link in page.links)
    assert any("results/demo/grib/a.grib" in t and "no longer on disk" in t for t in page.text["source"])
    dataset = Page(site["out"] / f"records/{site['dataset']['id']}.html")
    assert "sources" not in dataset.text


def test_graph_falls_back_without_dot(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "")
    assert graph_svg("digraph { a -> b }") is None


def test_each_copy_is_listed_where_its_source_is(site: dict[str, Any]) -> None:
    """A dataset's copies on its page; a model's (checkpoint and evaluation outputs) on its training's and its
    evaluation's pages, with the site read from the record's place (``transfer_models/<site>/<run>.json``)."""
    (dataset,) = Page(site["out"] / "datasets/tiny.html").text["locations"]
    assert "scratch" in dataset and "file:results/sites/scratch/tiny.zarr" in dataset and "models" not in dataset
    for page in ("trainings/run.html", "evaluations/run.html"):
        (table,) = Page(site["out"] / page).text["locations"]
        assert table.startswith("SiteCopy of") and "bucket" in table and "s3://b/p/models/run" in table, page
        assert "cd" * 32 in table and "scratch" not in table, page
