//! Authorization decisions on one policy, measured side by side in one run:
//! - zt: a cached decision (`Authorizer::authorize`, tenant power and channel power), and a cold
//!   compile of one principal;
//! - the floor: a bare `HashMap` from user to a permission bitmask, and a bit test;
//! - with `--features peers`: the same RBAC policy on cedar-policy and on casbin.
//!
//! The policy: 20 custom tenant roles, 1,000 users with two roles each, over all 35 zt
//! permissions (zt has 35 permission flags, so the peers get the same 35 actions); the peers get
//! each role's permissions with zt's cascades already expanded, since they have no cascades.
//! For the compile, each user is also in 10 of 50 channels and 2 of 10 groups.
//!
//! - a change as the service judges it before its commit (copy the model, apply a grant, check the
//!   invariants and the escalation paths), on tenants of 1,000 and of 20,000 users: what it must
//!   not do is grow with the tenant.
//!
//! `cargo bench -p zt-benches --features peers --bench authz`, then
//! `python3 scripts/bench-ratios.py`.
#![allow(
    clippy::expect_used,
    clippy::unwrap_used,
    reason = "a benchmark stops on a failed set-up step; there is no caller to return an error to"
)]

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use zt_authz::{
    Action, Authorizer, Cascades, Channel, ChannelVisibility, Group, GroupVisibility,
    MentionPolicy, Model, Permission, PermissionSet, Resource, Role, RoleScope, Source, Sources,
    SystemRole, Tier,
};
use zt_core::{ChannelId, GroupId, Principal, RoleId, TenantId, UserId};

const ROLES: usize = 20;
const USERS: usize = 1_000;
const CHANNELS: usize = 50;
const GROUPS: usize = 10;
/// The questions cycled through, the same for every engine.
const QUESTIONS: usize = 64;
const TENANT: TenantId = TenantId::from_bytes([9; 16]);

/// A small deterministic generator, so every engine gets the same policy.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next()).unwrap() % n
    }
}

fn user(i: usize) -> UserId {
    let mut b = [0u8; 16];
    b[..8].copy_from_slice(&(i as u64 + 1).to_be_bytes());
    b[8] = 0x55;
    UserId::from_bytes(b)
}

fn role(i: usize) -> RoleId {
    let mut b = [0u8; 16];
    b[0] = 0x80;
    b[15] = u8::try_from(i).unwrap();
    RoleId::from_bytes(b)
}

fn channel(i: usize) -> ChannelId {
    let mut b = [0u8; 16];
    b[0] = 0xc0;
    b[15] = u8::try_from(i).unwrap();
    ChannelId::from_bytes(b)
}

fn group(i: usize) -> GroupId {
    let mut b = [0u8; 16];
    b[0] = 0xd0;
    b[15] = u8::try_from(i).unwrap();
    GroupId::from_bytes(b)
}

/// The policy, as plain data every engine is built from.
struct Policy {
    /// Each role's granted permissions.
    roles: Vec<PermissionSet>,
    /// Each user's two roles.
    users: Vec<[usize; 2]>,
    /// (user, permission) questions, about half of them allowed.
    questions: Vec<(usize, Permission)>,
}

fn policy() -> Policy {
    let mut rng = Lcg(42);
    let roles = (0..ROLES)
        .map(|_| {
            (0..8)
                .map(|_| Permission::ALL[rng.below(Permission::ALL.len())])
                .collect::<PermissionSet>()
        })
        .collect::<Vec<_>>();
    let users = (0..USERS)
        .map(|_| [rng.below(ROLES), rng.below(ROLES)])
        .collect::<Vec<_>>();
    // Questions on the tenant: its powers (tenant and member tiers).
    let tenant_level: Vec<Permission> = Permission::ALL
        .iter()
        .copied()
        .filter(|p| matches!(p.tier(), Tier::Tenant | Tier::Member))
        .collect();
    let questions = (0..QUESTIONS)
        .map(|_| {
            (
                rng.below(USERS),
                tenant_level[rng.below(tenant_level.len())],
            )
        })
        .collect();
    Policy {
        roles,
        users,
        questions,
    }
}

