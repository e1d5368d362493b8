//! Property tests over random tenants: the fast evaluator and the reference evaluator always
//! agree (decision and reasons); deny by default; adding a grant never takes access away from
//! the one who receives it; the order grants are made in changes nothing; another tenant's
//! principal is always denied.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test helpers report failures by panicking"
)]

use std::collections::BTreeSet;

use proptest::prelude::*;
use zt_authz::{
    Action, Authorizer, Cascades, Channel, ChannelVisibility, Group, GroupVisibility,
    MentionPolicy, Model, Permission, PermissionSet, Resource, Role, RoleScope, Source, Sources,
    SystemRole, Tier, reference,
};
use zt_core::{ChannelId, GroupId, Principal, RoleId, TenantId, UserId};

const TENANT: TenantId = TenantId::from_bytes([7; 16]);
const USERS: u8 = 4;
const CHANNELS: u8 = 3;
const GROUPS: u8 = 3;

fn user(i: u8) -> UserId {
    UserId::from_bytes([0x10 + i; 16])
}
fn channel(i: u8) -> ChannelId {
    ChannelId::from_bytes([0x20 + i; 16])
}
fn group(i: u8) -> GroupId {
    GroupId::from_bytes([0x30 + i; 16])
}
fn custom_role(i: u8) -> RoleId {
    RoleId::from_bytes([0x40 + i; 16])
}

/// One grant: something that only ever adds access for its user.
#[derive(Debug, Clone)]
enum Grant {
    TenantRole(u8, usize),
    ChannelSource(u8, u8, Source),
    GroupSource(u8, u8, Source),
    ChannelRole(u8, u8, usize),
    GroupRole(u8, u8, usize),
}

/// The fixed part of a tenant: custom roles, groups and channels.
#[derive(Debug, Clone)]
struct Shape {
    roles: Vec<(RoleScope, PermissionSet)>,
    groups: Vec<(GroupVisibility, Option<u8>, MentionPolicy)>,
    channels: Vec<(ChannelVisibility, BTreeSet<u8>)>,
}

fn permissions(scope: RoleScope) -> impl Strategy<Value = PermissionSet> {
    let allowed: Vec<Permission> = Permission::ALL
        .iter()
        .copied()
        .filter(|p| scope.allows(p.tier()))
        .collect();
    proptest::sample::subsequence(allowed.clone(), 0..=4.min(allowed.len()))
        .prop_map(|ps| ps.into_iter().collect())
}

fn shape() -> impl Strategy<Value = Shape> {
    let scope = prop_oneof![
        Just(RoleScope::Tenant),
        Just(RoleScope::Channel),
        Just(RoleScope::Group)
    ];
    let roles = proptest::collection::vec(scope.prop_flat_map(|s| (Just(s), permissions(s))), 3);
    let gvis = prop_oneof![
        Just(GroupVisibility::Public),
        Just(GroupVisibility::Private),
        Just(GroupVisibility::Hidden)
    ];
    let mention = prop_oneof![
        Just(MentionPolicy::Anyone),
        Just(MentionPolicy::Members),
        Just(MentionPolicy::Managers)
    ];
    // A group's parent is an earlier group, so there is never a cycle.
    let groups = (
        proptest::collection::vec((gvis, mention), GROUPS as usize),
        proptest::collection::vec(proptest::option::of(0u8..GROUPS), GROUPS as usize),
    )
        .prop_map(|(g, parents)| {
            g.into_iter()
                .zip(parents)
                .enumerate()
                .map(|(i, ((v, m), p))| (v, p.filter(|p| usize::from(*p) < i), m))
                .collect()
        });
    let cvis = prop_oneof![
        Just(ChannelVisibility::Public),
        Just(ChannelVisibility::Private)
    ];
    let channels = proptest::collection::vec(
        (cvis, proptest::collection::btree_set(0u8..GROUPS, 0..=2)),
        CHANNELS as usize,
    );
    (roles, groups, channels).prop_map(|(roles, groups, channels)| Shape {
        roles,
        groups,
        channels,
    })
}

fn source() -> impl Strategy<Value = Source> {
    prop_oneof![Just(Source::Manual), Just(Source::Oidc), Just(Source::Scim)]
}

