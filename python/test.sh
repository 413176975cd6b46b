#!/usr/bin/env bash
# Build the wheel (maturin, sharing the workspace's compiled dependencies in target/), install it
# with pip, and run the Python tests against the installed package. Part of the README's test
# command; needs maturin, pytest, numpy (pandas, polars, matplotlib for the frame and plot tests):
#   pip install maturin==1.16.0 pytest numpy pandas polars matplotlib flwr==1.42.0
set -euo pipefail
cd "$(dirname "$0")/.."
export STRATA_DATA="${STRATA_DATA:-$(cd .. && pwd)/shared/data}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
wheels=$(mktemp -d)
start=$(date +%s)
(cd python && maturin build --release --quiet -o "$wheels")
echo "wheel built in $(( $(date +%s) - start ))s: $(ls "$wheels")"
pip install --quiet --force-reinstall --no-deps "$wheels"/strata*.whl
# The CLI the tests compare with (`cargo test` built it already).
test -x target/release/strata || cargo build --release --quiet -p strata-cli --bin strata
# From the repository root, so that `import strata` is the installed wheel, not python/strata.
python -m pytest -q python/tests