fn model(policy: &Policy) -> Model {
    let mut rng = Lcg(7);
    let mut model = Model::new(TENANT);
    for (i, permissions) in policy.roles.iter().enumerate() {
        model
            .put_role(Role {
                id: role(i),
                name: format!("role-{i}"),
                scope: RoleScope::Tenant,
                permissions: *permissions,
                system: None,
            })
            .unwrap();
    }
    for g in 0..GROUPS {
        model
            .put_group(Group {
                id: group(g),
                visibility: GroupVisibility::Private,
                parent: None,
                mention: MentionPolicy::Anyone,
            })
            .unwrap();
    }
    for c in 0..CHANNELS {
        let linked = if c % 5 == 0 {
            [group(c % GROUPS)].into()
        } else {
            Default::default()
        };
        model
            .put_channel(Channel {
                id: channel(c),
                visibility: if c % 2 == 0 {
                    ChannelVisibility::Public
                } else {
                    ChannelVisibility::Private
                },
                groups: linked,
            })
            .unwrap();
    }
    for (u, [a, b]) in policy.users.iter().enumerate() {
        let mut roles = vec![role(*a), role(*b)];
        roles.push(SystemRole::Member.id());
        model
            .set_tenant_roles(user(u), roles.into_iter().collect())
            .unwrap();
        for _ in 0..10 {
            model
                .set_channel_sources(
                    channel(rng.below(CHANNELS)),
                    user(u),
                    Sources::NONE.with(Source::Manual),
                )
                .unwrap();
        }
        for _ in 0..2 {
            model
                .set_group_sources(
                    group(rng.below(GROUPS)),
                    user(u),
                    Sources::NONE.with(Source::Scim),
                )
                .unwrap();
        }
    }
    model
}

/// Each role's permissions with the cascades expanded (what the peers are given).
fn expanded(policy: &Policy) -> Vec<PermissionSet> {
    let member = Cascades::standard().close(SystemRole::Member.permissions());
    policy
        .roles
        .iter()
        .map(|r| Cascades::standard().close(*r))
        .chain(std::iter::once(member))
        .collect()
}

fn bench(c: &mut Criterion) {
    let policy = policy();
    let model = model(&policy);
    let authz = Authorizer::new(model, Cascades::standard());
    let principal = |u: usize| Principal {
        tenant: TENANT,
        user: user(u),
    };
    let questions: Vec<(Principal, Permission)> = policy
        .questions
        .iter()
        .map(|(u, p)| (principal(*u), *p))
        .collect();
    // Each question's user is also asked about one of its channels.
    let channel_questions: Vec<(Principal, ChannelId)> = policy
        .questions
        .iter()
        .map(|(u, _)| {
            let channel = authz
                .with_model(|m| m.channels_of(user(*u)).next())
                .expect("every user is in channels");
            (principal(*u), channel)
        })
        .collect();
    let answers: Vec<bool> = questions
        .iter()
        .map(|(p, perm)| {
            authz
                .authorize(*p, Action::Do(*perm), Resource::Tenant)
                .allowed
        })
        .collect();
    let allowed = answers.iter().filter(|a| **a).count();
    eprintln!("authz policy: {allowed} of {QUESTIONS} questions allowed");

    let mut group = c.benchmark_group("authz");
    let mut i = 0usize;
    group.bench_function("zt_cached_decision", |b| {
        b.iter(|| {
            let (p, perm) = questions[i % QUESTIONS];
            i += 1;
            black_box(
                authz
                    .authorize(p, Action::Do(perm), Resource::Tenant)
                    .allowed,
            )
        });
    });
    group.bench_function("zt_cached_channel_decision", |b| {
        b.iter(|| {
            let (p, channel) = channel_questions[i % QUESTIONS];
            i += 1;
            black_box(
                authz
                    .authorize(
                        p,
                        Action::Do(Permission::PostMessage),
                        Resource::Channel(channel),
                    )
                    .allowed,
            )
        });
    });
    group.bench_function("zt_cold_compile", |b| {
        b.iter(|| {
            let (p, _) = questions[i % QUESTIONS];
            i += 1;
            black_box(authz.compile_uncached(p.user))
        });
    });

    // The floor: user -> permission bits, one lookup and a bit test.
    let roles = expanded(&policy);
    let member = roles[ROLES];
    let floor: HashMap<UserId, u64> = policy
        .users
        .iter()
        .enumerate()
        .map(|(u, [a, b])| (user(u), roles[*a].union(roles[*b]).union(member).bits()))
        .collect();
    let floor_questions: Vec<(UserId, u64)> = questions
        .iter()
        .map(|(p, perm)| (p.user, 1u64 << (*perm as u8)))
        .collect();
    group.bench_function("floor_hashmap_bitmask", |b| {
        b.iter(|| {
            let (u, bit) = floor_questions[i % QUESTIONS];
            i += 1;
            black_box(floor.get(&u).is_some_and(|bits| bits & bit != 0))
        });
    });

    #[cfg(feature = "peers")]
    peers::bench(&mut group, &policy, &roles, &answers);
    group.finish();
}

