//! What an outside probe found and the library now refuses: control characters that drive a
//! reader's terminal, look-alike names, file names that escape a folder or display reordered.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers report failures by panicking"
)]

mod common;

use common::{login, member, new_user, password};
use zt_authz::{ChannelVisibility, GroupVisibility};
use zt_chat::Error;
use zt_chat::testing::World;

async fn workspace() -> (World, std::sync::Arc<zt_chat::Workspace>, zt_chat::Caller) {
    let w = World::new().await;
    let (workspace, _) = w
        .chat
        .bootstrap("Acme", new_user("alice"), &password())
        .await
        .unwrap();
    let alice = login(&workspace, "alice").await;
    (w, workspace, alice)
}

#[tokio::test]
async fn a_message_may_break_lines_but_carries_no_other_control() {
    let (_w, workspace, alice) = workspace().await;
    let general = workspace
        .create_channel(&alice, "general", ChannelVisibility::Public, "")
        .await
        .unwrap();
    for hostile in [
        "\u{1b}]0;owned\u{7}",
        "\u{1b}[2J",
        "nul\u{0}byte",
        "c1\u{9b}31m",
        "bell\u{7}",
    ] {
        let refused = workspace.post(&alice, general.id, hostile, None, &[]).await;
        assert!(
            matches!(refused, Err(Error::InvalidInput { field: "body", .. })),
            "{hostile:?}: {refused:?}"
        );
    }
    workspace
        .post(&alice, general.id, "two\nlines\r\nand\ta tab", None, &[])
        .await
        .unwrap();
    // Names and topics refuse every control, the new line too.
    for (name, topic) in [
        ("bad\u{1b}name", ""),
        ("fine", "topic\u{7}"),
        ("fine", "a\nb"),
    ] {
        assert!(matches!(
            workspace
                .create_channel(&alice, name, ChannelVisibility::Public, topic)
                .await,
            Err(Error::InvalidInput { .. })
        ));
    }
}

#[tokio::test]
async fn look_alike_names_are_one_name() {
    let (_w, workspace, alice) = workspace().await;
    let bob = member(&workspace, &alice, "bob").await;
    workspace
        .create_channel(&alice, "café", ChannelVisibility::Public, "")
        .await
        .unwrap();
    for look_alike in [
        "cafe\u{301}",
        "CAFÉ",
        "caf\u{200b}é",
        "\u{feff}café",
        "ｃａｆé",
    ] {
        let taken = workspace
            .create_channel(&bob, look_alike, ChannelVisibility::Public, "")
            .await;
        assert!(
            matches!(taken, Err(Error::Conflict(_))),
            "{look_alike:?}: {taken:?}"
        );
    }
    // The name is kept in its canonical form.
    let zero_width = workspace
        .create_channel(&alice, "ops\u{200d}team", ChannelVisibility::Public, "")
        .await
        .unwrap();
    assert_eq!(zero_width.name, "opsteam");
    assert!(matches!(
        workspace
            .create_channel(&alice, "\u{200b}", ChannelVisibility::Public, "")
            .await,
        Err(Error::InvalidInput { field: "name", .. })
    ));
    workspace
        .create_group(&alice, "Ångström", GroupVisibility::Public, None)
        .await
        .unwrap();
    let group = workspace
        .create_group(
            &alice,
            "A\u{30a}ngstro\u{308}m",
            GroupVisibility::Public,
            None,
        )
        .await;
    assert!(matches!(group, Err(Error::Conflict(_))), "{group:?}");
}

