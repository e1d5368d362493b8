#!/usr/bin/env bash
# Installs the OpenID provider the single sign-on tests run against (npm oidc-provider 9.13.3,
# locked in scripts/oidc/package-lock.json) into DIR (default target/oidc-provider), next to its
# start script scripts/oidc/op.mjs, and prints the variable the tests read:
#   eval "$(bash scripts/oidc-provider-setup.sh)"
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(realpath -m "${1:-target/oidc-provider}")
mkdir -p "$dir"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q nodejs npm >&2
  else
    echo "node and npm are needed for the single sign-on tests" >&2
    exit 1
  fi
fi
cp scripts/oidc/op.mjs scripts/oidc/package.json scripts/oidc/package-lock.json "$dir/"
if [[ ! -d "$dir/node_modules/oidc-provider" ]] || ! cmp -s scripts/oidc/package-lock.json "$dir/node_modules/.package-lock.json.zt"; then
  (cd "$dir" && npm ci --no-audit --no-fund --silent >&2)
  cp scripts/oidc/package-lock.json "$dir/node_modules/.package-lock.json.zt"
fi
echo "export ZT_TEST_OIDC_PROVIDER=$dir"
