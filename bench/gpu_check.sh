#!/usr/bin/env bash
# The paper path on a GPU in one call (correctness, speed, a full LOSO or its projection):
# see bench/gpu_check.py for the steps and their budgets, bench/README.md for the one device call.
#
#   bench/gpu_check.sh               # a CUDA machine; JSON lines go to $OUT (else bench/results/gpu_check)
#   bench/gpu_check.sh --dry-run     # the same steps on the CPU at toy sizes (CI: tests/test_gpu_check.py)
#
# Wheels the GPU machine lacks (facenet-pytorch, openpyxl, et-xmlfile, grad-cam, ttach), when .whl/
# holds them (bench/gpu_wheels.sh), are installed into /tmp/gpu_check_site first.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-}
if [[ -z $PYTHON ]]; then
  if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
if compgen -G ".whl/*.whl" >/dev/null && ! "$PYTHON" -c "import importlib.util as u, sys; sys.exit(not all(u.find_spec(m) for m in ('facenet_pytorch', 'openpyxl', 'pytorch_grad_cam')))" 2>/dev/null; then
  "$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/gpu_check_site .whl/*.whl || { echo "gpu_check.sh: installing .whl/*.whl failed" >&2; exit 2; }
  export PYTHONPATH=/tmp/gpu_check_site${PYTHONPATH:+:$PYTHONPATH}
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
export CUBLAS_WORKSPACE_CONFIG=${CUBLAS_WORKSPACE_CONFIG:-:4096:8}  # deterministic cuBLAS for the resume check
echo "nvidia-smi: $(nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo none)"
exec "$PYTHON" bench/gpu_check.py "$@"
