//! Update checks (issue 20, item 4): a release manifest signed with the pinned release key is
//! read; unsigned, foreign-signed, another product's, or older than the newest seen (a
//! rollback) are refused and recorded; only the operators' workspace admins may check.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_docs,
    reason = "tests report failures by panicking"
)]

mod common;

use zt_chat::ErrorKind;
use zt_chat::testing::World;
use zt_chat::updates::{ReleaseManifest, UpdateSettings, sign_release};
use zt_core::{AuditEventKind, Outcome};
use zt_crypto::SigningKey;

use common::{login, member, new_user, password};

fn release(version: &str, key: &SigningKey) -> (Vec<u8>, String) {
    let manifest = ReleaseManifest::new("zt", version, 1, 1_765_000_000_000, "notes");
    sign_release(&manifest, key).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signed_manifests_are_read_and_rollbacks_forgeries_and_strangers_refused() {
    let world = World::new().await;
    let (workspace, _) = world
        .chat
        .bootstrap("Acme", new_user("ada"), &password())
        .await
        .unwrap();
    let release_key = SigningKey::generate();
    let world = World {
        chat: world.chat.with_updates(UpdateSettings {
            release_key: release_key.verifying_key(),
            product: "zt".into(),
            running: "1.0.0".into(),
            operators: workspace.tenant(),
        }),
        ..world
    };
    let workspace = world.chat.workspace(workspace.tenant()).await.unwrap();
    let ada = login(&workspace, "ada").await;
    let bob = member(&workspace, &ada, "bob").await;

    let (bytes, signature) = release("1.2.0", &release_key);
    let status = workspace
        .check_updates(&ada, &bytes, &signature)
        .await
        .unwrap();
    assert!(status.available);
    assert_eq!(
        (status.running.as_str(), status.latest.version.as_str()),
        ("1.0.0", "1.2.0")
    );
    // The same release again is fine; an older one is a rollback.
    workspace
        .check_updates(&ada, &bytes, &signature)
        .await
        .unwrap();
    let (older, older_signature) = release("1.1.9", &release_key);
    let refused = workspace
        .check_updates(&ada, &older, &older_signature)
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Tampered, "{refused}");
    assert!(refused.to_string().contains("rollback"), "{refused}");

    // Unsigned, signed by another key, altered after signing, another product.
    let stranger = SigningKey::generate();
    let (forged, forged_signature) = release("9.0.0", &stranger);
    let mut altered = bytes.clone();
    let at = altered.len() - 3;
    altered[at] ^= 1;
    let other_product = sign_release(
        &ReleaseManifest::new("other", "9.0.0", 1, 0, ""),
        &release_key,
    )
    .unwrap();
    for (manifest, signature) in [
        (bytes.clone(), String::new()),
        (forged, forged_signature),
        (altered, signature.clone()),
        other_product,
    ] {
        let refused = workspace
            .check_updates(&ada, &manifest, &signature)
            .await
            .unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::Tampered, "{refused}");
    }
    // Every check is recorded; the refused ones as denied.
    let checked: Vec<_> = world
        .audit
        .events()
        .into_iter()
        .filter(|e| e.kind == AuditEventKind::UpdateChecked)
        .collect();
    assert_eq!(checked.len(), 7);
    assert_eq!(
        checked
            .iter()
            .filter(|e| e.outcome == Outcome::Denied)
            .count(),
        5
    );

    // A member, and the owner of another workspace of the deployment, may not check.
    let refused = workspace
        .check_updates(&bob, &bytes, &signature)
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Forbidden);
    let (other, _) = world
        .chat
        .bootstrap("Other", new_user("olga"), &password())
        .await
        .unwrap();
    let olga = login(&other, "olga").await;
    let refused = other
        .check_updates(&olga, &bytes, &signature)
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Forbidden, "{refused}");
}

#[test]
fn versions_compare_as_numbers_and_only_releases_parse() {
    use zt_chat::updates::Version;
    assert!(Version::parse("1.10.0").unwrap() > Version::parse("1.9.9").unwrap());
    for bad in [
        "1.2",
        "1.2.3.4",
        "1.2.x",
        "1.2.3-rc1",
        "",
        "01.2.-3",
        " 1.2.3",
        "1..3",
    ] {
        assert!(Version::parse(bad).is_err(), "{bad:?}");
    }
    assert_eq!(Version::parse("01.2.3").unwrap().to_string(), "1.2.3");
}
