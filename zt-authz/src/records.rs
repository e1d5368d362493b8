//! How a tenant's authorization is kept in its store: one record per role, assignment, channel,
//! group and membership, so that a change writes only what it touches, and a version record that
//! every change moves forward in the same conditional commit.

use std::collections::BTreeSet;

use futures_util::TryStreamExt as _;
use zt_core::{ChannelId, GroupId, RoleId, TenantId, UserId};
use zt_storage::{Batch, KeyRange, KvStore, KvStoreExt as _, Namespace, ScanOptions, codec};

use crate::decision::Scope;
use crate::error::{Error, Result};
use crate::guard::{Change, Membership};
use crate::model::{Channel, Group, Model, Sources};
use crate::role::Role;

/// Custom roles, by role id. Blinded.
pub const ROLES: &str = "authz.b.roles";
/// Tenant role assignments, by user id. Blinded.
pub const TENANT_ROLES: &str = "authz.b.tenant_roles";
/// Channels, by channel id. Blinded.
pub const CHANNELS: &str = "authz.b.channels";
/// Groups, by group id. Blinded.
pub const GROUPS: &str = "authz.b.groups";
/// Channel memberships' stored sources, by channel id then user id. Blinded.
pub const CHANNEL_MEMBERS: &str = "authz.b.channel_members";
/// Group memberships' stored sources, by group id then user id. Blinded.
pub const GROUP_MEMBERS: &str = "authz.b.group_members";
/// Channel role assignments, by channel id then user id. Blinded.
pub const CHANNEL_ROLES: &str = "authz.b.channel_roles";
/// Group role assignments, by group id then user id. Blinded.
pub const GROUP_ROLES: &str = "authz.b.group_roles";

/// The namespaces whose keys name users, channels, groups and roles: a deployment's encrypting
/// store blinds them (`EncryptingStore::blind_namespace`), so a copy of the data directory shows
/// neither who is in which channel or group nor who holds which role. They are only ever read
/// by key or scanned whole, as blinding allows.
pub const BLINDED_NAMESPACES: [&str; 8] = [
    ROLES,
    TENANT_ROLES,
    CHANNELS,
    GROUPS,
    CHANNEL_MEMBERS,
    GROUP_MEMBERS,
    CHANNEL_ROLES,
    GROUP_ROLES,
];

/// Where the same records were kept, unblinded, before; loading a tenant (`Authz::open`,
/// [`load_model`]) moves what it finds there.
pub const LEGACY_NAMESPACES: [(&str, &str); 8] = [
    ("authz.roles", ROLES),
    ("authz.tenant_roles", TENANT_ROLES),
    ("authz.channels", CHANNELS),
    ("authz.groups", GROUPS),
    ("authz.channel_members", CHANNEL_MEMBERS),
    ("authz.group_members", GROUP_MEMBERS),
    ("authz.channel_roles", CHANNEL_ROLES),
    ("authz.group_roles", GROUP_ROLES),
];

/// The version record (key `version`): the number of changes made.
pub const META: &str = "authz.meta";
/// The key of the version record.
pub const VERSION_KEY: &[u8] = b"version";

/// The namespaces, validated once.
#[derive(Debug, Clone)]
pub(crate) struct Namespaces {
    pub(crate) roles: Namespace,
    pub(crate) tenant_roles: Namespace,
    pub(crate) channels: Namespace,
    pub(crate) groups: Namespace,
    pub(crate) channel_members: Namespace,
    pub(crate) group_members: Namespace,
    pub(crate) channel_roles: Namespace,
    pub(crate) group_roles: Namespace,
    pub(crate) meta: Namespace,
}

