#!/usr/bin/env bash
# Fuzzes the reference server's HTTP API with schemathesis (PyPI) from its own OpenAPI document:
# starts the built server on 127.0.0.1 with a fresh data directory, signs in as the default
# workspace's owner, and fails on any 5xx or any response that breaks the document's schema.
#
#   scripts/schemathesis.sh [path/to/zt-chat-server]    (default: target/debug/zt-chat-server)
#
# schemathesis is installed into target/schemathesis-venv on first use.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN=${1:-target/debug/zt-chat-server}
VERSION=4.32.5
VENV=target/schemathesis-venv
if ! "$VENV/bin/schemathesis" --version 2>/dev/null | grep -q "$VERSION"; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "schemathesis==$VERSION"
fi

work=$(mktemp -d)
cleanup() {
  if [[ -n "${pid:-}" ]]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# Rate limits high enough that the fuzzer tests handlers, not the limiter (which has unit tests).
cat >"$work/zt.toml" <<EOF
[limits]
per_address_per_second = 100000.0
per_address_burst = 100000.0
per_user_per_second = 100000.0
per_user_burst = 100000.0
EOF

ZT_KMS_PASSPHRASE="schemathesis run passphrase" "$BIN" serve --config "$work/zt.toml" \
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

token=$(python3 - "$base" "$work/data.admin-password" <<'EOF'
import json, sys, urllib.request
base, password_file = sys.argv[1], sys.argv[2]
body = json.dumps({"username": "admin", "password": open(password_file).read().strip()}).encode()
request = urllib.request.Request(base + "/api/v1/sessions", data=body,
                                 headers={"content-type": "application/json"})
print(json.load(urllib.request.urlopen(request))["token"])
EOF
)

# Signing out or revoking a session (its id comes back from GET /sessions) would end the session
# the run authenticates with; the end-to-end tests cover both. The single sign-on flows under
# /api/v1/sso/ reach out to an identity provider (none runs here); zt-core's and the server's
# tests run them against a real one (oidc-provider).
status=0
"$VENV/bin/schemathesis" run "$base/api/v1/openapi.json" \
  --checks not_a_server_error,response_schema_conformance \
  --header "Authorization: Bearer $token" \
  --exclude-path-regex '^/api/v1/(sessions/|sso/)' \
  --max-examples "${SCHEMATHESIS_EXAMPLES:-25}" \
  --generation-deterministic \
  --no-color || status=$?
if [[ $status -ne 0 ]]; then
  echo "--- server log (last 50 lines)" >&2
  tail -n 50 "$work/server.log" >&2
fi
exit $status
