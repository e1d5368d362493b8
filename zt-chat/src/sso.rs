//! Single sign-on through a workspace's door: the providers and the sign-in settings in the
//! authentication area (`manage_authentication`), and the sign-in flows, which take no caller
//! (they are how one becomes a caller).
//!
//! The relying party itself is zt-core's [`Sso`](zt_core::identity::Sso): every check of a
//! flow and a token lives there. What this module adds is the workspace's: authorization and
//! the record of each configuration change (`settings.changed`, before it applies, never with
//! the secret), the break-glass account being an active owner, group claims applied as
//! memberships with source OIDC (which add and remove only what OIDC granted), and the
//! [`Caller`] of the new session.
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use secrecy::SecretString;
//! use zt_core::identity::{ProviderConfig, Provisioning};
//!
//! use zt_chat::testing::{World, new_user, password};
//! let world = World::new().await;
//! let (workspace, _) = world.chat.bootstrap("Acme", new_user("owner"), &password()).await?;
//! let (_, owner) = workspace.login("owner", &password(), None).await?;
//! let mut corp = ProviderConfig::new(
//!     "corp",
//!     "https://id.example.com",
//!     "zt-chat",
//!     "https://chat.example.com/w/acme/sso/corp/callback",
//! );
//! corp.provisioning = Provisioning::LinkVerifiedEmail;
//! workspace
//!     .set_sso_provider(&owner, corp, Some(SecretString::from("from the provider")))
//!     .await?;
//! let shown = workspace.sso_providers(&owner).await?;
//! assert_eq!(shown[0].name, "corp"); // and no secret: the configuration has no field for it
//! # Ok::<_, zt_chat::Error>(())
//! # }).unwrap();
//! ```

use std::time::Duration;

use secrecy::SecretString;
use zt_authz::{Change, Changer, Scope, Source, SystemRole};
use zt_core::AuditEventKind;
use zt_core::identity::{
    AuthSettings, AuthorizationResponse, DevicePoll, DeviceStart, ProviderConfig, SessionToken,
    SignIn, SsoStart, UserState,
};

use crate::admin::AdminArea;
use crate::error::{Error, Result};
use crate::workspace::{Caller, Workspace};
use zt_core::UserId;

/// Where a device sign-in stands.
#[derive(Debug)]
pub enum DeviceSignIn {
    /// The user has not finished at the provider; poll again after `interval`.
    Pending {
        /// How long to wait.
        interval: Duration,
    },
    /// Signed in: the session's token (for the client once) and its caller.
    Done(SessionToken, Caller),
}

impl Workspace {
    // ----- the authentication area ------------------------------------------------------

    /// The workspace's providers, without their secrets (`manage_authentication`).
    ///
    /// # Errors
    /// [`Error::Forbidden`].
    pub async fn sso_providers(&self, caller: &Caller) -> Result<Vec<ProviderConfig>> {
        self.enter_admin_area(caller, AdminArea::Authentication)
            .await?;
        Ok(self.sso.providers().await?)
    }

    /// Adds or replaces a provider (`manage_authentication`); `secret` `None` keeps the stored
    /// client secret. Every group it maps must be one the caller can see. Recorded as
    /// `settings.changed` (target `sso_provider`) with the configuration and whether the secret
    /// was replaced, never the secret, before it applies.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::InvalidInput`] for a bad configuration, an unknown group,
    /// or a new provider without a secret.
    pub async fn set_sso_provider(
        &self,
        caller: &Caller,
        config: ProviderConfig,
        secret: Option<SecretString>,
    ) -> Result<()> {
        self.enter_admin_area(caller, AdminArea::Authentication)
            .await?;
        config.check()?;
        for mapping in &config.groups {
            if self.group(caller, mapping.group).await.is_err() {
                return Err(Error::invalid(
                    "groups",
                    format!("no group {} to map", mapping.group),
                ));
            }
        }
        let existing = self.sso.provider(&config.name).await?;
        if existing.is_none() && secret.is_none() {
            return Err(Error::invalid(
                "client_secret",
                "a new provider needs its client secret",
            ));
        }
        let provisioning = match config.provisioning {
            zt_core::identity::Provisioning::Off => "off",
            zt_core::identity::Provisioning::Create => "create",
            zt_core::identity::Provisioning::LinkVerifiedEmail => "link_verified_email",
        };
        let event = self
            .event(AuditEventKind::SettingsChanged, caller)
            .target("sso_provider")
            .detail("provider", config.name.as_str())?
            .detail(
                "change",
                if existing.is_some() {
                    "replaced"
                } else {
                    "added"
                },
            )?
            .detail("issuer", config.issuer.as_str())?
            .detail("client_id", config.client_id.as_str())?
            .detail("redirect_uri", config.redirect_uri.as_str())?
            .detail("provisioning", provisioning)?
            .detail("enabled", config.enabled)?
            .detail("algorithms", config.algorithms.join(" "))?
            .detail(
                "group_mappings",
                i64::try_from(config.groups.len()).unwrap_or(i64::MAX),
            )?
            .detail(
                "skew_seconds",
                i64::try_from(config.skew.as_secs()).unwrap_or(i64::MAX),
            )?
            .detail(
                "client_authentication",
                if secret.is_some() { "replaced" } else { "kept" },
            )?;
        self.ctx.audit.append(event).await?;
        self.sso.set_provider(config, secret.as_ref()).await?;
        Ok(())
    }