impl Namespaces {
    pub(crate) fn new() -> Result<Self> {
        Ok(Namespaces {
            roles: Namespace::new(ROLES)?,
            tenant_roles: Namespace::new(TENANT_ROLES)?,
            channels: Namespace::new(CHANNELS)?,
            groups: Namespace::new(GROUPS)?,
            channel_members: Namespace::new(CHANNEL_MEMBERS)?,
            group_members: Namespace::new(GROUP_MEMBERS)?,
            channel_roles: Namespace::new(CHANNEL_ROLES)?,
            group_roles: Namespace::new(GROUP_ROLES)?,
            meta: Namespace::new(META)?,
        })
    }
}

fn pair(a: [u8; 16], b: UserId) -> Vec<u8> {
    let mut key = a.to_vec();
    key.extend_from_slice(&b.to_bytes());
    key
}

fn split_pair(key: &[u8]) -> Result<([u8; 16], UserId)> {
    let damaged = || zt_storage::Error::corrupt("an authorization record key is damaged", None);
    let (a, b) = key.split_at_checked(16).ok_or_else(damaged)?;
    let a: [u8; 16] = a.try_into().map_err(|_| damaged())?;
    let b: [u8; 16] = b.try_into().map_err(|_| damaged())?;
    Ok((a, UserId::from_bytes(b)))
}

fn id16(key: &[u8]) -> Result<[u8; 16]> {
    key.try_into().map_err(|_| {
        zt_storage::Error::corrupt("an authorization record key is damaged", None).into()
    })
}

/// One record: where, and its value in `model` (`None`: absent).
type Record = (Namespace, Vec<u8>, Option<Vec<u8>>);

fn encode_roles(roles: &BTreeSet<RoleId>) -> Result<Option<Vec<u8>>> {
    if roles.is_empty() {
        return Ok(None);
    }
    Ok(Some(codec::encode(&roles.iter().collect::<Vec<_>>())?))
}

fn encode_sources(sources: Sources) -> Result<Option<Vec<u8>>> {
    if sources.is_empty() {
        return Ok(None);
    }
    Ok(Some(codec::encode(&sources)?))
}

