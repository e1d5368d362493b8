//! The JSON corpus: each scenario's requests, with the decisions and reasons expected, answered
//! by the fast `Authorizer` (cold, then cached) and by the reference evaluator.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers report failures by panicking"
)]

mod common;

use common::{Scenario, named_codes};
use zt_authz::{Authorizer, Cascades, reference};

#[test]
fn every_corpus_scenario_gives_the_expected_decisions_on_both_evaluators() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "the corpus is missing from {}",
        dir.display()
    );
    let mut checked = 0;
    let mut failures = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        let scenario: Scenario =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        let model = scenario.model();
        let names = scenario.names();
        let fast = Authorizer::new(model.clone(), Cascades::standard());
        for label in ["cold", "cached"] {
            for (i, request) in scenario.requests.iter().enumerate() {
                let (principal, action, resource) = request.question();
                let slow =
                    reference::authorize(&model, Cascades::standard(), principal, action, resource);
                let quick = fast.authorize(principal, action, resource);
                let got = (quick.allowed, named_codes(quick.codes(), &names));
                let want = (request.allowed, request.reasons.clone());
                let reference_got = (slow.allowed, named_codes(slow.codes(), &names));
                if got != want || reference_got != want {
                    failures.push(format!(
                        "{} request {i} ({label}) {} {} {}: want {want:?}, fast {got:?}, reference {reference_got:?}",
                        file.file_name().unwrap().to_string_lossy(),
                        request.principal,
                        request.action,
                        request.resource
                    ));
                }
                checked += 1;
            }
        }
        assert!(!scenario.description.is_empty(), "{}", file.display());
    }
    assert!(
        failures.is_empty(),
        "{} of {checked} failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn hidden_groups_and_private_channels_stay_out_of_listings_and_mention_lookups() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    for file in ["03-groups.json", "02-channel-segmentation.json"] {
        let scenario: Scenario =
            serde_json::from_str(&std::fs::read_to_string(dir.join(file)).unwrap()).unwrap();
        let authz = Authorizer::new(scenario.model(), Cascades::standard());
        let names = scenario.names();
        let named = |ids: Vec<String>| named_codes(ids, &names);
        let asker = |name: &str| zt_core::Principal {
            tenant: common::TENANT,
            user: common::user(name),
        };
        if file.starts_with("03") {
            // jon is a member of the hidden group, and still does not see it listed or offered.
            let ids = |p| {
                authz
                    .visible_groups(p)
                    .iter()
                    .map(ToString::to_string)
                    .collect()
            };
            assert_eq!(named(ids(asker("jon"))), ["all"]);
            assert_eq!(named(ids(asker("ivy"))), ["all", "secret"]);
            assert_eq!(named(ids(asker("gia"))), ["all", "staff", "sub"]);
            let mentionable = |p| {
                authz
                    .mentionable_groups(p)
                    .iter()
                    .map(ToString::to_string)
                    .collect()
            };
            assert_eq!(named(mentionable(asker("jon"))), ["all"]);
            // staff lets only its members mention it; root sees it but is no member.
            assert_eq!(named(mentionable(asker("root"))), ["all", "secret", "sub"]);
        } else {
            let ids = |p| {
                authz
                    .visible_channels(p)
                    .iter()
                    .map(ToString::to_string)
                    .collect()
            };
            // The admin lists the public channel only; the guest only its own.
            assert_eq!(named(ids(asker("root"))), ["town"]);
            assert_eq!(named(ids(asker("gus"))), ["ops"]);
            assert_eq!(named(ids(asker("ann"))), ["board", "town"]);
        }
    }
}
