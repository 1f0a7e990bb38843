#!/usr/bin/env bash
# `make gpu-check` on a GPU machine without internet: this machine's python3, torch and numpy, plus the wheels
# of .gpu-wheels/ (`make gpu-wheels`, where PyPI is reachable) in a venv that sees the system's packages.
# Arguments go to `python -m bench.gpu_check` (e.g. --dry-run, --out DIR); figures land in $OUT when set.
set -euo pipefail
cd "$(dirname "$0")/.."
wheels=${GPU_WHEELS:-.gpu-wheels}
venv=${GPU_VENV:-${TMPDIR:-/tmp}/wxpipe-gpu-check-venv}
python=${PYTHON3:-python3}
"$python" -c "import torch, numpy" || { echo "gpu-check: $python has no torch or numpy; it uses the machine's own" >&2; exit 1; }
ls "$wheels"/*.whl >/dev/null 2>&1 || { echo "gpu-check: no wheels in $wheels: run 'make gpu-wheels' where PyPI is reachable" >&2; exit 1; }
if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv --system-site-packages "$venv"
  # exactly the carried set, no resolution: the wheels mlflow lists but never imports to log are left out
  "$venv/bin/python" -m pip install -q --no-index --no-deps "$wheels"/*.whl
fi
"$venv/bin/python" -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'gpus', torch.cuda.device_count())"
PYTHONPATH=workflow exec "$venv/bin/python" -m bench.gpu_check "$@"
