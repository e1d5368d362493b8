#!/usr/bin/env python3
"""Prints the benchmark figures of the last `cargo bench` run as a Markdown table, with the
ratios docs/PERFORMANCE.md reports. Every ratio compares two figures from the same run.

Usage: cargo bench -p zt-benches && python3 scripts/bench-ratios.py
"""
import json
import pathlib
import sys

root = pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion"
runs = {}
for bench in root.glob("**/new/benchmark.json"):
    meta = json.loads(bench.read_text())
    estimates = json.loads((bench.parent / "estimates.json").read_text())
    mean_ns = estimates["mean"]["point_estimate"]
    throughput = meta.get("throughput") or {}
    elements = throughput.get("Elements", throughput.get("Bytes", 1))
    runs[meta["full_id"]] = {"ns": mean_ns, "per_s": elements * 1e9 / mean_ns}

if not runs:
    sys.exit("no criterion results under target/criterion: run the benchmark first")


def fmt_time(ns):
    for unit, scale in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.2f} {unit}"
    return f"{ns:.0f} ns"


print("| benchmark | time per iteration | elements or bytes per second |")
print("|---|---|---|")
for name in sorted(runs):
    r = runs[name]
    print(f"| {name} | {fmt_time(r['ns'])} | {r['per_s']:,.0f} |")

ratios = []


def ratio(label, numerator, denominator, key="per_s"):
    if numerator in runs and denominator in runs:
        value = runs[numerator][key] / runs[denominator][key]
        ratios.append((label, value))


ratio("group commit: 64 committers / 1 committer (durable commits per second, sled)",
      "storage/group_commit_sled/committers/64", "storage/group_commit_sled/committers/1")
ratio("group commit: 64 committers / raw append+fdatasync in groups of 64 (per second)",
      "storage/group_commit_sled/committers/64", "storage/raw_append_fdatasync/group/64")
ratio("group commit: 1 committer / raw append+fdatasync of 1 (per second)",
      "storage/group_commit_sled/committers/1", "storage/raw_append_fdatasync/group/1")
ratio("sled / memory, single-put commit latency",
      "storage/commit/single_put/sled", "storage/commit/single_put/memory", "ns")
ratio("sled / memory, 100-op batch commit latency",
      "storage/commit/batch_100/sled", "storage/commit/batch_100/memory", "ns")
ratio("sled: keys per second, 100-op batch / single put",
      "storage/commit/batch_100/sled", "storage/commit/single_put/sled")
ratio("sled / memory, get latency", "storage/read/get/sled", "storage/read/get/memory", "ns")
ratio("sled / memory, 100-entry scan latency",
      "storage/read/scan_100/sled", "storage/read/scan_100/memory", "ns")
ratio("audit log: 64 writers / 1 writer (durable appends per second, sled)",
      "audit/append_sled/writers/64", "audit/append_sled/writers/1")
ratio("audit log: 64 writers / raw append+fdatasync in groups of 64 (appends per second)",
      "audit/append_sled/writers/64", "audit/raw_append_fdatasync/group/64")
ratio("audit log: 1 writer / raw append+fdatasync of 1 (appends per second)",
      "audit/append_sled/writers/1", "audit/raw_append_fdatasync/group/1")
ratio("audit verification (all cores) / raw SHA-256 over the same entry bytes (bytes per second)",
      "audit/verify/full_log_sled", "audit/verify/raw_sha256")
ratio("audit verification (one thread) / raw SHA-256 over the same entry bytes (bytes per second)",
      "audit/verify/full_log_sled_1_thread", "audit/verify/raw_sha256")
ratio("audit chunk scan alone / whole verification (time)",
      "audit/verify/scan_only_sled", "audit/verify/full_log_sled", "ns")
ratio("inclusion proof, 1,000,000 / 1,000 entries (time)",
      "audit/proof/inclusion/1000000", "audit/proof/inclusion/1000", "ns")
ratio("consistency proof, 1,000,000 / 1,000 entries (time)",
      "audit/proof/consistency/1000000", "audit/proof/consistency/1000", "ns")
ratio("password login / raw argon2id verify, same parameters (logins per second)",
      "identity/login/password_login", "identity/login/raw_argon2id_verify")
