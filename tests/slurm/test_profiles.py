"""Each HPC profile runs the small demo on a real SLURM cluster shaped like its site.

For every site the cluster is reconfigured with that site's partitions, accounts, QOS and GPUs per
node; ``snakemake --profile profiles/<site> --profile tests/slurm/profile`` runs the whole workflow;
then ``sacct`` must show what the profile asked for: each job's partition, account, QOS and GPUs,
the load and statistics parts as separate jobs that ran at the same time, and training as one job
whose srun step has a task (a rank) per GPU, all ranks ending with the same weights. Submissions the
site would refuse (bad account, partition, QOS or GPU count) must fail fast with sbatch's reason.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.integration, pytest.mark.slurm]

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
SMALL = REPO / "tests" / "integration"
BIN = Path(sys.executable).parent
SITES = ["lumi", "leonardo", "marenostrum5", "jupiter"]
# submitted jobs of the data stages (lineage, the stage targets, init, finalise, the statistics merge
# and rechunk_init are local rules: metadata work of seconds, run by the controller)
DATA_RULES = {
    "demo",
    "load",
    "statistics_part",
    "rechunk_part",
    "rechunk_layout",
    "copy_to_site",
    "compute_climatology",
    "evaluate_model",
    "compare_runs",
}


@dataclass(frozen=True)
class Site:
    """What the test cluster was configured with (tests/slurm/sites/<name>.env) and what the profile asks."""

    name: str
    partitions: dict[str, str]  # name -> MaxTime
    accounts: list[str]
    qos: list[str]
    gpus: int
    profile: dict[str, object]

    @property
    def account(self) -> str:
        return self.accounts[0]


def read_site(name: str) -> Site:
    """The site file is shell (``KEY="a b"``); this reads exactly the subset it uses."""
    values: dict[str, str] = {}
    for line in (HERE / "sites" / f"{name}.env").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            values[key.strip()] = " ".join(shlex.split(value))
    parts = dict(p.split(":", 1) if ":" in p else (p, "INFINITE") for p in values["CLUSTER_PARTITIONS"].split())
    profile = yaml.safe_load((REPO / "profiles" / name / "config.yaml").read_text()) if name != "generic" else {}
    return Site(
        name=name,
        partitions=parts,
        accounts=values["CLUSTER_ACCOUNTS"].split(),
        qos=values.get("CLUSTER_QOS", "normal").split(),
        gpus=int(values.get("CLUSTER_GPUS", "0")),
        profile=profile,
    )


def _unavailable() -> str | None:
    if os.geteuid() != 0:
        return "the test cluster's daemons need root"
    if shutil.which("slurmctld") is None and shutil.which("apt-get") is None:
        return "SLURM is not installed and there is no apt-get to install it"
    return None


@pytest.fixture(scope="session")
def start_cluster() -> Callable[[str], Site]:
    """Configure (or reconfigure) the local cluster as a site; fast when it already is that site."""
    reason = _unavailable()
    if reason:
        pytest.skip(reason)

    def start(name: str) -> Site:
        res = subprocess.run(
            [str(HERE / "start-cluster.sh"), name], capture_output=True, text=True, timeout=600, check=False
        )
        if res.returncode != 0:
            pytest.fail(f"start-cluster.sh {name} failed:\n{res.stderr[-4000:]}")
        return read_site(name)

    return start


def sacct(*args: str) -> list[dict[str, str]]:
    """``sacct -P`` rows as dicts (the first line names the fields)."""
    out = subprocess.run(["sacct", "-P", *args], capture_output=True, text=True, check=True).stdout
    lines = out.strip().splitlines()
    if not lines:
        return []
    head = lines[0].split("|")
    return [dict(zip(head, line.split("|"), strict=True)) for line in lines[1:]]


def wait_for_job(job: str, timeout: float = 300) -> str:
    """Poll until the job has ended; its final state."""
    deadline = time.monotonic() + timeout
    state = ""
    while time.monotonic() < deadline:
        rows = sacct("-X", "-j", job, "-o", "State")
        state = rows[0]["State"] if rows else ""
        if state and state not in {"PENDING", "RUNNING", "REQUEUED", "CONFIGURING", "COMPLETING"}:
            return state
        time.sleep(1)
    subprocess.run(["scancel", job], check=False)
    raise TimeoutError(f"SLURM job {job} still {state or 'unknown'} after {timeout} s")


def snakemake(work: Path, site: Site, *args: str, account: str | None = None, timeout: float = 1200) -> Any:
    cmd = [
        str(BIN / "snakemake"),
        *args,
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(work),
        "--profile",
        str(REPO / "profiles" / site.name),
        "--profile",
        str(HERE / "profile"),
        # on a 2-core machine 8 ranks of 2 torch threads each crawl: one thread per rank (--cpus-per-rank)
        "--set-threads",
        "train_model=1",
        "--configfile",
        str(work / "config.yaml"),
        str(HERE / "config.yaml"),
    ]
    env = {
        "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
        "HOME": str(work),
        "LC_ALL": "C.UTF-8",
    }
    if account != "":  # "" leaves the variable unset
        env["WXPIPE_ACCOUNT"] = site.account if account is None else account
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=timeout, check=False)


def workdir(tmp: Path) -> Path:
    for name in ("small-config.yaml", "small-recipe.yaml"):
        shutil.copy(SMALL / name, tmp / name)
    (tmp / "config.yaml").write_text((tmp / "small-config.yaml").read_text())
    return tmp


@dataclass(frozen=True)
class Run:
    site: Site
    work: Path
    jobs: dict[str, list[dict[str, str]]]  # rule -> its jobs' sacct rows
    seconds: float


def resources(site: Site, rule: str) -> dict[str, Any]:
    """What the profile asks for a rule: its default resources overlaid by the rule's own."""
    profile: dict[str, Any] = site.profile  # type: ignore[assignment]
    return {**profile.get("default-resources", {}), **profile.get("set-resources", {}).get(rule, {})}


