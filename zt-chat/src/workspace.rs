//! Workspaces (tenants): bootstrap, opening, and the authenticated [`Caller`] every other call
//! takes.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use zt_authz::{Authz, Change, Changer, Scope, SystemRole};
use zt_core::identity::{
    Authenticator, Identity, LockoutPolicy, NewUser, PasswordConfig, PasswordHasher, Session,
    SessionKind, SessionToken, Sessions, Sso, SsoClient, SsoClientConfig, TenantContext, Users,
};
use zt_core::{
    Actor, AuditLogs, AuditSink, Clock, EventBus, Principal, TenantId, Timestamp, UserId,
};
use zt_crypto::{KeyId, Keyring, KeyringConfig, Kms};
use zt_storage::{
    Batch, EncryptingStore, KvKeyRecords, KvStore, KvStoreExt as _, Namespace, codec,
};

use crate::error::{Error, Result};
use crate::hub::{Event, Hub, Subscription};
use crate::store::{self, Namespaces, WORKSPACES};

/// What a deployment gives zt-chat: the store below encryption, the keyring over it (from a
/// KMS and its key), the deployment-wide store, the audit ports, the bus and the clock. It is
/// assembled in one place, so every tenant store and the system store reserve the keyring's
/// records ([`zt_storage::KEY_RECORDS`]) and use the same keyring.
///
/// ```
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
/// use std::sync::Arc;
/// use zt_crypto::Kms as _;
///
/// let kms = Arc::new(zt_crypto::InsecureFixedKms::new()); // an HSM or LocalKms in production
/// let key = zt_crypto::KeyId::new("tenants")?;
/// kms.create_key(&key).await?;
/// let audit = Arc::new(zt_core::testing::RecordingSink::default()); // zt_audit's AuditTrail
/// let deps = zt_chat::Deps::new(
///     Arc::new(zt_storage::MemoryStore::new()),
///     kms,
///     key,
///     audit.clone(),
///     audit,
///     Arc::new(zt_core::InProcessBus::default()),
///     Arc::new(zt_core::SystemClock),
/// )?;
/// let chat = zt_chat::Chat::new(deps, zt_chat::ChatConfig::default())?;
/// # let _ = chat;
/// # Ok::<_, Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone)]
pub struct Deps {
    inner: Arc<dyn KvStore>,
    keyring: Arc<Keyring>,
    system: Arc<dyn KvStore>,
    audit: Arc<dyn AuditSink>,
    audit_logs: Arc<dyn AuditLogs>,
    bus: Arc<dyn EventBus>,
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for Deps {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Deps").finish_non_exhaustive()
    }
}

