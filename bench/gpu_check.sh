#!/usr/bin/env bash
# One command on a machine with CUDA: the GPU tests (pytest -m gpu), then bench/bench_gpu.py
# (both tasks' training throughput, precision=auto against fp32, and DDP on every visible GPU),
# which prints the ratios and the precision auto chose (bf16, or fp16 + GradScaler; from config.json). Without CUDA it says so and exits 3 (nothing was checked).
#
#   bash bench/gpu_check.sh [--quick]        # PYTHON=... to choose the interpreter
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-.venv/bin/python}"
[ -x "$PY" ] || PY="$(command -v python3)"
QUICK=()
[ "${1:-}" = "--quick" ] && QUICK=(--quick)

if ! "$PY" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)'; then
    echo "gpu_check: no CUDA GPU visible to $PY (torch $("$PY" -c 'import torch; print(torch.__version__)'), torch.cuda.is_available() is False): nothing checked" >&2
    exit 3
fi
"$PY" -c 'import torch; print("gpu_check:", torch.cuda.device_count(), "x", torch.cuda.get_device_name(0), "torch", torch.__version__, "cuda", torch.version.cuda, "native bf16", torch.cuda.is_bf16_supported(including_emulation=False))'

echo "== GPU tests (pytest -m gpu)"
timeout 1200 "$PY" -m pytest -q -m gpu tests/test_gpu.py

echo "== throughput: precision=auto vs fp32 (\"precision\": the one each run recorded in config.json), DDP on all GPUs (bench/bench_gpu.py)"
timeout 2400 "$PY" bench/bench_gpu.py "${QUICK[@]}"