def gpus_requested(res: dict[str, Any]) -> int:
    """GPUs per node as the profile asks for them: ``gres: gpu:N`` or LUMI's ``--gpus-per-node=N``."""
    m = re.fullmatch(r"gpu(?::\w+)?:(\d+)", str(res.get("gres", "")))
    if m:
        return int(m.group(1))
    m = re.search(r"--gpus-per-node=(\d+)", str(res.get("slurm_extra", "")))
    return int(m.group(1)) if m else 0


def tres_gpus(tres: str) -> int:
    m = re.search(r"gres/gpu(?::\w+)?=(\d+)", tres)
    return int(m.group(1)) if m else 0


@pytest.fixture(scope="module", params=SITES)
def site_run(
    request: pytest.FixtureRequest, start_cluster: Callable[[str], Site], tmp_path_factory: pytest.TempPathFactory
) -> Run:
    site = start_cluster(request.param)
    work = workdir(tmp_path_factory.mktemp(f"slurm-{site.name}"))
    started = time.monotonic()
    res = snakemake(work, site)
    seconds = time.monotonic() - started
    if res.returncode != 0:
        logs = "\n".join(f"== {p}\n{p.read_text()[-2000:]}" for p in sorted((work / "results/logs").rglob("*.log")))
        pytest.fail(f"snakemake --profile profiles/{site.name} failed:\n{res.stderr[-6000:]}\n{logs[-20000:]}")
    # the plugin writes each job's log to results/logs/slurm/rule_<rule>/<wildcards>/<jobid>.log
    ids = {
        p.stem: p.relative_to(work / "results/logs/slurm").parts[0][5:]
        for p in work.glob("results/logs/slurm/**/*.log")
    }
    rows = sacct("-X", "-j", ",".join(ids), "-o", "JobID,Partition,Account,QOS,AllocTRES,Start,End,State")
    jobs: dict[str, list[dict[str, str]]] = {}
    for row in rows:
        jobs.setdefault(ids[row["JobID"]], []).append(row)
    print(f"{site.name}: {seconds:.0f} s, {len(rows)} SLURM jobs")
    return Run(site, work, jobs, seconds)


def test_every_job_ran_where_the_profile_says(site_run: Run) -> None:
    site = site_run.site
    assert set(site_run.jobs) == DATA_RULES | {"train_model", "predict_model"}
    for rule, rows in site_run.jobs.items():
        want = resources(site, rule)
        for row in rows:
            assert row["State"] == "COMPLETED", (rule, row)
            assert row["Partition"] == want["slurm_partition"], (rule, row)
            assert row["Partition"] in site.partitions
            assert row["Account"] == site.account, (rule, row)
            # no qos key: the site's default QOS, "normal"
            assert row["QOS"] == want.get("qos", "normal"), (rule, row)
            assert tres_gpus(row["AllocTRES"]) == gpus_requested(want), (rule, row)
    # training and prediction on GPU partitions, the data stages and the scoring on CPU ones
    assert tres_gpus(site_run.jobs["train_model"][0]["AllocTRES"]) == site.gpus
    assert tres_gpus(site_run.jobs["predict_model"][0]["AllocTRES"]) >= 1
    assert all(tres_gpus(r["AllocTRES"]) == 0 for rule in DATA_RULES for r in site_run.jobs[rule])


