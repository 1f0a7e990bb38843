"""The model stages' commands: train (one process, or one rank per SLURM task), predict (in the engine's
environment: the one place a model is loaded), climatology, evaluate (forecasts files only: no engine imported)
and compare (scores files only)."""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import WxpipeError
from ._common import finish, record

if TYPE_CHECKING:
    from ..config import EvaluationConfig, TrainingConfig

log = logging.getLogger("wxpipe")


def _settings(text: str) -> dict[str, Any]:
    """Settings as YAML/JSON text, or ``@file``."""
    import yaml  # here: ~40 ms of import that `wxpipe copy` (a no-op rerun) does without

    data = yaml.safe_load(Path(text[1:]).read_text() if text.startswith("@") else text)
    if not isinstance(data, dict):
        raise WxpipeError(f"settings must be a mapping, got {text[:60]!r}")
    return data


def _tags(args: argparse.Namespace) -> dict[str, str]:
    from ..lineage import read_record

    return {f"lineage.{r['kind']}": r["id"] for r in map(read_record, args.upstream)}


def cmd_train(args: argparse.Namespace) -> None:
    from ..config import TrainingConfig, params_of
    from ..dataset import open_dataset
    from ..lineage import describe_file
    from ..tracking import recorded_uri
    from ..train import EXIT_STOPPED, TrainingStopped, continuation, distributed, state_folder, train
    from ..train.state import saved_step

    cfg = TrainingConfig.model_validate(_settings(args.settings))
    if cfg.engine == "anemoi":
        _train_anemoi(args, cfg)
        return
    launch = distributed.srun_command(args.argv, args.ranks, args.cpus_per_rank)
    if launch is not None:  # in a SLURM job: one rank per task
        folder = state_folder(Path(args.checkpoint))
        before = saved_step(folder)
        log.info("starting %d ranks: %s", args.ranks, " ".join(launch))
        code = subprocess.call(launch, env={**os.environ, distributed.LAUNCHED: "1"})
        if code == EXIT_STOPPED:
            if not continuation.requeue(folder, before):
                log.error("the ranks stopped on a signal with the training state saved: rerun to continue")
            raise SystemExit(EXIT_STOPPED)
        if code:
            raise WxpipeError(f"srun exited with status {code}; every rank's messages are above")
        return
    ctx = distributed.setup()
    try:
        ds = open_dataset(args.dataset)
        tags = {**_tags(args), "dataset_uuid": ds.source_uuid}
        res = train(ds, cfg, args.checkpoint, args.name, tags, ctx, threads=args.cpus_per_rank)
    except TrainingStopped as stopped:
        log.error("%s", stopped)
        raise SystemExit(EXIT_STOPPED) from None
    finally:
        distributed.teardown(ctx)
    if not ctx.leader:
        return
    finish(args, f"trained {args.name}: {json.dumps(res.metrics)}; mlflow run {res.run_id}", args.checkpoint)
    record(
        args,
        "checkpoint",
        [describe_file(args.checkpoint)],
        params_of(cfg),
        mlflow={
            "run_id": res.run_id,
            "experiment_id": res.experiment_id,
            "tracking_uri": res.tracking_uri or recorded_uri(cfg.mlflow.tracking_uri),
            "metrics": res.metrics,
        },
        distributed={"world_size": res.world_size, "parameters_sha256": res.parameters_sha256},
    )


def _train_anemoi(args: argparse.Namespace, cfg: TrainingConfig) -> None:
    """``engine: anemoi``: anemoi-training with wxpipe's overrides (:mod:`wxpipe.anemoi.runner`), its checkpoint
    and what it says of itself in the lineage record."""
    from ..anemoi.runner import checkpoint_facts, dataset_attrs, hardware
    from ..anemoi.runner import train as train_anemoi
    from ..config import params_of
    from ..lineage import describe_file
    from ..tracking import source_tags

    uuid = str(dataset_attrs(args.dataset).get("uuid", ""))
    tags = {"wxpipe.stage": "train", "wxpipe.dataset_uuid": uuid, **source_tags("wxpipe train"), **_tags(args)}
    where = hardware(args.ranks, args.cpus_per_rank)
    log.info("anemoi-training on %d %s device(s) x %d node(s)", where.devices, where.accelerator, where.nodes)
    res = train_anemoi(args.dataset, cfg, args.checkpoint, args.name, hardware=where, tags=tags)
    facts = checkpoint_facts(args.checkpoint)
    verb = "continued" if res.resumed else "trained"
    finish(
        args, f"{verb} {args.name} with anemoi-training: run {res.run_id}, checkpoint {facts['uuid']}", args.checkpoint
    )
    record(
        args,
        "checkpoint",
        [describe_file(args.checkpoint)],
        params_of(cfg),
        anemoi={**facts, "inference": str(res.inference)},
        mlflow={"run_id": res.run_id, "tracking_uri": f"file:{res.store}", "offline": True},
    )


