//! Files: chunked upload and download, the size limit, and deletion to a tombstone.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers report failures by panicking"
)]

mod common;

use std::sync::Arc;

use common::{login, member, new_user, password};
use zt_authz::ChannelVisibility;
use zt_chat::Error;
use zt_chat::testing::World;
use zt_core::AuditEventKind;
use zt_storage::{KeyRange, KvStore, MemoryStore, Namespace, ScanOptions};

#[tokio::test]
async fn upload_download_limit_and_tombstone() {
    let inner = Arc::new(MemoryStore::new());
    let w = World::with(inner.clone(), |c| c.max_file_bytes = 300_000).await;
    let (workspace, _) = w
        .chat
        .bootstrap("Files", new_user("alice"), &password())
        .await
        .unwrap();
    let alice = login(&workspace, "alice").await;
    let bob = member(&workspace, &alice, "bob").await;
    let room = workspace
        .create_channel(&alice, "docs", ChannelVisibility::Private, "")
        .await
        .unwrap();

    // 200,000 bytes in uneven writes come back whole, in 64 KiB chunks.
    let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut upload = workspace
        .upload(&alice, room.id, "report.pdf", "application/pdf")
        .await
        .unwrap();
    for piece in content.chunks(7_777) {
        upload.write(piece).await.unwrap();
    }
    let file = upload.finish(Some(b"thumbnail")).await.unwrap();
    assert_eq!((file.size, file.preview), (200_000, true));
    let mut download = workspace.download(&alice, room.id, file.id).await.unwrap();
    let mut back = Vec::new();
    let mut chunks = 0;
    while let Some(chunk) = download.next_chunk().await.unwrap() {
        back.extend(chunk);
        chunks += 1;
    }
    assert_eq!((back == content, chunks), (true, 4));
    assert_eq!(
        workspace
            .preview(&alice, room.id, file.id)
            .await
            .unwrap()
            .as_deref(),
        Some(&b"thumbnail"[..])
    );
    // Bob is no member of this private channel: the file does not exist for him.
    assert!(matches!(
        workspace.download(&bob, room.id, file.id).await,
        Err(Error::NotFound(_))
    ));

    // Past the limit the upload fails and leaves no chunk behind.
    let chunk_ns = Namespace::new(&format!(
        "t:{}/chat.b.file_chunks",
        zt_core::TenantId::to_bytes(workspace.tenant())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ))
    .unwrap();
    let stored_chunks = || async {
        inner
            .scan(&chunk_ns, &KeyRange::all(), ScanOptions::new())
            .await
            .unwrap()
            .entries
            .len()
    };
    assert_eq!(stored_chunks().await, 4);
    let mut big = workspace
        .upload(&alice, room.id, "big.bin", "application/octet-stream")
        .await
        .unwrap();
    big.write(&vec![0u8; 250_000]).await.unwrap();
    assert!(matches!(
        big.write(&vec![0u8; 60_000]).await,
        Err(Error::InvalidInput { field: "file", .. })
    ));
    assert_eq!(stored_chunks().await, 4);
    // An upload given up part-way (its body broke off) leaves no chunk behind either.
    let mut cut = workspace
        .upload(&alice, room.id, "cut.bin", "application/octet-stream")
        .await
        .unwrap();
    cut.write(&vec![1u8; 150_000]).await.unwrap();
    assert_eq!(stored_chunks().await, 6);
    cut.cancel().await;
    assert_eq!(stored_chunks().await, 4);
    assert!(matches!(
        workspace.upload(&alice, room.id, "a/b", "text/plain").await,
        Err(Error::InvalidInput { field: "name", .. })
    ));

    // Deleted: who and when remain (and the name, unless withheld); content and preview go.
    let gone = workspace
        .delete_file(&alice, room.id, file.id, false)
        .await
        .unwrap();
    let deletion = gone.deleted.unwrap();
    assert_eq!(deletion.by, alice.user());
    assert_eq!(gone.name.as_deref(), Some("report.pdf"));
    assert!(!gone.preview);
    assert_eq!(stored_chunks().await, 0);
    assert!(matches!(
        workspace.download(&alice, room.id, file.id).await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        workspace.preview(&alice, room.id, file.id).await.unwrap(),
        None
    );
    assert_eq!(
        workspace.file(&alice, room.id, file.id).await.unwrap(),
        gone
    );
    let audited = w.audit.kinds().contains(&AuditEventKind::FileDeleted);
    assert!(audited);

    // Another's file needs delete_any_message; the name can be withheld.
    workspace
        .add_member(&alice, room.id, bob.user())
        .await
        .unwrap();
    let mut upload = workspace
        .upload(&bob, room.id, "notes.txt", "text/plain")
        .await
        .unwrap();
    upload.write(b"bob's notes").await.unwrap();
    let notes = upload.finish(None).await.unwrap();
    assert!(matches!(
        workspace
            .delete_file(
                &bob,
                room.id,
                {
                    let mut up = workspace
                        .upload(&alice, room.id, "x.txt", "text/plain")
                        .await
                        .unwrap();
                    up.write(b"x").await.unwrap();
                    up.finish(None).await.unwrap().id
                },
                false
            )
            .await,
        Err(Error::Forbidden { .. })
    ));
    let hidden = workspace
        .delete_file(&alice, room.id, notes.id, true)
        .await
        .unwrap();
    assert_eq!(hidden.name, None);
}