#[cfg(feature = "peers")]
mod peers {
    use std::collections::HashSet;
    use std::hint::black_box;
    use std::str::FromStr as _;

    use criterion::{BenchmarkGroup, measurement::WallTime};
    use zt_authz::PermissionSet;

    use super::{Policy, QUESTIONS, ROLES};

    fn role_name(i: usize) -> String {
        if i == ROLES {
            "member".into()
        } else {
            format!("r{i}")
        }
    }

    pub(super) fn bench(
        group: &mut BenchmarkGroup<'_, WallTime>,
        policy: &Policy,
        roles: &[PermissionSet],
        answers: &[bool],
    ) {
        // Cedar, as a cedar user writes RBAC: one permit per role over an action group holding
        // that role's permissions; users are members of their roles. Also, labelled as such, the
        // first form this bench used: one permit per (role, permission) pair.
        let uid = |t: &str, id: &str| {
            cedar_policy::EntityUid::from_str(&format!("{t}::\"{id}\"")).unwrap()
        };
        let group_of = |i: usize| format!("role-{}", role_name(i));
        let mut grouped = String::new();
        let mut per_permission = String::new();
        for (i, permissions) in roles.iter().enumerate() {
            if permissions.iter().next().is_some() {
                grouped.push_str(&format!(
                    "permit(principal in Role::\"{}\", action in Action::\"{}\", resource);\n",
                    role_name(i),
                    group_of(i)
                ));
            }
            for p in permissions.iter() {
                per_permission.push_str(&format!(
                    "permit(principal in Role::\"{}\", action == Action::\"{}\", resource);\n",
                    role_name(i),
                    p.name()
                ));
            }
        }
        let mut entities: Vec<cedar_policy::Entity> = (0..=ROLES)
            .flat_map(|i| {
                [
                    cedar_policy::Entity::new_no_attrs(uid("Role", &role_name(i)), HashSet::new()),
                    cedar_policy::Entity::new_no_attrs(uid("Action", &group_of(i)), HashSet::new()),
                ]
            })
            .collect();
        // Each action is in the group of every role that grants it.
        for permission in zt_authz::Permission::ALL {
            let parents = (0..=ROLES)
                .filter(|&i| roles[i].contains(*permission))
                .map(|i| uid("Action", &group_of(i)))
                .collect();
            entities.push(cedar_policy::Entity::new_no_attrs(
                uid("Action", permission.name()),
                parents,
            ));
        }
        for (u, [a, b]) in policy.users.iter().enumerate() {
            let parents = [
                uid("Role", &role_name(*a)),
                uid("Role", &role_name(*b)),
                uid("Role", "member"),
            ]
            .into_iter()
            .collect();
            entities.push(cedar_policy::Entity::new_no_attrs(
                uid("User", &format!("u{u}")),
                parents,
            ));
        }
        let entities = cedar_policy::Entities::from_entities(entities, None).unwrap();
        let requests: Vec<cedar_policy::Request> = policy
            .questions
            .iter()
            .map(|(u, p)| {
                cedar_policy::Request::new(
                    uid("User", &format!("u{u}")),
                    uid("Action", p.name()),
                    uid("Tenant", "t"),
                    cedar_policy::Context::empty(),
                    None,
                )
                .unwrap()
            })
            .collect();
        let authorizer = cedar_policy::Authorizer::new();
        for (name, text) in [
            ("cedar_decision", grouped),
            ("cedar_decision_permit_per_permission", per_permission),
        ] {
            let policies = cedar_policy::PolicySet::from_str(&text).unwrap();
            // The same policy: the same answers.
            for (request, answer) in requests.iter().zip(answers) {
                let allowed = authorizer
                    .is_authorized(request, &policies, &entities)
                    .decision()
                    == cedar_policy::Decision::Allow;
                assert_eq!(allowed, *answer, "{name} disagrees with zt on {request}");
            }
            let mut i = 0usize;
            group.bench_function(name, |b| {
                b.iter(|| {
                    let request = &requests[i % QUESTIONS];
                    i += 1;
                    black_box(
                        authorizer
                            .is_authorized(request, &policies, &entities)
                            .decision()
                            == cedar_policy::Decision::Allow,
                    )
                });
            });
        }

        // Casbin: the classic RBAC model.
        use casbin::{CoreApi as _, MgmtApi as _};
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let enforcer = runtime.block_on(async {
            let model = casbin::DefaultModel::from_str(
                "[request_definition]\nr = sub, obj, act\n\
                 [policy_definition]\np = sub, obj, act\n\
                 [role_definition]\ng = _, _\n\
                 [policy_effect]\ne = some(where (p.eft == allow))\n\
                 [matchers]\nm = g(r.sub, p.sub) && r.obj == p.obj && r.act == p.act\n",
            )
            .await
            .unwrap();
            let mut enforcer = casbin::Enforcer::new(model, casbin::MemoryAdapter::default())
                .await
                .unwrap();
            let mut rules = Vec::new();
            for (i, permissions) in roles.iter().enumerate() {
                for p in permissions.iter() {
                    rules.push(vec![role_name(i), "tenant".into(), p.name().into()]);
                }
            }
            enforcer.add_policies(rules).await.unwrap();
            let mut links = Vec::new();
            for (u, [a, b]) in policy.users.iter().enumerate() {
                for r in [role_name(*a), role_name(*b), "member".into()] {
                    links.push(vec![format!("u{u}"), r]);
                }
            }
            enforcer.add_grouping_policies(links).await.unwrap();
            enforcer
        });
        let casbin_questions: Vec<(String, &str)> = policy
            .questions
            .iter()
            .map(|(u, p)| (format!("u{u}"), p.name()))
            .collect();
        for ((u, p), answer) in casbin_questions.iter().zip(answers) {
            let allowed = enforcer.enforce((u.as_str(), "tenant", *p)).unwrap();
            assert_eq!(allowed, *answer, "casbin disagrees with zt on {u} {p}");
        }
        let mut i = 0usize;
        group.bench_function("casbin_decision", |b| {
            b.iter(|| {
                let (u, p) = &casbin_questions[i % QUESTIONS];
                i += 1;
                black_box(enforcer.enforce((u.as_str(), "tenant", *p)).unwrap())
            });
        });
    }
}

