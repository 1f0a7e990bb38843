"""``wxpipe mlflow-sync``: copy an offline MLflow store to the tracking server, from the login node after the
job that trained on a compute node without internet (the ``sync_mlflow`` rule)."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ..errors import WxpipeError
from ._common import finish


def cmd_mlflow_sync(args: argparse.Namespace) -> None:
    from ..config import MlflowConfig
    from ..mlflow_sync import find_store, sync
    from ..tracking import redact, resolve_uri

    configured = None
    if args.settings is not None:
        from ._ml import _settings

        configured = MlflowConfig.model_validate(_settings(args.settings).get("mlflow") or {}).tracking_uri
    to = args.to or resolve_uri(configured)
    if not args.store.exists():
        if args.marker is None:
            raise WxpipeError(f"{args.store}: no such MLflow store")
        _mark(args, {"store": str(args.store), "runs": {}, "note": "no offline store: the run logged online"})
        finish(args, f"{args.store}: no offline store (the run logged online): nothing to sync")
        return
    store = find_store(args.store)
    copies = sync(store, to)
    _mark(args, {"store": str(store.path), "tracking_uri": redact(to), "runs": copies})
    finish(args, f"{store.path}: {len(copies)} runs synced to {redact(to)}; their ids in {store.record}")


def _mark(args: argparse.Namespace, summary: dict[str, Any]) -> None:
    """Write the done-marker the rule declares, when ``--marker`` names one: what was synced, and where."""
    if args.marker is not None:
        from ..fsutil import atomic_write_text

        atomic_write_text(args.marker, json.dumps(summary, indent=2, sort_keys=True) + "\n")
