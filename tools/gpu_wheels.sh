#!/usr/bin/env bash
# Download the wheels a lent GPU machine lacks into .gpu-wheels/ (git-ignored), so that they
# travel with the working tree and `tools/gpu_check.sh` installs them there offline
# (`pip install --no-index --no-deps`). Run it from the project root on a machine with PyPI.
#
# The GPU machine has Python 3.12 with torch, triton, numpy, pandas, scipy, seaborn,
# scikit-learn, matplotlib, tqdm, pytest, pytest-benchmark, hypothesis, ninja and setuptools
# (and their dependencies). What regbench's runtime dependencies need beyond that is listed
# below: scikit-posthocs, rliable and mnist1d with their own dependencies, one pinned version
# each (the versions the test suite runs with), as CPython 3.12 manylinux x86-64 wheels or
# pure-Python ones; rliable 1.2.0 is published as a source archive only, so it is built here
# into a pure-Python wheel. Dask's `distributed` is not carried: the GPU check does not use it.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST="${GPU_WHEELS_DIR:-.gpu-wheels}"
PY="${PYTHON:-python3}"
SDIST_ONLY=(rliable==1.2.0)  # pure Python
WHEELS=(
    scikit-posthocs==0.17.1 statsmodels==0.15.0 patsy==1.0.3 formulaic==1.2.2
    interface-meta==2.0.1 wrapt==2.5.2
    arch==7.2.0 absl-py==2.5.1
    mnist1d==0.0.2.post1 requests==2.34.2 certifi==2026.10.19.post1 urllib3==2.8.0
    idna==3.20 charset-normalizer==3.5.3
    wheel==0.45.1  # only where setuptools < 70.1 (it needs `wheel` to build regbench editable)
)
mkdir -p "$DEST"
"$PY" -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --abi cp312 --abi abi3 --abi none \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux_2_28_x86_64 --platform any \
    --dest "$DEST" "${WHEELS[@]}"
"$PY" -m pip wheel --no-deps --wheel-dir "$DEST" "${SDIST_ONLY[@]}"
n=$(ls "$DEST"/*.whl | wc -l)
echo "gpu_wheels: $n wheels, $(du -sh "$DEST" | cut -f1) in $DEST (tools/gpu_check.sh installs them)"