/// The records `change` may have touched, with their values in `after`. Keys of what existed
/// only `before` (a removed channel's memberships) come with `None`, so they are deleted.
pub(crate) fn touched(
    ns: &Namespaces,
    before: &Model,
    after: &Model,
    change: &Change,
) -> Result<Vec<Record>> {
    let mut out: Vec<Record> = Vec::new();
    let role = |out: &mut Vec<Record>, id: RoleId| -> Result<()> {
        let value = match after.role(id) {
            Some(r) if !r.is_system() => Some(codec::encode(r)?),
            _ => None,
        };
        out.push((ns.roles.clone(), id.to_bytes().to_vec(), value));
        Ok(())
    };
    let tenant_roles = |out: &mut Vec<Record>, user: UserId| -> Result<()> {
        let value = encode_roles(&after.tenant_roles(user).collect())?;
        out.push((ns.tenant_roles.clone(), user.to_bytes().to_vec(), value));
        Ok(())
    };
    let channel = |out: &mut Vec<Record>, id: ChannelId| -> Result<()> {
        let value = after.channel(id).map(codec::encode).transpose()?;
        out.push((ns.channels.clone(), id.to_bytes().to_vec(), value));
        Ok(())
    };
    let group = |out: &mut Vec<Record>, id: GroupId| -> Result<()> {
        let value = after.group(id).map(codec::encode).transpose()?;
        out.push((ns.groups.clone(), id.to_bytes().to_vec(), value));
        Ok(())
    };
    let channel_member = |out: &mut Vec<Record>, c: ChannelId, u: UserId| -> Result<()> {
        let value = encode_sources(after.channel_sources(c, u))?;
        out.push((ns.channel_members.clone(), pair(c.to_bytes(), u), value));
        Ok(())
    };
    let group_member = |out: &mut Vec<Record>, g: GroupId, u: UserId| -> Result<()> {
        let value = encode_sources(after.group_sources(g, u))?;
        out.push((ns.group_members.clone(), pair(g.to_bytes(), u), value));
        Ok(())
    };
    let channel_role = |out: &mut Vec<Record>, c: ChannelId, u: UserId| -> Result<()> {
        let value = encode_roles(&after.channel_roles(c, u).collect())?;
        out.push((ns.channel_roles.clone(), pair(c.to_bytes(), u), value));
        Ok(())
    };
    let group_role = |out: &mut Vec<Record>, g: GroupId, u: UserId| -> Result<()> {
        let value = encode_roles(&after.group_roles(g, u).collect())?;
        out.push((ns.group_roles.clone(), pair(g.to_bytes(), u), value));
        Ok(())
    };
    match change {
        Change::CreateRole { id, .. }
        | Change::UpdateRole { id, .. }
        | Change::DeleteRole { id } => {
            role(&mut out, *id)?;
        }
        Change::Grant { user, at, .. } | Change::Revoke { user, at, .. } => match at {
            Scope::Tenant => tenant_roles(&mut out, *user)?,
            Scope::Channel(c) => channel_role(&mut out, *c, *user)?,
            Scope::Group(g) => group_role(&mut out, *g, *user)?,
        },
        Change::PutChannel(c) => channel(&mut out, c.id)?,
        Change::RemoveChannel(c) => {
            channel(&mut out, *c)?;
            for (ch, u, _) in before.channel_memberships().filter(|(ch, _, _)| ch == c) {
                channel_member(&mut out, ch, u)?;
            }
            for (ch, u, _) in before
                .channel_role_assignments()
                .filter(|(ch, _, _)| ch == c)
            {
                channel_role(&mut out, ch, u)?;
            }
        }
        Change::PutGroup(g) => group(&mut out, g.id)?,
        Change::RemoveGroup(g) => {
            group(&mut out, *g)?;
            for c in before.linked_channels(*g) {
                channel(&mut out, c)?;
            }
            for (gr, u, _) in before.group_memberships().filter(|(gr, _, _)| gr == g) {
                group_member(&mut out, gr, u)?;
            }
            for (gr, u, _) in before.group_role_assignments().filter(|(gr, _, _)| gr == g) {
                group_role(&mut out, gr, u)?;
            }
        }
        Change::AddMember { user, of, .. } | Change::RemoveMember { user, of, .. } => match of {
            Membership::Channel(c) => channel_member(&mut out, *c, *user)?,
            Membership::Group(g) => group_member(&mut out, *g, *user)?,
        },
        Change::RemoveUser(user) => {
            tenant_roles(&mut out, *user)?;
            for c in before.channels_of(*user) {
                channel_member(&mut out, c, *user)?;
            }
            for g in before.groups_of(*user) {
                group_member(&mut out, g, *user)?;
            }
            for c in before.channel_roles_of(*user) {
                channel_role(&mut out, c, *user)?;
            }
            for g in before.group_roles_of(*user) {
                group_role(&mut out, g, *user)?;
            }
        }
    }
    Ok(out)
}

/// Adds the writes of `records` to `batch`.
pub(crate) fn write(batch: &mut Batch, records: Vec<Record>) {
    for (ns, key, value) in records {
        match value {
            Some(value) => batch.put_owned(&ns, key, value),
            None => batch.delete(&ns, &key),
        };
    }
}

async fn all(store: &dyn KvStore, ns: &Namespace) -> Result<Vec<zt_storage::Entry>> {
    Ok(store
        .scan_stream(ns, KeyRange::all(), ScanOptions::new())
        .try_collect()
        .await?)
}

/// Moves records found under [`LEGACY_NAMESPACES`] to their blinded namespaces: each batch puts
/// a record in its new place and deletes the old in one commit, so a crash midway loses nothing
/// and the next load goes on.
pub(crate) async fn migrate_legacy(store: &dyn KvStore) -> Result<()> {
    for (old, new) in LEGACY_NAMESPACES {
        store
            .move_namespace(&Namespace::new(old)?, &Namespace::new(new)?)
            .await?;
    }
    Ok(())
}

