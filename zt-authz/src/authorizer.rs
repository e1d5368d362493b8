//! The fast evaluator: the model of one tenant, with each principal's permissions compiled once
//! (roles closed under the cascades, memberships resolved through linked groups and subgroups)
//! and cached until the model changes. A cached decision is two hash lookups and a bit test.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};

use zt_core::{ChannelId, GroupId, Principal, RoleId, TenantId, UserId};

use crate::cascade::Cascades;
use crate::decision::{Action, Decision, Reason, Reasons, Resource, Scope};
use crate::error::{Error, Result};
use crate::model::{ChannelVisibility, GroupVisibility, MentionPolicy, Model, Sources};
use crate::permission::{COUNT, Permission, PermissionSet, Tier};
use crate::role::SystemRole;

/// Hashes the 16-byte ids of zt for the evaluator's maps: their last eight bytes are random
/// (UUIDv7), so mixing them with a per-process key is enough, and about twice as fast as SipHash
/// on the decision path. The keys are ids the server generated, never chosen by a client, so the
/// maps are not open to collision flooding.
#[derive(Clone, Copy)]
struct IdHash {
    key: u64,
}

impl Default for IdHash {
    fn default() -> Self {
        // A random key per process, from the standard library's randomly seeded hasher.
        IdHash {
            key: std::collections::hash_map::RandomState::new().hash_one(0x7a74_u64) | 1,
        }
    }
}

impl BuildHasher for IdHash {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher(self.key)
    }
}

/// The hasher of [`IdHash`].
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn write(&mut self, bytes: &[u8]) {
        // Ids hash as their 16 bytes; anything else folds in eight bytes at a time.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = (self.0 ^ u64::from_le_bytes(word)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn finish(&self) -> u64 {
        self.0 ^ (self.0 >> 29)
    }
}

type IdMap<K, V> = HashMap<K, V, IdHash>;

/// A role, closed under the cascades, with the explanation of each permission it implies.
struct RoleInfo {
    id: RoleId,
    closed: PermissionSet,
    explain: [Option<(Permission, &'static [&'static str])>; COUNT],
}

impl RoleInfo {
    fn new(id: RoleId, granted: PermissionSet, cascades: &'static Cascades) -> Self {
        let mut explain = [None; COUNT];
        for (i, slot) in explain.iter_mut().enumerate() {
            if let Some(p) = Permission::from_index(i) {
                *slot = cascades.explain(granted, p);
            }
        }
        RoleInfo {
            id,
            closed: cascades.close(granted),
            explain,
        }
    }

    /// Pushes the reasons this role, assigned at `at`, grants `p`; false if it does not.
    #[inline]
    fn grant(&self, at: Scope, p: Permission, reasons: &mut Reasons) -> bool {
        if !self.closed.contains(p) {
            return false;
        }
        reasons.push(Reason::Role { role: self.id, at });
        if let Some(Some((from, rules))) = self.explain.get(p as usize)
            && !rules.is_empty()
        {
            reasons.push(Reason::Cascade { from: *from, rules });
        }
        true
    }
}

/// One principal's access to one channel it is a member of or holds roles in.
struct ChannelAccess {
    member: Option<Reason>,
    /// Channel roles, then the roles over each linked group, in canonical order.
    roles: Vec<(Arc<RoleInfo>, Scope)>,
}

/// One principal's access to one group it is a member of or holds roles over.
struct GroupAccess {
    visibility: GroupVisibility,
    mention: MentionPolicy,
    member: Option<Reason>,
    roles: Vec<Arc<RoleInfo>>,
}

/// Everything one principal may do, compiled.
struct Compiled {
    version: u64,
    tenant_roles: Vec<Arc<RoleInfo>>,
    tenant: PermissionSet,
    owner: bool,
    channels: IdMap<ChannelId, ChannelAccess>,
    groups: IdMap<GroupId, GroupAccess>,
}

struct State {
    model: Model,
    roles: HashMap<RoleId, Arc<RoleInfo>>,
}