impl Deps {
    /// The parts over `inner` (sled, PostgreSQL; memory in tests) with a keyring whose tenant
    /// keys `kms_key` of `kms` wraps, its records in `inner` under [`zt_storage::KEY_RECORDS`]
    /// (default keyring settings, but each workspace under a KMS key of its own,
    /// `<kms_key>/<tenant>`, which a wipe destroys). `audit` records and `audit_logs` reads, verifies, holds and
    /// prunes what it recorded (a deployment's `zt_audit::AuditTrail` is both).
    ///
    /// # Errors
    /// None in practice: every namespace zt names is valid.
    pub fn new(
        inner: Arc<dyn KvStore>,
        kms: Arc<dyn Kms>,
        kms_key: KeyId,
        audit: Arc<dyn AuditSink>,
        audit_logs: Arc<dyn AuditLogs>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self> {
        let records = Arc::new(KvKeyRecords::standard(Arc::clone(&inner))?);
        let keyring = Arc::new(Keyring::new(
            kms,
            records,
            kms_key,
            KeyringConfig::default().kms_key_per_tenant(true),
        ));
        Ok(Self::with_keyring(
            inner, keyring, audit, audit_logs, bus, clock,
        ))
    }

    /// As [`Deps::new`], with a keyring the deployment configured itself (cache, outage policy,
    /// events). Its records must be in `inner` under [`zt_storage::KEY_RECORDS`]
    /// ([`KvKeyRecords::standard`]), which every encrypting store over `inner` reserves.
    pub fn with_keyring(
        inner: Arc<dyn KvStore>,
        keyring: Arc<Keyring>,
        audit: Arc<dyn AuditSink>,
        audit_logs: Arc<dyn AuditLogs>,
        bus: Arc<dyn EventBus>,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let system: Arc<dyn KvStore> = Arc::new(EncryptingStore::new(
            Arc::clone(&inner),
            Arc::clone(&keyring),
            SYSTEM_TENANT,
        ));
        Deps {
            inner,
            keyring,
            system,
            // Every event gets the client address of the request that caused it.
            audit: Arc::new(crate::source::SourcedSink(audit)),
            audit_logs,
            bus,
            clock,
        }
    }

    /// The deployment-wide store: the [`SYSTEM_TENANT`]'s encrypting store over `inner`.
    pub fn system(&self) -> &Arc<dyn KvStore> {
        &self.system
    }

    /// The keyring.
    pub fn keyring(&self) -> &Arc<Keyring> {
        &self.keyring
    }
}

/// The tenant name of the deployment-wide store's keys.
pub const SYSTEM_TENANT: &str = "system";

/// How the chat service behaves.
#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// Password hashing, for every workspace.
    pub password: PasswordConfig,
    /// Lockout, for every workspace.
    pub lockout: LockoutPolicy,
    /// The longest message body, in bytes.
    pub max_message_bytes: usize,
    /// How many events a realtime subscriber may fall behind before it is disconnected.
    pub subscriber_queue: usize,
    /// The largest file, in bytes.
    pub max_file_bytes: u64,
    /// How single sign-on fetches from providers (one client for every workspace).
    pub sso: SsoClientConfig,
    /// How fast each SCIM key may call.
    pub scim_rate: crate::scim::ScimRate,
    /// The retention floor and batch size.
    pub retention: crate::retention::RetentionConfig,
    /// How long a request for a second person's approval stays open ([`crate::approvals`]).
    pub approval_window: std::time::Duration,
    /// The shortest delay a workspace wipe may be scheduled with ([`crate::wipe`]).
    pub wipe_delay_floor: std::time::Duration,
    /// How long the tombstone of a deleted message or file is kept before a storage clean-up
    /// removes it ([`crate::housekeeping`]).
    pub tombstone_retention: std::time::Duration,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            password: PasswordConfig::default(),
            lockout: LockoutPolicy::default(),
            max_message_bytes: 16 * 1024,
            subscriber_queue: crate::hub::DEFAULT_QUEUE,
            max_file_bytes: 100 * 1024 * 1024,
            sso: SsoClientConfig::default(),
            scim_rate: crate::scim::ScimRate::default(),
            retention: crate::retention::RetentionConfig::default(),
            approval_window: std::time::Duration::from_secs(24 * 3600),
            wipe_delay_floor: std::time::Duration::from_secs(24 * 3600),
            tombstone_retention: std::time::Duration::from_secs(90 * 24 * 3600),
        }
    }
}

/// A workspace's record in the system store.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspaceInfo {
    /// The tenant.
    pub id: TenantId,
    /// Its display name.
    pub name: String,
    /// When it was bootstrapped.
    pub created: Timestamp,
    /// How its records are sealed: [`LAYOUT`] once every live user's identity records are
    /// under that user's own key; 0 for a workspace made before, whose older records are sealed
    /// again when it opens.
    #[serde(default)]
    pub layout: u32,
}

/// The sealed layout this build writes (see [`WorkspaceInfo::layout`]).
pub const LAYOUT: u32 = 1;

/// The longest workspace name, in characters.
pub const MAX_WORKSPACE_NAME: usize = 128;

/// The chat service of a deployment: its workspaces.
pub struct Chat {
    deps: Deps,
    config: ChatConfig,
    hasher: Arc<PasswordHasher>,
    sso_client: Arc<SsoClient>,
    workspaces_ns: Namespace,
    open: tokio::sync::Mutex<HashMap<TenantId, Arc<Workspace>>>,
    backups: Option<Arc<crate::backups::Backups>>,
    updates: Option<crate::updates::UpdateSettings>,
}

impl Chat {
    /// The deployment's store below encryption (for the offline checks).
    pub(crate) fn inner_store(&self) -> Arc<dyn KvStore> {
        Arc::clone(&self.deps.inner)
    }

    /// The deployment's keyring.
    pub(crate) fn keyring(&self) -> Arc<Keyring> {
        Arc::clone(&self.deps.keyring)
    }

    /// The deployment-wide store.
    pub(crate) fn system_store(&self) -> &Arc<dyn KvStore> {
        &self.deps.system
    }

    /// The deployment's clock.
    pub(crate) fn clock(&self) -> &Arc<dyn Clock> {
        &self.deps.clock
    }

