"""The whole workflow on a small demo, in a temporary directory: real ecCodes, Zarr, PyTorch, MLflow.

Checks contents, not existence: shapes and dates against the recipe, statistics against numpy,
layouts and copies against their source, MLflow runs, scores, and the lineage graph.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import obstore
import pytest
import yaml
import zarr
from obstore.store import S3Store

from wxpipe.create import open_inputs
from wxpipe.fsutil import file_sha256, tree_files
from wxpipe.recipe import load_recipe

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
WINDOW = (1400, 1000)  # the browser's, and the screenshots' width
CHROMIUM_ARGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars")


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        str(BIN / "snakemake"),
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        "--configfile",
        str(workdir / "config.yaml"),
        *args,
    ]
    env = {"PATH": f"{BIN}:/usr/bin:/bin", "HOME": str(workdir), "LC_ALL": "C.UTF-8"}
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1200)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, s3_server: Any, ssh_server: Any) -> Path:
    """The workflow, copying to a file: site, to S3 (keys in a profile of ~/.aws/credentials) and over ssh."""
    work = tmp_path_factory.mktemp("workflow")
    config = yaml.safe_load((HERE / "small-config.yaml").read_text())
    config["sites"]["bucket"] = {"url": "s3://wxpipe/wf", "endpoint_url": s3_server.endpoint, "profile": "wxpipe-test"}
    config["sites"]["remote"] = {"url": f"ssh://{ssh_server.host}{work}/remote", "ssh_config": str(ssh_server.config)}
    config["transfers"] += [
        {"dataset": "small", "site": "bucket"},
        {"layout": "small-ts", "site": "bucket"},
        {"dataset": "small", "site": "remote"},
        {"model": "tiny", "site": "bucket"},
    ]
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    creds = work / ".aws/credentials"  # HOME is the work folder
    creds.parent.mkdir()
    keys = f"aws_access_key_id = {s3_server.key}\naws_secret_access_key = {s3_server.secret}\n"
    creds.write_text(f"[wxpipe-test]\n{keys}")
    creds.chmod(0o600)
    shutil.copy(HERE / "small-recipe.yaml", work / "small-recipe.yaml")
    res = snakemake(work, "--cores", "2")
    (work / "snakemake.out").write_text(res.stdout + res.stderr)
    if res.returncode != 0:
        logs = "\n".join(f"== {p}\n{p.read_text()[-3000:]}" for p in sorted((work / "results/logs").rglob("*.log")))
        pytest.fail(f"snakemake failed:\n{res.stderr[-6000:]}\n{logs}")
    return work


def test_dataset_matches_recipe(run: Path) -> None:
    recipe = load_recipe(run / "small-recipe.yaml")
    with open_inputs(recipe) as inputs:
        variables = inputs.variables()
    root = zarr.open_group(str(run / "results/datasets/small.zarr"), mode="r")
    data = root["data"]
    assert list(root.attrs["variables"]) == variables
    assert data.shape == (len(recipe.dates.all()), len(variables), 1, 5248)
    t850 = root.attrs["variables_metadata"]["t_850"]
    assert t850["mars"] == {"param": "t", "levtype": "pl", "levelist": 850} and t850["units"] == "K"
    assert t850["grib"] == {"paramId": 130, "shortName": "t"}
    assert root.attrs["variables_metadata"]["tp"]["process"] == "accumulation"
    assert root.attrs["total_number_of_files"] > len(recipe.dates.all())
    assert np.array_equal(root["dates"][:], recipe.dates.all())
    assert root.attrs["frequency"] == "6h" and root.attrs["build_complete"] is True
    values = data[:]
    assert not np.isnan(values).any()
    # each variable is a real field, distinct from the others, in a plausible range
    t2 = values[:, root.attrs["variables"].index("2t")]
    assert 200 < t2.min() < t2.max() < 330
    assert (values[:, root.attrs["variables"].index("tp")] >= 0).all()


def test_statistics_equal_numpy(run: Path) -> None:
    root = zarr.open_group(str(run / "results/datasets/small.zarr"), mode="r")
    dates = root["dates"][:]
    start = np.datetime64(root.attrs["statistics_start_date"], "s")
    end = np.datetime64(root.attrs["statistics_end_date"], "s")
    sel = (dates >= start) & (dates <= end)
    assert 0 < sel.sum() < len(dates)  # the config's statistics period, ending with training's (evaluation guard)
    x = root["data"][:][sel].astype(np.float64).transpose(1, 0, 2, 3).reshape(len(root.attrs["variables"]), -1)
    np.testing.assert_allclose(root["mean"][:], x.mean(axis=1), rtol=1e-12)
    np.testing.assert_allclose(root["stdev"][:], x.std(axis=1), rtol=1e-9)
    np.testing.assert_array_equal(root["minimum"][:], x.min(axis=1))
    np.testing.assert_array_equal(root["maximum"][:], x.max(axis=1))
    np.testing.assert_array_equal(root["count"][:], np.full(x.shape[0], x.shape[1]))


@pytest.mark.parametrize(
    ("layout", "chunks", "shards"), [("small-ts", (16, 1000), None), ("small-ts-v3", (8, 656), (40, 2624))]
)
def test_layout_equals_source(run: Path, layout: str, chunks: tuple[int, int], shards: tuple[int, int] | None) -> None:
    src = zarr.open_group(str(run / "results/datasets/small.zarr"), mode="r")
    dst = zarr.open_group(str(run / f"results/layouts/{layout}.zarr"), mode="r")
    n = len(src.attrs["variables"])
    assert dst["data"].chunks == (chunks[0], n, 1, chunks[1])
    assert dst["data"].shards == (shards and (shards[0], n, 1, shards[1]))
    np.testing.assert_array_equal(dst["data"][:], src["data"][:])
    for name in ("dates", "latitudes", "longitudes", "mean", "stdev"):
        np.testing.assert_array_equal(dst[name][:], src[name][:])
    assert dst.attrs["source_uuid"] == src.attrs["uuid"]
    assert "_build" not in dst  # verified: the build flags are gone, as anemoi removes its _build group


@pytest.mark.parametrize(("src", "dst"), [("datasets/small", "small"), ("layouts/small-ts-v3", "small-ts-v3")])
def test_copy_is_identical(run: Path, src: str, dst: str) -> None:
    source, copy = run / f"results/{src}.zarr", run / f"results/sites/scratch/{dst}.zarr"
    files = tree_files(source)
    assert files == [f for f in tree_files(copy) if f.name != ".wxpipe-copy.json"]
    assert all(file_sha256(source / f) == file_sha256(copy / f) for f in files)
    marker = json.loads((copy / ".wxpipe-copy.json").read_text())
    assert marker["files"] == len(files)


@pytest.mark.parametrize("name", ["small", "small-ts"])
def test_copy_to_s3_site(run: Path, s3_server: Any, name: str) -> None:
    source = run / f"results/{'datasets' if name == 'small' else 'layouts'}/{name}.zarr"
    store = S3Store(
        "wxpipe",
        prefix=f"wf/{name}.zarr",
        config={"endpoint": s3_server.endpoint, "access_key_id": s3_server.key, "secret_access_key": s3_server.secret},
        client_options={"allow_http": True},
    )
    for f in tree_files(source):
        assert bytes(obstore.get(store, str(f)).bytes()) == (source / f).read_bytes()
    record = json.loads((run / f"results/lineage/transfer/bucket/{name}.json").read_text())
    assert record["kind"] == "copy" and record["outputs"][0]["url"] == f"s3://wxpipe/wf/{name}.zarr"
    assert record["outputs"][0]["files"] == len(tree_files(source))


def test_the_model_is_copied_to_s3_with_its_evaluation_and_records(run: Path, s3_server: Any) -> None:
    store = S3Store(
        "wxpipe",
        prefix="wf/models/tiny",
        config={"endpoint": s3_server.endpoint, "access_key_id": s3_server.key, "secret_access_key": s3_server.secret},
        client_options={"allow_http": True},
    )
    train, evaluate = (json.loads((run / f"results/lineage/{s}/tiny.json").read_text()) for s in ("train", "evaluate"))
    sent = {str(m["path"]) for batch in obstore.list(store) for m in batch}
    assert sent == {
        "checkpoint.pt",
        "loss.json",
        "loss_curve.png",
        *(f"evaluation/{f}" for f in ("scores.json", "scores.nc", "scorecard.png", "leads.png", "maps.png")),
        "lineage/train.json",
        "lineage/evaluate.json",
        ".wxpipe-copy.json",
    }
    for name, local in [
        ("checkpoint.pt", "models/tiny/checkpoint.pt"),
        ("evaluation/scores.json", "evaluation/tiny/scores.json"),
    ]:
        assert bytes(obstore.get(store, name).bytes()) == (run / "results" / local).read_bytes(), name
    assert json.loads(bytes(obstore.get(store, "lineage/train.json").bytes())) == train
    assert file_sha256(run / "results/models/tiny/checkpoint.pt") == train["outputs"][0]["sha256"]
    record = json.loads((run / "results/lineage/transfer_models/bucket/tiny.json").read_text())
    assert record["kind"] == "copy" and record["inputs"] == [train["id"], evaluate["id"]]
    assert record["outputs"][0]["url"] == "s3://wxpipe/wf/models/tiny" and record["outputs"][0]["files"] == 10
    assert not (run / "results/bundles").exists() or not any((run / "results/bundles").iterdir())  # temp: gone


def test_copy_to_ssh_site(run: Path) -> None:
    source, copy = run / "results/datasets/small.zarr", run / "remote/small.zarr"
    assert all(file_sha256(source / f) == file_sha256(copy / f) for f in tree_files(source))
    record = json.loads((run / "results/lineage/transfer/remote/small.json").read_text())
    assert record["outputs"][0]["url"] == f"ssh://wxpipe-test{run}/remote/small.zarr"


def test_training_and_evaluation_read_the_site_copy(run: Path) -> None:
    copy = json.loads((run / "results/lineage/transfer/scratch/small.json").read_text())
    for stage in ("train", "predict", "evaluate"):  # each followed the copy, and read it (smk.dataset_copy)
        record = json.loads((run / f"results/lineage/{stage}/tiny.json").read_text())
        assert copy["id"] in record["inputs"], stage
    attrs = json.loads((run / "results/forecasts/tiny.zarr/.zattrs").read_text())
    assert attrs["dataset_path"] == "results/sites/scratch/small.zarr"


def test_no_secret_in_any_output(run: Path, s3_server: Any) -> None:
    """Logs, lineage, markers, MLflow's database, Snakemake's own files: the secret key is nowhere."""
    leaks = [
        p
        for p in run.rglob("*")
        if p.is_file() and ".aws" not in p.parts and s3_server.secret.encode() in p.read_bytes()
    ]
    assert leaks == []


def test_mlflow_run_has_metrics(run: Path) -> None:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{run}/results/mlflow.db")
    exp = client.get_experiment_by_name("wxpipe-test")
    assert exp is not None
    runs = client.search_runs([exp.experiment_id])
    assert len(runs) == 1
    r = runs[0]
    assert {"train_loss", "val_loss"} <= set(r.data.metrics)
    assert r.data.params["steps"] == "40"
    history = client.get_metric_history(r.info.run_id, "train_loss")
    assert len(history) > 1
    record = json.loads((run / "results/lineage/train/tiny.json").read_text())
    assert record["mlflow"]["run_id"] == r.info.run_id
    assert any(v == record["inputs"][0] for v in r.data.tags.values())


def test_scores_cover_variables_leads_regions_and_baselines(run: Path) -> None:
    scores = json.loads((run / "results/evaluation/tiny/scores.json").read_text())
    variables = zarr.open_group(str(run / "results/datasets/small.zarr"), mode="r").attrs["variables"]
    assert sorted(scores["variables"]) == sorted(variables)
    assert scores["forecasts"] == {"tiny": "model", "persistence": "persistence", "climatology": "climatology"}
    assert list(scores["regions"])[-1] == "north-atlantic"
    for kind in scores["forecasts"]:
        for v in variables:
            row = scores["scores"]["rmse"][kind]["global"][v]
            assert len(row) == 2 and all(x is not None and x >= 0 for x in row)
    acc = scores["scores"]["acc"]
    assert all(x is not None for v in variables for x in acc["tiny"]["global"][v])  # against the climatology
    folder = run / "results/evaluation/tiny"
    for png in ("scorecard.png", "leads.png", "maps.png"):
        assert (folder / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (run / "results/climatology/small.zarr/.zattrs").exists()
    assert (run / "results/models/tiny/loss_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_puts_the_run_beside_its_baselines(run: Path) -> None:
    table = json.loads((run / "results/comparison/comparison.json").read_text())
    assert (run / "results/comparison/scorecard.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    record = json.loads((run / "results/lineage/compare/runs.json").read_text())
    assert record["kind"] == "comparison"
    evaluation = json.loads((run / "results/lineage/evaluate/tiny.json").read_text())
    assert record["inputs"] == [evaluation["id"]]
    assert "tiny" in json.dumps(table)


@pytest.fixture(scope="module")
def report(run: Path) -> dict[str, bytes]:
    """``snakemake --report report.zip`` once: every file of the zip by name."""
    import zipfile

    res = snakemake(run, "--report", "report.zip")
    assert res.returncode == 0, res.stderr
    with zipfile.ZipFile(run / "report.zip") as archive:
        return {n: archive.read(n) for n in archive.namelist()}


def test_report_shows_the_pictures_with_their_captions(report: dict[str, bytes]) -> None:
    html = next(data.decode() for n, data in report.items() if n.endswith("report.html"))
    pictures = sorted(Path(n).name for n in report if n.endswith(".png") and "/pictures/" not in n)  # not the site's
    assert pictures == sorted(
        ["loss_curve.png", "scorecard.png", "leads.png", "maps.png", "scorecard.png", "leads.png"]
    )
    assert "paired-bootstrap" in html and "Training loss of run" in html
    categories = json.loads(html.split("var categories = ", 1)[1].split(";\n", 1)[0])
    assert categories["Catalogue"] == {"Other": ["results/catalogue/site/index.html"]}
    assert categories["Training"] == {"tiny": ["results/models/tiny/loss_curve.png"]}
    assert sorted(Path(p).name for p in categories["Evaluation"]["tiny"]) == ["leads.png", "maps.png", "scorecard.png"]
    assert sorted(categories["Comparison"]["Other"]) == [f"results/comparison/{f}.png" for f in ("leads", "scorecard")]


def test_report_holds_the_whole_catalogue_site(report: dict[str, bytes]) -> None:
    """The site is one entry of the report, its pages around its index as on disk: a reader clicks through."""
    import posixpath
    import re

    index = next((n for n in report if n.endswith("/index.html") and f"{posixpath.dirname(n)}/style.css" in report), "")
    assert index, "no catalogue site in the report"
    folder = posixpath.dirname(index)
    pages = {posixpath.relpath(n, folder) for n in report if n.startswith(f"{folder}/")}
    assert {"index.html", "datasets/small.html", "trainings/tiny.html", "evaluations/tiny.html"} <= pages
    assert any(p.startswith("records/") for p in pages) and not any(p.startswith("catalogue.") for p in pages)
    links = re.findall(r'href="([^"#]+\.html)', report[index].decode())
    assert "datasets/small.html" in links
    assert all(posixpath.normpath(posixpath.join(folder, link)) in report for link in links)
    training = report[f"{folder}/trainings/tiny.html"].decode()
    (curve,) = re.findall(r'<img class="picture" src="([^"]+)"', training)  # the site's own copy: it shows here
    assert report[posixpath.normpath(posixpath.join(folder, "trainings", curve))][:8] == b"\x89PNG\r\n\x1a\n"


def test_lineage_resolves(run: Path) -> None:
    cat = json.loads((run / "results/catalogue/catalogue.json").read_text())
    records = cat["records"]
    kinds = {r["kind"] for r in records.values()}
    assert {"archive", "part", "dataset", "statistics", "layout", "copy", "checkpoint", "evaluation"} <= kinds
    assert {"climatology", "comparison"} <= kinds
    for rec in records.values():
        assert all(i in records for i in rec["inputs"])
        assert rec["software"]["packages"]["zarr"]
    # every record on disk made it into the catalogue
    on_disk = [p for p in (run / "results/lineage").rglob("*.json") if ".pending" not in p.parts]
    assert len(on_disk) == len({json.loads(p.read_text())["id"] for p in on_disk}) == len(records)
    copies = {r["outputs"][0]["url"] for r in records.values() if r["kind"] == "copy"}
    assert "file:results/sites/scratch/small.zarr" in copies


def test_nothing_left_to_do(run: Path) -> None:
    res = snakemake(run, "-n")
    assert res.returncode == 0, res.stderr
    assert "Nothing to be done" in res.stdout + res.stderr


def test_rerun_statistics_leaves_dataset_alone(run: Path) -> None:
    res = snakemake(run, "-n", "-R", "statistics")
    assert res.returncode == 0, res.stderr
    out = res.stdout + res.stderr
    jobs = {line.split()[0] for line in out.split("Job stats:")[1].split("total")[0].splitlines()[3:] if line.strip()}
    assert {"compute_statistics", "statistics", "train_model", "evaluate_model", "lineage"} <= jobs
    assert {"rechunk_init", "rechunk_part", "rechunk_layout", "rechunk"} <= jobs
    assert not jobs & {"demo", "init", "load", "finalise", "dataset"}


def test_lint_is_clean(run: Path) -> None:
    res = snakemake(run, "--lint")
    assert res.returncode == 0, res.stdout + res.stderr


@pytest.mark.skipif(shutil.which("dot") is None, reason="graphviz's dot is not installed")
def test_rulegraph_renders(run: Path) -> None:
    res = snakemake(run, "--rulegraph")
    assert res.returncode == 0, res.stderr
    svg = subprocess.run(["dot", "-Tsvg"], input=res.stdout, capture_output=True, text=True, check=True).stdout
    assert "compute_statistics" in svg and "<svg" in svg


def _browser() -> Any:
    """Debian's headless chromium through its own chromedriver; fails (never skips) where either is missing."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if chromium is None or not Path(driver).is_file():
        pytest.fail("Debian's chromium and chromium-driver are not installed (.ci/run installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in (*CHROMIUM_ARGS, f"--window-size={WINDOW[0]},{WINDOW[1]}"):
        options.add_argument(arg)
    return webdriver.Chrome(options=options, service=Service(executable_path=driver))


def _click(browser: Any, link: Any) -> None:
    """Click a link (as a person would, not ``get``) and wait until its page has replaced this one."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.wait import WebDriverWait

    target, old = link.get_attribute("href").split("#")[0], browser.find_element("tag name", "html")
    link.click()
    WebDriverWait(browser, 10).until(expected_conditions.staleness_of(old))
    assert browser.current_url.split("#")[0] == target


def _screenshot(browser: Any, name: str, tallest: int = 2400) -> None:
    """The page at the window's width and as tall as it is (up to ``tallest``), where WXPIPE_SCREENSHOTS says."""
    folder = os.environ.get("WXPIPE_SCREENSHOTS")
    if not folder:
        return
    height = min(int(browser.execute_script("return document.documentElement.scrollHeight")), tallest)
    browser.set_window_size(WINDOW[0], height + 100)
    Path(folder).mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(Path(folder) / f"catalogue-{name}.png"))
    browser.set_window_size(*WINDOW)


