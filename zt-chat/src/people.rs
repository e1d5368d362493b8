//! Users of a workspace, managed by callers who may (`manage_users`, never over someone more
//! privileged, owners only by owners), with the last owner kept.

use secrecy::SecretString;
use zt_authz::{Action, Change, Changer, Permission, Resource, Scope, SystemRole};
use zt_core::identity::{NewUser, SessionToken, User};
use zt_core::{Actor, UserId};

use crate::error::Result;
use crate::workspace::{Caller, Workspace};

impl Workspace {
    /// Creates a user with a password and the member role (`manage_users`). The account and its
    /// role are two commits; should the second fail, the account exists without any role, which
    /// grants nothing, and the call can be retried with [`Workspace::grant_member`].
    ///
    /// # Errors
    /// [`crate::Error::Forbidden`]; [`crate::Error::InvalidInput`] for the user or password;
    /// [`crate::Error::Conflict`] for a username or address taken.
    pub async fn create_user(
        &self,
        caller: &Caller,
        new: NewUser,
        password: &SecretString,
    ) -> Result<User> {
        self.require(
            caller,
            Action::Do(Permission::ManageUsers),
            Resource::Tenant,
            "tenant",
        )
        .await?;
        let by = Actor::User(caller.user());
        let user = self.users.create(&by, new).await?;
        self.auth.set_password(&by, user.id, password).await?;
        self.grant_member(caller, user.id).await?;
        Ok(user)
    }

    /// Gives `user` the member role (`manage_roles`, within the caller's own powers).
    ///
    /// # Errors
    /// [`crate::Error::Forbidden`]; [`crate::Error::NotFound`].
    pub async fn grant_member(&self, caller: &Caller, user: UserId) -> Result<()> {
        self.authz
            .apply(
                &Changer::Principal(caller.principal()),
                Change::Grant {
                    user,
                    role: SystemRole::Member.id(),
                    at: Scope::Tenant,
                },
            )
            .await?;
        Ok(())
    }

    /// Deactivates `user` (`manage_users` over them; the last owner stays): their sessions end,
    /// and with them their realtime streams.
    ///
    /// # Errors
    /// [`crate::Error::Forbidden`] (also for the last owner); [`crate::Error::NotFound`].
    pub async fn deactivate_user(&self, caller: &Caller, user: UserId) -> Result<User> {
        self.manage(caller, user).await?;
        self.authz.ensure_removable(user).await?;
        Ok(self
            .users
            .deactivate(&Actor::User(caller.user()), user)
            .await?)
    }
}

/// What a user may change of their own profile.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProfileUpdate {
    /// A new display name.
    pub display_name: Option<String>,
    /// A new e-mail address (`Some(None)` removes it).
    pub email: Option<Option<String>>,
}

impl Workspace {
    /// The users area over one user: `manage_users` workspace-wide (a refusal recorded as
    /// `admin.access_denied`) and over that user (never someone more privileged), who must exist.
    pub(crate) async fn manage(&self, caller: &Caller, user: UserId) -> Result<User> {
        self.enter_admin_area(caller, crate::AdminArea::Users)
            .await?;
        self.require(
            caller,
            Action::Do(Permission::ManageUsers),
            Resource::User(user),
            "user",
        )
        .await?;
        self.users
            .get(user)
            .await?
            .ok_or_else(|| crate::Error::NotFound("user".into()))
    }

    /// The user `user` as an administrator sees them (`manage_users` over them): a deleted
    /// user as their tombstone, with no name, address or display name of theirs.
    ///
    /// # Errors
    /// [`crate::Error::Forbidden`]; [`crate::Error::NotFound`].
    pub async fn user(&self, caller: &Caller, user: UserId) -> Result<User> {
        self.manage(caller, user).await
    }

    /// Reactivates a deactivated user (`manage_users` over them), recorded as
    /// `user.reactivated`. Sessions from before the deactivation stay ended.
    ///
    /// # Errors
    /// [`crate::Error::Forbidden`]; [`crate::Error::NotFound`]; [`crate::Error::InvalidInput`]
    /// unless the user is deactivated.
    pub async fn reactivate_user(&self, caller: &Caller, user: UserId) -> Result<User> {
        self.manage(caller, user).await?;
        Ok(self
            .users
            .reactivate(&Actor::User(caller.user()), user)
            .await?)
    }

    /// Lifts the lockout of a user and forgets their failed sign-ins (`manage_users` over them),
    /// recorded as `login.unlocked`.
    ///
    /// # Errors
    /// [`crate::Error::Forbidden`]; [`crate::Error::NotFound`].
    pub async fn unlock_user(&self, caller: &Caller, user: UserId) -> Result<()> {
        self.manage(caller, user).await?;
        Ok(self.auth.unlock(&Actor::User(caller.user()), user).await?)
    }

    /// Sets a new password for a user (`manage_users` over them) and ends every session of
    /// theirs; recorded as `user.password_changed` and `session.revoked`. Returns how many
    /// sessions ended.
    ///
    /// # Errors
    /// [`crate::Error::Forbidden`]; [`crate::Error::NotFound`]; [`crate::Error::InvalidInput`]
    /// for a password the policy refuses, saying why.
    pub async fn reset_password(
        &self,
        caller: &Caller,
        user: UserId,
        password: &SecretString,
    ) -> Result<usize> {
        self.manage(caller, user).await?;
        Ok(self
            .identity
            .change_password(&Actor::User(caller.user()), user, password, None)
            .await?)
    }

    /// Changes the caller's own password: the current one is checked first (a wrong one counts
    /// as a failed sign-in), then the new one against the policy; every other session of the
    /// caller ends, the one of `token` stays. Returns how many sessions ended.
    ///
    /// # Errors
    /// [`crate::Error::Unauthenticated`] for a wrong current password or a `token` that is not
    /// the caller's live session; [`crate::Error::InvalidInput`] for a refused new password.
    pub async fn change_password(
        &self,
        caller: &Caller,
        token: &SessionToken,
        current: &SecretString,
        new: &SecretString,
    ) -> Result<usize> {
        if self.sessions.validate(token).await?.user != caller.user() {
            return Err(crate::Error::Unauthenticated);
        }
        let me = self.me(caller).await?;
        self.auth
            .login(&me.username, current, None)
            .await
            .map_err(|_| crate::Error::Unauthenticated)?;
        Ok(self
            .identity
            .change_password(&Actor::User(caller.user()), caller.user(), new, Some(token))
            .await?)
    }

    /// Changes the caller's own display name or address.
    ///
    /// # Errors
    /// [`crate::Error::InvalidInput`] for a bad name or address; [`crate::Error::Conflict`] for
    /// an address taken.
    pub async fn update_profile(&self, caller: &Caller, update: ProfileUpdate) -> Result<User> {
        let update = zt_core::identity::UserUpdate {
            username: None,
            email: update.email,
            display_name: update.display_name,
        };
        Ok(self.users.update(caller.user(), update).await?)
    }
}