impl State {
    fn new(model: Model, cascades: &'static Cascades) -> Self {
        let roles = model
            .roles()
            .map(|r| (r.id, Arc::new(RoleInfo::new(r.id, r.permissions, cascades))))
            .collect();
        State { model, roles }
    }
}

/// The most principals kept compiled; past it the cache starts over.
pub const CACHE_CAPACITY: usize = 100_000;

/// The fast evaluator of one tenant.
///
/// ```
/// use zt_authz::{Action, Authorizer, Cascades, Model, Permission, Resource, SystemRole};
/// use zt_core::{Principal, TenantId, UserId};
///
/// let tenant = TenantId::from_bytes([1; 16]);
/// let alice = Principal { tenant, user: UserId::from_bytes([2; 16]) };
/// let mut model = Model::new(tenant);
/// model.set_tenant_roles(alice.user, [SystemRole::Auditor.id()].into())?;
/// let authz = Authorizer::new(model, Cascades::standard());
///
/// let read = authz.authorize(alice, Action::Do(Permission::ViewAuditLogs), Resource::Tenant);
/// assert!(read.allowed);
/// let users = authz.authorize(alice, Action::Do(Permission::ManageUsers), Resource::Tenant);
/// assert!(!users.allowed);
/// assert_eq!(users.codes(), ["missing:manage_users"]);
/// # Ok::<_, zt_authz::Error>(())
/// ```
pub struct Authorizer {
    tenant: TenantId,
    cascades: &'static Cascades,
    state: RwLock<State>,
    version: AtomicU64,
    cache: RwLock<IdMap<UserId, Arc<Compiled>>>,
}

