#!/usr/bin/env bash
# test.sh: builds wsgate twice (warnings as errors; clang with ASan+UBSan and
# fuzz targets) and runs the whole ctest suite on each; ends with "N passed, M failed".
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

build_dir=${WSGATE_BUILD_DIR:-build}
asan_dir=${WSGATE_ASAN_DIR:-build-asan}

passed=0
failed=0
status=0

bash scripts/deps.sh || { echo "0 passed, 1 failed"; exit 1; }

# Adds the counts of ctest's "NN% tests passed, F tests failed out of T" line
# in log $1 to the totals; a run without that line counts as one failure.
count() {
  local line t f
  line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$1" | tail -n1)
  if [[ -z "$line" ]]; then
    failed=$((failed + 1))
    return
  fi
  f=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\1/' <<<"$line")
  t=$(sed -E 's/.* ([0-9]+) tests? failed out of ([0-9]+).*/\2/' <<<"$line")
  passed=$((passed + t - f))
  failed=$((failed + f))
}

# suite NAME DIR CMAKE-ARGS...: configures, builds and tests one build tree.
suite() {
  local name=$1 dir=$2
  shift 2
  local log
  log=$(mktemp)
  echo "== $name: configure and build ($dir)"
  if ! cmake -S . -B "$dir" -G Ninja "$@" >"$log" 2>&1 ||
    ! cmake --build "$dir" -j2 >>"$log" 2>&1; then
    cat "$log"
    echo "== $name: build failed"
    failed=$((failed + 1))
    status=1
    rm -f "$log"
    return
  fi
  echo "== $name: ctest"
  (cd "$dir" && ctest --output-on-failure -j2) 2>&1 | tee "$log"
  [[ ${PIPESTATUS[0]} -eq 0 ]] || status=1
  count "$log"
  rm -f "$log"
}

# The same build type as scripts/run.sh, so -O3-only warnings fail here too.
suite release "$build_dir" -DCMAKE_BUILD_TYPE=Release -DWSGATE_WERROR=ON

# The gateway processes the integration tests start inherit these.
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
suite sanitize "$asan_dir" -DCMAKE_C_COMPILER=clang -DWSGATE_SANITIZE=ON \
  -DWSGATE_WERROR=ON -DWSGATE_FUZZ=ON

((failed == 0)) || status=1
echo "$passed passed, $failed failed"
exit "$status"
