"""make test-anemoi's shared set-up: one copy of the project whose demo config has an anemoi GNN run."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml
from gnn_run import ANEMOI, GNN, REPO


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project (what git tracks and would track) whose demo config has the GNN run added."""
    if not (ANEMOI / "bin" / "anemoi-training").exists():
        pytest.fail("no anemoi-training in .venv-anemoi: run make test-anemoi, which builds it (make anemoi-env)")
    root = tmp_path_factory.mktemp("anemoi") / "project"
    files = subprocess.run(
        ["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    for name in files:
        if (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            (root / name).write_bytes((REPO / name).read_bytes())
    (root / ".venv-anemoi").symlink_to(ANEMOI.resolve())
    config = yaml.safe_load((root / "config/config.yaml").read_text())
    config["training"]["gnn"] = GNN
    (root / "config/config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    return root
