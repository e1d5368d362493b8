//! The realtime hub: what a subscriber receives, and when its stream ends.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers report failures by panicking"
)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{login, member, new_user, password};
use zt_authz::ChannelVisibility;
use zt_chat::testing::World;
use zt_chat::{CloseReason, Event, Subscription};
use zt_storage::MemoryStore;

/// Every event queued now.
fn drain(sub: &mut Subscription) -> Vec<Arc<Event>> {
    let mut out = Vec::new();
    while let Ok(Some(event)) = sub.try_next() {
        out.push(event);
    }
    out
}

fn posted_bodies(events: &[Arc<Event>]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match &**e {
            Event::Posted(m) => Some(m.body.clone()),
            _ => None,
        })
        .collect()
}

async fn ended(sub: &mut Subscription) -> CloseReason {
    tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            if let Err(reason) = sub.next().await {
                return reason;
            }
        }
    })
    .await
    .expect("the subscription did not end")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_removed_member_receives_nothing_posted_after_the_removal_returns() {
    let w = World::new().await;
    let (workspace, _) = w
        .chat
        .bootstrap("Hub", new_user("alice"), &password())
        .await
        .unwrap();
    let alice = login(&workspace, "alice").await;
    let bob = member(&workspace, &alice, "bob").await;
    let room = workspace
        .create_channel(&alice, "war-room", ChannelVisibility::Private, "")
        .await
        .unwrap();
    workspace
        .add_member(&alice, room.id, bob.user())
        .await
        .unwrap();
    let (bob_token, _) = workspace.login("bob", &password(), None).await.unwrap();
    let mut feed = workspace.subscribe(&bob_token).await.unwrap();
    workspace
        .post(&alice, room.id, "before", None, &[])
        .await
        .unwrap();
    assert_eq!(posted_bodies(&drain(&mut feed)), ["before"]);

    // Alice posts without pause while bob is removed; every message posted once the removal
    // returned is marked, and none of them may reach bob.
    let removed = Arc::new(AtomicBool::new(false));
    let poster = {
        let (workspace, removed) = (Arc::clone(&workspace), Arc::clone(&removed));
        tokio::spawn(async move {
            for i in 0..200 {
                let after = removed.load(Ordering::SeqCst);
                let body = format!("{}-{i}", if after { "after" } else { "during" });
                workspace
                    .post(&alice, room.id, &body, None, &[])
                    .await
                    .unwrap();
                tokio::task::yield_now().await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(5)).await;
    workspace
        .remove_member(&alice, room.id, bob.user())
        .await
        .unwrap();
    removed.store(true, Ordering::SeqCst);
    poster.await.unwrap();
    let got = posted_bodies(&drain(&mut feed));
    assert!(
        got.iter().all(|b| !b.starts_with("after")),
        "bob received {:?}",
        got.iter()
            .filter(|b| b.starts_with("after"))
            .collect::<Vec<_>>()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_session_ends_its_stream() {
    let w = World::new().await;
    let (workspace, _) = w
        .chat
        .bootstrap("Rev", new_user("alice"), &password())
        .await
        .unwrap();
    let alice = login(&workspace, "alice").await;
    let bob = member(&workspace, &alice, "bob").await;
    let room = workspace
        .create_channel(&alice, "room", ChannelVisibility::Private, "")
        .await
        .unwrap();
    workspace
        .add_member(&alice, room.id, bob.user())
        .await
        .unwrap();
    let (token, _) = workspace.login("bob", &password(), None).await.unwrap();
    let (other, _) = workspace.login("bob", &password(), None).await.unwrap();
    let mut feed = workspace.subscribe(&token).await.unwrap();
    let mut second = workspace.subscribe(&other).await.unwrap();
    workspace.logout(&token).await.unwrap();
    assert_eq!(ended(&mut feed).await, CloseReason::SessionEnded);
    // Only that session's stream: the other one lives on and still receives what is posted.
    workspace
        .post(&alice, room.id, "still here", None, &[])
        .await
        .unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match second.next().await {
                Ok(event) => match &*event {
                    Event::Posted(m) => return m.body.clone(),
                    _ => continue,
                },
                Err(reason) => panic!("the other stream ended: {reason:?}"),
            }
        }
    })
    .await
    .expect("nothing reached the other stream");
    assert_eq!(got, "still here");
    assert!(matches!(
        workspace.subscribe(&token).await,
        Err(zt_chat::Error::Unauthenticated)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_is_disconnected_not_buffered() {
    let w = World::with(Arc::new(MemoryStore::new()), |c| c.subscriber_queue = 4).await;
    let (workspace, _) = w
        .chat
        .bootstrap("Slow", new_user("alice"), &password())
        .await
        .unwrap();
    let alice = login(&workspace, "alice").await;
    let room = workspace
        .create_channel(&alice, "room", ChannelVisibility::Public, "")
        .await
        .unwrap();
    let (token, _) = workspace.login("alice", &password(), None).await.unwrap();
    let mut feed = workspace.subscribe(&token).await.unwrap();
    for i in 0..10 {
        workspace
            .post(&alice, room.id, &format!("m{i}"), None, &[])
            .await
            .unwrap();
    }
    // It gets what fitted in its queue, then the reason.
    let mut received = 0;
    let reason = loop {
        match feed.next().await {
            Ok(_) => received += 1,
            Err(reason) => break reason,
        }
    };
    assert_eq!((received, reason), (4, CloseReason::TooSlow));
    assert_eq!(workspace.hub().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_hear_of_permission_changes_and_of_what_they_may_read() {
    let w = World::new().await;
    let (workspace, _) = w
        .chat
        .bootstrap("Perm", new_user("alice"), &password())
        .await
        .unwrap();
    let alice = login(&workspace, "alice").await;
    let bob = member(&workspace, &alice, "bob").await;
    let (token, _) = workspace.login("bob", &password(), None).await.unwrap();
    let mut feed = workspace.subscribe(&token).await.unwrap();
    let secret = workspace
        .create_channel(&alice, "secret", ChannelVisibility::Private, "")
        .await
        .unwrap();
    let public = workspace
        .create_channel(&alice, "public", ChannelVisibility::Public, "")
        .await
        .unwrap();
    workspace
        .post(&alice, secret.id, "hidden", None, &[])
        .await
        .unwrap();
    workspace
        .post(&alice, public.id, "open", None, &[])
        .await
        .unwrap();
    // Authorization changed (two channels were created): announced; then only what bob may read.
    let events = tokio::time::timeout(Duration::from_secs(10), async {
        let mut events = Vec::new();
        while !events
            .iter()
            .any(|e: &Arc<Event>| matches!(**e, Event::PermissionsChanged))
        {
            events.push(feed.next().await.unwrap());
        }
        events.extend(drain(&mut feed));
        events
    })
    .await
    .unwrap();
    assert_eq!(posted_bodies(&events), ["open"]);
    let _ = bob;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_events_reach_only_those_who_can_see_the_group() {
    let w = World::new().await;
    let (workspace, _) = w
        .chat
        .bootstrap("Grp", new_user("alice"), &password())
        .await
        .unwrap();
    let alice = login(&workspace, "alice").await;
    let bob = member(&workspace, &alice, "bob").await;
    let (token, _) = workspace.login("bob", &password(), None).await.unwrap();
    let mut feed = workspace.subscribe(&token).await.unwrap();
    let open = workspace
        .create_group(&alice, "open", zt_authz::GroupVisibility::Public, None)
        .await
        .unwrap();
    let hidden = workspace
        .create_group(&alice, "hidden", zt_authz::GroupVisibility::Hidden, None)
        .await
        .unwrap();
    // Bob is put into the hidden group; he still cannot see it, so hears nothing of it.
    workspace
        .set_group_member(&alice, hidden.id, bob.user(), true)
        .await
        .unwrap();
    workspace
        .set_group_member(&alice, open.id, bob.user(), true)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let groups: Vec<_> = drain(&mut feed)
        .into_iter()
        .filter_map(|e| match *e {
            Event::GroupChanged(g) => Some(g),
            _ => None,
        })
        .collect();
    assert!(groups.contains(&open.id), "{groups:?}");
    assert!(!groups.contains(&hidden.id), "{groups:?}");
}