@pytest.mark.parametrize(("rule", "parts"), [("load", 2), ("statistics_part", 3)])
def test_parts_are_separate_jobs_that_run_together(site_run: Run, rule: str, parts: int) -> None:
    rows = site_run.jobs[rule]
    assert len({r["JobID"] for r in rows}) == parts
    # sacct's times are whole seconds: every part started before any other part ended
    assert max(r["Start"] for r in rows) <= min(r["End"] for r in rows)


def test_training_is_one_rank_per_gpu(site_run: Run) -> None:
    tasks = resources(site_run.site, "train_model")["tasks"]
    assert tasks == site_run.site.gpus
    job = site_run.jobs["train_model"][0]["JobID"]
    steps = {r["JobID"]: r for r in sacct("-j", job, "-o", "JobID,NTasks,State")}
    assert steps[f"{job}.0"]["NTasks"] == str(tasks) and steps[f"{job}.0"]["State"] == "COMPLETED"
    log = (site_run.work / "results/logs/train/tiny.log").read_text()
    ranks = dict(re.findall(rf"rank (\d+)/{tasks}: parameters sha256 (\w+)", log))
    assert sorted(ranks) == [str(r) for r in range(tasks)]
    assert len(set(ranks.values())) == 1, ranks
    record = json.loads((site_run.work / "results/lineage/train/tiny.json").read_text())
    assert record["distributed"] == {"world_size": tasks, "parameters_sha256": ranks["0"]}
    assert record["execution"]["slurm_job_id"] == job


def test_workflow_finished_and_logs_sit_together(site_run: Run) -> None:
    work = site_run.work
    catalogue = json.loads((work / "results/catalogue/catalogue.json").read_text())
    assert {"dataset", "statistics", "layout", "copy", "checkpoint", "evaluation"} <= {
        r["kind"] for r in catalogue["records"].values()
    }
    slurm_logs = list(work.glob("results/logs/slurm/rule_*/**/*.log"))
    assert len(slurm_logs) == sum(len(rows) for rows in site_run.jobs.values())
    res = snakemake(work, site_run.site, "-n")
    assert res.returncode == 0 and "Nothing to be done" in res.stdout + res.stderr


def bad_submission(site: Site, case: str) -> tuple[list[str], str | None, str]:
    """Arguments that make the demo job's submission wrong in one way, and the error expected."""
    if case == "account":
        return [], "project_000bad", "appears to be invalid"
    if case == "partition":
        return ["--set-resources", "demo:slurm_partition=no_such_partition"], None, "invalid partition"
    if case == "qos":
        return ["--set-resources", "demo:qos=no_such_qos"], None, "Invalid qos specification"
    train = resources(site, "train_model")
    too_many = site.gpus + 1
    lumi_style = "--gpus-per-node" in str(train.get("slurm_extra", ""))
    gpu = f"demo:slurm_extra='--gpus-per-node={too_many}'" if lumi_style else f"demo:gres=gpu:{too_many}"
    return (
        ["--set-resources", f"demo:slurm_partition={train['slurm_partition']}", gpu],
        None,
        "Requested node configuration is not available",
    )


@pytest.mark.parametrize("case", ["account", "partition", "qos", "gpus"])
def test_a_refused_submission_fails_fast_with_the_reason(site_run: Run, case: str, tmp_path: Path) -> None:
    args, account, message = bad_submission(site_run.site, case)
    work = workdir(tmp_path)
    # the first job (the demo archive) alone; the timeout proves it does not hang waiting for a job
    res = snakemake(work, site_run.site, "results/lineage/demo/archive.json", *args, account=account, timeout=180)
    out = res.stdout + res.stderr
    assert res.returncode != 0
    assert message in out, out[-3000:]


def test_unset_account_is_a_clear_error(site_run: Run, tmp_path: Path) -> None:
    res = snakemake(workdir(tmp_path), site_run.site, "-n", account="")
    assert res.returncode != 0
    assert "WXPIPE_ACCOUNT, which is not set" in res.stdout + res.stderr


def _tiny_training(site_run: Run, tmp_path: Path, name: str, ranks: int, **settings: Any) -> str:
    """``wxpipe train`` of the small config's tiny run on the site's small dataset, as its batch command."""
    tiny = yaml.safe_load((SMALL / "small-config.yaml").read_text())["training"]["tiny"]
    tiny.update(mlflow={"tracking_uri": f"sqlite:///{tmp_path}/mlflow.db", "experiment": name}, **settings)
    (tmp_path / "settings.json").write_text(json.dumps(tiny, default=lambda d: d.isoformat()))
    return (
        f"{BIN}/wxpipe train {site_run.work}/results/datasets/small.zarr {tmp_path}/ckpt.pt --name {name}"
        f" --settings @{tmp_path}/settings.json --ranks {ranks} --lineage {tmp_path}/record.json"
    )


