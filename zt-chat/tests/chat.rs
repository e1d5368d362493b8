//! The chat service through its public API: bootstrap, users, channels, messages, segmentation,
//! membership sources, tenants, and what reaches the disk.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers report failures by panicking"
)]

mod common;

use std::sync::Arc;

use zt_storage::KvStore as _;

use common::{login, member, new_user, password};
use zt_authz::{Change, ChannelVisibility, Group, GroupVisibility, MentionPolicy, Source};
use zt_chat::testing::World;
use zt_chat::{ChannelKind, Error, Mention, PageRequest};
use zt_core::{GroupId, MessageId};

#[tokio::test]
async fn a_workspace_from_bootstrap_to_messages() {
    let w = World::new().await;
    let (workspace, owner_id) = w
        .chat
        .bootstrap("Acme", new_user("alice"), &password())
        .await
        .unwrap();
    assert_eq!(w.chat.info(workspace.tenant()).await.unwrap().name, "Acme");
    let alice = login(&workspace, "alice").await;
    assert_eq!(alice.user(), owner_id);
    let bob = member(&workspace, &alice, "bob").await;

    // Channels: a public one bob can see, a private one he cannot.
    let general = workspace
        .create_channel(&alice, "general", ChannelVisibility::Public, "Everything")
        .await
        .unwrap();
    let board = workspace
        .create_channel(&alice, "board", ChannelVisibility::Private, "")
        .await
        .unwrap();
    let names =
        |list: Vec<zt_chat::ChannelInfo>| list.into_iter().map(|c| c.name).collect::<Vec<_>>();
    assert_eq!(names(workspace.directory(&bob).await.unwrap()), ["general"]);
    let mut all = names(workspace.directory(&alice).await.unwrap());
    all.sort();
    assert_eq!(all, ["board", "general"]);
    assert!(matches!(
        workspace
            .create_channel(&bob, "GENERAL", ChannelVisibility::Public, "")
            .await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        workspace
            .create_channel(&bob, " ", ChannelVisibility::Public, "")
            .await,
        Err(Error::InvalidInput { field: "name", .. })
    ));

    // Bob reads the public channel but posts only once he joined.
    assert!(matches!(
        workspace.post(&bob, general.id, "hi", None, &[]).await,
        Err(Error::Forbidden { .. })
    ));
    workspace
        .add_member(&bob, general.id, bob.user())
        .await
        .unwrap();
    let hello = workspace
        .post(
            &bob,
            general.id,
            "hello @alice",
            None,
            &[Mention::User(alice.user())],
        )
        .await
        .unwrap();
    let reply = workspace
        .post(&alice, general.id, "welcome", Some(hello.id), &[])
        .await
        .unwrap();
    assert!(matches!(
        workspace
            .post(&alice, general.id, "nested", Some(reply.id), &[])
            .await,
        Err(Error::InvalidInput {
            field: "thread",
            ..
        })
    ));
    // Edits keep the author; alice cannot edit bob's words.
    let edited = workspace
        .edit(&bob, general.id, hello.id, "hello, alice")
        .await
        .unwrap();
    assert_eq!((edited.revision, edited.body.as_str()), (1, "hello, alice"));
    assert!(matches!(
        workspace
            .edit(&alice, general.id, hello.id, "rewritten")
            .await,
        Err(Error::Forbidden { .. })
    ));
    // The owner may delete anyone's message: a tombstone remains.
    let gone = workspace
        .delete_message(&alice, general.id, hello.id)
        .await
        .unwrap();
    assert!(gone.body.is_empty());
    assert_eq!(gone.deleted.unwrap().by, alice.user());
    // Bob cannot delete alice's message (no delete_any_message).
    assert!(matches!(
        workspace.delete_message(&bob, general.id, reply.id).await,
        Err(Error::Forbidden { .. })
    ));
    // Bob sees nothing of the private channel: not even that it exists.
    assert!(matches!(
        workspace.post(&bob, board.id, "let me in", None, &[]).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        workspace.channel(&bob, board.id).await,
        Err(Error::NotFound(_))
    ));

    // Archive: readable, not writable; unarchive again.
    workspace
        .set_archived(&alice, general.id, true)
        .await
        .unwrap();
    assert!(matches!(
        workspace
            .post(&alice, general.id, "anyone?", None, &[])
            .await,
        Err(Error::Conflict(_))
    ));
    workspace
        .set_archived(&alice, general.id, false)
        .await
        .unwrap();
    let renamed = workspace
        .rename_channel(&alice, general.id, "town-square")
        .await
        .unwrap();
    assert_eq!(renamed.name, "town-square");
    // The old name is free again.
    workspace
        .create_channel(&bob, "general", ChannelVisibility::Public, "")
        .await
        .unwrap();

    // Direct messages: one channel per set of members, private, no name.
    let dm = workspace.direct(&bob, &[alice.user()]).await.unwrap();
    assert_eq!(dm.kind, ChannelKind::Direct);
    assert_eq!(dm.visibility, ChannelVisibility::Private);
    assert_eq!(
        workspace.direct(&alice, &[bob.user()]).await.unwrap().id,
        dm.id
    );
    workspace
        .post(&alice, dm.id, "psst", None, &[])
        .await
        .unwrap();

    // Deleting a channel shreds it: gone for everyone.
    workspace.delete_channel(&alice, board.id).await.unwrap();
    assert!(matches!(
        workspace.channel(&alice, board.id).await,
        Err(Error::NotFound(_))
    ));

    // Logging out ends the caller's session.
    let (token, _) = workspace.login("bob", &password(), None).await.unwrap();
    workspace.authenticate(&token).await.unwrap();
    workspace.logout(&token).await.unwrap();
    assert!(matches!(
        workspace.authenticate(&token).await,
        Err(Error::Unauthenticated)
    ));
}

