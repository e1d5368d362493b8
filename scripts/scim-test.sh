#!/usr/bin/env bash
# Runs the SCIM 2.0 compliance checker `scim2 test` (PyPI scim2-cli) against the reference
# server's /scim/v2: starts the built server on 127.0.0.1 with a fresh data directory, signs in
# as the default workspace's owner, makes a SCIM API key, and fails unless every check passes.
#
#   scripts/scim-test.sh [path/to/zt-chat-server]    (default: target/debug/zt-chat-server)
#
# scim2-cli is installed into target/scim-venv on first use, with scim2-server and waitress (the
# peer of the SCIM benchmark, examples/chat-server/benches/scim.rs, run by scripts/scim2-peer.py).
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${1:-target/debug/zt-chat-server}
VERSION=0.6.0
PEER_VERSION=0.8.3
WAITRESS_VERSION=3.0.2
VENV=target/scim-venv
if ! "$VENV/bin/pip" show scim2-cli 2>/dev/null | grep -q "^Version: $VERSION" \
  || ! "$VENV/bin/pip" show scim2-server 2>/dev/null | grep -q "^Version: $PEER_VERSION" \
  || ! "$VENV/bin/pip" show waitress 2>/dev/null | grep -q "^Version: $WAITRESS_VERSION"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "scim2-cli==$VERSION" "scim2-server==$PEER_VERSION" \
    "waitress==$WAITRESS_VERSION"
fi

work=$(mktemp -d)
cleanup() {
  if [[ -n "${pid:-}" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

ZT_KMS_PASSPHRASE="scim test passphrase" "$BIN" serve \
  --listen 127.0.0.1:0 --data-dir "$work/data" >"$work/stdout" 2>"$work/server.log" &
pid=$!
for _ in $(seq 100); do
  grep -q "listening on" "$work/stdout" 2>/dev/null && break
  sleep 0.1
done
base=$(sed -n 's/^zt-chat-server listening on //p' "$work/stdout")
if [[ -z "$base" ]]; then
  echo "the server did not start:" >&2
  cat "$work/server.log" >&2
  exit 1
fi

key=$(python3 - "$base" "$work/data.admin-password" <<'PY'
import json, sys, urllib.request
base, password_file = sys.argv[1], sys.argv[2]
def call(path, body, token=None):
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = "Bearer " + token
    request = urllib.request.Request(base + path, data=json.dumps(body).encode(), headers=headers)
    return json.load(urllib.request.urlopen(request))
token = call("/api/v1/sessions", {"username": "admin",
                                  "password": open(password_file).read().strip()})["token"]
print(call("/api/v1/admin/scim/keys", {"label": "scim2 test"}, token)["secret"])
PY
)

status=0
"$VENV/bin/scim2" --url "$base/scim/v2" -h "Authorization: Bearer $key" test >"$work/result" 2>&1 \
  || status=$?
cat "$work/result"
echo "scim2 test: $(grep -c '^SUCCESS' "$work/result" || true) checks passed; exit $status"
if [[ $status -ne 0 ]]; then
  echo "--- server log (last 50 lines)" >&2
  tail -n 50 "$work/server.log" >&2
fi
exit $status