def cmd_predict(args: argparse.Namespace) -> None:
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # before any engine imports torch: the job's one setting
    from ..config import EvaluationConfig, params_of
    from ..dataset import open_dataset
    from ..lineage import describe_tree
    from ..predict import predict

    cfg = EvaluationConfig.model_validate(_settings(args.settings))
    ds = open_dataset(args.dataset)
    lineage = _tags(args).get("lineage.checkpoint")
    fc = predict(ds, args.checkpoint, cfg, args.out, lineage=lineage, run=args.name, memory_mb=args.memory_mb)
    finish(args, f"{args.out}: {len(fc.init_dates)} forecasts of {args.checkpoint} on {ds.path}", args.out)
    record(args, "forecasts", [describe_tree(args.out, uuid=ds.uuid)], params_of(cfg))


def cmd_evaluate(args: argparse.Namespace) -> None:
    from ..climatology import open_climatology
    from ..config import EvaluationConfig, params_of
    from ..dataset import open_dataset
    from ..evaluate import OUTPUTS, evaluate
    from ..lineage import describe_file
    from ..scoring import Baselines

    cfg = EvaluationConfig.model_validate(_settings(args.settings))
    ds = open_dataset(args.dataset)
    references = {lead: open_dataset(path) for lead, path in _references(args.reference, cfg)}
    baselines = Baselines(
        climatology=None if args.climatology is None else open_climatology(args.climatology),
        reference=cfg.reference.name if cfg.reference else None,
        references=references,
    )
    if cfg.climatology is not None and args.climatology is None:
        raise WxpipeError("evaluation.climatology is configured: pass the climatology store with --climatology")
    scores = evaluate(
        ds, args.forecasts, cfg, args.out, _tags(args), run=args.name, baselines=baselines, memory_mb=args.memory_mb
    )
    what = f"{args.out}: scores of {args.forecasts} over {cfg.period.start} .. {cfg.period.end}"
    finish(args, f"{what}; mlflow run {scores['mlflow']['run_id']}", args.out)
    outs = [describe_file(args.out / name) for name in OUTPUTS]
    record(args, "evaluation", outs, params_of(cfg), mlflow=scores["mlflow"])


def _references(given: list[str], cfg: EvaluationConfig) -> list[tuple[int, Path]]:
    """``--reference LEAD=PATH`` pairs, one for each lead of ``evaluation.reference`` and no other."""
    pairs = []
    for text in given:
        lead, sep, path = text.partition("=")
        if not sep or not lead.isdigit():
            raise WxpipeError(f"--reference {text!r}: expected LEAD=PATH (lead in steps)")
        pairs.append((int(lead), Path(path)))
    want = set(cfg.reference.leads) if cfg.reference else set()
    if {lead for lead, _ in pairs} != want:
        raise WxpipeError(
            f"--reference gives leads {sorted(lead for lead, _ in pairs)}; evaluation.reference has {sorted(want)}"
        )
    return pairs


def cmd_climatology(args: argparse.Namespace) -> None:
    from ..climatology import compute, needed_days
    from ..config import EvaluationConfig, params_of
    from ..dataset import open_dataset
    from ..lineage import describe_tree

    cfg = EvaluationConfig.model_validate(_settings(args.settings))
    if cfg.climatology is None:
        raise WxpipeError("the evaluation settings have no climatology section")
    ds = open_dataset(args.dataset)
    valid = needed_days(cfg.period, max(cfg.leads) * ds.frequency, ds.frequency)
    compute(ds, cfg.climatology, valid, args.out)
    finish(
        args,
        f"{args.out}: climatology of {ds.path} over {cfg.climatology.period.start} .. {cfg.climatology.period.end}",
        args.out,
    )
    record(args, "climatology", [describe_tree(args.out, uuid=ds.uuid)], params_of(cfg.climatology))


def cmd_compare(args: argparse.Namespace) -> None:
    from ..compare import compare
    from ..lineage import describe_file

    compare(args.scores, args.out, baseline=args.baseline, resamples=args.resamples, region=args.region)
    finish(args, f"{args.out}: {len(args.scores)} evaluations compared against {args.baseline}", args.out)
    outs = [describe_file(path) for path in sorted(args.out.iterdir()) if path.is_file()]
    record(args, "comparison", outs, {"baseline": args.baseline, "resamples": args.resamples, "region": args.region})


def cmd_loss_curve(args: argparse.Namespace) -> None:
    from ..plots import loss_curve

    history = json.loads(args.history.read_text())
    pairs = {k: [(int(s), float(v)) for s, v in history[k]] for k in ("train", "validation")}
    loss_curve(
        pairs["train"],
        pairs["validation"],
        args.out,
        persistence=history["persistence"],
        title=f"{history['run']}: loss",
    )
    finish(args, f"{args.out}: the loss curve of {history['run']}", args.out)