def _sbatch(site: Site, tmp_path: Path, cmd: str, *options: str) -> str:
    """Submit ``cmd`` to the site's CPU partition; the job id (its output: ``tmp_path/job.log``)."""
    cpu = resources(site, "load")
    account = ["-A", site.account, "-p", cpu["slurm_partition"], *(["--qos", cpu["qos"]] if "qos" in cpu else [])]
    args = ["sbatch", "--parsable", *account, *options, "--mem=4000", "-t", "10", "-o", f"{tmp_path}/job.log"]
    return subprocess.run([*args, "--wrap", cmd], capture_output=True, text=True, check=True).stdout.strip()


def test_two_rank_gloo_training_agrees(site_run: Run, tmp_path: Path) -> None:
    """A 2-task job: srun starts two ranks, gloo all-reduces their gradients, both end equal."""
    if site_run.site.name != SITES[0]:
        pytest.skip(f"one 2-rank run is enough; it runs on the {SITES[0]} cluster")
    cmd = _tiny_training(site_run, tmp_path, "ddp", 2, steps=12)
    job = _sbatch(site_run.site, tmp_path, cmd, "--ntasks=2", "--cpus-per-task=1")
    state = wait_for_job(job, timeout=300)
    log = (tmp_path / "job.log").read_text()
    assert state == "COMPLETED", log[-4000:]
    assert "gloo backend" in log
    ranks = dict(re.findall(r"rank (\d)/2: parameters sha256 (\w+)", log))
    assert sorted(ranks) == ["0", "1"] and ranks["0"] == ranks["1"], log[-4000:]
    assert json.loads((tmp_path / "record.json").read_text())["distributed"]["world_size"] == 2


def show_job(job: str) -> dict[str, str]:
    """``scontrol show job`` as a dict of its Key=Value fields."""
    out = subprocess.run(["scontrol", "-o", "show", "job", job], capture_output=True, text=True, check=True).stdout
    return dict(field.split("=", 1) for field in out.split() if "=" in field)


def _wait(what: str, ready: Callable[[], bool], timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} after {timeout} s")
        time.sleep(0.5)


def test_training_goes_on_job_after_job(site_run: Run, tmp_path: Path) -> None:
    """SIGUSR1 to the job's steps, as SLURM sends it before a time limit: twice the training saves its state
    and requeues its job, which starts again under the same id and continues from that step, with no retry
    spent; then it finishes in one MLflow run."""
    if site_run.site.name != SITES[0]:
        pytest.skip(f"one run is enough; it runs on the {SITES[0]} cluster")
    from wxpipe.train.state import saved_step

    steps = 3000
    cmd = _tiny_training(site_run, tmp_path, "long", 1, steps=steps, checkpoint_every=20)
    job = _sbatch(site_run.site, tmp_path, cmd, "--requeue", "--open-mode=append", "--cpus-per-task=1")
    folder = tmp_path / "ckpt.state"
    for restarts in (1, 2):
        _wait("the job running", lambda: show_job(job).get("JobState") == "RUNNING")
        before = saved_step(folder) or 0
        _wait("a state saved by this start of the job", lambda: (saved_step(folder) or 0) > before)  # noqa: B023
        assert (saved_step(folder) or 0) < steps, "training ended before the signal: raise steps"
        subprocess.run(["scancel", "--signal=USR1", job], check=True)
        # requeued: SLURM holds it cred_expire seconds (the test cluster's 10, not the default 120)
        _wait("the job requeued", lambda: show_job(job).get("Restarts") == str(restarts))  # noqa: B023
    state = wait_for_job(job, timeout=300)
    log = (tmp_path / "job.log").read_text()
    assert state == "COMPLETED", log[-4000:]
    assert log.count("requeueing the job to continue") == 2, log[-6000:]
    resumed = [int(s) for s in re.findall(r"resuming long at step (\d+) of", log)]
    assert len(resumed) == 2 and 0 < resumed[0] < resumed[1] < steps, log[-6000:]
    assert saved_step(folder) == steps and (tmp_path / "ckpt.pt").exists()
    record = json.loads((tmp_path / "record.json").read_text())
    from mlflow.tracking import MlflowClient

    runs = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db").search_runs(
        [record["mlflow"]["experiment_id"]], run_view_type=3
    )
    assert [(r.info.run_id, r.info.status) for r in runs] == [(record["mlflow"]["run_id"], "FINISHED")]
