#!/usr/bin/env bash
# deps.sh: installs what wsgate needs to build and test (Debian 12, as root); idempotent.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)

apt_pkgs=(
  build-essential cmake ninja-build pkg-config
  libevent-dev libssl-dev libyaml-dev zlib1g-dev libjansson-dev
  check libsubunit-dev
  clang clang-14 libclang-rt-14-dev clang-format
  python3 python3-websockets openssl
)
# Node may come from another source than Debian: install it only when absent.
command -v node >/dev/null 2>&1 || apt_pkgs+=(nodejs)
command -v npm >/dev/null 2>&1 || apt_pkgs+=(npm)

# Runs a command quietly; on failure shows its output and fails.
quiet() {
  local log
  log=$(mktemp)
  if ! "$@" >"$log" 2>&1; then
    echo "deps.sh: failed: $*" >&2
    cat "$log" >&2
    rm -f "$log"
    exit 1
  fi
  rm -f "$log"
}

missing=()
for p in "${apt_pkgs[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done

if ((${#missing[@]} > 0)); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "deps.sh: missing packages (run as root to install): ${missing[*]}" >&2
    exit 1
  fi
  echo "deps.sh: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  quiet apt-get update -q
  quiet apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

for tool in node npm /usr/bin/python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "deps.sh: $tool not found" >&2; exit 1; }
done
/usr/bin/python3 -c 'import websockets' 2>/dev/null ||
  { echo "deps.sh: /usr/bin/python3 cannot import websockets" >&2; exit 1; }

# Node packages of the integration tests, from the lockfile; skipped when
# node_modules was installed from this very lockfile.
it="$root/tests/integration"
if [[ -f "$it/package-lock.json" ]]; then
  want=$(sha256sum "$it/package-lock.json" | cut -d' ' -f1)
  stamp="$it/node_modules/.wsgate-lock.sha256"
  have=$(cat "$stamp" 2>/dev/null || true)
  if [[ "$want" != "$have" || ! -d "$it/node_modules/ws" ]]; then
    (cd "$it" && quiet npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" >"$stamp"
  fi
fi
