#!/usr/bin/env bash
# The GPU check: one command from the project root, offline, on a machine with a CUDA GPU
# (see the README, "CUDA kernels (Triton)"; the steps are in tools/gpu_check.py).
#   bash tools/gpu_check.sh [--dry-run] [--budget SECONDS]
# Output: $OUT when set, else ./gpu-check/ (summary.md, log.txt, cells.json, tests.xml,
# bench_fp32.json, bench_bf16.json). Without CUDA it is a dry run: the GPU steps are reported
# as skipped, the rest runs, exit 0. Exit 1 when a step failed. $PYTHON picks the interpreter.
set -uo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$(command -v python || command -v python3)}"
if [ -z "$PY" ]; then echo "gpu_check: no python or python3 on PATH" >&2; exit 2; fi
exec "$PY" tools/gpu_check.py --python "$PY" "$@"
