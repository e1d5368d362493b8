//! The identity of one tenant as a whole: what a server calls for a login, a logout or a
//! password change, composed from [`Users`], [`Authenticator`] and [`Sessions`].

use std::net::IpAddr;
use std::sync::Arc;

use secrecy::SecretString;

use super::context::TenantContext;
use super::login::Authenticator;
use super::sessions::{Session, SessionKind, SessionToken, Sessions};
use super::users::Users;
use crate::audit::{Actor, AuditEventKind};
use crate::error::Result;
use crate::ids::UserId;

/// Logins that start sessions, logouts that end them, and password changes that end the others.
pub struct Identity {
    /// The tenant's users.
    pub users: Arc<Users>,
    /// Password checks and lockout.
    pub auth: Arc<Authenticator>,
    /// Sessions.
    pub sessions: Arc<Sessions>,
    ctx: TenantContext,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("tenant", &self.ctx.tenant)
            .finish_non_exhaustive()
    }
}

impl Identity {
    /// Composes the parts of `tenant`'s identity.
    pub fn new(
        ctx: TenantContext,
        users: Arc<Users>,
        auth: Arc<Authenticator>,
        sessions: Arc<Sessions>,
    ) -> Self {
        Identity {
            users,
            auth,
            sessions,
            ctx,
        }
    }

    /// Checks the password and starts a session of `kind`.
    ///
    /// # Errors
    /// [`crate::Error::AuthenticationFailed`] for any failed login (see [`Authenticator::login`]).
    pub async fn login(
        &self,
        username: &str,
        password: &SecretString,
        source: Option<IpAddr>,
        kind: SessionKind,
    ) -> Result<(SessionToken, Session)> {
        let user = self.auth.login(username, password, source).await?;
        self.sessions.create(user.id, kind).await
    }

    /// Ends the session of `token` at its holder's request (audited as `logout`).
    ///
    /// # Errors
    /// [`crate::Error::AuthenticationFailed`] for a token that is not a live session.
    pub async fn logout(&self, token: &SessionToken) -> Result<()> {
        let session = self.sessions.validate(token).await?;
        let actor = Actor::User(session.user);
        self.sessions.revoke(&actor, token).await?;
        let event = self
            .ctx
            .event(AuditEventKind::Logout, actor)
            .target(session.user.to_string());
        self.ctx.record(event).await
    }

    /// Sets `user`'s password and ends every other session of theirs, keeping `current` (the
    /// session the change was made from, if any).
    ///
    /// # Errors
    /// As [`Authenticator::set_password`].
    pub async fn change_password(
        &self,
        actor: &Actor,
        user: UserId,
        password: &SecretString,
        current: Option<&SessionToken>,
    ) -> Result<usize> {
        self.auth.set_password(actor, user, password).await?;
        self.sessions.revoke_all(actor, user, current).await
    }
}
