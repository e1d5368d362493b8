//! Users of a workspace, managed by callers who may (`manage_users`, never over someone more
//! privileged, owners only by owners), with the last owner kept.

use secrecy::SecretString;
use zt_authz::{Action, Change, Changer, Permission, Resource, Scope, SystemRole};
use zt_core::identity::{NewUser, User};
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
        self.require(
            caller,
            Action::Do(Permission::ManageUsers),
            Resource::User(user),
            "user",
        )
        .await?;
        self.authz.ensure_removable(user).await?;
        Ok(self
            .users
            .deactivate(&Actor::User(caller.user()), user)
            .await?)
    }

    /// Deletes `user` for good (`manage_users` over them; the last owner stays): their roles and
    /// memberships go first, in one commit, then the account.
    ///
    /// # Errors
    /// [`crate::Error::Forbidden`] (also for the last owner); [`crate::Error::NotFound`].
    pub async fn delete_user(&self, caller: &Caller, user: UserId) -> Result<User> {
        self.require(
            caller,
            Action::Do(Permission::ManageUsers),
            Resource::User(user),
            "user",
        )
        .await?;
        self.authz
            .apply(
                &Changer::Principal(caller.principal()),
                Change::RemoveUser(user),
            )
            .await?;
        Ok(self.users.delete(&Actor::User(caller.user()), user).await?)
    }
}
