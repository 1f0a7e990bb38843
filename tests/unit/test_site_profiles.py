"""The site profiles, read as data: every request fits the site's partitions, QOS and limits.

The limits are those the test cluster is given for the site (tests/slurm/sites/<site>.env, each
commented with the documentation it follows), so a profile and its cluster cannot drift apart.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
SITES = ["lumi", "leonardo", "marenostrum5", "jupiter"]
GPU_RULES = {"train_model", "train_anemoi", "predict_model"}


def site_limits(site: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (REPO / "tests/slurm/sites" / f"{site}.env").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            key, _, value = line.partition("=")
            values[key] = " ".join(shlex.split(value))
    return values


def minutes(limit: str) -> float:
    """SLURM's MaxTime (``D-HH:MM:SS``, ``HH:MM:SS``, ``INFINITE``) in minutes."""
    if limit == "INFINITE":
        return float("inf")
    days, _, rest = limit.rpartition("-")
    h, m, s = (int(x) for x in rest.split(":"))
    return int(days or 0) * 1440 + h * 60 + m + s / 60


def rules() -> set[str]:
    text = "\n".join(p.read_text() for p in (REPO / "workflow/rules").glob("*.smk"))
    return set(re.findall(r"^\s*rule (\w+):", text, flags=re.M))


def profile(site: str) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((REPO / "profiles" / site / "config.yaml").read_text())
    return data


def requests(site: str) -> dict[str, dict[str, Any]]:
    """Each submitted rule's effective resources: default-resources overlaid by its set-resources."""
    p = profile(site)
    return {r: {**p["default-resources"], **p.get("set-resources", {}).get(r, {})} for r in rules()}


@pytest.mark.parametrize("site", SITES)
def test_profile_names_real_rules_and_the_account_variable(site: str) -> None:
    p = profile(site)
    assert p["executor"] == "slurm"
    assert p["default-resources"]["slurm_account"] == "$WXPIPE_ACCOUNT"
    assert set(p.get("set-resources", {})) <= rules()
    assert set(p.get("set-threads", {})) <= rules()
    assert p["latency-wait"] >= 30 and p["retries"] >= 1
    assert p["slurm-init-seconds-before-status-checks"] >= 30 and p["max-status-checks-per-second"] <= 1
    assert p["slurm-logdir"] == "results/logs/slurm"


@pytest.mark.parametrize("site", SITES)
def test_requests_fit_the_site(site: str) -> None:
    limits = site_limits(site)
    partitions = dict(p.split(":", 1) for p in limits["CLUSTER_PARTITIONS"].split())
    qos = limits["CLUSTER_QOS"].split()
    for rule, res in requests(site).items():
        assert res["slurm_partition"] in partitions, (rule, res)
        assert res["runtime"] <= minutes(partitions[res["slurm_partition"]]), (rule, res)
        assert res.get("qos", "normal") in qos, (rule, res)
        assert res["mem_mb"] <= int(limits["CLUSTER_MEM_MB"]), (rule, res)


@pytest.mark.parametrize("site", SITES)
def test_gpus_only_for_training_and_evaluation_as_the_site_asks(site: str) -> None:
    gpus = int(site_limits(site)["CLUSTER_GPUS"])
    for rule, res in requests(site).items():
        gres, extra = str(res.get("gres", "")), str(res.get("slurm_extra", ""))
        if rule not in GPU_RULES:
            assert "gpu" not in gres + extra, rule
            continue
        if site == "lumi":  # LUMI documents --gpus-per-node, the others --gres=gpu:N
            assert re.search(r"--gpus-per-node=\d+", extra) and not gres, rule
        else:
            assert re.fullmatch(r"gpu:\d+", gres) and "gpu" not in extra, rule
    train = requests(site)["train_model"]
    assert requests(site)["train_anemoi"] == train  # anemoi-training gets the same ranks, GPUs and signal
    assert profile(site)["set-threads"]["train_anemoi"] == profile(site)["set-threads"]["train_model"]
    assert train["tasks"] == gpus and train["mpi"] == "srun" and train["nodes"] == 1
    assert str(gpus) in str(train.get("gres", "")) + str(train.get("slurm_extra", ""))


@pytest.mark.parametrize("site", SITES)
def test_training_gets_the_warning_signal_on_every_rank(site: str) -> None:
    """SIGUSR1 before the time limit, sent to the job's steps (the srun ranks), not only the batch shell (B:)."""
    extra = str(requests(site)["train_model"].get("slurm_extra", ""))
    signal = re.search(r"--signal=(\S+)", extra)
    assert signal is not None, extra
    assert re.fullmatch(r"USR1@\d+", signal.group(1).strip("'")), signal.group(1)
    # the stopped job requeues itself to go on (wxpipe.train.continuation): it must be requeueable
    assert "--requeue" in extra.strip("'").split(), extra
