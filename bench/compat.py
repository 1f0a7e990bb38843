"""``python -m bench compat``: wxpipe's datasets against anemoi-datasets 0.5.47, built from the same GRIB.

Two archives of 20 dates: the demo archive (octahedral O32, with a 6-hour ``tp`` accumulation) from
``wxpipe demo`` and the regular 1° archive of :mod:`bench.gribgen`. Each is built by ``wxpipe create``
(statistics included) and by ``anemoi-datasets create``; then, in the anemoi venv (zarr 2),
``bench/_anemoi_side.py`` checks that ``anemoi.datasets.open_dataset`` reads our store exactly as wxpipe
reads it, and compares the two builds: data float32 bit-equal per variable name, dates, grid,
frequency, statistics, root attributes and arrays. The demo's store is also rechunked into a Zarr v2
layout, which anemoi must open as the same dataset. Then the same for every recipe of
``tests/recipes/anemoi`` (both tools build the same file), and the refused ones must be refused as
unsupported. The verdict goes to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from . import gribgen
from ._env import (
    ANEMOI_PYTHON,
    ANEMOI_VENV,
    BENCH,
    ROOT,
    WORK,
    ensure_anemoi_venv,
    machine,
    replace_section,
    revision,
    run_timed,
    today,
)
from .create import join as _join
from .create import rel, write_yaml
from .create import wx as wxpipe_cmd

log = logging.getLogger("bench.compat")

SECTION = "Compatibility with anemoi-datasets"
N_DATES = 20
DEMO_SFC = ["2t", "msl", "10u", "10v"]
DELTAS = ("6h", "12h")  # tendency statistics compared with anemoi-datasets' additions


@dataclass(frozen=True)
class Case:
    name: str
    archive: Path
    wxpipe: dict[str, Any] | str
    anemoi: dict[str, Any] | str
    note: str
    tendencies: bool = True
    """Whether the recipe asks for tendency statistics (then both stores must have the same)."""
    layout: str | None = None
    """``--chunks`` of a Zarr v2 layout (``wxpipe rechunk`` + ``verify``) that anemoi must open as the dataset."""


def _dates() -> dict[str, str]:
    d = gribgen.dates(N_DATES)
    return {"start": str(d[0]), "end": str(d[-1]), "frequency": "6h"}


def cases(work: Path) -> list[Case]:
    demo = work / "demo-grib"
    demo_path = str(demo / gribgen.PATTERN)
    regular = gribgen.ARCHIVE
    reg_path = str(regular / gribgen.PATTERN)
    base = {"dates": _dates(), "build": {"variable_naming": "{param}_{levelist}"}}
    tendencies = {"statistics": {"tendencies": list(DELTAS)}}  # the same key in both recipes
    return [
        Case(
            "demo-o32",
            demo,
            {
                "name": "compat-demo-o32",
                **base,
                **tendencies,
                "input": {
                    "join": [
                        *_join(demo_path, DEMO_SFC),
                        {"accumulations": {"path": demo_path, "param": ["tp"], "accumulation_period": 6}},
                    ]
                },
            },
            {**base, **tendencies, "input": {"join": _join(demo_path, [*DEMO_SFC, "tp"])}},
            "O32 demo archive (`wxpipe demo`), 9 variables; anemoi reads the 0-6 h `tp` message with its plain "
            "`grib` source (valid time = date), wxpipe with its `accumulations` source; and a time-series layout",
            layout="dates=8,values=1024",
        ),
        Case(
            "regular-1deg",
            regular,
            {"name": "compat-regular-1deg", **base, **tendencies, "input": {"join": _join(reg_path, DEMO_SFC)}},
            {**base, **tendencies, "input": {"join": _join(reg_path, DEMO_SFC)}},
            "regular 1° archive of `bench/gribgen.py`, 8 variables",
        ),
    ]


def ensure_demo(out: Path) -> None:
    if all(gribgen.file_of(out, d).exists() for d in gribgen.dates(N_DATES)):
        log.info("reusing %s", out)
        return
    d = gribgen.dates(N_DATES)
    cmd = wxpipe_cmd("demo", out, "--start", str(d[0])[:16], "--end", str(d[-1])[:16])
    subprocess.run(cmd, check=True)


def reference(store: Path, out: Path) -> Path:
    """What wxpipe itself reads from ``store`` (its own zarr 3 reader), as .npz for the anemoi side."""
    from wxpipe.dataset import open_dataset, read

    ds = open_dataset(store)
    arrays: dict[str, np.ndarray] = {
        "dates": ds.dates.astype("datetime64[s]"),
        "variables": np.array(ds.variables),
        "latitudes": ds.latitudes,
        "longitudes": ds.longitudes,
        "data": read(ds.data),
    }
    try:
        arrays |= ds.statistics()
    except Exception as exc:  # reported by the anemoi side as absent statistics
        log.warning("%s: %s", store, exc)
    np.savez(out, **arrays)  # type: ignore[arg-type]
    return out


def check_case(case: Case, work: Path) -> dict[str, Any]:
    here = work / case.name
    here.mkdir(parents=True, exist_ok=True)
    logs = here / "logs"
    wx_yaml, an_yaml = _recipe_file(here / "wxpipe.yaml", case.wxpipe), _recipe_file(here / "anemoi.yaml", case.anemoi)
    wx_store, an_store, layout = here / "wxpipe.zarr", here / "anemoi.zarr", here / "wxpipe-layout.zarr"
    for s in (wx_store, an_store, layout):
        if s.exists():
            shutil.rmtree(s)
    log.info("%s: wxpipe create (statistics included, as anemoi's create)", case.name)
    run_timed(wxpipe_cmd("create", wx_yaml, wx_store), logs / "wxpipe-create.log")
    if case.layout:
        run_timed(wxpipe_cmd("rechunk", wx_store, layout, "--chunks", case.layout), logs / "wxpipe-rechunk.log")
        run_timed(wxpipe_cmd("verify", wx_store, layout), logs / "wxpipe-verify.log")
    log.info("%s: anemoi-datasets create", case.name)
    exe = str(ANEMOI_VENV / "bin" / "anemoi-datasets")
    run_timed([exe, "create", str(an_yaml), str(an_store), "--overwrite"], logs / "anemoi-create.log")
    ref = reference(wx_store, here / "wxpipe-reference.npz")
    log.info("%s: comparing in the anemoi venv", case.name)
    side = subprocess.run(
        [str(ANEMOI_PYTHON), str(BENCH / "_anemoi_side.py"), str(wx_store), str(an_store), str(ref)]
        + ([str(layout)] if case.layout else []),
        capture_output=True,
        text=True,
    )
    (logs / "anemoi-side.log").write_text(side.stderr)
    if side.returncode != 0:
        raise RuntimeError(f"{case.name}: anemoi side failed:\n{side.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(side.stdout.strip().splitlines()[-1])
    result["expects_tendencies"] = case.tendencies
    result["commands"] = {
        "wxpipe": f"wxpipe create {rel(wx_yaml)} {rel(wx_store)}",
        "anemoi": f"{rel(ANEMOI_VENV)}/bin/anemoi-datasets create {rel(an_yaml)} {rel(an_store)} --overwrite",
    }
    (here / "result.json").write_text(json.dumps(result, indent=2, default=str))
    return result


def _recipe_file(path: Path, recipe: dict[str, Any] | str) -> Path:
    if isinstance(recipe, str):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(recipe)
        return path
    return write_yaml(path, recipe)


# --- the corpus of anemoi recipes (tests/recipes/anemoi) ------------------------------------------------

CORPUS = ROOT / "tests" / "recipes" / "anemoi"
# the local archives the corpus recipes name by folder (``path: grib-1deg/...``)
ARCHIVES = {"grib-1deg/": gribgen.ARCHIVE, "grib-1deg-ens/": gribgen.ENSEMBLE}
_PATH = re.compile(r"(\bpath:\s*)(" + "|".join(re.escape(k) for k in ARCHIVES) + ")")
_VERDICT = re.compile(r"^# verdict: (identical|refused: (.*))$", re.MULTILINE)


@dataclass(frozen=True)
class CorpusRecipe:
    """One recipe of the corpus: its file, what its header says, its text with local archive paths."""

    path: Path
    identical: bool
    refusal: str  # the message expected from wxpipe for a refused recipe
    source: str  # the header's first line: which anemoi doc page or test it comes from

    @classmethod
    def read(cls, path: Path) -> CorpusRecipe:
        text = path.read_text()
        m = _VERDICT.search(text)
        if m is None:
            raise SystemExit(f"{path}: no '# verdict: identical|refused: ...' line in its header")
        pages = re.findall(r"(?:docs|tests)/[\w/.-]+\.yaml", text[: m.start()])
        return cls(path, m.group(1) == "identical", m.group(2) or "", ", ".join(f"`{p}`" for p in pages))

    def local_text(self) -> str:
        """The recipe with its archive folders made absolute (the same text for both tools)."""
        return _PATH.sub(lambda m: m.group(1) + str(ARCHIVES[m.group(2)]) + "/", self.path.read_text())

    @property
    def name(self) -> str:
        return f"corpus-{self.path.stem}"


def corpus() -> list[CorpusRecipe]:
    return [CorpusRecipe.read(p) for p in sorted(CORPUS.glob("*.yaml"))]


def corpus_cases(recipes: list[CorpusRecipe]) -> list[Case]:
    """The recipes anemoi builds the same as wxpipe: each built by both tools from the same file."""
    out = []
    for r in recipes:
        if not r.identical:
            continue
        text = r.local_text()
        archive = next((a for k, a in ARCHIVES.items() if k in r.path.read_text()), gribgen.ARCHIVE)
        wants = bool((yaml.safe_load(text).get("statistics") or {}).get("tendencies"))
        out.append(Case(r.name, archive, text, text, f"`{rel(r.path)}`, adapted from {r.source}", tendencies=wants))
    return out


def check_refusals(recipes: list[CorpusRecipe], work: Path) -> dict[str, dict[str, Any]]:
    """Each recipe the corpus marks refused must fail ``wxpipe recipe validate`` with its message."""
    out: dict[str, dict[str, Any]] = {}
    for r in recipes:
        if r.identical:
            continue
        path = _recipe_file(work / r.name / "recipe.yaml", r.local_text())
        proc = subprocess.run(wxpipe_cmd("recipe", "validate", path), capture_output=True, text=True)
        said = (proc.stdout + proc.stderr).strip()
        ok = proc.returncode != 0 and r.refusal in said and "misspelled" not in said
        shown = [line.split(": ", 1)[-1] for line in said.splitlines() if r.refusal in line]
        out[r.name] = {"ok": ok, "expected": r.refusal, "said": shown[0] if shown else said[-300:]}
    return out


def corpus_report(results: dict[str, dict[str, Any]], refusals: dict[str, dict[str, Any]]) -> list[str]:
    lines = [
        "",
        f"### Recipes as anemoi users write them (`{rel(CORPUS)}`)",
        "",
        "Each recipe is adapted from anemoi-datasets' documentation or tests to the local GRIB archives "
        "(its header names the page); the identical ones are built by both tools from the same file and "
        "compared as above, the refused ones must fail `wxpipe recipe validate` with `not supported by wxpipe: ...`.",
        "",
        "| recipe | from | expected | result |",
        "|---|---|---|---|",
    ]
    for r in corpus():
        if r.identical:
            res = results.get(r.name)
            fails = failures(res) if res else ["not built"]
            got = "**identical**" if not fails else f"**DIFFERS**: {'; '.join(fails)[:300]}"
        else:
            ref = refusals.get(r.name, {})
            got = f"refused: `{ref.get('said', '')}`" if ref.get("ok") else f"**NOT REFUSED AS EXPECTED**: `{ref}`"
        lines.append(f"| `{r.path.name}` | {r.source} | {'identical' if r.identical else 'refused'} | {got} |")
    return lines


# --- verdict ---------------------------------------------------------------------------------------------


def failures(result: dict[str, Any]) -> list[str]:
    """Every check that did not pass, in words (mismatches named precisely)."""
    out: list[str] = []
    for store, what in (("open_wxpipe", "wxpipe store"), ("open_layout", "wxpipe layout")):
        for name, r in result.get(store, {}).items():
            if isinstance(r, dict) and r.get("ok") is False:
                out.append(f"open_dataset({what}): {name}: {r.get('error') or _short(r)}")
    cmp = result["wxpipe_vs_anemoi"]
    checked = ("variables", "dates", "latitudes", "longitudes", "frequency", "statistics", "tendencies")
    for name in checked if result.get("expects_tendencies", True) else checked[:-1]:
        r = cmp.get(name, {})
        if not r.get("ok", False):
            out.append(f"wxpipe vs anemoi: {name} differ: {_short(r)}")
    for name, r in cmp.get("mixing", {}).items():
        if not r["ok"] and "wxpipe" in name:
            out.append(f"open_dataset({name.split()[0]}=[wxpipe store, anemoi store]) fails: {r['error']}")
    data = cmp["data"]
    for v, r in data["per_variable"].items():
        if not r["equal"]:
            out.append(
                f"wxpipe vs anemoi: data of {v}: {r.get('values_differing')} of {r.get('of')} values differ, "
                f"max abs diff {r.get('max_abs_diff')}, NaN mismatches {r.get('nan_mismatch')}"
            )
    for k in ("only_in_wxpipe", "only_in_anemoi"):
        if data[k]:
            out.append(f"wxpipe vs anemoi: variables {k.replace('_', ' ')}: {data[k]}")
    return out


def notes(result: dict[str, Any]) -> list[str]:
    """Differences that do not break reading but that a user comparing the stores would see."""
    cmp = result["wxpipe_vs_anemoi"]
    out = []
    if cmp["attrs"]["missing_in_wxpipe"]:
        out.append(f"root attrs anemoi writes and wxpipe does not: {', '.join(cmp['attrs']['missing_in_wxpipe'])}")
    for k, v in cmp["attrs"]["differing"].items():
        out.append(f"attr `{k}`: wxpipe {v['wxpipe']!r}, anemoi {v['anemoi']!r}")
    vm = cmp.get("variables_metadata", {})
    if vm.get("keys_missing_in_wxpipe"):
        out.append(
            "`variables_metadata` entries lack what anemoi puts there: "
            + ", ".join(vm["keys_missing_in_wxpipe"])
            + f"; for `{vm['example']}` anemoi writes `{json.dumps(vm['example_anemoi'])}`, "
            + f"wxpipe `{json.dumps(vm['example_wxpipe'])}`"
        )
    if cmp["arrays"]["missing_in_wxpipe"]:
        out.append(f"arrays only in anemoi's store: {', '.join(cmp['arrays']['missing_in_wxpipe'])}")
    enc = cmp["encoding"]
    if enc["wxpipe"] != enc["anemoi"]:
        out.append(f"`data` encoding: wxpipe {enc['wxpipe']}, anemoi {enc['anemoi']}")
    stats = cmp.get("statistics", {})
    for k in ("mean", "stdev", "minimum", "maximum"):
        if k in stats and not stats[k]["bit_equal"]:
            worst = f"{stats[k]['max_rel_diff']:.2e} ({stats[k]['worst']})"
            out.append(f"statistics `{k}` not bit-equal: max relative diff {worst}")
    return out


def _short(r: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in r.items() if k not in ("ok", "trace")}, default=str)[:400]


def report(results: dict[str, dict[str, Any]], all_cases: list[Case], version: str) -> str:
    lines = [
        f"Checked {today()} ({revision()}) on {machine()}, against anemoi-datasets {version} "
        f"(zarr {next(iter(results.values()))['versions']['zarr']}) in `{rel(ANEMOI_VENV)}`.",
        "",
        "Command: `.venv/bin/python -m bench compat` (or `make compat`). For each archive, "
        f"{N_DATES} dates at 6 h, built by both tools; then, in the anemoi venv, "
        "`anemoi.datasets.open_dataset(wxpipe store)` is checked against what wxpipe reads from it, and the two "
        "builds are compared: data float32 bit-equal per variable name; dates, variables, latitudes, longitudes "
        "exactly; frequency; statistics to 1e-6 relative (different summation order); tendency statistics "
        f"(`statistics_tendencies(delta)` for the recipes' `statistics.tendencies: [{', '.join(DELTAS)}]`) "
        "to 1e-6 relative; root attributes and arrays; "
        "and `open_dataset(join=...)` / `open_dataset(concat=...)` mixing the two stores, as users combine datasets.",
        "",
        "| archive | open_dataset(wxpipe) = wxpipe's view | data bit-equal to anemoi's build "
        "| grid, dates, variables, frequency | statistics | tendency statistics | join/concat with anemoi's store "
        "| verdict |",
        "|---|---|---|---|---|---|---|---|",
    ]
    details: list[str] = []
    for case in all_cases:
        r = results[case.name]
        ow, cmp = r["open_wxpipe"], r["wxpipe_vs_anemoi"]
        view = all(
            ow.get(k, {}).get("ok") for k in ("open_dataset", "variables", "dates", "latitudes", "longitudes", "data")
        )
        per = cmp["data"]["per_variable"]
        equal = sum(v["equal"] for v in per.values())
        meta = all(cmp[k]["ok"] for k in ("variables", "dates", "latitudes", "longitudes", "frequency"))
        stats = cmp.get("statistics", {})
        stat_text = (
            f"max rel diff {max(stats[k]['max_rel_diff'] for k in ('mean', 'stdev', 'minimum', 'maximum')):.1e}"
            if "mean" in stats
            else stats.get("error", "absent")
        )
        tend = cmp.get("tendencies", {})
        diffs = [v["max_rel_diff"] for v in tend.values() if isinstance(v, dict) and "max_rel_diff" in v]
        tend_text = (
            f"{', '.join(tend['deltas'])}: max rel diff {max(diffs):.1e}" if diffs else tend.get("error", "absent")
        )
        mixing = cmp.get("mixing", {})
        mix = "ok" if all(m["ok"] for k, m in mixing.items() if "wxpipe" in k) else "FAILS"
        control = "" if all(m["ok"] for k, m in mixing.items() if "wxpipe" not in k) else " (fails for anemoi alone)"
        fails = failures(r)
        lines.append(
            f"| {case.name} | {'yes' if view else 'NO'} | {equal}/{len(per)} variables "
            f"| {'match' if meta else 'DIFFER'} | {stat_text} | {tend_text} | {mix}{control} "
            f"| {'**pass**' if not fails else '**FAIL**'} |"
        )
        details += [
            f"**{case.name}**: {case.note}.",
            "",
            f"- wxpipe: `{r['commands']['wxpipe']}`",
            f"- anemoi: `{r['commands']['anemoi']}`",
            *(
                [
                    f"- layout `wxpipe rechunk --chunks {case.layout}` + `verify` (Zarr v2): `open_dataset(layout)` "
                    + (
                        "= wxpipe's view of the dataset"
                        if all(v.get("ok", True) for v in r["open_layout"].values() if isinstance(v, dict))
                        else "FAILS"
                    )
                ]
                if "open_layout" in r
                else []
            ),
            f"- `anemoi-datasets inspect` on the wxpipe store: {'ok' if ow['inspect_cli']['ok'] else 'FAILS'}; "
            + ", ".join(
                f"{k} {'ok' if ow.get(k, {}).get('ok') else 'FAILS'}"
                for k in ("select", "subsample_12h", "start_end", "metadata", "statistics")
            ),
            *[f"- mismatch: {f}" for f in fails],
            *[f"- note: {n}" for n in notes(r)],
            "",
        ]
    return "\n".join([*lines, "", *details, f"Full results: `{rel(WORK / 'compat')}/<archive>/result.json`."])


def _check(case: Case, work: Path) -> dict[str, Any] | None:
    """``check_case``, with a build that fails reported (and the others still run)."""
    try:
        return check_case(case, work)
    except RuntimeError as exc:
        log.error("%s: %s", case.name, exc)
        (work / case.name / "error.txt").write_text(str(exc))
        return None


def run(corpus_only: bool = False) -> bool:
    work = WORK / "compat"
    version = ensure_anemoi_venv()
    gribgen.ensure_archive(N_DATES)
    gribgen.ensure_ensemble(N_DATES)
    recipes = corpus()
    all_cases = [] if corpus_only else cases(work)
    if not corpus_only:
        ensure_demo(work / "demo-grib")
    found = {c.name: _check(c, work) for c in [*all_cases, *corpus_cases(recipes)]}
    results = {k: v for k, v in found.items() if v is not None}
    refusals = check_refusals(recipes, work)
    shown = [c for c in all_cases if c.name in results]
    body = report(results, shown, version) if shown else f"Against anemoi-datasets {version}."
    body = "\n".join([body, *corpus_report(results, refusals)])
    replace_section(SECTION, body)
    print(body)
    broken = len(results) < len(found) or any(failures(r) for r in results.values())
    return not broken and all(r["ok"] for r in refusals.values())


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench compat", description=__doc__)
    ap.add_argument("--corpus-only", action="store_true", help="only the recipes of tests/recipes/anemoi")
    args = ap.parse_args(argv)
    ok = run(args.corpus_only)
    if not ok:
        log.error("compatibility checks failed: see BENCHMARKS.md and bench/work/compat/*/result.json")
        sys.exit(1)