impl fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Authorizer")
            .field("version", &self.version.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

fn deny(reasons: impl Into<Reasons>) -> Decision {
    Decision::deny(reasons.into())
}

impl Authorizer {
    /// An evaluator over `model`.
    pub fn new(model: Model, cascades: &'static Cascades) -> Self {
        Authorizer {
            tenant: model.tenant(),
            cascades,
            state: RwLock::new(State::new(model, cascades)),
            version: AtomicU64::new(0),
            cache: RwLock::new(IdMap::default()),
        }
    }

    /// The cascades it closes roles with.
    pub fn cascades(&self) -> &'static Cascades {
        self.cascades
    }

    /// A copy of the model, to change and then [`install`](Self::install).
    pub fn snapshot(&self) -> Model {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .model
            .clone()
    }

    /// Reads the model in place.
    pub fn with_model<T>(&self, f: impl FnOnce(&Model) -> T) -> T {
        f(&self
            .state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .model)
    }

    /// Replaces the model. Every decision that starts after this returns sees it.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a model of another tenant.
    pub fn install(&self, model: Model) -> Result<()> {
        if model.tenant() != self.tenant {
            return Err(Error::InvalidInput(
                "the model belongs to another tenant".into(),
            ));
        }
        let state = State::new(model, self.cascades);
        let mut current = self.state.write().unwrap_or_else(PoisonError::into_inner);
        *current = state;
        self.version.fetch_add(1, Ordering::AcqRel);
        drop(current);
        self.cache
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        Ok(())
    }

    /// How many times the model was replaced.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// The decision for `principal` doing `action` on `resource`.
    pub fn authorize(&self, principal: Principal, action: Action, resource: Resource) -> Decision {
        if principal.tenant != self.tenant {
            return deny([Reason::NotFound]);
        }
        {
            let cache = self.cache.read().unwrap_or_else(PoisonError::into_inner);
            if let Some(compiled) = cache.get(&principal.user)
                && compiled.version == self.version.load(Ordering::Acquire)
            {
                return self.decide(compiled, action, resource);
            }
        }
        let compiled = Arc::new(self.compile(principal.user));
        let decision = self.decide(&compiled, action, resource);
        let mut cache = self.cache.write().unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= CACHE_CAPACITY {
            cache.clear();
        }
        // Only the newest compilation is kept (another thread may have compiled meanwhile).
        if compiled.version == self.version.load(Ordering::Acquire) {
            cache.insert(principal.user, compiled);
        }
        decision
    }

    /// Compiles one principal from the model (what a cache miss costs).
    fn compile(&self, user: UserId) -> Compiled {
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        // Read under the model's lock: the version belongs to this model.
        let version = self.version.load(Ordering::Acquire);
        compile(&state, user, version)
    }

    /// The channels `principal` can see, by id: what a channel listing or search may show.
    pub fn visible_channels(&self, principal: Principal) -> Vec<ChannelId> {
        let ids: Vec<ChannelId> = self.with_model(|m| m.channels().map(|c| c.id).collect());
        ids.into_iter()
            .filter(|c| {
                self.authorize(principal, Action::View, Resource::Channel(*c))
                    .allowed
            })
            .collect()
    }

    /// The groups `principal` can see, by id: hidden groups only with `view_hidden_groups`.
    pub fn visible_groups(&self, principal: Principal) -> Vec<GroupId> {
        self.groups_where(principal, Action::View)
    }

    /// The groups `principal` may mention: what a mention lookup may offer.
    pub fn mentionable_groups(&self, principal: Principal) -> Vec<GroupId> {
        self.groups_where(principal, Action::Mention)
    }

    fn groups_where(&self, principal: Principal, action: Action) -> Vec<GroupId> {
        let ids: Vec<GroupId> = self.with_model(|m| m.groups().map(|g| g.id).collect());
        ids.into_iter()
            .filter(|g| {
                self.authorize(principal, action, Resource::Group(*g))
                    .allowed
            })
            .collect()
    }

    /// Compiles `user` without caching, for benchmarks of a cold start.
    #[doc(hidden)]
    pub fn compile_uncached(&self, user: UserId) -> usize {
        let compiled = self.compile(user);
        compiled.channels.len() + compiled.groups.len()
    }

    fn decide(&self, c: &Compiled, action: Action, resource: Resource) -> Decision {
        if c.tenant_roles.is_empty() {
            return deny([Reason::NoTenantRole]);
        }
        match (action, resource) {
            (Action::Do(p), Resource::Tenant)
                if matches!(p.tier(), Tier::Tenant | Tier::Member) =>
            {
                let mut reasons = Reasons::new();
                if c.tenant_roles
                    .iter()
                    .any(|r| r.grant(Scope::Tenant, p, &mut reasons))
                {
                    Decision::allow(reasons)
                } else {
                    deny([Reason::Missing(p)])
                }
            }
            (Action::View, Resource::Tenant) => Decision::allow(
                c.tenant_roles
                    .first()
                    .map(|r| Reason::Role {
                        role: r.id,
                        at: Scope::Tenant,
                    })
                    .map_or_else(Reasons::new, |r| [r].into()),
            ),
            (Action::Do(Permission::ManageUsers), Resource::User(target)) => {
                self.decide_user(c, target)
            }
            (Action::Do(p), Resource::Channel(id)) if p.tier() == Tier::Channel => {
                self.decide_channel(c, id, Some(p))
            }
            (Action::View, Resource::Channel(id)) => self.decide_channel(c, id, None),
            (Action::Do(p), Resource::Group(id)) if p.tier() == Tier::Group => {
                self.decide_group(c, id, action)
            }
            (Action::View | Action::Mention, Resource::Group(id)) => {
                self.decide_group(c, id, action)
            }
            _ => deny([Reason::NotApplicable]),
        }
    }

    fn decide_user(&self, c: &Compiled, target: UserId) -> Decision {
        let mut reasons = Reasons::new();
        if !c
            .tenant_roles
            .iter()
            .any(|r| r.grant(Scope::Tenant, Permission::ManageUsers, &mut reasons))
        {
            return deny([Reason::Missing(Permission::ManageUsers)]);
        }
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        let owner = SystemRole::Owner.id();
        let mut theirs = PermissionSet::EMPTY;
        let mut target_owner = false;
        for role in state.model.tenant_roles(target) {
            target_owner |= role == owner;
            if let Some(info) = state.roles.get(&role) {
                theirs = theirs.union(info.closed);
            }
        }
        if target_owner && !c.owner {
            return deny([Reason::OwnerOnly]);
        }
        if let Some(p) = theirs.difference(c.tenant).iter().next() {
            return deny([Reason::MorePrivileged(p)]);
        }
        Decision::allow(reasons)
    }

    fn decide_channel(&self, c: &Compiled, id: ChannelId, p: Option<Permission>) -> Decision {
        let access = c.channels.get(&id);
        let member = access.and_then(|a| a.member);
        let visibility = match member {
            Some(m) => m,
            None => {
                let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
                match state.model.channel(id) {
                    None => return deny([Reason::NotFound]),
                    Some(ch)
                        if ch.visibility == ChannelVisibility::Public
                            && c.tenant.contains(Permission::BrowsePublicChannels) =>
                    {
                        Reason::Public
                    }
                    Some(_) => return deny([Reason::NotVisible]),
                }
            }
        };
        let mut reasons = Reasons::new();
        reasons.push(visibility);
        let Some(p) = p else {
            return Decision::allow(reasons);
        };
        let from_tenant = (member.is_some() || p == Permission::ReadChannel)
            && c.tenant_roles
                .iter()
                .any(|r| r.grant(Scope::Tenant, p, &mut reasons));
        let granted = from_tenant
            || access.is_some_and(|a| a.roles.iter().any(|(r, at)| r.grant(*at, p, &mut reasons)));
        if granted {
            Decision::allow(reasons)
        } else {
            deny([visibility, Reason::Missing(p)])
        }
    }

    fn decide_group(&self, c: &Compiled, id: GroupId, action: Action) -> Decision {
        let access = c.groups.get(&id);
        let (visibility_kind, mention) = match access {
            Some(a) => (a.visibility, a.mention),
            None => {
                let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
                match state.model.group(id) {
                    None => return deny([Reason::NotFound]),
                    Some(g) => (g.visibility, g.mention),
                }
            }
        };
        let member = access.and_then(|a| a.member);
        let group_roles: &[Arc<RoleInfo>] = access.map_or(&[], |a| a.roles.as_slice());
        let candidates = || {
            c.tenant_roles
                .iter()
                .map(|r| (r, Scope::Tenant))
                .chain(group_roles.iter().map(|r| (r, Scope::Group(id))))
        };
        let grant = |p: Permission, reasons: &mut Reasons| {
            candidates().any(|(r, at)| r.grant(at, p, reasons))
        };
        let visibility = match visibility_kind {
            GroupVisibility::Public => Some(Reason::Public),
            GroupVisibility::Private => member.or_else(|| {
                let powers = PermissionSet::tier(Tier::Group);
                candidates()
                    .find(|(r, _)| !r.closed.intersection(powers).is_empty())
                    .map(|(r, at)| Reason::Role { role: r.id, at })
            }),
            GroupVisibility::Hidden => candidates()
                .find(|(r, _)| r.closed.contains(Permission::ViewHiddenGroups))
                .map(|(r, at)| Reason::Role { role: r.id, at }),
        };
        let Some(visibility) = visibility else {
            return deny([Reason::NotVisible]);
        };
        let mut reasons = Reasons::new();
        reasons.push(visibility);
        match action {
            Action::View => Decision::allow(reasons),
            Action::Mention => match mention {
                MentionPolicy::Anyone => Decision::allow(reasons),
                MentionPolicy::Members => match member {
                    Some(m) => Decision::allow([m].into()),
                    None => deny([Reason::MentionRestricted]),
                },
                MentionPolicy::Managers => {
                    if grant(Permission::ManageMentionRestrictions, &mut reasons) {
                        Decision::allow(reasons)
                    } else {
                        deny([Reason::MentionRestricted])
                    }
                }
            },
            Action::Do(p) => {
                if grant(p, &mut reasons) {
                    Decision::allow(reasons)
                } else {
                    deny([visibility, Reason::Missing(p)])
                }
            }
        }
    }
}

