#!/usr/bin/env bash
# GPU throughput check: training images/s, batched inference frames/s, a torchrun (nccl) step and end-to-end
# clip frames/s, printed as one table (see bench/gpu_check.py). On a machine without a GPU it says so and exits 0.
#   bash bench/gpu_check.sh [--quick] [--json OUT.json]
# Python: $PYTHON if set, else the project's .venv, else python3. Wheels in .whl/ (e.g. PyAV for a machine that
# lacks it) are installed into a temporary folder first.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-}"
if [[ -z "$PY" ]]; then
    if [[ -x .venv/bin/python ]]; then PY=.venv/bin/python; else PY=python3; fi
fi
if compgen -G ".whl/*.whl" > /dev/null; then
    site="$(mktemp -d)"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --target "$site" .whl/*.whl
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
exec "$PY" bench/gpu_check.py "$@"