def _chain_to_archive(records: dict[str, Any], start: str) -> list[str]:
    """The shortest chain of inputs from ``start`` down to the GRIB archive's record."""
    paths, seen = [[start]], {start}
    while paths:
        path = paths.pop(0)
        if records[path[-1]]["kind"] == "archive":
            return path
        for i in records[path[-1]]["inputs"]:
            if i not in seen:
                seen.add(i)
                paths.append([*path, i])
    raise AssertionError(f"no chain from {start} to an archive record")


def _xpath(browser: Any, path: str) -> Any:
    return browser.find_element("xpath", path)


def test_catalogue_site_in_chromium(run: Path) -> None:
    """Index -> dataset -> training -> evaluation -> records down to the archive, by clicks, values checked."""
    from wxpipe.site._render import human_size, number

    records = json.loads((run / "results/catalogue/catalogue.json").read_text())["records"]
    store = "results/datasets/small.zarr"
    attrs = zarr.open_group(str(run / store), mode="r").attrs
    family = [r for r in records.values() if r["outputs"] and r["outputs"][0].get("path") == store]
    size = max((r for r in family if "size" in r["outputs"][0]), key=lambda r: r["execution"]["end"])
    training = next(r for r in records.values() if r["kind"] == "checkpoint")
    evaluation = next(r for r in records.values() if r["kind"] == "evaluation")
    scores = json.loads((run / "results/evaluation/tiny/scores.json").read_text())["scores"]["rmse"]["tiny"]
    browser = _browser()
    try:
        browser.get((run / "results/catalogue/site/index.html").as_uri())
        row = _xpath(browser, f"//table[@class='datasets']//tr[@data-uuid='{attrs['uuid']}']")
        assert row.find_element("css selector", "td.size").text == human_size(size["outputs"][0]["size"])
        assert row.find_element("css selector", "td.variables").text == str(len(attrs["variables"]))
        _screenshot(browser, "index")
        _click(browser, row.find_element("css selector", "td a"))
        assert _xpath(browser, "//td[@class='uuid']").text == attrs["uuid"]
        _screenshot(browser, "dataset")
        run_name = Path(training["outputs"][0]["path"]).parent.name
        _click(browser, _xpath(browser, f"//section[@id='lineage']//a[.='{run_name}']"))
        assert f"(uuid {attrs['uuid']})" in _xpath(browser, "//tr[th='dataset']").text
        assert _xpath(browser, "//tr[th='record']//a").text == training["id"]
        _screenshot(browser, "training")
        _click(browser, _xpath(browser, "//header/a"))  # the training page does not link its evaluations
        _click(browser, _xpath(browser, f"//h1[.='Evaluations']/following::table[1]//tr[td[2]/a='{run_name}']//a"))
        variable, values = next(iter(scores["global"].items()))
        cells = _xpath(browser, f"//table[@data-forecast='tiny']//tr[td[1]='{variable}']")
        assert [c.text for c in cells.find_elements("css selector", "td.rmse")] == [number(v) for v in values]
        _click(browser, _xpath(browser, f"//tr[th='record']//a[.='{evaluation['id']}']"))
        chain = _chain_to_archive(records, evaluation["id"])
        for here, below in itertools.pairwise(chain):
            assert _xpath(browser, "//h1").text == f"{records[here]['kind']} {here}"
            _click(browser, _xpath(browser, f"//h2[.='Inputs']/following-sibling::ul[1]//a[.='{below}']"))
        archive = records[chain[-1]]["outputs"][0]["path"]
        assert archive in _xpath(browser, "//tr[@class='output']").text
    finally:
        browser.quit()
