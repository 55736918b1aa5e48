#!/usr/bin/env bash
# Create .venv-tv: a second environment with torchvision for `python -m benchmarks.vs_torchvision`.
# torchvision's builds do not import beside the CPU torch of .venv, so the comparison runs here,
# with vidnets installed without its dependencies and the runtime ones added explicitly.
#   usage: bash benchmarks/setup_tv_env.sh   (from the repository root; ~5.5 GB, about a minute)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
VENV=.venv-tv
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import torchvision, vidnets" 2>/dev/null; then
    echo "$VENV is ready"; exit 0
fi
"$PYTHON" -m venv "$VENV"
"$VENV/bin/pip" install -q torch==2.14.1 torchvision==0.29.1
"$VENV/bin/pip" install -q numpy pyyaml tqdm
"$VENV/bin/pip" install -q --no-deps -e .
"$VENV/bin/python" -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