    /// Where the deployment records audit events.
    pub(crate) fn audit_sink(&self) -> &Arc<dyn AuditSink> {
        &self.deps.audit
    }

    /// The deployment's audit logs.
    pub(crate) fn audit_logs(&self) -> &Arc<dyn AuditLogs> {
        &self.deps.audit_logs
    }

    /// Closes workspace `tenant` and unlists it (after its wipe destroyed its keys).
    pub(crate) async fn forget_workspace(&self, tenant: TenantId) -> Result<()> {
        self.open.lock().await.remove(&tenant);
        let mut batch = Batch::new();
        batch.delete(&self.workspaces_ns, &tenant.to_bytes());
        self.deps.system.commit(batch).await?;
        Ok(())
    }
}

impl fmt::Debug for Chat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chat")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Chat {
    /// The settings every workspace of this service follows.
    pub fn config(&self) -> &ChatConfig {
        &self.config
    }

    /// The service over `deps`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for unusable password settings.
    pub fn new(deps: Deps, config: ChatConfig) -> Result<Self> {
        let hasher = Arc::new(PasswordHasher::new(config.password.clone())?);
        let sso_client = Arc::new(SsoClient::new(config.sso, Arc::clone(&deps.clock))?);
        Ok(Chat {
            deps,
            config,
            hasher,
            sso_client,
            workspaces_ns: Namespace::new(WORKSPACES)?,
            open: tokio::sync::Mutex::new(HashMap::new()),
            backups: None,
            updates: None,
        })
    }

    /// The service with update checks against release manifests signed by
    /// `settings.release_key` ([`crate::updates`]).
    pub fn with_updates(mut self, settings: crate::updates::UpdateSettings) -> Self {
        // Workspaces opened before would not know of them.
        self.open.get_mut().clear();
        self.updates = Some(settings);
        self
    }

    /// The service with backups of the whole deployment ([`crate::backups`]), managed from
    /// the workspace `settings.operators` names.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] without a recovery recipient.
    pub fn with_backups(mut self, settings: crate::backups::BackupSettings) -> Result<Self> {
        // Workspaces opened before would not know of them.
        self.open.get_mut().clear();
        self.backups = Some(Arc::new(crate::backups::Backups::new(
            settings,
            Arc::clone(&self.deps.inner),
            Arc::clone(&self.deps.system),
            Arc::clone(&self.deps.clock),
            Arc::clone(&self.deps.audit),
        )?));
        Ok(self)
    }

    /// The deployment's backups, when configured: for the deployment's own schedule and tools
    /// (a caller goes through [`Workspace::create_backup`] and its kin).
    pub fn deployment_backups(&self) -> Option<&Arc<crate::backups::Backups>> {
        self.backups.as_ref()
    }

    /// Creates a workspace with its first owner, who can then log in with `password`. The
    /// workspace is listed (and can be opened) only once all of it exists: a bootstrap that fails
    /// half-way leaves nothing anyone can reach.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for a bad name, user or password; the store's errors.
    pub async fn bootstrap(
        &self,
        name: &str,
        owner: NewUser,
        password: &SecretString,
    ) -> Result<(Arc<Workspace>, UserId)> {
        let name = name.trim();
        if name.is_empty()
            || name.chars().count() > MAX_WORKSPACE_NAME
            || name.chars().any(char::is_control)
        {
            return Err(Error::invalid(
                "name",
                format!("1 to {MAX_WORKSPACE_NAME} characters, no control characters"),
            ));
        }
        let tenant = TenantId::generate(&*self.deps.clock);
        let workspace = self.assemble(tenant).await?;
        let setup = Actor::System("bootstrap".into());
        let user = workspace.users.create(&setup, owner).await?;
        workspace
            .auth
            .set_password(&setup, user.id, password)
            .await?;
        workspace
            .authz
            .apply(
                &Changer::System("bootstrap".into()),
                Change::Grant {
                    user: user.id,
                    role: SystemRole::Owner.id(),
                    at: Scope::Tenant,
                },
            )
            .await?;
        let info = WorkspaceInfo {
            id: tenant,
            name: name.to_owned(),
            created: self.deps.clock.now(),
            layout: LAYOUT,
        };
        let mut batch = Batch::new();
        batch.put_if_absent(
            &self.workspaces_ns,
            &tenant.to_bytes(),
            &codec::encode(&info)?,
        );
        self.deps.system.commit(batch).await?;
        let workspace = Arc::new(workspace);
        self.open
            .lock()
            .await
            .insert(tenant, Arc::clone(&workspace));
        Ok((workspace, user.id))
    }

    /// The workspace `tenant`.
    ///
    /// # Errors
    /// [`Error::NotFound`] for a tenant that was never (completely) bootstrapped.
    pub async fn workspace(&self, tenant: TenantId) -> Result<Arc<Workspace>> {
        let mut open = self.open.lock().await;
        if let Some(w) = open.get(&tenant) {
            return Ok(Arc::clone(w));
        }
        let Some((info, version)) = self
            .deps
            .system
            .get_decoded::<WorkspaceInfo>(&self.workspaces_ns, &tenant.to_bytes())
            .await?
        else {
            return Err(Error::NotFound("workspace".into()));
        };
        let workspace = Arc::new(self.assemble(tenant).await?);
        if info.layout < LAYOUT {
            self.upgrade_layout(&workspace, info, version).await?;
        }
        open.insert(tenant, Arc::clone(&workspace));
        Ok(workspace)
    }

    /// The record of workspace `tenant`.
    ///
    /// # Errors
    /// [`Error::NotFound`]; the store's errors.
    pub async fn info(&self, tenant: TenantId) -> Result<WorkspaceInfo> {
        self.deps
            .system
            .get_decoded::<WorkspaceInfo>(&self.workspaces_ns, &tenant.to_bytes())
            .await?
            .map(|(info, _)| info)
            .ok_or_else(|| Error::NotFound("workspace".into()))
    }

    /// Every workspace of the deployment, in id order.
    ///
    /// # Errors
    /// The store's errors.
    pub async fn workspaces(&self) -> Result<Vec<WorkspaceInfo>> {
        let mut found = Vec::new();
        let mut range = Some(zt_storage::KeyRange::all());
        while let Some(next) = range {
            let page = self
                .deps
                .system
                .scan(
                    &self.workspaces_ns,
                    &next,
                    zt_storage::ScanOptions::default(),
                )
                .await?;
            for entry in page.entries {
                found.push(zt_storage::codec::decode::<WorkspaceInfo>(&entry.value)?);
            }
            range = page.next;
        }
        Ok(found)
    }

    /// The namespace of the workspaces' records in the system store, for the test helpers.
    #[cfg(any(test, feature = "testing"))]
    pub(crate) fn workspaces_namespace(&self) -> &Namespace {
        &self.workspaces_ns
    }

    /// Brings a workspace made by an earlier version to [`LAYOUT`]: the identity records of
    /// users created before users had keys of their own are sealed again under their user's
    /// key (so that deleting such a user shreds them too), then the workspace's record says so,
    /// and later opens skip the pass. A pass cut short is simply run again at the next open.
    async fn upgrade_layout(
        &self,
        workspace: &Workspace,
        mut info: WorkspaceInfo,
        version: u64,
    ) -> Result<()> {
        let resealed = store::reseal_user_records(&workspace.sealed).await?;
        if resealed > 0 {
            tracing::info!(
                tenant = %info.id,
                resealed,
                "identity records sealed again under their users' own keys"
            );
        }
        info.layout = LAYOUT;
        let mut batch = Batch::new();
        let key = info.id.to_bytes();
        batch.require_version(&self.workspaces_ns, &key, version);
        batch.put(&self.workspaces_ns, &key, &codec::encode(&info)?);
        match self.deps.system.commit(batch).await {
            Ok(_) => Ok(()),
            // Another process recorded it (or removed the workspace) meanwhile.
            Err(e) if e.kind() == zt_storage::ErrorKind::Conflict => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    async fn assemble(&self, tenant: TenantId) -> Result<Workspace> {
        let scopes = store::KeyScopes::of(&self.deps.keyring, tenant).await?;
        let sealed = store::tenant_store(
            Arc::clone(&self.deps.inner),
            Arc::clone(&self.deps.keyring),
            tenant,
            scopes.clone(),
        )?;
        store::move_legacy(&sealed).await?;
        let sealed = Arc::new(sealed);
        let store: Arc<dyn zt_storage::KvStore> = Arc::clone(&sealed) as _;
        let ctx = TenantContext {
            store,
            tenant,
            clock: Arc::clone(&self.deps.clock),
            audit: Arc::clone(&self.deps.audit),
            bus: Arc::clone(&self.deps.bus),
        };
        let users = Arc::new(Users::new(ctx.clone())?);
        let auth = Arc::new(Authenticator::new(
            ctx.clone(),
            Arc::clone(&users),
            Arc::clone(&self.hasher),
            self.config.lockout,
        )?);
        let sessions = Arc::new(Sessions::new(ctx.clone(), Arc::clone(&users)).await?);
        let identity = Identity::new(
            ctx.clone(),
            Arc::clone(&users),
            Arc::clone(&auth),
            Arc::clone(&sessions),
        );
        let sso = Sso::new(
            ctx.clone(),
            Arc::clone(&users),
            Arc::clone(&sessions),
            Arc::clone(&self.sso_client),
        )?;
        let authz = Authz::open(ctx.clone()).await?;
        let hub = Hub::start(tenant, self.config.subscriber_queue, ctx.bus.subscribe());
        Ok(Workspace {
            hub,
            scim_users: zt_core::identity::scim::ScimUsers::new(ctx.clone(), Arc::clone(&users))?,
            scim_keys: zt_core::identity::scim::ScimKeys::new(ctx.clone())?,
            scim_groups: crate::scim::group_records()?,
            scim_limits: zt_core::rate::TokenBuckets::new(
                self.config.scim_rate.per_second,
                self.config.scim_rate.burst,
            ),
            ns: Namespaces::new()?,
            scopes,
            keyring: Arc::clone(&self.deps.keyring),
            max_message_bytes: self.config.max_message_bytes,
            max_file_bytes: self.config.max_file_bytes,
            sealed,
            retention_config: self.config.retention,
            approval_window: self.config.approval_window,
            wipe_delay_floor: self.config.wipe_delay_floor,
            tombstone_retention: self.config.tombstone_retention,
            system: Arc::clone(&self.deps.system),
            retention_running: tokio::sync::Mutex::new(()),
            backups: self.backups.clone(),
            updates: self.updates.clone(),
            audit_logs: Arc::clone(&self.deps.audit_logs),
            ctx,
            users,
            auth,
            sessions,
            identity,
            sso,
            authz,
            name_probes: WindowCounts::new(),
            refusals: WindowCounts::new(),
        })
    }
}

/// An authenticated caller: only [`Workspace::login`] and [`Workspace::authenticate`] make one,
/// so every call that takes it was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caller {
    principal: Principal,
    session: Session,
}