/// A tenant of `users` members and one owner, as a grant finds it.
fn members(users: usize) -> Model {
    let mut model = Model::new(TENANT);
    model
        .set_tenant_roles(user(0), [SystemRole::Owner.id()].into())
        .unwrap();
    for u in 1..=users {
        model
            .set_tenant_roles(user(u), [SystemRole::Member.id()].into())
            .unwrap();
    }
    model
}

fn change(c: &mut Criterion) {
    let mut group = c.benchmark_group("authz_change");
    let by = zt_authz::Changer::System("scim".into());
    for users in [1_000usize, 20_000] {
        let model = members(users);
        let newcomer = user(users + 1);
        let grant = zt_authz::Change::Grant {
            user: newcomer,
            role: SystemRole::Member.id(),
            at: zt_authz::Scope::Tenant,
        };
        group.bench_function(format!("grant_judged_at_{users}_users"), |b| {
            b.iter(|| {
                let before = model.clone();
                let mut after = before.clone();
                zt_authz::guard::apply(&mut after, &grant).unwrap();
                zt_authz::guard::check_invariants(&before, &after).unwrap();
                let paths = zt_authz::analysis::escalation_paths(
                    &before,
                    &after,
                    &by,
                    &[newcomer],
                    Cascades::standard(),
                    zt_authz::guard::check,
                );
                black_box((after, paths))
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench, change);
criterion_main!(benches);
