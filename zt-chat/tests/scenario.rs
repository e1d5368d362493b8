//! One workspace's life through the public API: bootstrap, users and roles, groups and a linked
//! channel, messages and files, realtime subscriptions, and revocations.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers report failures by panicking"
)]

mod common;

use std::time::Duration;

use common::{new_user, password};
use zt_authz::{Change, ChannelVisibility, GroupVisibility, Scope, Source, SystemRole};
use zt_chat::testing::World;
use zt_chat::{CloseReason, Error, Event, PageRequest};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_workspace_lives_through_its_public_api() {
    let w = World::new().await;
    let (ws, _) = w
        .chat
        .bootstrap("Scenario", new_user("owner"), &password())
        .await
        .unwrap();
    let (_, owner) = ws.login("owner", &password(), None).await.unwrap();

    // Users: the owner creates them; a member may not.
    let ann = ws
        .create_user(&owner, new_user("ann"), &password())
        .await
        .unwrap();
    let ben = ws
        .create_user(&owner, new_user("ben"), &password())
        .await
        .unwrap();
    let (ann_token, ann_c) = ws.login("ann", &password(), None).await.unwrap();
    let (ben_token, ben_c) = ws.login("ben", &password(), None).await.unwrap();
    assert!(matches!(
        ws.create_user(&ann_c, new_user("eve"), &password()).await,
        Err(Error::Forbidden { .. })
    ));
    // Roles: ann becomes an auditor, through the guardrails.
    ws.change_access(
        &owner,
        Change::Grant {
            user: ann.id,
            role: SystemRole::Auditor.id(),
            at: Scope::Tenant,
        },
    )
    .await
    .unwrap();

    // A group fed by SCIM, and its private linked channel.
    let team = ws
        .create_group(&owner, "team", GroupVisibility::Private, None)
        .await
        .unwrap();
    let room = ws
        .create_channel(&owner, "team-room", ChannelVisibility::Private, "")
        .await
        .unwrap();
    ws.link_channel(&owner, team.id, room.id, true)
        .await
        .unwrap();
    for user in [ann.id, ben.id] {
        ws.sync_group_member(Source::Scim, team.id, user, true)
            .await
            .unwrap();
    }

    // Both subscribe; ann posts a message and a file; ben receives the message.
    let mut ann_feed = ws.subscribe(&ann_token).await.unwrap();
    let mut ben_feed = ws.subscribe(&ben_token).await.unwrap();
    let hello = ws
        .post(&ann_c, room.id, "hello team", None, &[])
        .await
        .unwrap();
    let mut upload = ws
        .upload(&ann_c, room.id, "plan.txt", "text/plain")
        .await
        .unwrap();
    upload.write(b"the plan").await.unwrap();
    let plan = upload.finish(None).await.unwrap();
    let mut download = ws.download(&ben_c, room.id, plan.id).await.unwrap();
    assert_eq!(download.next_chunk().await.unwrap().unwrap(), b"the plan");
    let received = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Event::Posted(m) = &*ben_feed.next().await.unwrap() {
                return m.clone();
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(received.id, hello.id);
    let page = ws
        .messages(&ben_c, room.id, PageRequest::Latest { limit: 10 })
        .await
        .unwrap();
    assert_eq!(page.messages.len(), 1);

    // SCIM drops ben: he no longer reads the room, nor receives what is posted there.
    ws.sync_group_member(Source::Scim, team.id, ben.id, false)
        .await
        .unwrap();
    ws.post(&ann_c, room.id, "ben is gone", None, &[])
        .await
        .unwrap();
    while let Ok(Some(event)) = ben_feed.try_next() {
        assert!(
            !matches!(&*event, Event::Posted(m) if m.body == "ben is gone"),
            "ben received a message posted after his removal"
        );
    }
    assert!(matches!(
        ws.messages(&ben_c, room.id, PageRequest::Latest { limit: 10 })
            .await,
        Err(Error::NotFound(_))
    ));

    // Deactivating ann ends her sessions, and with them her stream.
    ws.deactivate_user(&owner, ann.id).await.unwrap();
    let reason = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Err(reason) = ann_feed.next().await {
                return reason;
            }
        }
    })
    .await
    .unwrap();
    assert_eq!(reason, CloseReason::SessionEnded);
    assert!(matches!(
        ws.authenticate(&ann_token).await,
        Err(Error::Unauthenticated)
    ));

    // The last owner stays; ben can be deleted, and his roles and memberships go with him.
    assert!(matches!(
        ws.deactivate_user(&owner, owner.user()).await,
        Err(Error::Forbidden { ref reasons }) if reasons == &["last-owner"]
    ));
    ws.delete_user(&owner, ben.id).await.unwrap();
    assert!(ws.tenant_roles_of(&owner, ben.id).await.unwrap().is_empty());
}