/// The model stored for `tenant` in `store` (what an [`Authz`](crate::Authz) would load), for
/// tools and tests that read without serving.
///
/// # Errors
/// The store's errors; [`zt_storage::ErrorKind::Corrupt`] for records that do not fit.
pub async fn load_model(store: &dyn KvStore, tenant: TenantId) -> Result<Model> {
    migrate_legacy(store).await?;
    Ok(load(store, &Namespaces::new()?, tenant).await?.0)
}

/// The stored state of `tenant`: its model, its version, and the store version of the version
/// record (`None` before the first change).
pub(crate) async fn load(
    store: &dyn KvStore,
    ns: &Namespaces,
    tenant: TenantId,
) -> Result<(Model, u64, Option<u64>)> {
    let damaged = |what: &str, e: Error| -> Error {
        Error::Storage(zt_storage::Error::corrupt(
            format!("stored {what} is unusable: {e}"),
            None,
        ))
    };
    let mut model = Model::new(tenant);
    let (version, meta) = match store.get(&ns.meta, VERSION_KEY).await? {
        Some(entry) => (codec::decode::<u64>(&entry.value)?, Some(entry.version)),
        None => (0, None),
    };
    for entry in all(store, &ns.roles).await? {
        let role: Role = codec::decode(&entry.value)?;
        model.put_role(role).map_err(|e| damaged("role", e))?;
    }
    let mut groups: Vec<Group> = Vec::new();
    for entry in all(store, &ns.groups).await? {
        groups.push(codec::decode(&entry.value)?);
    }
    // Parents before their subgroups.
    while !groups.is_empty() {
        let before = groups.len();
        let mut rest = Vec::new();
        for g in groups {
            if g.parent.is_none_or(|p| model.group(p).is_some()) {
                model.put_group(g).map_err(|e| damaged("group", e))?;
            } else {
                rest.push(g);
            }
        }
        if rest.len() == before {
            return Err(damaged(
                "group",
                Error::InvalidInput("a parent group is missing".into()),
            ));
        }
        groups = rest;
    }
    for entry in all(store, &ns.channels).await? {
        let channel: Channel = codec::decode(&entry.value)?;
        model
            .put_channel(channel)
            .map_err(|e| damaged("channel", e))?;
    }
    for entry in all(store, &ns.tenant_roles).await? {
        let user = UserId::from_bytes(id16(&entry.key)?);
        let roles: Vec<RoleId> = codec::decode(&entry.value)?;
        model
            .set_tenant_roles(user, roles.into_iter().collect())
            .map_err(|e| damaged("tenant role assignment", e))?;
    }
    for entry in all(store, &ns.channel_members).await? {
        let (c, user) = split_pair(&entry.key)?;
        let sources: Sources = codec::decode(&entry.value)?;
        model
            .set_channel_sources(ChannelId::from_bytes(c), user, sources)
            .map_err(|e| damaged("channel membership", e))?;
    }
    for entry in all(store, &ns.group_members).await? {
        let (g, user) = split_pair(&entry.key)?;
        let sources: Sources = codec::decode(&entry.value)?;
        model
            .set_group_sources(GroupId::from_bytes(g), user, sources)
            .map_err(|e| damaged("group membership", e))?;
    }
    for entry in all(store, &ns.channel_roles).await? {
        let (c, user) = split_pair(&entry.key)?;
        let roles: Vec<RoleId> = codec::decode(&entry.value)?;
        model
            .set_channel_roles(ChannelId::from_bytes(c), user, roles.into_iter().collect())
            .map_err(|e| damaged("channel role assignment", e))?;
    }
    for entry in all(store, &ns.group_roles).await? {
        let (g, user) = split_pair(&entry.key)?;
        let roles: Vec<RoleId> = codec::decode(&entry.value)?;
        model
            .set_group_roles(GroupId::from_bytes(g), user, roles.into_iter().collect())
            .map_err(|e| damaged("group role assignment", e))?;
    }
    Ok((model, version, meta))
}
