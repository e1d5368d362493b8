//! The canonical entry encoding: a golden vector, round trips, and canonicity (every accepted
//! byte string re-encodes to itself).
//!
//! Regenerate the golden vector (after a deliberate format change only) with:
//! `ZT_REGENERATE_VECTORS=1 cargo test -p zt-audit --test entry -- --test-threads=1`
#![allow(
    clippy::unwrap_used,
    reason = "test helpers report failures by panicking"
)]

use std::collections::BTreeMap;
use std::net::IpAddr;

use proptest::prelude::*;
use zt_audit::entry::{decode, encode};
use zt_audit::merkle::leaf_hash;
use zt_core::{Actor, AuditEvent, AuditEventKind, Detail, Outcome, TenantId, Timestamp, UserId};

const GOLDEN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/entry-v1.txt");

fn golden_event() -> AuditEvent {
    AuditEvent::new(
        AuditEventKind::RoleChanged,
        Actor::User(UserId::from_bytes([0x11; 16])),
        Timestamp::from_unix_millis(1_764_400_000_000),
    )
    .tenant(TenantId::from_bytes([0x22; 16]))
    .target("user:usr_3333")
    .outcome(Outcome::Success)
    .source("2001:db8::7".parse::<IpAddr>().unwrap())
    .detail("from_role", "member")
    .unwrap()
    .detail("to_role", "admin")
    .unwrap()
    .detail("approvals", 2)
    .unwrap()
    .detail("break_glass", false)
    .unwrap()
}

#[test]
fn golden_entry() {
    let bytes = encode(&golden_event());
    let text = format!(
        "encoding {}\nleaf_hash {}\n",
        hex::encode(&bytes),
        hex::encode(leaf_hash(&bytes))
    );
    if std::env::var_os("ZT_REGENERATE_VECTORS").is_some() {
        std::fs::write(GOLDEN, &text).unwrap();
    }
    assert_eq!(
        text,
        std::fs::read_to_string(GOLDEN).unwrap(),
        "the entry encoding drifted"
    );
    assert_eq!(decode(&bytes).unwrap(), golden_event());
}

#[test]
fn non_canonical_bytes_are_refused() {
    let bytes = encode(&golden_event());
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(decode(&trailing).is_err());
    for cut in 0..bytes.len() {
        assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut version = bytes.clone();
    version[0] = 2;
    assert!(decode(&version).is_err());
    // Swap the first two detail names' order by hand: "approvals" then "break_glass" become
    // "break_glass" then "approvals", which encode() never produces.
    let event = golden_event();
    let mut swapped = encode(&AuditEvent {
        details: BTreeMap::new(),
        ..event.clone()
    });
    swapped.truncate(swapped.len() - 4);
    swapped.extend_from_slice(&2u32.to_be_bytes());
    for (name, value) in [
        ("break_glass", Detail::Flag(false)),
        ("approvals", Detail::Number(2)),
    ] {
        swapped.extend_from_slice(&(name.len() as u32).to_be_bytes());
        swapped.extend_from_slice(name.as_bytes());
        match value {
            Detail::Flag(f) => swapped.extend_from_slice(&[2, u8::from(f)]),
            Detail::Number(n) => {
                swapped.push(1);
                swapped.extend_from_slice(&n.to_be_bytes());
            }
            Detail::Text(_) => unreachable!(),
        }
    }
    assert!(decode(&swapped).is_err(), "unsorted details accepted");
}

fn event() -> impl Strategy<Value = AuditEvent> {
    let kind = (0..AuditEventKind::ALL.len()).prop_map(|i| AuditEventKind::ALL[i]);
    let actor = prop_oneof![
        any::<[u8; 16]>().prop_map(|b| Actor::User(UserId::from_bytes(b))),
        ".{0,12}".prop_map(Actor::System),
        Just(Actor::Anonymous),
    ];
    let outcome = prop_oneof![
        Just(Outcome::Success),
        Just(Outcome::Failure),
        Just(Outcome::Denied)
    ];
    let detail = prop_oneof![
        ".{0,12}".prop_map(Detail::Text),
        any::<i64>().prop_map(Detail::Number),
        any::<bool>().prop_map(Detail::Flag),
    ];
    (
        kind,
        proptest::option::of(any::<[u8; 16]>()),
        actor,
        proptest::option::of(".{0,16}"),
        outcome,
        proptest::option::of(any::<IpAddr>()),
        any::<i64>(),
        proptest::collection::btree_map(".{0,8}", detail, 0..4),
    )
        .prop_map(
            |(kind, tenant, actor, target, outcome, source, at, details)| AuditEvent {
                kind,
                tenant: tenant.map(TenantId::from_bytes),
                actor,
                target,
                outcome,
                source,
                at: Timestamp::from_unix_millis(at),
                details,
            },
        )
}

proptest! {
    #[test]
    fn events_round_trip(event in event()) {
        let bytes = encode(&event);
        prop_assert_eq!(decode(&bytes).unwrap(), event);
    }

    /// Whatever decodes re-encodes to the very same bytes, so one event has one leaf hash.
    #[test]
    fn accepted_bytes_are_canonical(event in event(), flips in proptest::collection::vec(any::<(usize, u8)>(), 1..4)) {
        let mut bytes = encode(&event);
        for (at, value) in flips {
            let len = bytes.len();
            bytes[at % len] = value;
        }
        if let Ok(decoded) = decode(&bytes) {
            prop_assert_eq!(encode(&decoded), bytes);
        }
    }
}
