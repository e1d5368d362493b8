#!/usr/bin/env bash
# Follows the README's "Getting started" as a newcomer would: runs its server command and its
# client commands exactly as the README prints them (read from README.md, so the two cannot
# drift apart), and checks that `tail` shows the message `send` posted.
#
#   scripts/readme-smoke.sh         (from anywhere; runs in the repository root)
set -euo pipefail
cd "$(dirname "$0")/.."

readme_line() { # the first README line starting with "$1"
  grep -m1 -F -- "$1" README.md | sed 's/[[:space:]]*#.*$//'
}
serve=$(readme_line 'cargo run -p zt-chat-server -- serve')
login=$(readme_line 'cargo run -p zt-chat-client -- login')
create=$(readme_line 'cargo run -p zt-chat-client -- admin create-channel')
tail_cmd=$(readme_line 'cargo run -p zt-chat-client -- tail')
send=$(readme_line 'cargo run -p zt-chat-client -- send')
for c in "$serve" "$login" "$create" "$tail_cmd" "$send"; do
  [[ -n "$c" ]] || { echo "a Getting started command is missing from README.md" >&2; exit 1; }
done

work=$(mktemp -d)
export ZT_CHAT_HOME="$work/client"
if [[ -e zt-data || -e zt-data.kms-passphrase || -e zt-data.admin-password ]]; then
  echo "zt-data already exists here; this smoke test needs a fresh start" >&2
  exit 1
fi
# Each background command runs in its own process group (setsid), so stopping it stops what
# `cargo run` started too.
cleanup() {
  [[ -n "${tail_pid:-}" ]] && kill -- "-$tail_pid" 2>/dev/null || true
  if [[ -n "${server_pid:-}" ]]; then
    kill -TERM -- "-$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf zt-data zt-data.kms-passphrase zt-data.admin-password "$work"
}
trap cleanup EXIT

# Each package is built on its own, as `cargo run -p` resolves it: built together, their features
# unify differently and the first `cargo run` would build everything again.
cargo build -q -p zt-chat-server --bins
cargo build -q -p zt-chat-client --bins
echo "+ $serve"
setsid bash -c "$serve" >"$work/server.out" 2>"$work/server.log" &
server_pid=$!
for _ in $(seq 600); do
  grep -q "listening on" "$work/server.out" 2>/dev/null && break
  sleep 0.2
done
grep -q "listening on" "$work/server.out" || { cat "$work/server.log" >&2; exit 1; }

for c in "$login" "$create"; do
  echo "+ $c"
  eval "$c" </dev/null
done
echo "+ $tail_cmd &"
setsid bash -c "$tail_cmd" >"$work/tail.out" 2>"$work/tail.err" </dev/null &
tail_pid=$!
for _ in $(seq 300); do
  grep -q "following" "$work/tail.err" 2>/dev/null && break
  sleep 0.2
done
echo "+ $send"
eval "$send" </dev/null
text=$(sed -n 's/.*send [^ ]* "\(.*\)".*/\1/p' <<<"$send")
for _ in $(seq 100); do
  grep -qF "$text" "$work/tail.out" && break
  sleep 0.1
done
if ! grep -qF "$text" "$work/tail.out"; then
  echo "tail did not show the message" >&2
  cat "$work/tail.err" >&2
  exit 1
fi
echo "README walk-through OK: tail showed \"$text\""
