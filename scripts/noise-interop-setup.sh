#!/usr/bin/env bash
# Installs the JavaScript Noise client's packages (npm noise-handshake 4.2.0, ws 8) for the
# realtime interop test, into DIR (default target/noise-interop), and prints the variable the test
# reads:   eval "$(bash scripts/noise-interop-setup.sh)"
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(realpath -m "${1:-target/noise-interop}")
mkdir -p "$dir"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm >&2
  else
    echo "node and npm are needed for the realtime interop test" >&2
    exit 1
  fi
fi
if [[ ! -d "$dir/node_modules/noise-handshake" || ! -d "$dir/node_modules/ws" ]]; then
  (cd "$dir" && npm install --no-audit --no-fund --silent --prefix "$dir" \
    noise-handshake@4.2.0 ws@8.18.3 >&2)
fi
echo "export ZT_TEST_NOISE_INTEROP_DIR=$dir"
