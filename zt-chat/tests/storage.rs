//! Storage data management (issue 19, item 6): storage use behind `manage_storage_data`, and the
//! clean-up of the shredded rows of deleted channels and of abandoned upload chunks, leaving
//! live content and uploads in progress alone.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    reason = "tests report failures by panicking"
)]

mod common;

use std::time::Duration;

use zt_authz::ChannelVisibility;
use zt_chat::ErrorKind;
use zt_chat::testing::World;

use common::{login, member, new_user, password};

#[tokio::test]
async fn storage_use_and_clean_up_remove_only_what_can_never_be_read() {
    let world = World::new().await;
    let (w, _) = world
        .chat
        .bootstrap("Acme", new_user("ada"), &password())
        .await
        .unwrap();
    let ada = login(&w, "ada").await;
    let bob = member(&w, &ada, "bob").await;
    assert_eq!(
        w.storage_use(&bob).await.unwrap_err().kind(),
        ErrorKind::Forbidden
    );
    assert_eq!(
        w.clean_up_storage(&bob).await.unwrap_err().kind(),
        ErrorKind::Forbidden
    );

    let kept = w
        .create_channel(&ada, "kept", ChannelVisibility::Public, "")
        .await
        .unwrap()
        .id;
    let doomed = w
        .create_channel(&ada, "doomed", ChannelVisibility::Public, "")
        .await
        .unwrap()
        .id;
    let mut files = Vec::new();
    for channel in [kept, doomed] {
        for i in 0..5 {
            w.post(&ada, channel, &format!("message {i}"), None, &[])
                .await
                .unwrap();
        }
        let mut upload = w
            .upload(&ada, channel, "a.bin", "application/octet-stream")
            .await
            .unwrap();
        upload
            .write(&vec![1u8; zt_chat::files::CHUNK + 5])
            .await
            .unwrap();
        files.push(upload.finish(None).await.unwrap());
    }
    let kept_file = files[0].clone();
    // An upload left unfinished (the client went away), and one still under way.
    let mut left = w
        .upload(&ada, kept, "left.bin", "application/octet-stream")
        .await
        .unwrap();
    left.write(&vec![2u8; zt_chat::files::CHUNK * 2 + 1])
        .await
        .unwrap();
    drop(left);
    let before = w.storage_use(&ada).await.unwrap();
    assert_eq!(before.messages.rows, 10);
    assert!(before.file_content.rows >= 6, "{before:?}");
    assert!(before.total().bytes > before.messages.bytes);

    w.delete_channel(&ada, doomed).await.unwrap();
    world.clock.advance(Duration::from_secs(2 * 24 * 3600));
    let mut fresh = w
        .upload(&ada, kept, "fresh.bin", "application/octet-stream")
        .await
        .unwrap();
    fresh
        .write(&vec![3u8; zt_chat::files::CHUNK + 1])
        .await
        .unwrap();

    // The deleted channel's rows are still stored, unreadable, until the clean-up.
    assert_eq!(w.storage_use(&ada).await.unwrap().messages.rows, 10);
    let cleaned = w.clean_up_storage(&ada).await.unwrap();
    // Five messages, two chunks, one file record (and the channel record).
    assert!(cleaned.shredded >= 8, "{cleaned:?}");
    assert_eq!(cleaned.abandoned_chunks, 2, "{cleaned:?}");
    assert!(cleaned.bytes > 0);
    let after = w.storage_use(&ada).await.unwrap();
    assert_eq!(after.messages.rows, 5);
    // What is live stays: the kept channel's messages and file, the upload under way.
    let download = w.download(&ada, kept, kept_file.id).await.unwrap();
    drop(download);
    let finished = fresh.finish(None).await.unwrap();
    assert!(!w.file(&ada, kept, finished.id).await.unwrap().is_removed());
    // Again: nothing left to remove.
    let again = w.clean_up_storage(&ada).await.unwrap();
    assert_eq!((again.shredded, again.abandoned_chunks), (0, 0));
    assert!(
        world
            .audit
            .events()
            .iter()
            .any(|e| e.kind == zt_core::AuditEventKind::RetentionCleanup
                && e.target.as_deref() == Some("storage"))
    );
}

#[tokio::test]
async fn tombstones_go_after_their_own_retention_unless_held() {
    let world = World::with(std::sync::Arc::new(zt_storage::MemoryStore::new()), |c| {
        c.tombstone_retention = Duration::from_secs(30 * 24 * 3600);
    })
    .await;
    let (w, _) = world
        .chat
        .bootstrap("Acme", new_user("ada"), &password())
        .await
        .unwrap();
    let ada = login(&w, "ada").await;
    let open = w
        .create_channel(&ada, "open", ChannelVisibility::Public, "")
        .await
        .unwrap()
        .id;
    let held = w
        .create_channel(&ada, "held", ChannelVisibility::Public, "")
        .await
        .unwrap()
        .id;
    for channel in [open, held] {
        let m = w
            .post(&ada, channel, "said, then unsaid", None, &[])
            .await
            .unwrap();
        w.edit(&ada, channel, m.id, "unsaid soon").await.unwrap();
        w.delete_message(&ada, channel, m.id).await.unwrap();
        w.post(&ada, channel, "still here", None, &[])
            .await
            .unwrap();
        let mut upload = w
            .upload(&ada, channel, "gone.txt", "text/plain")
            .await
            .unwrap();
        upload.write(b"soon gone").await.unwrap();
        let file = upload.finish(None).await.unwrap();
        w.delete_file(&ada, channel, file.id, false).await.unwrap();
    }
    w.place_legal_hold(&ada, zt_chat::HoldScope::Channel(held), "Matter 3")
        .await
        .unwrap();
    let before = w.storage_use(&ada).await.unwrap();
    assert_eq!(before.messages.rows, 4);
    // Too young: nothing goes.
    world.clock.advance(Duration::from_secs(29 * 24 * 3600));
    assert_eq!(w.clean_up_storage(&ada).await.unwrap().tombstones, 0);
    // Past their retention: the open channel's go (with the history of the message), the held
    // channel's stay.
    world.clock.advance(Duration::from_secs(2 * 24 * 3600));
    let (token, _) = w.login("ada", &password(), None).await.unwrap();
    let mut feed = w.subscribe(&token).await.unwrap();
    let cleaned = w.clean_up_storage(&ada).await.unwrap();
    assert_eq!(cleaned.tombstones, 2, "{cleaned:?}");
    // Clients drop the open channel's tombstone: the message is gone for good.
    let removed = common::removals(&mut feed);
    assert_eq!(removed.len(), 1);
    assert_eq!((removed[0].0, removed[0].1.len()), (open, 1));
    let after = w.storage_use(&ada).await.unwrap();
    assert_eq!(after.messages.rows, 3);
    assert!(after.history.rows < before.history.rows, "{after:?}");
    assert_eq!(after.files.rows, 1);
    let ada = login(&w, "ada").await;
    let page = w
        .messages(&ada, open, zt_chat::PageRequest::Latest { limit: 10 })
        .await
        .unwrap();
    let bodies: Vec<_> = page.messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, ["still here"]);
}