impl Caller {
    /// Who is calling.
    pub fn principal(&self) -> Principal {
        self.principal
    }

    /// The user.
    pub fn user(&self) -> UserId {
        self.principal.user
    }

    /// The session it authenticated with.
    pub fn session(&self) -> &Session {
        &self.session
    }
}

/// One workspace: its identity, authorization and chat data.
pub struct Workspace {
    pub(crate) ctx: TenantContext,
    pub(crate) ns: Namespaces,
    pub(crate) scopes: store::KeyScopes,
    pub(crate) keyring: Arc<Keyring>,
    pub(crate) max_message_bytes: usize,
    pub(crate) max_file_bytes: u64,
    /// The tenant's store, typed: `ctx.store` is the same one, for reading rows one by one.
    pub(crate) sealed: Arc<store::SealedStore<Arc<dyn zt_storage::KvStore>>>,
    pub(crate) retention_config: crate::retention::RetentionConfig,
    pub(crate) approval_window: std::time::Duration,
    pub(crate) wipe_delay_floor: std::time::Duration,
    pub(crate) tombstone_retention: std::time::Duration,
    /// The deployment-wide store, where a wipe's schedule outlives the workspace.
    pub(crate) system: Arc<dyn KvStore>,
    /// Held by the retention run in progress.
    pub(crate) retention_running: tokio::sync::Mutex<()>,
    /// The deployment's backups, when configured ([`Chat::with_backups`]).
    pub(crate) backups: Option<Arc<crate::backups::Backups>>,
    /// How update checks are verified, when configured ([`Chat::with_updates`]).
    pub(crate) updates: Option<crate::updates::UpdateSettings>,
    // The raw handles stay inside the crate: through them a session could be minted without a
    // credential, a policy changed without an actor or a record, an authorization model
    // installed past the guardrails. Callers go through the Caller-taking methods.
    pub(crate) users: Arc<Users>,
    pub(crate) auth: Arc<Authenticator>,
    pub(crate) sessions: Arc<Sessions>,
    pub(crate) identity: Identity,
    pub(crate) sso: Sso,
    pub(crate) authz: Authz,
    pub(crate) audit_logs: Arc<dyn AuditLogs>,
    pub(crate) hub: Arc<Hub>,
    /// SCIM users, over `users`.
    pub(crate) scim_users: zt_core::identity::scim::ScimUsers,
    /// SCIM API keys.
    pub(crate) scim_keys: zt_core::identity::scim::ScimKeys,
    /// SCIM group documents.
    pub(crate) scim_groups: zt_core::identity::scim::Records,
    /// Requests per SCIM key.
    pub(crate) scim_limits: zt_core::rate::TokenBuckets<String>,
    /// Unavailable-name answers per caller.
    pub(crate) name_probes: WindowCounts<UserId>,
    /// Refusals per (caller, action, resource).
    pub(crate) refusals: WindowCounts<(UserId, zt_authz::Action, zt_authz::Resource)>,
}