fn grant() -> impl Strategy<Value = Grant> {
    let u = 0u8..USERS;
    prop_oneof![
        (u.clone(), 0usize..10).prop_map(|(u, r)| Grant::TenantRole(u, r)),
        (u.clone(), 0u8..CHANNELS, source()).prop_map(|(u, c, s)| Grant::ChannelSource(u, c, s)),
        (u.clone(), 0u8..GROUPS, source()).prop_map(|(u, g, s)| Grant::GroupSource(u, g, s)),
        (u.clone(), 0u8..CHANNELS, 0usize..10).prop_map(|(u, c, r)| Grant::ChannelRole(u, c, r)),
        (u, 0u8..GROUPS, 0usize..10).prop_map(|(u, g, r)| Grant::GroupRole(u, g, r)),
    ]
}

/// The roles of a scope: the system ones and the custom ones of the shape.
fn roles_of(shape: &Shape, scope: RoleScope) -> Vec<RoleId> {
    let mut roles: Vec<RoleId> = SystemRole::ALL
        .into_iter()
        .filter(|r| r.scope() == scope)
        .map(SystemRole::id)
        .collect();
    for (i, (s, _)) in shape.roles.iter().enumerate() {
        if *s == scope {
            roles.push(custom_role(u8::try_from(i).unwrap()));
        }
    }
    roles
}

fn base(shape: &Shape) -> Model {
    let mut model = Model::new(TENANT);
    for (i, (scope, permissions)) in shape.roles.iter().enumerate() {
        model
            .put_role(Role {
                id: custom_role(u8::try_from(i).unwrap()),
                name: format!("custom-{i}"),
                scope: *scope,
                permissions: *permissions,
                system: None,
            })
            .unwrap();
    }
    for (i, (visibility, parent, mention)) in shape.groups.iter().enumerate() {
        model
            .put_group(Group {
                id: group(u8::try_from(i).unwrap()),
                visibility: *visibility,
                parent: parent.map(group),
                mention: *mention,
            })
            .unwrap();
    }
    for (i, (visibility, groups)) in shape.channels.iter().enumerate() {
        model
            .put_channel(Channel {
                id: channel(u8::try_from(i).unwrap()),
                visibility: *visibility,
                groups: groups.iter().map(|g| group(*g)).collect(),
            })
            .unwrap();
    }
    model
}

fn apply(model: &mut Model, shape: &Shape, grant: &Grant) {
    let pick = |scope, i: usize| {
        let roles = roles_of(shape, scope);
        roles[i % roles.len()]
    };
    match *grant {
        Grant::TenantRole(u, r) => {
            let mut roles: BTreeSet<RoleId> = model.tenant_roles(user(u)).collect();
            roles.insert(pick(RoleScope::Tenant, r));
            model.set_tenant_roles(user(u), roles).unwrap();
        }
        Grant::ChannelSource(u, c, s) => {
            let sources = model.channel_sources(channel(c), user(u)).with(s);
            model
                .set_channel_sources(channel(c), user(u), sources)
                .unwrap();
        }
        Grant::GroupSource(u, g, s) => {
            let sources = model.group_sources(group(g), user(u)).with(s);
            model.set_group_sources(group(g), user(u), sources).unwrap();
        }
        Grant::ChannelRole(u, c, r) => {
            let mut roles: BTreeSet<RoleId> = model.channel_roles(channel(c), user(u)).collect();
            roles.insert(pick(RoleScope::Channel, r));
            model.set_channel_roles(channel(c), user(u), roles).unwrap();
        }
        Grant::GroupRole(u, g, r) => {
            let mut roles: BTreeSet<RoleId> = model.group_roles(group(g), user(u)).collect();
            roles.insert(pick(RoleScope::Group, r));
            model.set_group_roles(group(g), user(u), roles).unwrap();
        }
    }
}

fn grantee(grant: &Grant) -> u8 {
    match *grant {
        Grant::TenantRole(u, _)
        | Grant::ChannelSource(u, _, _)
        | Grant::GroupSource(u, _, _)
        | Grant::ChannelRole(u, _, _)
        | Grant::GroupRole(u, _, _) => u,
    }
}

/// Every question worth asking in a tenant of this size.
fn questions() -> Vec<(Principal, Action, Resource)> {
    let mut resources = vec![Resource::Tenant];
    resources.extend((0..CHANNELS + 1).map(|c| Resource::Channel(channel(c))));
    resources.extend((0..GROUPS + 1).map(|g| Resource::Group(group(g))));
    resources.extend((0..USERS).map(|u| Resource::User(user(u))));
    let mut actions = vec![Action::View, Action::Mention];
    actions.extend(Permission::ALL.iter().map(|p| Action::Do(*p)));
    let mut out = Vec::new();
    for u in 0..USERS {
        let principal = Principal {
            tenant: TENANT,
            user: user(u),
        };
        for resource in &resources {
            for action in &actions {
                out.push((principal, *action, *resource));
            }
        }
    }
    out
}