/// Compiles `user` against `state`.
fn compile(state: &State, user: UserId, version: u64) -> Compiled {
    let model = &state.model;
    let info = |id: RoleId| state.roles.get(&id).cloned();
    let tenant_roles: Vec<Arc<RoleInfo>> = model.tenant_roles(user).filter_map(info).collect();
    let tenant = tenant_roles
        .iter()
        .fold(PermissionSet::EMPTY, |acc, r| acc.union(r.closed));
    let owner = model
        .tenant_roles(user)
        .any(|r| r == SystemRole::Owner.id());

    // Groups: the direct ones, and every ancestor, with the first direct subgroup (by id)
    // through which the user is in it.
    let mut via: BTreeMap<GroupId, GroupId> = BTreeMap::new();
    let mut effective: BTreeSet<GroupId> = BTreeSet::new();
    for direct in model.groups_of(user) {
        effective.insert(direct);
        let mut at = model.group(direct).and_then(|g| g.parent);
        let mut guard = 0usize;
        while let Some(ancestor) = at {
            effective.insert(ancestor);
            via.entry(ancestor)
                .and_modify(|v| *v = (*v).min(direct))
                .or_insert(direct);
            at = model.group(ancestor).and_then(|g| g.parent);
            guard += 1;
            if guard > 10_000 {
                break;
            }
        }
    }
    let mut groups: IdMap<GroupId, GroupAccess> = IdMap::default();
    let entry = |g: &crate::model::Group| GroupAccess {
        visibility: g.visibility,
        mention: g.mention,
        member: None,
        roles: Vec::new(),
    };
    for id in &effective {
        let Some(group) = model.group(*id) else {
            continue;
        };
        let sources = model.group_sources(*id, user);
        let mut access = entry(group);
        access.member = Some(Reason::Member {
            sources,
            via: via.get(id).copied(),
        });
        groups.insert(*id, access);
    }
    for id in model.group_roles_of(user) {
        let Some(group) = model.group(id) else {
            continue;
        };
        let roles = model.group_roles(id, user).filter_map(info).collect();
        groups.entry(id).or_insert_with(|| entry(group)).roles = roles;
    }

    // Channels: stored memberships, linked groups of effective groups, channel roles, and the
    // linked channels of groups with roles.
    let mut channel_ids: BTreeSet<ChannelId> = model.channels_of(user).collect();
    for g in effective
        .iter()
        .chain(model.group_roles_of(user).collect::<Vec<_>>().iter())
    {
        channel_ids.extend(model.linked_channels(*g));
    }
    channel_ids.extend(model.channel_roles_of(user));
    let mut channels = IdMap::with_capacity_and_hasher(channel_ids.len(), IdHash::default());
    for id in channel_ids {
        let Some(channel) = model.channel(id) else {
            continue;
        };
        let sources: Sources = model.channel_sources(id, user);
        let via = channel
            .groups
            .iter()
            .copied()
            .find(|g| effective.contains(g));
        let member =
            (!sources.is_empty() || via.is_some()).then_some(Reason::Member { sources, via });
        let mut roles: Vec<(Arc<RoleInfo>, Scope)> = model
            .channel_roles(id, user)
            .filter_map(info)
            .map(|r| (r, Scope::Channel(id)))
            .collect();
        for g in &channel.groups {
            roles.extend(
                model
                    .group_roles(*g, user)
                    .filter_map(info)
                    .map(|r| (r, Scope::Group(*g))),
            );
        }
        channels.insert(id, ChannelAccess { member, roles });
    }
    Compiled {
        version,
        tenant_roles,
        tenant,
        owner,
        channels,
        groups,
    }
}
