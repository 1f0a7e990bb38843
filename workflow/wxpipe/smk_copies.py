"""What the copy rules ask of the package (rules/transfer.smk): where each copy goes, what it sends and
follows, and the site's options for ``wxpipe copy``. Apart from :mod:`.smk` because copies are their own
family of rules: datasets and layouts before training, models after their evaluation."""

from __future__ import annotations

import shlex
from pathlib import Path

from . import paths
from .config import Config


def site_location(cfg: Config, site: str, name: str) -> str:
    """The URL of a dataset's or layout's copy at a site."""
    return paths.site_copy(cfg.sites[site].url, name)


def model_location(cfg: Config, site: str, run: str) -> str:
    """The URL of a model's copy at a site: ``<url>/models/<run>``."""
    return f"{cfg.sites[site].url}/{paths.site_model_name(run)}"


MODEL_FILES = ("checkpoint.pt", "loss.json", "loss_curve.png")
EVALUATION_FILES = ("scores.json", "scores.nc", "scorecard.png", "leads.png", "maps.png")


def bundle_files(run: str) -> dict[str, str]:
    """What a model's copy holds (name in the copy -> file here): the checkpoint and loss curve, the evaluation's
    scores and pictures, and the lineage records of both, so the copy says what made it wherever it lands."""
    model = str(Path(paths.model(run)).parent)
    files = {name: f"{model}/{name}" for name in MODEL_FILES}
    files |= {f"evaluation/{name}": paths.evaluation(run, name) for name in EVALUATION_FILES}
    files |= {f"lineage/{Path(record).parent.name}.json": record for record in model_records(run)}
    return files


def site_args(cfg: Config, site: str) -> str:
    """A site's connection options for ``wxpipe copy`` (shell-quoted; never a credential)."""
    s = cfg.sites[site]
    opts = {
        "--endpoint-url": s.endpoint_url,
        "--region": s.region,
        "--profile": s.profile,
        "--ssh-config": s.ssh_config,
        "--transfers": s.transfers,
    }
    return shlex.join(str(x) for k, v in opts.items() if v is not None for x in (k, v))


def mirror_args(cfg: Config, site: str, name: str) -> str:
    """``--delete`` for a transfer marked ``mirror: true`` (the site's copy loses what the source lost)."""
    mirror = any(t.site == site and t.name == name and t.mirror for t in cfg.transfers)
    return "--delete" if mirror else ""


def bundle_args(run: str) -> str:
    """:func:`bundle_files` as ``wxpipe bundle``'s ``NAME=PATH`` arguments, shell-quoted."""
    return shlex.join(f"{name}={path}" for name, path in bundle_files(run).items())


def transfer_source(cfg: Config, site: str, name: str) -> tuple[str, str]:
    """What the transfer of ``name`` to ``site`` copies (a dataset or a layout) and the lineage record it follows."""
    if any(t.dataset == name and t.site == site for t in cfg.transfers):
        return paths.dataset(name), paths.record("statistics", name)
    return paths.layout(name), paths.record("rechunk", name)


def model_records(run: str) -> list[str]:
    """The lineage records a model's copy follows: its training's and its evaluation's."""
    return [paths.record(stage, run) for stage in ("train", "evaluate")]