    /// Removes a provider (`manage_authentication`), recorded as `settings.changed` first. Its
    /// live sessions stay until they end; accounts keep their links. Refused while the workspace
    /// is SSO-only and it is the last enabled provider.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::NotFound`]; [`Error::Conflict`].
    pub async fn remove_sso_provider(&self, caller: &Caller, name: &str) -> Result<()> {
        self.enter_admin_area(caller, AdminArea::Authentication)
            .await?;
        if self.sso.provider(name).await?.is_none() {
            return Err(Error::NotFound("provider".into()));
        }
        let settings = self.sso.auth_settings().await?;
        let others = self
            .sso
            .providers()
            .await?
            .into_iter()
            .filter(|p| p.enabled && p.name != name)
            .count();
        if settings.sso_only && others == 0 {
            return Err(Error::Conflict(
                "the workspace is SSO-only: turn that off before removing its last provider".into(),
            ));
        }
        let event = self
            .event(AuditEventKind::SettingsChanged, caller)
            .target("sso_provider")
            .detail("provider", name)?
            .detail("change", "removed")?;
        self.ctx.audit.append(event).await?;
        Ok(self.sso.remove_provider(name).await?)
    }

    /// The sign-in settings (`manage_authentication`).
    ///
    /// # Errors
    /// [`Error::Forbidden`].
    pub async fn sign_in_settings(&self, caller: &Caller) -> Result<AuthSettings> {
        self.enter_admin_area(caller, AdminArea::Authentication)
            .await?;
        Ok(self.sso.auth_settings().await?)
    }

    /// Replaces the sign-in settings (`manage_authentication`): SSO-only needs an enabled
    /// provider and a break-glass account that is an active owner of the workspace. Recorded as
    /// `settings.changed` (target `sign_in`) first.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::InvalidInput`].
    pub async fn set_sign_in_settings(
        &self,
        caller: &Caller,
        settings: AuthSettings,
    ) -> Result<()> {
        self.enter_admin_area(caller, AdminArea::Authentication)
            .await?;
        if let Some(user) = settings.break_glass {
            let owner = self
                .authz
                .authorizer()
                .with_model(|m| m.tenant_roles(user).any(|r| r == SystemRole::Owner.id()));
            let active = self
                .users
                .get(user)
                .await?
                .is_some_and(|u| u.state == UserState::Active);
            if !owner || !active {
                return Err(Error::invalid(
                    "break_glass",
                    "an active owner of the workspace",
                ));
            }
        }
        let mut event = self
            .event(AuditEventKind::SettingsChanged, caller)
            .target("sign_in")
            .detail("sso_only", settings.sso_only)?;
        if let Some(user) = settings.break_glass {
            event = event.detail("break_glass", user.to_string())?;
        }
        self.ctx.audit.append(event).await?;
        Ok(self.sso.set_auth_settings(settings).await?)
    }

    /// Removes `user`'s link at provider `name` (`manage_users` over them) and ends the
    /// sessions it gave; they sign in through it no more until linked again. Recorded as
    /// `settings.changed` (target: the user) first.
    ///
    /// # Errors
    /// [`Error::Forbidden`]; [`Error::NotFound`] for no such user or link.
    pub async fn unlink_sso(&self, caller: &Caller, user: UserId, name: &str) -> Result<()> {
        self.manage(caller, user).await?;
        if !self.sso.links_of(user).await?.iter().any(|p| p == name) {
            return Err(Error::NotFound("link".into()));
        }
        let event = self
            .event(AuditEventKind::SettingsChanged, caller)
            .target(user.to_string())
            .detail("sso_unlinked", name)?;
        self.ctx.audit.append(event).await?;
        self.sso
            .unlink(&zt_core::Actor::User(caller.user()), user, name)
            .await?;
        Ok(())
    }

