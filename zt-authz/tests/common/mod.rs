//! Builds models from the JSON scenario format of `tests/corpus`, naming everything by name.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::panic,
    reason = "shared by several test files, each using part of it; helpers panic on failure"
)]

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;
use zt_authz::{
    Action, Channel, ChannelVisibility, Group, GroupVisibility, MentionPolicy, Model, Permission,
    PermissionSet, Resource, Role, RoleScope, Source, Sources, SystemRole,
};
use zt_core::{ChannelId, GroupId, Principal, RoleId, TenantId, UserId};

pub const TENANT: TenantId = TenantId::from_bytes([0x70; 16]);
pub const OTHER_TENANT: TenantId = TenantId::from_bytes([0x71; 16]);

/// 16 id bytes from a kind tag and a name (names sort like their ids).
pub fn id_bytes(kind: u8, name: &str) -> [u8; 16] {
    let mut bytes = [0u8; 16];
    bytes[0] = kind;
    for (slot, b) in bytes[1..].iter_mut().zip(name.bytes()) {
        *slot = b;
    }
    bytes
}

pub fn user(name: &str) -> UserId {
    UserId::from_bytes(id_bytes(b'u', name))
}
pub fn channel(name: &str) -> ChannelId {
    ChannelId::from_bytes(id_bytes(b'c', name))
}
pub fn group(name: &str) -> GroupId {
    GroupId::from_bytes(id_bytes(b'g', name))
}
pub fn role(name: &str) -> RoleId {
    SystemRole::ALL
        .into_iter()
        .find(|r| r.name() == name)
        .map_or_else(|| RoleId::from_bytes(id_bytes(b'r', name)), SystemRole::id)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub description: String,
    #[serde(default)]
    pub roles: Vec<RoleSpec>,
    #[serde(default)]
    pub groups: Vec<GroupSpec>,
    #[serde(default)]
    pub channels: Vec<ChannelSpec>,
    #[serde(default)]
    pub users: Vec<UserSpec>,
    pub requests: Vec<RequestSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSpec {
    pub name: String,
    pub scope: RoleScope,
    pub permissions: Vec<Permission>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupSpec {
    pub name: String,
    pub visibility: GroupVisibility,
    #[serde(default)]
    pub parent: Option<String>,
    #[serde(default = "anyone")]
    pub mention: MentionPolicy,
}

fn anyone() -> MentionPolicy {
    MentionPolicy::Anyone
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelSpec {
    pub name: String,
    pub visibility: ChannelVisibility,
    #[serde(default)]
    pub groups: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserSpec {
    pub name: String,
    #[serde(default)]
    pub roles: Vec<String>,
    #[serde(default)]
    pub channels: BTreeMap<String, Vec<Source>>,
    #[serde(default)]
    pub groups: BTreeMap<String, Vec<Source>>,
    #[serde(default)]
    pub channel_roles: BTreeMap<String, Vec<String>>,
    #[serde(default)]
    pub group_roles: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestSpec {
    pub principal: String,
    /// `view`, `mention`, or a permission name.
    pub action: String,
    /// `tenant`, `channel:<name>`, `group:<name>`, `user:<name>`.
    pub resource: String,
    /// Ask as a principal of another tenant.
    #[serde(default)]
    pub other_tenant: bool,
    pub allowed: bool,
    pub reasons: Vec<String>,
}

fn sources(list: &[Source]) -> Sources {
    list.iter().fold(Sources::NONE, |s, source| s.with(*source))
}

impl Scenario {
    pub fn model(&self) -> Model {
        let mut model = Model::new(TENANT);
        for r in &self.roles {
            model
                .put_role(Role {
                    id: role(&r.name),
                    name: r.name.clone(),
                    scope: r.scope,
                    permissions: r.permissions.iter().copied().collect::<PermissionSet>(),
                    system: None,
                })
                .unwrap();
        }
        // Parents first.
        let mut pending: Vec<&GroupSpec> = self.groups.iter().collect();
        while !pending.is_empty() {
            let before = pending.len();
            pending.retain(|g| {
                let ready = g
                    .parent
                    .as_ref()
                    .is_none_or(|p| model.group(group(p)).is_some());
                if ready {
                    model
                        .put_group(Group {
                            id: group(&g.name),
                            visibility: g.visibility,
                            parent: g.parent.as_deref().map(group),
                            mention: g.mention,
                        })
                        .unwrap();
                }
                !ready
            });
            assert!(
                pending.len() < before,
                "unknown parent group in {pending:?}"
            );
        }
        for c in &self.channels {
            model
                .put_channel(Channel {
                    id: channel(&c.name),
                    visibility: c.visibility,
                    groups: c.groups.iter().map(|g| group(g)).collect(),
                })
                .unwrap();
        }
        for u in &self.users {
            let id = user(&u.name);
            model
                .set_tenant_roles(id, u.roles.iter().map(|r| role(r)).collect())
                .unwrap();
            for (c, list) in &u.channels {
                model
                    .set_channel_sources(channel(c), id, sources(list))
                    .unwrap();
            }
            for (g, list) in &u.groups {
                model
                    .set_group_sources(group(g), id, sources(list))
                    .unwrap();
            }
            for (c, roles) in &u.channel_roles {
                let roles: BTreeSet<RoleId> = roles.iter().map(|r| role(r)).collect();
                model.set_channel_roles(channel(c), id, roles).unwrap();
            }
            for (g, roles) in &u.group_roles {
                let roles: BTreeSet<RoleId> = roles.iter().map(|r| role(r)).collect();
                model.set_group_roles(group(g), id, roles).unwrap();
            }
        }
        model
    }

    /// Every id printed in a reason code, mapped back to its name.
    pub fn names(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for r in SystemRole::ALL {
            out.push((r.id().to_string(), r.name().to_owned()));
        }
        for r in &self.roles {
            out.push((role(&r.name).to_string(), r.name.clone()));
        }
        for g in &self.groups {
            out.push((group(&g.name).to_string(), g.name.clone()));
        }
        for c in &self.channels {
            out.push((channel(&c.name).to_string(), c.name.clone()));
        }
        for u in &self.users {
            out.push((user(&u.name).to_string(), u.name.clone()));
        }
        out
    }
}

impl RequestSpec {
    pub fn question(&self) -> (Principal, Action, Resource) {
        let principal = Principal {
            tenant: if self.other_tenant {
                OTHER_TENANT
            } else {
                TENANT
            },
            user: user(&self.principal),
        };
        let action = match self.action.as_str() {
            "view" => Action::View,
            "mention" => Action::Mention,
            name => Action::Do(
                Permission::from_name(name).unwrap_or_else(|| panic!("unknown action {name}")),
            ),
        };
        let resource = match self.resource.split_once(':') {
            None if self.resource == "tenant" => Resource::Tenant,
            Some(("channel", n)) => Resource::Channel(channel(n)),
            Some(("group", n)) => Resource::Group(group(n)),
            Some(("user", n)) => Resource::User(user(n)),
            _ => panic!("unknown resource {}", self.resource),
        };
        (principal, action, resource)
    }
}

/// A decision's reason codes with ids replaced by names.
pub fn named_codes(codes: Vec<String>, names: &[(String, String)]) -> Vec<String> {
    codes
        .into_iter()
        .map(|mut code| {
            for (id, name) in names {
                code = code.replace(id.as_str(), name);
            }
            code
        })
        .collect()
}