#[tokio::test]
async fn a_file_name_cannot_leave_its_folder_or_display_reordered() {
    let (_w, workspace, alice) = workspace().await;
    let general = workspace
        .create_channel(&alice, "general", ChannelVisibility::Public, "")
        .await
        .unwrap();
    for name in [
        ".",
        "..",
        "../etc",
        "a/b",
        "invoice\u{202e}fdp.exe",
        "x\u{2066}y",
    ] {
        let refused = workspace
            .upload(&alice, general.id, name, "text/plain")
            .await
            .map(drop);
        assert!(
            matches!(refused, Err(Error::InvalidInput { field: "name", .. })),
            "{name:?}: {refused:?}"
        );
    }
    workspace
        .upload(&alice, general.id, "..notes.txt", "text/plain")
        .await
        .unwrap();
}

#[tokio::test]
async fn a_change_for_a_user_nobody_is_answers_not_found_and_records_nothing() {
    let (w, workspace, alice) = workspace().await;
    let general = workspace
        .create_channel(&alice, "general", ChannelVisibility::Public, "")
        .await
        .unwrap();
    let group = workspace
        .create_group(&alice, "eng", GroupVisibility::Public, None)
        .await
        .unwrap();
    let nobody = zt_core::UserId::from_bytes([0x5a; 16]);
    let before = w.audit.events().len();
    assert!(matches!(
        workspace.add_member(&alice, general.id, nobody).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        workspace
            .set_group_member(&alice, group.id, nobody, true)
            .await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        workspace
            .grant(
                &alice,
                nobody,
                zt_authz::SystemRole::Member.id(),
                zt_authz::Scope::Tenant
            )
            .await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(w.audit.events().len(), before, "nothing was recorded");
    // A real user is added as before.
    let bob = member(&workspace, &alice, "bob").await;
    workspace
        .add_member(&alice, general.id, bob.user())
        .await
        .unwrap();
}

/// Where the store below encryption holds a file's chunk `index`.
async fn raw_chunk(
    w: &World,
    workspace: &zt_chat::Workspace,
    file: &zt_chat::files::FileInfo,
    index: u32,
) -> (zt_storage::Namespace, Vec<u8>) {
    let mut key = file.channel.to_bytes().to_vec();
    key.extend_from_slice(&file.id.to_bytes());
    key.extend_from_slice(&index.to_be_bytes());
    w.raw_row(workspace.tenant(), "chat.b.file_chunks", &key)
        .await
}

async fn whole(download: &mut zt_chat::files::Download<'_>) -> Result<Vec<u8>, Error> {
    let mut bytes = Vec::new();
    while let Some(chunk) = download.next_chunk().await? {
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

#[tokio::test]
async fn a_damaged_or_truncated_file_is_never_handed_out_as_the_file() {
    use zt_storage::KvStore as _;
    let (w, workspace, alice) = workspace().await;
    let general = workspace
        .create_channel(&alice, "general", ChannelVisibility::Public, "")
        .await
        .unwrap();
    let body: Vec<u8> = (0..150_000u32).map(|i| (i % 251) as u8).collect();
    let mut files = Vec::new();
    for name in ["intact.bin", "damaged.bin", "truncated.bin"] {
        let mut upload = workspace
            .upload(&alice, general.id, name, "application/octet-stream")
            .await
            .unwrap();
        upload.write(&body).await.unwrap();
        files.push(upload.finish(None).await.unwrap());
    }
    assert_eq!(files[0].size, 150_000);
    let mut intact = workspace
        .download(&alice, general.id, files[0].id)
        .await
        .unwrap();
    assert_eq!(whole(&mut intact).await.unwrap(), body);
    // A chunk's sealed bytes altered at rest, and a last chunk removed.
    let (ns, key) = raw_chunk(&w, &workspace, &files[1], 1).await;
    let mut batch = zt_storage::Batch::new();
    batch.put(&ns, &key, b"not what was sealed here");
    let (ns, key) = raw_chunk(&w, &workspace, &files[2], 2).await;
    batch.delete(&ns, &key);
    w.inner.commit(batch).await.unwrap();
    for file in &files[1..] {
        let mut download = workspace
            .download(&alice, general.id, file.id)
            .await
            .unwrap();
        // The first chunk is fine; the damage stops the download with an error, never an end.
        assert!(download.next_chunk().await.unwrap().is_some());
        let damaged = whole(&mut download).await;
        assert!(
            matches!(damaged, Err(Error::Internal { .. })),
            "{damaged:?}"
        );
    }
    let integrity: Vec<_> = w
        .audit
        .events()
        .into_iter()
        .filter(|e| e.kind == zt_core::AuditEventKind::DataIntegrityFailed)
        .collect();
    assert_eq!(integrity.len(), 2, "{integrity:?}");
    assert_eq!(
        integrity[0].target.as_deref(),
        Some(files[1].id.to_string().as_str())
    );
}

#[tokio::test]
async fn every_system_role_refuses_deletion_alike_for_everyone() {
    let (_w, workspace, alice) = workspace().await;
    let bob = member(&workspace, &alice, "bob").await;
    let mut answers = std::collections::BTreeSet::new();
    for caller in [&alice, &bob] {
        for role in zt_authz::SystemRole::ALL {
            let refused = workspace
                .change_access(caller, zt_authz::Change::DeleteRole { id: role.id() })
                .await;
            answers.insert(format!("{refused:?}"));
        }
    }
    assert_eq!(answers.len(), 1, "{answers:?}");
    let only = answers.into_iter().next().unwrap();
    assert!(only.contains("system-role"), "{only}");
}

#[tokio::test]
async fn a_taken_name_answers_alike_and_repeated_probes_are_recorded_once() {
    let (w, workspace, alice) = workspace().await;
    let bob = member(&workspace, &alice, "bob").await;
    workspace
        .create_channel(&alice, "general", ChannelVisibility::Public, "")
        .await
        .unwrap();
    workspace
        .create_channel(&alice, "merger", ChannelVisibility::Private, "")
        .await
        .unwrap();
    workspace
        .create_group(&alice, "board", GroupVisibility::Hidden, None)
        .await
        .unwrap();
    // A visible channel's name, a private channel's, a hidden group's: one answer.
    let mut answers = Vec::new();
    for name in ["general", "merger"] {
        let taken = workspace
            .create_channel(&bob, name, ChannelVisibility::Public, "")
            .await
            .unwrap_err();
        answers.push(taken.to_string());
    }
    let group = workspace
        .create_group(&bob, "board", GroupVisibility::Public, None)
        .await
        .unwrap_err();
    answers.push(group.to_string());
    assert!(
        answers
            .iter()
            .all(|a| a == "conflict: that name is not available"),
        "{answers:?}"
    );
    assert!(
        answers
            .iter()
            .all(|a| !a.contains("merger") && !a.contains("board"))
    );
    for _ in 0..3 {
        let _ = workspace
            .create_channel(&bob, "merger", ChannelVisibility::Private, "")
            .await;
    }
    let probes = w
        .audit
        .events()
        .into_iter()
        .filter(|e| {
            e.kind == zt_core::AuditEventKind::UnauthorizedAccess
                && e.actor == zt_core::Actor::User(bob.user())
        })
        .count();
    assert_eq!(probes, 1, "the third answer is recorded, once a window");
}

#[tokio::test]
async fn refusals_are_recorded_once_per_caller_action_and_resource() {
    let (w, workspace, alice) = workspace().await;
    let bob = member(&workspace, &alice, "bob").await;
    let secret = workspace
        .create_channel(&alice, "merger", ChannelVisibility::Private, "")
        .await
        .unwrap();
    let other = workspace
        .create_channel(&alice, "board", ChannelVisibility::Private, "")
        .await
        .unwrap();
    let refused = |w: &World| {
        w.audit
            .events()
            .into_iter()
            .filter(|e| {
                e.kind == zt_core::AuditEventKind::UnauthorizedAccess
                    && e.actor == zt_core::Actor::User(bob.user())
            })
            .map(|e| e.target.unwrap_or_default())
            .collect::<Vec<_>>()
    };
    // A probe of a private channel answers not found, and is on record; five probes, once.
    for _ in 0..5 {
        assert!(matches!(
            workspace
                .post(&bob, secret.id, "let me in", None, &[])
                .await,
            Err(Error::NotFound(_))
        ));
    }
    assert_eq!(refused(&w), [secret.id.to_string()]);
    // Another resource is another record: a scan shows each channel it tried.
    let _ = workspace.post(&bob, other.id, "and here", None, &[]).await;
    assert_eq!(refused(&w).len(), 2);
    // A minute later the same probe is on record again.
    w.clock.advance(zt_chat::workspace::REFUSAL_WINDOW);
    let _ = workspace.post(&bob, secret.id, "again", None, &[]).await;
    assert_eq!(refused(&w).len(), 3);
    // A member's refused administration is on record too.
    assert!(workspace.roles(&bob).await.is_err());
    assert!(workspace.deactivate_user(&bob, alice.user()).await.is_err());
    let kinds = w.audit.kinds();
    assert!(
        refused(&w).len() > 3 || kinds.contains(&zt_core::AuditEventKind::AdminAccessDenied),
        "{kinds:?}"
    );
}

#[tokio::test]
async fn every_event_of_a_request_carries_its_client_address() {
    let (w, workspace, alice) = workspace().await;
    let address: std::net::IpAddr = "198.51.100.23".parse().unwrap();
    let before = w.audit.events().len();
    zt_chat::source::with_client_address(Some(address), async {
        // zt-core's (a user), zt-authz's (a channel, a grant) and zt-chat's own (a refusal).
        let bob = member(&workspace, &alice, "bob").await;
        workspace
            .create_channel(&alice, "general", ChannelVisibility::Public, "")
            .await
            .unwrap();
        let _ = workspace.roles(&bob).await;
    })
    .await;
    let events = w.audit.events();
    let during = &events[before..];
    assert!(during.len() >= 4, "{during:?}");
    for event in during {
        assert_eq!(
            event.source,
            Some(address),
            "{:?} has no address",
            event.kind
        );
    }
}

/// A workspace over `memory` with alice, bob in alice's private channel `board`, the messages
/// `bodies` there and a file `plan.txt` ("the plan") with a preview.
struct Seeded {
    w: World,
    workspace: std::sync::Arc<zt_chat::Workspace>,
    alice: zt_chat::Caller,
    bob: zt_chat::Caller,
    board: zt_chat::ChannelInfo,
    messages: Vec<zt_chat::Message>,
    file: zt_chat::FileInfo,
}

async fn seeded(memory: &zt_storage::MemoryStore, bodies: &[&str]) -> Seeded {
    let w = World::over(std::sync::Arc::new(memory.clone())).await;
    let (workspace, _) = w
        .chat
        .bootstrap("Acme", new_user("alice"), &password())
        .await
        .unwrap();
    let alice = login(&workspace, "alice").await;
    let bob = member(&workspace, &alice, "bob").await;
    let board = workspace
        .create_channel(&alice, "board", ChannelVisibility::Private, "")
        .await
        .unwrap();
    workspace
        .add_member(&alice, board.id, bob.user())
        .await
        .unwrap();
    let mut messages = Vec::new();
    for body in bodies {
        messages.push(
            workspace
                .post(&alice, board.id, body, None, &[])
                .await
                .unwrap(),
        );
    }
    let mut upload = workspace
        .upload(&alice, board.id, "plan.txt", "text/plain")
        .await
        .unwrap();
    upload.write(b"the plan").await.unwrap();
    let file = upload.finish(Some(b"thumbnail")).await.unwrap();
    Seeded {
        w,
        workspace,
        alice,
        bob,
        board,
        messages,
        file,
    }
}

/// Every row `memory` holds whose namespace `keep` accepts, as (namespace, row).
async fn rows_of(
    memory: &zt_storage::MemoryStore,
    keep: impl Fn(&str) -> bool,
) -> Vec<(zt_storage::Namespace, zt_storage::Entry)> {
    use zt_storage::{KeyRange, KvStore as _, ScanOptions};
    let mut rows = Vec::new();
    for namespace in memory.namespaces() {
        if !keep(namespace.as_str()) {
            continue;
        }
        let page = memory
            .scan(
                &namespace,
                &KeyRange::all(),
                ScanOptions::new().limit(10_000),
            )
            .await
            .unwrap();
        assert!(page.next.is_none());
        rows.extend(page.entries.into_iter().map(|e| (namespace.clone(), e)));
    }
    rows
}

#[tokio::test]
async fn no_id_of_a_user_channel_group_or_file_is_readable_at_rest() {
    let memory = zt_storage::MemoryStore::new();
    let Seeded {
        workspace,
        alice,
        bob,
        board,
        messages,
        file,
        ..
    } = seeded(&memory, &["first"]).await;
    workspace
        .edit(&alice, board.id, messages[0].id, "first, edited")
        .await
        .unwrap();
    let group = workspace
        .create_group(&alice, "eng", GroupVisibility::Private, None)
        .await
        .unwrap();
    workspace
        .set_group_member(&alice, group.id, bob.user(), true)
        .await
        .unwrap();
    let ids: Vec<(&str, [u8; 16])> = vec![
        ("channel", board.id.to_bytes()),
        ("alice", alice.user().to_bytes()),
        ("bob", bob.user().to_bytes()),
        ("group", group.id.to_bytes()),
        ("file", file.id.to_bytes()),
    ];
    // Every row of every namespace, keys and sealed values (whose envelope headers name their
    // scope key) alike: no id, raw or in hex.
    let rows = rows_of(&memory, |_| true).await;
    assert!(
        rows.len() >= 30,
        "the scan sees the records ({})",
        rows.len()
    );
    for (namespace, entry) in &rows {
        for (what, id) in &ids {
            let hex = hex::encode(id);
            for (part, bytes) in [("key", &entry.key), ("value", &entry.value)] {
                assert!(
                    !bytes.windows(16).any(|w| w == id.as_slice())
                        && !bytes.windows(32).any(|w| w == hex.as_bytes()),
                    "{namespace}: the {what} id is readable in a {part}"
                );
            }
        }
    }
    // Everything still reads.
    assert_eq!(
        workspace
            .messages(&alice, board.id, zt_chat::PageRequest::Latest { limit: 10 })
            .await
            .unwrap()
            .messages[0]
            .body,
        "first, edited"
    );
}

#[tokio::test]
async fn records_kept_in_the_earlier_layout_move_when_the_workspace_opens_and_damage_stays_put() {
    use zt_storage::KvStore as _;
    let memory = zt_storage::MemoryStore::new();
    let Seeded {
        w,
        workspace,
        board,
        messages,
        file,
        ..
    } = seeded(&memory, &["one", "two"]).await;
    let tenant = workspace.tenant();
    let legacy = || {
        zt_chat::testing::LEGACY_NAMESPACES
            .iter()
            .chain(zt_core::identity::LEGACY_NAMESPACES.iter())
            .chain(zt_authz::records::LEGACY_NAMESPACES.iter())
    };

    // Put every record back in the earlier layout: keys in clear, in the old namespaces.
    let store = w.tenant_store(tenant).await;
    for (old, new) in legacy() {
        let (old, new) = (
            zt_storage::Namespace::new(old).unwrap(),
            zt_storage::Namespace::new(new).unwrap(),
        );
        store.move_rows(&new, &old).await.unwrap();
    }
    let old_messages = rows_of(&memory, |n| n.ends_with("/chat.messages")).await;
    assert_eq!(old_messages.len(), 2);
    let (namespace, damaged) = &old_messages[1];
    assert!(
        damaged.key.starts_with(&board.id.to_bytes()),
        "the old layout"
    );
    // Both were posted in one millisecond of the test clock, so either may sort second.
    let kept = messages
        .iter()
        .find(|m| !damaged.key.ends_with(&m.id.to_bytes()))
        .unwrap()
        .body
        .clone();
    let mut sealed = damaged.value.clone();
    let last = sealed.len() - 1;
    sealed[last] ^= 1;
    let mut damage = zt_storage::Batch::new();
    damage.put(namespace, &damaged.key, &sealed);
    memory.commit(damage).await.unwrap();

    // A new process opens the workspace: everything that opens moves, and reads as before.
    let again = World::over(std::sync::Arc::new(memory.clone())).await;
    let workspace = again.chat.workspace(tenant).await.unwrap();
    let alice = login(&workspace, "alice").await;
    let page = workspace
        .messages(&alice, board.id, zt_chat::PageRequest::Latest { limit: 10 })
        .await
        .unwrap();
    let bodies: Vec<_> = page.messages.iter().map(|m| m.body.as_str()).collect();
    assert_eq!(bodies, [kept.as_str()]);
    let mut download = workspace.download(&alice, board.id, file.id).await.unwrap();
    assert_eq!(download.next_chunk().await.unwrap().unwrap(), b"the plan");
    // Only the damaged row is left where it was, and the data check names it.
    let left = rows_of(&memory, |n| {
        legacy().any(|(old, _)| n.ends_with(&format!("/{old}")))
    })
    .await;
    assert_eq!(left.len(), 1);
    let check = again.chat.check_data(tenant).await.unwrap();
    assert_eq!(check.damaged.len(), 1, "{check:?}");
    assert_eq!(check.damaged[0].namespace, "chat.messages");
}

/// Messages stored before ids were kept as bytes (text ids in their CBOR) still read, thread,
/// mentions, edits and all, beside ones stored now.
#[tokio::test]
async fn messages_stored_with_text_ids_still_read() {
    use zt_chat::{Mention, Message, PageRequest};
    use zt_storage::{Batch, KeyRange, KvStore as _, Namespace, ScanOptions, codec};

    let memory = zt_storage::MemoryStore::new();
    let Seeded {
        w,
        workspace,
        alice,
        bob,
        board,
        messages,
        ..
    } = seeded(&memory, &["one", "two"]).await;
    workspace
        .post(
            &alice,
            board.id,
            "re: one",
            Some(messages[0].id),
            &[Mention::User(bob.user())],
        )
        .await
        .unwrap();
    workspace
        .edit(&alice, board.id, messages[1].id, "two, edited")
        .await
        .unwrap();
    let page = || workspace.messages(&bob, board.id, PageRequest::Latest { limit: 10 });
    let before = page().await.unwrap().messages;
    assert_eq!(before.len(), 3);

    // Rewrite two of the three rows as they were stored before: the same record, text ids.
    let store = w.tenant_store(workspace.tenant()).await;
    let ns = Namespace::new("chat.b.messages").unwrap();
    let rows = store
        .scan(&ns, &KeyRange::all(), ScanOptions::new())
        .await
        .unwrap()
        .entries;
    assert_eq!(rows.len(), 3);
    let mut batch = Batch::new();
    for row in rows.iter().take(2) {
        assert!(
            !row.value.windows(4).any(|w| w == b"msg_"),
            "stored now: ids as bytes"
        );
        let message: Message = codec::decode(&row.value).unwrap();
        let text_form = codec::encode(&serde_json::to_value(&message).unwrap()).unwrap();
        assert!(text_form.windows(4).any(|w| w == b"msg_"), "the old form");
        batch.put(&ns, &row.key, &text_form);
    }
    store.commit(batch).await.unwrap();
    assert_eq!(page().await.unwrap().messages, before);
}
