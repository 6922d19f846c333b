#!/usr/bin/env bash
# run.sh: installs dependencies, builds a Release wsgate into build/ and runs it.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"

bash scripts/deps.sh
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j2 --target wsgate
exec build/wsgate -c config/example.yaml "$@"