ratio("authz cached decision / bare HashMap + bitmask floor (time; at most 4)",
      "authz/zt_cached_decision", "authz/floor_hashmap_bitmask", "ns")
ratio("authz cached channel decision / floor (time)",
      "authz/zt_cached_channel_decision", "authz/floor_hashmap_bitmask", "ns")
ratio("cedar-policy decision, one permit per role with action groups / zt cached decision (time; at least 100)",
      "authz/cedar_decision", "authz/zt_cached_decision", "ns")
ratio("cedar-policy decision, one permit per role and permission (the first form) / zt cached decision (time)",
      "authz/cedar_decision_permit_per_permission", "authz/zt_cached_decision", "ns")
ratio("casbin decision / zt cached decision (time; at least 100)",
      "authz/casbin_decision", "authz/zt_cached_decision", "ns")
ratio("zt cold compile of one principal / zt cached decision (time)",
      "authz/zt_cold_compile", "authz/zt_cached_decision", "ns")
ratio("chat post-and-fan-out to 1,000 / bare broadcast to 1,000 (per second; at least 0.25)",
      "chat/post_and_fan_out_1000", "chat/bare_broadcast_1000")
ratio("chat post-and-fan-out to 1,000 on sled / bare broadcast to 1,000 (per second)",
      "chat/post_and_fan_out_1000_sled", "chat/bare_broadcast_1000")
ratio("chat page of 100 before a cursor / the latest 100 (time)",
      "chat/list_100_before_cursor", "chat/list_100_latest", "ns")
ratio("chat page of the latest 100 / bare memory scan of 100 rows (time)",
      "chat/list_100_latest", "chat/raw_scan_100", "ns")
ratio("session validate: uncached on sled / cached (time)",
      "identity/validate/uncached_sled", "identity/validate/cached_one_core", "ns")
ratio("EncryptingStore / plain, sled get latency",
      "storage/encrypting/get/encrypted_sled", "storage/encrypting/get/plain_sled", "ns")
ratio("EncryptingStore / plain, sled single-put commit latency",
      "storage/encrypting/single_put/encrypted_sled", "storage/encrypting/single_put/plain_sled", "ns")
ratio("keyring scope key: uncached / cached latency",
      "crypto/keyring/scope_key_uncached", "crypto/keyring/scope_key_cached", "ns")
for group in ("sso/callback", "sso/callback_64_in_flight"):
    ratio(f"{group}: callback work / bare openidconnect verification (per second; at least 0.5)",
          f"{group}/callback_work", f"{group}/bare_openidconnect_verify")
    ratio(f"{group}: ring RS256 signature only / bare openidconnect verification (per second)",
          f"{group}/ring_rs256_signature_only", f"{group}/bare_openidconnect_verify")
ratio("sso/callback_64_in_flight: callback work / session creation alone (per second)",
      "sso/callback_64_in_flight/callback_work", "sso/callback_64_in_flight/session_create_only")
for size in ("256B", "4KiB", "1MiB"):
    ratio(f"envelope / raw XChaCha20-Poly1305, seal+open {size} (time)",
          f"crypto/seal_open/envelope/{size}", f"crypto/seal_open/raw_xchacha20poly1305/{size}", "ns")
    ratio(f"envelope / ring ChaCha20-Poly1305, seal+open {size} (time)",
          f"crypto/seal_open/envelope/{size}", f"crypto/seal_open/ring_chacha20poly1305/{size}", "ns")
    ratio(f"RustCrypto XChaCha20-Poly1305 / ring ChaCha20-Poly1305, seal+open {size} (time)",
          f"crypto/seal_open/raw_xchacha20poly1305/{size}", f"crypto/seal_open/ring_chacha20poly1305/{size}", "ns")
    ratio(f"XChaCha over ring / ring ChaCha20-Poly1305, seal+open {size} (time)",
          f"crypto/seal_open/xchacha_over_ring/{size}", f"crypto/seal_open/ring_chacha20poly1305/{size}", "ns")

print()
print("| ratio (same run) | value |")
print("|---|---|")
for label, value in ratios:
    print(f"| {label} | {value:.2f}x |")