    // ----- the sign-in flows ------------------------------------------------------------

    /// Starts a sign-in with provider `name`: the URL to send the browser to and the secret to
    /// keep in it (a cookie) for [`Workspace::sso_callback`].
    ///
    /// # Errors
    /// [`Error::SsoRefused`] for an unknown provider or one that cannot be reached.
    pub async fn sso_start(&self, name: &str) -> Result<SsoStart> {
        Ok(self.sso.start(name).await?)
    }

    /// Completes a sign-in at the redirect back from provider `name`, in the browser holding
    /// `binding`: an SSO session and its caller. The provider's group claims are applied as
    /// memberships with source OIDC.
    ///
    /// # Errors
    /// [`Error::SsoRefused`] with the check that failed (nothing is created then).
    pub async fn sso_callback(
        &self,
        name: &str,
        response: &AuthorizationResponse,
        binding: Option<&str>,
    ) -> Result<(SessionToken, Caller)> {
        let signed = self.sso.callback(name, response, binding).await?;
        self.signed_in(signed).await
    }

    /// Starts a device sign-in (RFC 8628) with provider `name`, for a client without a browser.
    ///
    /// # Errors
    /// [`Error::SsoRefused`] (the provider may not offer it).
    pub async fn sso_device_start(&self, name: &str) -> Result<DeviceStart> {
        Ok(self.sso.device_start(name).await?)
    }

    /// Polls a device sign-in by its handle.
    ///
    /// # Errors
    /// [`Error::SsoRefused`]: an unknown or used handle, a refusal at the provider, or any
    /// check of the ID token.
    pub async fn sso_device_poll(&self, handle: &str) -> Result<DeviceSignIn> {
        match self.sso.device_poll(handle).await? {
            DevicePoll::Pending { interval } => Ok(DeviceSignIn::Pending { interval }),
            DevicePoll::Done(signed) => {
                let (token, caller) = self.signed_in(*signed).await?;
                Ok(DeviceSignIn::Done(token, caller))
            }
        }
    }

    /// A back-channel logout token from provider `name`: ends the zt sessions of that provider
    /// session (or subject), whose realtime streams close. Returns how many ended.
    ///
    /// # Errors
    /// [`Error::SsoRefused`] with the check that failed (a replayed token included).
    pub async fn sso_backchannel_logout(&self, name: &str, token: &str) -> Result<usize> {
        Ok(self.sso.backchannel_logout(name, token).await?)
    }

    /// Ends the session of `token` and, for a single sign-on session, returns where to send the
    /// browser to end it at provider `name` too (RP-Initiated Logout), if the provider offers
    /// that; `after` is where the provider sends the browser back. A password session just ends.
    ///
    /// # Errors
    /// [`Error::Unauthenticated`] for a token that is not a live session.
    pub async fn sso_logout(
        &self,
        token: &SessionToken,
        name: &str,
        after: Option<&str>,
    ) -> Result<Option<String>> {
        let caller = self.authenticate(token).await?;
        self.logout(token).await?;
        if caller.session().kind != zt_core::identity::SessionKind::Sso {
            return Ok(None);
        }
        Ok(self.sso.end_session_url(name, after).await.unwrap_or(None))
    }

    /// The caller of a new SSO session: an account the provider just provisioned gets the
    /// member role (as `create_user` gives it), and the provider's group claims are applied.
    async fn signed_in(&self, signed: SignIn) -> Result<(SessionToken, Caller)> {
        if signed.created {
            self.authz
                .apply(
                    &Changer::System(format!("sso:{}", signed.provider)),
                    Change::Grant {
                        user: signed.user.id,
                        role: SystemRole::Member.id(),
                        at: Scope::Tenant,
                    },
                )
                .await?;
        }
        for group in &signed.mapped {
            let member = signed.granted.contains(group);
            match self
                .sync_group_member(Source::Oidc, *group, signed.user.id, member)
                .await
            {
                // A mapped group deleted since: nothing to grant.
                Ok(()) | Err(Error::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
        let caller = self.caller_of(signed.session);
        Ok((signed.token, caller))
    }
}
