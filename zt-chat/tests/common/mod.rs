//! The chat tests' deployment is `zt_chat::testing::World` (memory or a sled directory, the
//! fixed KMS, a recording audit sink, an in-process bus, a manual clock); these are the few
//! helpers the test files share on top.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    reason = "shared by several test files, each using part of it; helpers panic on failure"
)]

use zt_chat::{Caller, Workspace};
use zt_core::UserId;

pub use zt_chat::testing::{new_user, password};

/// A member of `workspace`, created by `admin` (through the door every embedder has:
/// `create_user`, which grants the member role), logged in.
pub async fn member(workspace: &Workspace, admin: &Caller, name: &str) -> Caller {
    workspace
        .create_user(admin, new_user(name), &password())
        .await
        .unwrap();
    login(workspace, name).await
}

pub async fn login(workspace: &Workspace, name: &str) -> Caller {
    workspace.login(name, &password(), None).await.unwrap().1
}

pub fn id_of(caller: &Caller) -> UserId {
    caller.user()
}
