#!/usr/bin/env bash
# Initialises a SoftHSM2 token for zt's PKCS#11 tests, without prompting, and prints the
# environment the tests read. Usage: eval "$(bash scripts/softhsm-init.sh [DIR])"
# Installs Debian's softhsm2 first when it is missing and we are root.
set -euo pipefail
dir="${1:-$PWD/target/softhsm}"
module=/usr/lib/softhsm/libsofthsm2.so
if ! command -v softhsm2-util >/dev/null 2>&1 || [ ! -e "$module" ]; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq softhsm2 >&2
  else
    echo "softhsm2 is not installed (apt-get install softhsm2)" >&2
    exit 1
  fi
fi
mkdir -p "$dir/tokens"
conf="$dir/softhsm2.conf"
printf 'directories.tokendir = %s/tokens\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n' "$dir" > "$conf"
export SOFTHSM2_CONF="$conf"
if ! softhsm2-util --show-slots 2>/dev/null | grep -q 'Label:[[:space:]]*zt-kms'; then
  softhsm2-util --init-token --free --label zt-kms --pin 1234 --so-pin 12345678 >&2
fi
cat <<EXPORTS
export SOFTHSM2_CONF=$conf
export ZT_TEST_PKCS11_MODULE=$module
export ZT_TEST_PKCS11_TOKEN=zt-kms
export ZT_TEST_PKCS11_PIN=1234
EXPORTS
