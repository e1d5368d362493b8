//! `Authz` as a deployment uses it: each guardrail refuses what it must (and each test fails
//! without its guardrail), changes persist, are versioned, audited and seen by other instances on
//! their next decision.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test helpers report failures by panicking"
)]

use std::sync::Arc;

use zt_authz::records::load_model;
use zt_authz::{
    Action, Authz, Change, Changer, Channel, ChannelVisibility, Error, Group, GroupVisibility,
    Membership, MentionPolicy, Permission, PermissionSet, Resource, RoleScope, Scope, SettingsArea,
    Source, SystemRole,
};
use zt_core::identity::TenantContext;
use zt_core::{
    AuditEventKind, ChannelId, GroupId, InProcessBus, ManualClock, Principal, RoleId, TenantId,
    Timestamp, UserId,
};
use zt_storage::{KvStore, MemoryStore};

const TENANT: TenantId = TenantId::from_bytes([5; 16]);

fn user(n: u8) -> UserId {
    UserId::from_bytes([n; 16])
}
fn who(n: u8) -> Principal {
    Principal {
        tenant: TENANT,
        user: user(n),
    }
}
fn by(n: u8) -> Changer {
    Changer::Principal(who(n))
}
fn system() -> Changer {
    Changer::System("setup".into())
}

const OWNER: u8 = 1;
const ADMIN: u8 = 2;
const MEMBER: u8 = 3;

struct World {
    store: Arc<dyn KvStore>,
    bus: Arc<InProcessBus>,
    audit: Arc<zt_core::testing::RecordingSink>,
}

impl World {
    fn new() -> Self {
        World {
            store: Arc::new(MemoryStore::new()),
            bus: Arc::new(InProcessBus::new(64)),
            audit: Arc::new(zt_core::testing::RecordingSink::default()),
        }
    }

    fn ctx(&self) -> TenantContext {
        TenantContext {
            store: self.store.clone(),
            tenant: TENANT,
            clock: Arc::new(ManualClock::new(Timestamp::from_unix_millis(
                1_764_400_000_000,
            ))),
            audit: self.audit.clone(),
            bus: self.bus.clone(),
        }
    }

    /// A tenant with an owner, an admin and a member.
    async fn tenant(&self) -> Authz {
        let authz = Authz::open(self.ctx()).await.unwrap();
        for (u, role) in [
            (OWNER, SystemRole::Owner),
            (ADMIN, SystemRole::Admin),
            (MEMBER, SystemRole::Member),
        ] {
            grant(&authz, &system(), u, role.id()).await.unwrap();
        }
        authz
    }
}

async fn grant(authz: &Authz, changer: &Changer, u: u8, role: RoleId) -> zt_authz::Result<u64> {
    authz
        .apply(
            changer,
            Change::Grant {
                user: user(u),
                role,
                at: Scope::Tenant,
            },
        )
        .await
}

async fn revoke(authz: &Authz, changer: &Changer, u: u8, role: RoleId) -> zt_authz::Result<u64> {
    authz
        .apply(
            changer,
            Change::Revoke {
                user: user(u),
                role,
                at: Scope::Tenant,
            },
        )
        .await
}

async fn create_role(
    authz: &Authz,
    changer: &Changer,
    n: u8,
    permissions: PermissionSet,
) -> zt_authz::Result<RoleId> {
    let id = RoleId::from_bytes([0x80 + n; 16]);
    authz
        .apply(
            changer,
            Change::CreateRole {
                id,
                name: format!("custom-{n}"),
                scope: RoleScope::Tenant,
                permissions,
            },
        )
        .await
        .map(|_| id)
}