/// How often each key was seen since its window began: what decides which of many similar
/// events are recorded (the first of a window, or the one that crosses a threshold).
pub(crate) struct WindowCounts<K> {
    seen: std::sync::Mutex<HashMap<K, (u32, i64)>>,
}

impl<K: std::hash::Hash + Eq> WindowCounts<K> {
    pub(crate) fn new() -> Self {
        WindowCounts {
            seen: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// Counts `key` at `now` (ms); returns its count in the current window (1: the first). A
    /// window starts at a key's first hit after the last one ended; at most 10,000 keys are kept
    /// (the ones whose window ended go first).
    pub(crate) fn hit(&self, key: K, now: i64, window: std::time::Duration) -> u32 {
        let window = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.len() >= 10_000 {
            seen.retain(|_, (_, start)| now.saturating_sub(*start) < window);
        }
        let entry = seen.entry(key).or_insert((0, now));
        if now.saturating_sub(entry.1) >= window {
            *entry = (0, now);
        }
        entry.0 = entry.0.saturating_add(1);
        entry.0
    }
}

/// How long refusals of one (caller, action, resource) are recorded once.
pub const REFUSAL_WINDOW: std::time::Duration = std::time::Duration::from_secs(60);

/// Unavailable-name answers one caller may get in [`NAME_PROBE_WINDOW`] before it is recorded
/// as a probe.
pub const NAME_PROBE_THRESHOLD: u32 = 3;
/// The window of [`NAME_PROBE_THRESHOLD`].
pub const NAME_PROBE_WINDOW: std::time::Duration = std::time::Duration::from_secs(600);

impl Workspace {
    /// An `access.unauthorized` event by the caller, denied, in this workspace, now.
    fn refused_event(&self, caller: &Caller) -> zt_core::AuditEvent {
        self.event(zt_core::AuditEventKind::UnauthorizedAccess, caller)
            .outcome(zt_core::Outcome::Denied)
    }

    /// The answer for a channel or group name that is taken: one answer for every unavailable
    /// name, whether a channel or a group holds it and whether the caller may see it, so it
    /// confirms no hidden name beyond "unavailable". The third such answer to one caller within
    /// ten minutes is recorded as a probe (`access.unauthorized`, reason `name_probe`), once per
    /// window.
    pub(crate) async fn name_unavailable(&self, caller: &Caller) -> Error {
        let now = self.ctx.clock.now().unix_millis();
        let count = self.name_probes.hit(caller.user(), now, NAME_PROBE_WINDOW);
        if count == NAME_PROBE_THRESHOLD {
            let event = self
                .refused_event(caller)
                .target("names")
                .detail("reason", "name_probe")
                .and_then(|e| e.detail("count", i64::from(count)));
            let recorded = match event {
                Ok(event) => self.ctx.audit.append(event).await.map(drop),
                Err(e) => Err(e),
            };
            if let Err(e) = recorded {
                return e.into();
            }
        }
        Error::Conflict("that name is not available".into())
    }
}

impl fmt::Debug for Workspace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workspace")
            .field("tenant", &self.ctx.tenant)
            .finish_non_exhaustive()
    }
}

