#!/usr/bin/env bash
# Download the wheels bench/gpu_check.sh needs on the borrowed GPU machine, which has Python 3.12,
# torch, torchvision, timm, pandas, scikit-image, opencv-python-headless, ... but not these:
#
#   facenet-pytorch  MTCNN face crops of the synthetic set (its weights ship inside the wheel)
#   openpyxl         the synthetic CASME II annotation sheet (.xlsx), written and read
#   et-xmlfile       openpyxl's one dependency
#   grad-cam, ttach  Grad-CAM (tsfmicro/gradcam.py uses pytorch_grad_cam; it imports ttach)
#
# Left out on purpose: ray (its wheel alone is larger than the 64 MiB a device call carries;
# gpu_check.py measures several folds per GPU with separate processes sharing one runs folder,
# the way two `tsfmicro run` on one runs folder share it) and xlrd (only CAS(ME)^3's .xls sheets).
#
# Each wheel is fetched with --no-deps for CPython 3.12 on manylinux x86-64 (pure-Python wheels
# match any platform), into .whl/ at the repository root (ignored by git; `carry` it).
#
#   bench/gpu_wheels.sh            # versions below (those of this project's environment)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[[ -x .venv/bin/python ]] && PYTHON=.venv/bin/python
WHEELS=(facenet-pytorch==2.5.3 openpyxl==3.1.5 et-xmlfile==2.0.0 ttach==0.0.3)
SOURCE_ONLY=(grad-cam==1.5.7)  # published as a source archive only: built here into a pure-Python wheel
mkdir -p .whl
"$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  --platform any -d .whl "${WHEELS[@]}"
"$PYTHON" -m pip wheel --quiet --no-deps -w .whl "${SOURCE_ONLY[@]}"
ls -l .whl
du -ch .whl/*.whl | tail -1