/// The reason codes of a refusal.
fn refused(result: zt_authz::Result<impl std::fmt::Debug>) -> Vec<String> {
    match result {
        Err(Error::Refused(decision)) => {
            assert!(!decision.allowed);
            decision.codes()
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn nobody_grants_or_defines_more_than_they_hold() {
    let world = World::new();
    let authz = world.tenant().await;
    // The owner makes a role manager who is no admin: manage_roles and manage_users.
    let managers = create_role(
        &authz,
        &by(OWNER),
        1,
        PermissionSet::from([Permission::ManageRoles, Permission::ManageUsers]),
    )
    .await
    .unwrap();
    grant(&authz, &by(OWNER), 4, SystemRole::Member.id())
        .await
        .unwrap();
    grant(&authz, &by(OWNER), 4, managers).await.unwrap();
    // Auditor holds view_audit_logs, which the manager does not.
    assert_eq!(
        refused(grant(&authz, &by(4), MEMBER, SystemRole::Auditor.id()).await),
        ["missing:view_audit_logs"]
    );
    assert_eq!(
        refused(
            create_role(
                &authz,
                &by(4),
                2,
                PermissionSet::from([Permission::ManageBackups])
            )
            .await
        ),
        ["missing:manage_backups"]
    );
    // Neither can it take away what it could not give.
    grant(&authz, &by(OWNER), MEMBER, SystemRole::Auditor.id())
        .await
        .unwrap();
    assert_eq!(
        refused(revoke(&authz, &by(4), MEMBER, SystemRole::Auditor.id()).await),
        ["missing:view_audit_logs"]
    );
    // Within its own powers it works.
    let helpdesk = create_role(
        &authz,
        &by(4),
        3,
        PermissionSet::from([Permission::ManageUsers]),
    )
    .await
    .unwrap();
    grant(&authz, &by(4), MEMBER, helpdesk).await.unwrap();
    // A member without manage_roles grants nothing.
    assert_eq!(
        refused(grant(&authz, &by(MEMBER), 5, SystemRole::Member.id()).await),
        ["missing:manage_roles"]
    );
    // Channel roles: only with manage_channel_roles there, and only with what the role holds.
    let chan = ChannelId::from_bytes([0xc1; 16]);
    authz
        .apply(
            &system(),
            Change::PutChannel(Channel {
                id: chan,
                visibility: ChannelVisibility::Public,
                groups: Default::default(),
            }),
        )
        .await
        .unwrap();
    for u in [MEMBER, 6] {
        authz
            .apply(
                &system(),
                Change::AddMember {
                    user: user(u),
                    of: Membership::Channel(chan),
                    source: Source::Manual,
                },
            )
            .await
            .unwrap();
    }
    let channel_grant = |u: u8, role: RoleId| Change::Grant {
        user: user(u),
        role,
        at: Scope::Channel(chan),
    };
    assert_eq!(
        refused(
            authz
                .apply(&by(MEMBER), channel_grant(6, SystemRole::ChannelAdmin.id()))
                .await
        ),
        ["member:manual", "missing:manage_channel_roles"]
    );
    let keeper = RoleId::from_bytes([0x90; 16]);
    authz
        .apply(
            &by(OWNER),
            Change::CreateRole {
                id: keeper,
                name: "keeper".into(),
                scope: RoleScope::Channel,
                permissions: PermissionSet::from([Permission::ManageChannelRoles]),
            },
        )
        .await
        .unwrap();
    authz
        .apply(&system(), channel_grant(MEMBER, keeper))
        .await
        .unwrap();
    // The keeper may hand out its own role, not channel admin (delete_channel and more).
    authz
        .apply(&by(MEMBER), channel_grant(6, keeper))
        .await
        .unwrap();
    assert_eq!(
        refused(
            authz
                .apply(&by(MEMBER), channel_grant(6, SystemRole::ChannelAdmin.id()))
                .await
        ),
        ["member:manual", "missing:delete_any_message"]
    );
    assert!(
        world
            .audit
            .kinds()
            .contains(&AuditEventKind::EscalationRefused)
    );
}

#[tokio::test]
async fn only_owners_grant_or_remove_owner_and_manage_roles() {
    let world = World::new();
    let authz = world.tenant().await;
    // An admin holds every permission an owner does, and still may not touch owner.
    assert_eq!(
        refused(grant(&authz, &by(ADMIN), MEMBER, SystemRole::Owner.id()).await),
        ["owner-only"]
    );
    assert_eq!(
        refused(revoke(&authz, &by(ADMIN), OWNER, SystemRole::Owner.id()).await),
        ["owner-only"]
    );
    // Nor anything containing manage_roles: the admin role, or a role it defines.
    assert_eq!(
        refused(grant(&authz, &by(ADMIN), MEMBER, SystemRole::Admin.id()).await),
        ["owner-only"]
    );
    assert_eq!(
        refused(
            create_role(
                &authz,
                &by(ADMIN),
                1,
                PermissionSet::from([Permission::ManageRoles])
            )
            .await
        ),
        ["owner-only"]
    );
    let users = create_role(
        &authz,
        &by(ADMIN),
        2,
        PermissionSet::from([Permission::ManageUsers]),
    )
    .await
    .unwrap();
    assert_eq!(
        refused(
            authz
                .apply(
                    &by(ADMIN),
                    Change::UpdateRole {
                        id: users,
                        name: "custom-2".into(),
                        permissions: PermissionSet::from([
                            Permission::ManageUsers,
                            Permission::ManageRoles
                        ]),
                    },
                )
                .await
        ),
        ["owner-only"]
    );
    // The owner may do all of it.
    grant(&authz, &by(OWNER), MEMBER, SystemRole::Admin.id())
        .await
        .unwrap();
    grant(&authz, &by(OWNER), ADMIN, SystemRole::Owner.id())
        .await
        .unwrap();
    revoke(&authz, &by(OWNER), ADMIN, SystemRole::Owner.id())
        .await
        .unwrap();
}

#[tokio::test]
async fn the_last_owner_stays() {
    let world = World::new();
    let authz = world.tenant().await;
    assert_eq!(
        refused(revoke(&authz, &by(OWNER), OWNER, SystemRole::Owner.id()).await),
        ["last-owner"]
    );
    // Not even the deployment itself, nor by removing the user.
    assert_eq!(
        refused(revoke(&authz, &system(), OWNER, SystemRole::Owner.id()).await),
        ["last-owner"]
    );
    assert_eq!(
        refused(
            authz
                .apply(&by(OWNER), Change::RemoveUser(user(OWNER)))
                .await
        ),
        ["last-owner"]
    );
    // Identity asks before it deactivates or deletes.
    assert!(matches!(
        authz.ensure_removable(user(OWNER)).await,
        Err(Error::Refused(_))
    ));
    authz.ensure_removable(user(ADMIN)).await.unwrap();
    // With a second owner, either may go.
    grant(&authz, &by(OWNER), ADMIN, SystemRole::Owner.id())
        .await
        .unwrap();
    authz.ensure_removable(user(OWNER)).await.unwrap();
    revoke(&authz, &by(ADMIN), OWNER, SystemRole::Owner.id())
        .await
        .unwrap();
    assert!(authz.ensure_removable(user(ADMIN)).await.is_err());
}

#[tokio::test]
async fn settings_updates_are_all_or_nothing_per_area() {
    let world = World::new();
    let authz = world.tenant().await;
    let auth_admin = create_role(
        &authz,
        &by(OWNER),
        1,
        PermissionSet::from([Permission::ManageAuthentication]),
    )
    .await
    .unwrap();
    grant(&authz, &by(OWNER), 7, auth_admin).await.unwrap();
    let one = authz
        .authorize_settings(who(7), &[SettingsArea::Authentication])
        .await
        .unwrap();
    assert!(one.allowed, "{one}");
    let both = authz
        .authorize_settings(
            who(7),
            &[SettingsArea::Authentication, SettingsArea::Encryption],
        )
        .await
        .unwrap();
    assert!(!both.allowed);
    assert_eq!(both.codes(), ["missing:manage_encryption"]);
    let admin = authz
        .authorize_settings(
            who(ADMIN),
            &[SettingsArea::Encryption, SettingsArea::Backups],
        )
        .await
        .unwrap();
    assert!(admin.allowed);
}

#[tokio::test]
async fn segmentation_holds_for_changes_too() {
    let world = World::new();
    let authz = world.tenant().await;
    let secret = ChannelId::from_bytes([0xc2; 16]);
    let team = GroupId::from_bytes([0xd1; 16]);
    authz
        .apply(
            &by(MEMBER),
            Change::PutChannel(Channel {
                id: secret,
                visibility: ChannelVisibility::Private,
                groups: Default::default(),
            }),
        )
        .await
        .unwrap();
    authz
        .apply(
            &system(),
            Change::AddMember {
                user: user(MEMBER),
                of: Membership::Channel(secret),
                source: Source::Manual,
            },
        )
        .await
        .unwrap();
    // The admin is no member: the channel does not exist for it, to read or to join or to change.
    let read = authz
        .authorize(
            who(ADMIN),
            Action::Do(Permission::ReadChannel),
            Resource::Channel(secret),
        )
        .await
        .unwrap();
    assert_eq!(read.codes(), ["not-visible"]);
    let join = authz
        .apply(
            &by(ADMIN),
            Change::AddMember {
                user: user(ADMIN),
                of: Membership::Channel(secret),
                source: Source::Manual,
            },
        )
        .await;
    assert!(matches!(join, Err(Error::NotFound(_))), "{join:?}");
    // A group admin cannot pull a private channel it is not in behind its group.
    authz
        .apply(
            &system(),
            Change::PutGroup(Group {
                id: team,
                visibility: GroupVisibility::Private,
                parent: None,
                mention: MentionPolicy::Anyone,
            }),
        )
        .await
        .unwrap();
    authz
        .apply(
            &system(),
            Change::Grant {
                user: user(8),
                role: SystemRole::Member.id(),
                at: Scope::Tenant,
            },
        )
        .await
        .unwrap();
    authz
        .apply(
            &system(),
            Change::Grant {
                user: user(8),
                role: SystemRole::GroupAdmin.id(),
                at: Scope::Group(team),
            },
        )
        .await
        .unwrap();
    let link = authz
        .apply(
            &by(8),
            Change::PutChannel(Channel {
                id: secret,
                visibility: ChannelVisibility::Private,
                groups: [team].into(),
            }),
        )
        .await;
    assert!(matches!(link, Err(Error::NotFound(_))), "{link:?}");
    // Principals never write SCIM or OIDC sources.
    assert_eq!(
        refused(
            authz
                .apply(
                    &by(ADMIN),
                    Change::AddMember {
                        user: user(MEMBER),
                        of: Membership::Group(team),
                        source: Source::Scim,
                    },
                )
                .await
        ),
        ["system-source"]
    );
}

#[tokio::test]
async fn removing_one_source_removes_only_what_it_alone_granted() {
    let world = World::new();
    let authz = world.tenant().await;
    let room = ChannelId::from_bytes([0xc3; 16]);
    let eng = GroupId::from_bytes([0xd2; 16]);
    let scim = Changer::System("scim".into());
    authz
        .apply(
            &system(),
            Change::PutGroup(Group {
                id: eng,
                visibility: GroupVisibility::Private,
                parent: None,
                mention: MentionPolicy::Anyone,
            }),
        )
        .await
        .unwrap();
    authz
        .apply(
            &system(),
            Change::PutChannel(Channel {
                id: room,
                visibility: ChannelVisibility::Private,
                groups: [eng].into(),
            }),
        )
        .await
        .unwrap();
    let add = |source, of| Change::AddMember {
        user: user(MEMBER),
        of,
        source,
    };
    let remove = |source, of| Change::RemoveMember {
        user: user(MEMBER),
        of,
        source,
    };
    let sees = || async {
        authz
            .authorize(who(MEMBER), Action::View, Resource::Channel(room))
            .await
            .unwrap()
    };
    authz
        .apply(&scim, add(Source::Scim, Membership::Group(eng)))
        .await
        .unwrap();
    // The owner is no member of this private channel: it cannot add anyone to it.
    assert!(matches!(
        authz
            .apply(&by(OWNER), add(Source::Manual, Membership::Channel(room)))
            .await,
        Err(Error::NotFound(_))
    ));
    // A member of it through the group may (as a channel admin would); here the deployment does.
    authz
        .apply(&system(), add(Source::Manual, Membership::Channel(room)))
        .await
        .unwrap();
    assert_eq!(sees().await.codes(), [format!("member:manual,group:{eng}")]);
    // SCIM drops the group membership: the manual one stays.
    authz
        .apply(&scim, remove(Source::Scim, Membership::Group(eng)))
        .await
        .unwrap();
    assert_eq!(sees().await.codes(), ["member:manual"]);
    // Back through the group, then the manual source goes: the group one stays.
    authz
        .apply(&scim, add(Source::Scim, Membership::Group(eng)))
        .await
        .unwrap();
    // Leaving needs no power.
    authz
        .apply(
            &by(MEMBER),
            remove(Source::Manual, Membership::Channel(room)),
        )
        .await
        .unwrap();
    assert_eq!(sees().await.codes(), [format!("member:group:{eng}")]);
    authz
        .apply(&scim, remove(Source::Scim, Membership::Group(eng)))
        .await
        .unwrap();
    assert_eq!(sees().await.codes(), ["not-visible"]);
}

#[tokio::test]
async fn changes_persist_are_versioned_audited_and_seen_by_other_instances_at_once() {
    let world = World::new();
    let a = world.tenant().await;
    let b = Authz::open(world.ctx()).await.unwrap();
    assert_eq!(b.version(), a.version());
    let question = (
        who(MEMBER),
        Action::Do(Permission::ViewAuditLogs),
        Resource::Tenant,
    );
    assert!(
        !b.authorize(question.0, question.1, question.2)
            .await
            .unwrap()
            .allowed
    );
    let version = grant(&a, &by(OWNER), MEMBER, SystemRole::Auditor.id())
        .await
        .unwrap();
    assert_eq!(version, a.version());
    // B's very next decision sees the change A committed.
    let seen = b
        .authorize(question.0, question.1, question.2)
        .await
        .unwrap();
    assert!(seen.allowed, "{seen}");
    assert_eq!(b.version(), version);
    // And back.
    revoke(&a, &by(OWNER), MEMBER, SystemRole::Auditor.id())
        .await
        .unwrap();
    assert!(
        !b.authorize(question.0, question.1, question.2)
            .await
            .unwrap()
            .allowed
    );
    // Every change was recorded.
    let kinds = world.audit.kinds();
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == AuditEventKind::RoleChanged)
            .count(),
        5
    );
    // What is stored is what is served.
    let stored = load_model(&*world.store, TENANT).await.unwrap();
    assert_eq!(stored, a.authorizer().snapshot());
    assert_eq!(stored, b.authorizer().snapshot());
}

#[tokio::test]
async fn two_writers_never_both_build_on_the_same_state() {
    let world = World::new();
    let a = world.tenant().await;
    // B hears nothing (its own bus), so it does not know of A's next change.
    let deaf = TenantContext {
        bus: Arc::new(InProcessBus::new(4)),
        ..world.ctx()
    };
    let b = Authz::open(deaf).await.unwrap();
    grant(&a, &by(OWNER), 9, SystemRole::Member.id())
        .await
        .unwrap();
    let stale = grant(&b, &by(OWNER), 10, SystemRole::Member.id()).await;
    assert!(matches!(stale, Err(Error::Conflict(_))), "{stale:?}");
    // B loaded what it missed; the retry builds on it, and nothing was lost.
    grant(&b, &by(OWNER), 10, SystemRole::Member.id())
        .await
        .unwrap();
    let stored = load_model(&*world.store, TENANT).await.unwrap();
    assert!(stored.tenant_roles(user(9)).next().is_some());
    assert!(stored.tenant_roles(user(10)).next().is_some());
}

#[tokio::test]
async fn several_changes_and_the_callers_records_commit_together_or_not_at_all() {
    use zt_storage::{Batch, Namespace};
    let world = World::new();
    let authz = world.tenant().await;
    let room = ChannelId::from_bytes([0xc9; 16]);
    let ns = Namespace::new("chat.test").unwrap();
    let channel = Change::PutChannel(Channel {
        id: room,
        visibility: ChannelVisibility::Private,
        groups: Default::default(),
    });
    let join = |u: u8| Change::AddMember {
        user: user(u),
        of: Membership::Channel(room),
        source: Source::Manual,
    };
    let record = |value: &[u8]| {
        let mut batch = Batch::new();
        batch.put(&ns, b"room", value);
        batch
    };
    // The member may create a private channel but, as no member of it yet, add nobody: the
    // second step is refused, and neither the channel nor the caller's record is written.
    let refused = authz
        .apply_all(
            vec![(by(MEMBER), channel.clone()), (by(MEMBER), join(MEMBER))],
            record(b"first"),
        )
        .await;
    assert!(matches!(refused, Err(Error::NotFound(_))), "{refused:?}");
    assert!(world.store.get(&ns, b"room").await.unwrap().is_none());
    assert!(authz.authorizer().with_model(|m| m.channel(room).is_none()));
    // Creation with the creator's membership by the deployment: all three land in one commit.
    let before = authz.version();
    let version = authz
        .apply_all(
            vec![(by(MEMBER), channel), (system(), join(MEMBER))],
            record(b"second"),
        )
        .await
        .unwrap();
    assert_eq!(version, before + 1);
    assert_eq!(
        world.store.get(&ns, b"room").await.unwrap().unwrap().value,
        b"second"
    );
    let read = authz
        .authorize(
            who(MEMBER),
            Action::Do(Permission::ReadChannel),
            Resource::Channel(room),
        )
        .await
        .unwrap();
    assert!(read.allowed, "{read}");
    assert_eq!(
        load_model(&*world.store, TENANT).await.unwrap(),
        authz.authorizer().snapshot()
    );
}

#[tokio::test]
async fn records_kept_unblinded_before_move_to_their_blinded_namespaces_on_open() {
    use zt_storage::{Batch, KeyRange, Namespace, ScanOptions, codec};
    let w = World::new();
    // A tenant as an earlier version stored it: role assignments under `authz.tenant_roles`.
    let legacy = Namespace::new("authz.tenant_roles").unwrap();
    let mut batch = Batch::new();
    for (u, role) in [(OWNER, SystemRole::Owner), (MEMBER, SystemRole::Member)] {
        batch.put(
            &legacy,
            &user(u).to_bytes(),
            &codec::encode(&vec![role.id()]).unwrap(),
        );
    }
    w.store.commit(batch).await.unwrap();
    let authz = Authz::open(w.ctx()).await.unwrap();
    let model = load_model(&*w.store, TENANT).await.unwrap();
    assert_eq!(
        model.tenant_roles(user(OWNER)).collect::<Vec<_>>(),
        [SystemRole::Owner.id()]
    );
    // Nothing is left in the old place; the new one holds both, and changes go there.
    let left = w
        .store
        .scan(&legacy, &KeyRange::all(), ScanOptions::default())
        .await
        .unwrap();
    assert!(left.entries.is_empty());
    let moved = w
        .store
        .scan(
            &Namespace::new(zt_authz::records::TENANT_ROLES).unwrap(),
            &KeyRange::all(),
            ScanOptions::default(),
        )
        .await
        .unwrap();
    assert_eq!(moved.entries.len(), 2);
    grant(&authz, &by(OWNER), ADMIN, SystemRole::Admin.id())
        .await
        .unwrap();
    let reopened = Authz::open(w.ctx()).await.unwrap();
    drop(reopened);
    let model = load_model(&*w.store, TENANT).await.unwrap();
    assert_eq!(
        model.tenant_roles(user(ADMIN)).collect::<Vec<_>>(),
        [SystemRole::Admin.id()]
    );
}