impl Workspace {
    /// The tenant.
    pub fn tenant(&self) -> TenantId {
        self.ctx.tenant
    }

    /// Logs in with a password and starts an interactive session.
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] for every failed login (they are not told apart).
    pub async fn login(
        &self,
        username: &str,
        password: &SecretString,
        source: Option<IpAddr>,
    ) -> Result<(SessionToken, Caller)> {
        let (token, session) = self
            .identity
            .login(username, password, source, SessionKind::Interactive)
            .await?;
        Ok((token, self.caller_of(session)))
    }

    /// The caller holding `token`.
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] for a token that is not a live session of this workspace.
    pub async fn authenticate(&self, token: &SessionToken) -> Result<Caller> {
        let session = self.sessions.validate(token).await?;
        Ok(self.caller_of(session))
    }

    /// A realtime subscription for the holder of `token`: the events of everything it may read,
    /// until its session ends (see [`crate::hub`]).
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] for a token that is not a live session.
    pub async fn subscribe(&self, token: &SessionToken) -> Result<Subscription> {
        let caller = self.authenticate(token).await?;
        Ok(self.hub.subscribe(caller.principal, token.hash()))
    }

    /// The realtime hub.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Sends `event` to the subscribers who may read it.
    pub(crate) fn announce(&self, event: Event) {
        self.hub.publish(self.authz.authorizer(), event);
    }

    /// Ends the caller's session.
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] for a token that is not a live session.
    pub async fn logout(&self, token: &SessionToken) -> Result<()> {
        Ok(self.identity.logout(token).await?)
    }

    /// The caller of `session`, which was just authenticated.
    pub(crate) fn caller_of(&self, session: Session) -> Caller {
        Caller {
            principal: Principal {
                tenant: self.ctx.tenant,
                user: session.user,
            },
            session,
        }
    }

    /// Whether the caller may use `permission` in `channel`, as an error when it may not.
    pub(crate) async fn require_in(
        &self,
        caller: &Caller,
        channel: zt_core::ChannelId,
        permission: zt_authz::Permission,
    ) -> Result<zt_authz::Decision> {
        self.require(
            caller,
            zt_authz::Action::Do(permission),
            zt_authz::Resource::Channel(channel),
            "channel",
        )
        .await
    }

    /// The power that deletes something in a channel: one's own, or anyone's.
    pub(crate) fn delete_power(caller: &Caller, author: UserId) -> zt_authz::Permission {
        if author == caller.user() {
            zt_authz::Permission::DeleteOwnMessage
        } else {
            zt_authz::Permission::DeleteAnyMessage
        }
    }

    /// Whether the caller's question is allowed, as an error when it is not.
    pub(crate) async fn require(
        &self,
        caller: &Caller,
        action: zt_authz::Action,
        resource: zt_authz::Resource,
        what: &str,
    ) -> Result<zt_authz::Decision> {
        let decision = self
            .authz
            .authorize(caller.principal, action, resource)
            .await?;
        if decision.allowed {
            Ok(decision)
        } else {
            self.record_refusal(caller, action, resource, &decision)
                .await?;
            Err(Error::denied(&decision, what))
        }
    }

    /// Records a refusal as `access.unauthorized` (the action, the resource, the reasons),
    /// whether it answers forbidden or not found: the first per caller, action and resource in
    /// [`REFUSAL_WINDOW`], so a scan over many resources shows, each once, and a flood at one
    /// does not flood the log.
    async fn record_refusal(
        &self,
        caller: &Caller,
        action: zt_authz::Action,
        resource: zt_authz::Resource,
        decision: &zt_authz::Decision,
    ) -> Result<()> {
        let now = self.ctx.clock.now().unix_millis();
        let first = self
            .refusals
            .hit((caller.user(), action, resource), now, REFUSAL_WINDOW)
            == 1;
        if !first {
            return Ok(());
        }
        let (target, kind) = match resource {
            zt_authz::Resource::Tenant => ("tenant".to_owned(), "tenant"),
            zt_authz::Resource::Channel(c) => (c.to_string(), "channel"),
            zt_authz::Resource::Group(g) => (g.to_string(), "group"),
            zt_authz::Resource::User(u) => (u.to_string(), "user"),
        };
        let action = match action {
            zt_authz::Action::Do(p) => p.name().to_owned(),
            zt_authz::Action::View => "view".to_owned(),
            zt_authz::Action::Mention => "mention".to_owned(),
        };
        let event = self
            .refused_event(caller)
            .target(target)
            .detail("resource", kind)
            .and_then(|e| e.detail("action", action))
            .and_then(|e| e.detail("reasons", decision.codes().join(" ")))?;
        self.ctx.audit.append(event).await?;
        Ok(())
    }
}