fn decisions(model: &Model) -> Vec<zt_authz::Decision> {
    let fast = Authorizer::new(model.clone(), Cascades::standard());
    questions()
        .into_iter()
        .map(|(p, a, r)| fast.authorize(p, a, r))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn both_evaluators_agree(shape in shape(), grants in proptest::collection::vec(grant(), 0..24)) {
        let mut model = base(&shape);
        for g in &grants {
            apply(&mut model, &shape, g);
        }
        let fast = Authorizer::new(model.clone(), Cascades::standard());
        for (principal, action, resource) in questions() {
            let slow = reference::authorize(&model, Cascades::standard(), principal, action, resource);
            // Twice: the first compiles, the second is served from the cache.
            for _ in 0..2 {
                let quick = fast.authorize(principal, action, resource);
                prop_assert_eq!(quick, slow, "{:?} {:?} {:?}", principal.user, action, resource);
            }
        }
    }

    #[test]
    fn a_grant_never_takes_access_from_its_grantee(
        shape in shape(),
        grants in proptest::collection::vec(grant(), 0..16),
        extra in grant(),
    ) {
        let mut model = base(&shape);
        for g in &grants {
            apply(&mut model, &shape, g);
        }
        let before = decisions(&model);
        apply(&mut model, &shape, &extra);
        let after = decisions(&model);
        let who = user(grantee(&extra));
        for ((q, b), a) in questions().into_iter().zip(&before).zip(&after) {
            if q.0.user == who && b.allowed {
                prop_assert!(a.allowed, "{:?} lost {:?} on {:?} after {:?}", who, q.1, q.2, extra);
            }
        }
    }

    #[test]
    fn grant_order_changes_nothing(
        shape in shape(),
        grants in proptest::collection::vec(grant(), 0..16).prop_shuffle(),
    ) {
        let mut forward = base(&shape);
        for g in &grants {
            apply(&mut forward, &shape, g);
        }
        let mut backward = base(&shape);
        for g in grants.iter().rev() {
            apply(&mut backward, &shape, g);
        }
        prop_assert_eq!(decisions(&forward), decisions(&backward));
    }

    #[test]
    fn another_tenant_is_always_denied_as_not_found(
        shape in shape(),
        grants in proptest::collection::vec(grant(), 0..16),
    ) {
        let mut model = base(&shape);
        for g in &grants {
            apply(&mut model, &shape, g);
        }
        let fast = Authorizer::new(model.clone(), Cascades::standard());
        for (principal, action, resource) in questions() {
            let stranger = Principal { tenant: TenantId::from_bytes([8; 16]), ..principal };
            let d = fast.authorize(stranger, action, resource);
            prop_assert!(!d.allowed);
            prop_assert_eq!(d.codes(), vec!["not-found".to_owned()]);
            let r = reference::authorize(&model, Cascades::standard(), stranger, action, resource);
            prop_assert_eq!(d, r);
        }
    }
}

#[test]
fn deny_by_default() {
    // A tenant with its system roles, channels and groups, and nobody assigned anything.
    let shape = Shape {
        roles: vec![(
            RoleScope::Tenant,
            PermissionSet::all().intersection(PermissionSet::tier(Tier::Tenant)),
        )],
        groups: vec![
            (GroupVisibility::Public, None, MentionPolicy::Anyone),
            (GroupVisibility::Private, Some(0), MentionPolicy::Anyone),
            (GroupVisibility::Hidden, None, MentionPolicy::Anyone),
        ],
        channels: vec![
            (ChannelVisibility::Public, BTreeSet::from([0])),
            (ChannelVisibility::Private, BTreeSet::new()),
            (ChannelVisibility::Public, BTreeSet::new()),
        ],
    };
    let model = base(&shape);
    for d in decisions(&model) {
        assert!(!d.allowed);
        assert_eq!(d.codes(), ["no-tenant-role"]);
    }
    // Sources alone (no tenant role) still give nothing.
    let mut model = base(&shape);
    model
        .set_channel_sources(channel(1), user(0), Sources::NONE.with(Source::Manual))
        .unwrap();
    assert!(decisions(&model).iter().all(|d| !d.allowed));
}
