#!/usr/bin/env bash
# The prepared GPU check: the test suite on CUDA, then the large-scale RUM suite on CUDA.
#
# Run it from the repository root on a machine with CUDA and PyTorch, e.g. a lent device
# machine (one command, so that the machine is started once):
#
#   bash benchmarks/device_check.sh
#
# rum itself is used from the checkout (PYTHONPATH), so nothing is installed. mnist1d, which
# such a machine may lack, is installed from the wheels in .whl/ when that folder exists;
# fetch them where pip can reach PyPI (mnist1d is pure Python):
#
#   python3 -m pip download --no-deps --only-binary=:all: -d .whl mnist1d==0.0.2.post1
#
# Environment (defaults sized to end within about 8 minutes): TESTS_S (seconds for the test
# suite, 0 skips it), DEVICE (default cuda), SEEDS, SCENARIOS, METHODS, SECTION. Logs,
# the benchmark pages (docs/benchmarks.md and docs/benchmarks/*.md; the default SECTION is
# written to large-scale.md) and the suite's rows land in $OUT (default ./device_out).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$PWD/device_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
if [ -d .whl ]; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/rum_site .whl/*.whl \
    && export PYTHONPATH=/tmp/rum_site
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}

python3 - <<'EOF' 2>&1 | tee "$OUT/machine.log"
import torch
print("torch", torch.__version__, "cuda", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")
EOF

tests_rc=skipped
if [ "${TESTS_S:-150}" != 0 ]; then
  # every test that does not pin device="cpu" runs on the GPU (rum picks CUDA when it is there)
  timeout "${TESTS_S:-150}" python3 -m pytest -q -p no:cacheprovider -x tests 2>&1 | tee "$OUT/tests.log"
  tests_rc=${PIPESTATUS[0]}
fi

python3 -m benchmarks.rum_suite --tasks mnist1d --scale large --device "${DEVICE:-cuda}" \
  --seeds "${SEEDS:-1}" --scenarios "${SCENARIOS:-random,mixed,subgroup}" \
  --methods "${METHODS:-RUM,auto,single:neggrad+}" --section "${SECTION:-rum-suite-large-cuda}" \
  2>&1 | tee "$OUT/suite.log"
suite_rc=${PIPESTATUS[0]}

cp docs/benchmarks.md docs/benchmarks/*.md "$OUT/" 2>/dev/null
cp benchmarks/results/rows_*.json "$OUT/" 2>/dev/null
echo "tests: $tests_rc, suite: $suite_rc" | tee "$OUT/status.log"
[ "$suite_rc" = 0 ]
