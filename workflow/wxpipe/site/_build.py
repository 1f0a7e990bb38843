"""Gather every page's facts, link the pages to each other through the records, and render them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..lineage import graph_dot
from ._datasets import all_datasets
from ._records import Record, end_of, output_path, record_facts
from ._render import copy_style, environment, graph_svg, write_page
from ._runs import evaluation_facts, training_facts

Facts = dict[str, Any]


def _unique_pages(items: list[Facts], folder: str, key: str) -> None:
    """``folder/<key>.html``, the record id appended where two items share a key."""
    seen: dict[str, int] = {}
    for item in items:
        seen[item[key]] = seen.get(item[key], 0) + 1
    for item in items:
        name = item[key] if seen[item[key]] == 1 else f"{item[key]}-{item['id']}"
        item["page"] = f"{folder}/{name}.html"


def _dataset_of(ids: set[str], datasets: list[Facts]) -> Facts | None:
    return next((d for d in datasets if ids & d["ids"]), None)


def _training_of(ev: Facts, trainings: list[Facts]) -> Facts | None:
    """The training an evaluation scored: through its forecasts' record, else the checkpoint path, else the run."""
    for match in (
        lambda t: t["id"] in ev["checkpoint_ids"],
        lambda t: ev["scored_checkpoint"] is not None and t["checkpoint"]["path"] == ev["scored_checkpoint"],
        lambda t: t["run"] == ev["run"],
    ):
        found = next((t for t in trainings if match(t)), None)
        if found is not None:
            return found
    return None


def gather(records: Mapping[str, Record], root: Path) -> dict[str, list[Facts]]:
    """Every page's facts, cross-linked (``dataset``, ``training``: the page facts they point to, or None)."""
    datasets = all_datasets(records, root)
    by_kind = {
        k: sorted((r for r in records.values() if r["kind"] == k), key=end_of) for k in ("checkpoint", "evaluation")
    }
    trainings = [training_facts(r, records, root) for r in by_kind["checkpoint"]]
    evaluations = [evaluation_facts(r, records, root) for r in by_kind["evaluation"]]
    _unique_pages(datasets, "datasets", "stem")
    _unique_pages(trainings, "trainings", "run")
    _unique_pages(evaluations, "evaluations", "run")
    for t in trainings:
        t["dataset"] = _dataset_of(set(t["inputs"]), datasets)
    for e in evaluations:
        e["training"] = _training_of(e, trainings)
        e["dataset"] = _dataset_of(set(e["inputs"]), datasets)
    for t in trainings:
        t["evaluations"] = [e for e in evaluations if e["training"] is t]
    for d in datasets:
        d["trainings"] = [t for t in trainings if t["dataset"] is d]
    facts = [record_facts(r, records, root) for r in sorted(records.values(), key=end_of)]
    for f in facts:
        f["page"] = f"records/{f['id']}.html"
        f["name"] = output_path(records[f["id"]])
    return {"datasets": datasets, "trainings": trainings, "evaluations": evaluations, "records": facts}


def build_site(cat: Mapping[str, Any], out_dir: Path, root: Path | None = None) -> list[Path]:
    """Write ``index.html`` and every page under ``out_dir``; record paths are relative to ``root`` (the
    project folder, the working directory by default). Returns the pages written."""
    root = (root or Path.cwd()).resolve()
    records: Mapping[str, Record] = cat["records"]
    facts = gather(records, root)
    env = environment()
    svg = graph_svg(graph_dot(cat, href=lambda rid: f"records/{rid}.html"))
    out_dir.mkdir(parents=True, exist_ok=True)
    copy_style(out_dir)
    common = {"known": set(records), **facts}
    pages = [write_page(env, out_dir, "index.html", "index.html", root, graph=svg, **common)]
    for kind, template in (
        ("datasets", "dataset.html"),
        ("trainings", "training.html"),
        ("evaluations", "evaluation.html"),
    ):
        pages += [write_page(env, out_dir, f["page"], template, root, item=f, **common) for f in facts[kind]]
    pages += [write_page(env, out_dir, f["page"], "record.html", root, item=f, **common) for f in facts["records"]]
    return pages