#[tokio::test]
async fn pages_go_both_ways_in_time_order() {
    let w = World::new().await;
    let (workspace, _) = w
        .chat
        .bootstrap("Pages", new_user("alice"), &password())
        .await
        .unwrap();
    let alice = login(&workspace, "alice").await;
    let room = workspace
        .create_channel(&alice, "room", ChannelVisibility::Public, "")
        .await
        .unwrap();
    let mut ids: Vec<MessageId> = Vec::new();
    for i in 0..25 {
        w.clock.advance(std::time::Duration::from_millis(5));
        ids.push(
            workspace
                .post(&alice, room.id, &format!("m{i}"), None, &[])
                .await
                .unwrap()
                .id,
        );
    }
    let bodies = |page: &zt_chat::MessagePage| {
        page.messages
            .iter()
            .map(|m| m.body.clone())
            .collect::<Vec<_>>()
    };
    let latest = workspace
        .messages(&alice, room.id, PageRequest::Latest { limit: 10 })
        .await
        .unwrap();
    assert_eq!(
        bodies(&latest),
        (15..25).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
    assert_eq!((latest.older, latest.newer), (Some(ids[15]), None));
    let older = workspace
        .messages(
            &alice,
            room.id,
            PageRequest::Before {
                id: ids[15],
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        bodies(&older),
        (5..15).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
    assert_eq!((older.older, older.newer), (Some(ids[5]), Some(ids[14])));
    let oldest = workspace
        .messages(
            &alice,
            room.id,
            PageRequest::Before {
                id: ids[5],
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(oldest.messages.len(), 5);
    assert_eq!(oldest.older, None);
    let newer = workspace
        .messages(
            &alice,
            room.id,
            PageRequest::After {
                id: ids[14],
                limit: 10,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        bodies(&newer),
        (15..25).map(|i| format!("m{i}")).collect::<Vec<_>>()
    );
    assert_eq!(newer.newer, None);
    assert!(matches!(
        workspace
            .messages(&alice, room.id, PageRequest::Latest { limit: 0 })
            .await,
        Err(Error::InvalidInput { field: "limit", .. })
    ));
}

#[tokio::test]
async fn an_admin_who_is_not_a_member_cannot_read_a_private_channel() {
    let w = World::new().await;
    let (workspace, _) = w
        .chat
        .bootstrap("Seg", new_user("alice"), &password())
        .await
        .unwrap();
    let alice = login(&workspace, "alice").await;
    let carol = member(&workspace, &alice, "carol").await;
    let secret = workspace
        .create_channel(&carol, "secret", ChannelVisibility::Private, "")
        .await
        .unwrap();
    workspace
        .post(&carol, secret.id, "for my eyes", None, &[])
        .await
        .unwrap();
    // Alice is the owner, holding every permission, and still sees nothing of it.
    let page = workspace
        .messages(&alice, secret.id, PageRequest::Latest { limit: 10 })
        .await;
    assert!(matches!(page, Err(Error::NotFound(_))), "{page:?}");
    assert!(matches!(
        workspace.channel(&alice, secret.id).await,
        Err(Error::NotFound(_))
    ));
    assert!(
        !workspace
            .directory(&alice)
            .await
            .unwrap()
            .iter()
            .any(|c| c.id == secret.id)
    );
    assert!(matches!(
        workspace.add_member(&alice, secret.id, alice.user()).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        workspace.delete_channel(&alice, secret.id).await,
        Err(Error::NotFound(_))
    ));
    // Nor can she list or unlist it in the directory.
    assert!(matches!(
        workspace.set_listed(&alice, secret.id, true).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn an_unlisted_channel_is_left_out_of_the_directory_for_non_members() {
    let w = World::new().await;
    let (workspace, _) = w
        .chat
        .bootstrap("Dir", new_user("alice"), &password())
        .await
        .unwrap();
    let alice = login(&workspace, "alice").await;
    let bob = member(&workspace, &alice, "bob").await;
    let carol = member(&workspace, &alice, "carol").await;
    let quiet = workspace
        .create_channel(&alice, "quiet", ChannelVisibility::Public, "")
        .await
        .unwrap();
    assert!(quiet.listed);
    workspace
        .add_member(&alice, quiet.id, carol.user())
        .await
        .unwrap();
    let sees = |caller: zt_chat::Caller| {
        let workspace = &workspace;
        async move {
            workspace
                .directory(&caller)
                .await
                .unwrap()
                .iter()
                .any(|c| c.id == quiet.id)
        }
    };
    assert!(sees(bob).await);

    // Only with manage_channel_directory.
    assert!(matches!(
        workspace.set_listed(&bob, quiet.id, false).await,
        Err(Error::Forbidden { .. })
    ));
    let unlisted = workspace.set_listed(&alice, quiet.id, false).await.unwrap();
    assert!(!unlisted.listed);
    // Bob, not a member, no longer finds it; Carol, a member, and Alice, the curator, do.
    assert!(!sees(bob).await);
    assert!(sees(carol).await);
    assert!(sees(alice).await);
    // It is still public: reachable by its id, and readable by those who may browse.
    assert!(!workspace.channel(&bob, quiet.id).await.unwrap().listed);
    workspace.set_listed(&alice, quiet.id, true).await.unwrap();
    assert!(sees(bob).await);

    // A private channel has no place in anyone's directory but its members'.
    let board = workspace
        .create_channel(&alice, "board", ChannelVisibility::Private, "")
        .await
        .unwrap();
    assert!(matches!(
        workspace.set_listed(&alice, board.id, false).await,
        Err(Error::InvalidInput {
            field: "channel",
            ..
        })
    ));
}

#[tokio::test]
async fn a_membership_lasts_while_any_source_holds_it_and_hidden_groups_cannot_be_mentioned_blind()
{
    let w = World::new().await;
    let (workspace, _) = w
        .chat
        .bootstrap("Src", new_user("alice"), &password())
        .await
        .unwrap();
    let alice = login(&workspace, "alice").await;
    let dan = member(&workspace, &alice, "dan").await;
    let eng = GroupId::from_bytes([0xe1; 16]);
    let hidden = GroupId::from_bytes([0xe2; 16]);
    for (id, visibility) in [
        (eng, GroupVisibility::Private),
        (hidden, GroupVisibility::Hidden),
    ] {
        workspace
            .change_access(
                &alice,
                Change::PutGroup(Group {
                    id,
                    visibility,
                    parent: None,
                    mention: MentionPolicy::Anyone,
                }),
            )
            .await
            .unwrap();
    }
    let room = workspace
        .create_channel(&alice, "eng-room", ChannelVisibility::Private, "")
        .await
        .unwrap();
    // Link the group: its members are the channel's.
    workspace
        .change_access(
            &alice,
            Change::PutChannel(zt_authz::Channel {
                id: room.id,
                visibility: ChannelVisibility::Private,
                groups: [eng].into(),
            }),
        )
        .await
        .unwrap();
    workspace
        .sync_group_member(Source::Scim, eng, dan.user(), true)
        .await
        .unwrap();
    workspace
        .post(&dan, room.id, "via the group", None, &[])
        .await
        .unwrap();
    // Added by hand as well; SCIM drops the group membership; the manual one stays.
    workspace
        .add_member(&alice, room.id, dan.user())
        .await
        .unwrap();
    workspace
        .sync_group_member(Source::Scim, eng, dan.user(), false)
        .await
        .unwrap();
    workspace
        .post(&dan, room.id, "still here", None, &[])
        .await
        .unwrap();
    // He leaves: the last source is gone, and so is the channel for him.
    workspace
        .remove_member(&dan, room.id, dan.user())
        .await
        .unwrap();
    assert!(matches!(
        workspace.post(&dan, room.id, "gone?", None, &[]).await,
        Err(Error::NotFound(_))
    ));

    // Dan cannot see the hidden group, so he cannot mention it; alice (owner) can.
    let general = workspace
        .create_channel(&alice, "all", ChannelVisibility::Public, "")
        .await
        .unwrap();
    workspace
        .add_member(&dan, general.id, dan.user())
        .await
        .unwrap();
    assert!(matches!(
        workspace
            .post(&dan, general.id, "@hidden", None, &[Mention::Group(hidden)])
            .await,
        Err(Error::InvalidInput {
            field: "mentions",
            ..
        })
    ));
    workspace
        .post(
            &alice,
            general.id,
            "@hidden",
            None,
            &[Mention::Group(hidden)],
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn workspaces_share_nothing() {
    let w = World::new().await;
    let (one, _) = w
        .chat
        .bootstrap("One", new_user("alice"), &password())
        .await
        .unwrap();
    let (two, _) = w
        .chat
        .bootstrap("Two", new_user("alice"), &password())
        .await
        .unwrap();
    let alice_one = login(&one, "alice").await;
    let alice_two = login(&two, "alice").await;
    let room = one
        .create_channel(&alice_one, "room", ChannelVisibility::Public, "")
        .await
        .unwrap();
    one.post(&alice_one, room.id, "one", None, &[])
        .await
        .unwrap();
    // The same name is free in the other workspace, and the first's ids are not found there.
    two.create_channel(&alice_two, "room", ChannelVisibility::Public, "")
        .await
        .unwrap();
    assert!(matches!(
        two.channel(&alice_two, room.id).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        two.messages(&alice_two, room.id, PageRequest::Latest { limit: 5 })
            .await,
        Err(Error::NotFound(_))
    ));
    // A caller of one workspace is a stranger to the other.
    assert!(matches!(
        one.channel(&alice_two, room.id).await,
        Err(Error::NotFound(_))
    ));
    // A token of one workspace does not authenticate in the other.
    let (token, _) = one.login("alice", &password(), None).await.unwrap();
    assert!(matches!(
        two.authenticate(&token).await,
        Err(Error::Unauthenticated)
    ));
    // Unknown workspaces are not found.
    assert!(matches!(
        w.chat
            .workspace(zt_core::TenantId::from_bytes([0xaa; 16]))
            .await,
        Err(Error::NotFound(_))
    ));
    let reopened = w.chat.workspace(one.tenant()).await.unwrap();
    assert_eq!(reopened.tenant(), one.tenant());
}

#[tokio::test]
async fn nothing_readable_reaches_the_disk() {
    let dir = tempfile::tempdir().unwrap();
    let sled = zt_storage::SledStore::open(zt_storage::SledConfig::new(dir.path()))
        .await
        .unwrap();
    let w = World::over(Arc::new(sled.clone())).await;
    let (workspace, _) = w
        .chat
        .bootstrap(
            "canary-workspace-7731",
            new_user("canaryowner"),
            &password(),
        )
        .await
        .unwrap();
    let owner = login(&workspace, "canaryowner").await;
    let other = member(&workspace, &owner, "canaryuser").await;
    let room = workspace
        .create_channel(
            &owner,
            "canary-channel-5520",
            ChannelVisibility::Private,
            "canary-topic-1187",
        )
        .await
        .unwrap();
    workspace
        .add_member(&owner, room.id, other.user())
        .await
        .unwrap();
    let m = workspace
        .post(
            &other,
            room.id,
            "canary-message-9043",
            None,
            &[Mention::User(owner.user())],
        )
        .await
        .unwrap();
    workspace
        .edit(&other, room.id, m.id, "canary-edited-2208")
        .await
        .unwrap();
    workspace.direct(&other, &[owner.user()]).await.unwrap();
    workspace
        .create_group(&owner, "canary-group-6612", GroupVisibility::Hidden, None)
        .await
        .unwrap();
    let mut upload = workspace
        .upload(&other, room.id, "canary-file-name-3391.txt", "text/plain")
        .await
        .unwrap();
    upload.write(b"canary-file-content-4470").await.unwrap();
    upload.finish(Some(b"canary-preview-8812")).await.unwrap();
    drop(workspace);
    drop(w);
    sled.close().await.unwrap();
    let mut disk = Vec::new();
    let mut stack = vec![dir.path().to_path_buf()];
    while let Some(path) = stack.pop() {
        for entry in std::fs::read_dir(&path).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                disk.extend(std::fs::read(&path).unwrap());
            }
        }
    }
    assert!(disk.len() > 1000, "the store wrote nothing?");
    for canary in [
        "canary-workspace-7731",
        "canaryowner",
        "canaryuser",
        "canary-channel-5520",
        "canary-topic-1187",
        "canary-message-9043",
        "canary-edited-2208",
        "canary-group-6612",
        "canary-file-name-3391",
        "canary-file-content-4470",
        "canary-preview-8812",
        "example.test",
        "display",
    ] {
        assert!(
            !disk.windows(canary.len()).any(|w| w == canary.as_bytes()),
            "{canary} is on disk in the clear"
        );
    }
}

#[tokio::test]
async fn groups_with_linked_channels_sources_and_hidden_ones() {
    let w = World::new().await;
    let (workspace, _) = w
        .chat
        .bootstrap("Grp", new_user("alice"), &password())
        .await
        .unwrap();
    let alice = login(&workspace, "alice").await;
    let erin = member(&workspace, &alice, "erin").await;
    let eng = workspace
        .create_group(&alice, "eng", GroupVisibility::Private, None)
        .await
        .unwrap();
    let web = workspace
        .create_group(&alice, "eng-web", GroupVisibility::Private, Some(eng.id))
        .await
        .unwrap();
    let legal = workspace
        .create_group(&alice, "legal-hold", GroupVisibility::Hidden, None)
        .await
        .unwrap();
    assert!(matches!(
        workspace
            .create_group(&alice, "ENG", GroupVisibility::Public, None)
            .await,
        Err(Error::Conflict(_))
    ));
    // A private channel linked to eng; its chat visibility is its own.
    let room = workspace
        .create_channel(&alice, "eng-chat", ChannelVisibility::Private, "")
        .await
        .unwrap();
    workspace
        .link_channel(&alice, eng.id, room.id, true)
        .await
        .unwrap();
    assert_eq!(
        workspace.group(&alice, eng.id).await.unwrap().linked,
        [room.id]
    );
    // SCIM puts erin in the subgroup: she is in eng, so in the channel.
    workspace
        .sync_group_member(Source::Scim, web.id, erin.user(), true)
        .await
        .unwrap();
    workspace
        .post(&erin, room.id, "hi eng", None, &[])
        .await
        .unwrap();
    let names =
        |list: Vec<zt_chat::GroupInfo>| list.into_iter().map(|g| g.name).collect::<Vec<_>>();
    // Erin sees the groups she is in, not the hidden one; alice (owner) sees all.
    let mut seen = names(workspace.groups(&erin).await.unwrap());
    seen.sort();
    assert_eq!(seen, ["eng", "eng-web"]);
    assert_eq!(workspace.groups(&alice).await.unwrap().len(), 3);
    // The mention lookup does not offer the hidden group to erin.
    assert!(matches!(
        workspace.find_group(&erin, "legal-hold").await,
        Err(Error::NotFound(_))
    ));
    assert_eq!(
        workspace.find_group(&alice, "Legal-Hold").await.unwrap().id,
        legal.id
    );
    // Removing the SCIM source removes what it alone granted.
    workspace
        .sync_group_member(Source::Scim, web.id, erin.user(), false)
        .await
        .unwrap();
    assert!(matches!(
        workspace.post(&erin, room.id, "still?", None, &[]).await,
        Err(Error::NotFound(_))
    ));
    // Principals cannot write SCIM's source, and only OIDC/SCIM sync.
    assert!(matches!(
        workspace
            .sync_group_member(Source::Manual, eng.id, erin.user(), true)
            .await,
        Err(Error::InvalidInput {
            field: "source",
            ..
        })
    ));
    // A group with subgroups stays; without, it goes, and its channel loses its members.
    assert!(matches!(
        workspace.delete_group(&alice, eng.id).await,
        Err(Error::Conflict(_))
    ));
    workspace.delete_group(&alice, web.id).await.unwrap();
    assert!(matches!(
        workspace.group(&alice, web.id).await,
        Err(Error::NotFound(_))
    ));
}
