//! The server's default workspace: created on the first start, with an owner whose password is
//! generated into a file of mode 0600 beside the data directory (`DIR.admin-password`), so an
//! evaluator can sign in at once and nothing secret is logged.

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use zt_chat::Chat;
use zt_core::TenantId;
use zt_core::identity::NewUser;
use zt_storage::{Batch, KvStore, KvStoreExt as _, Namespace, codec};

use crate::deployment::{DeploymentError, generate_secret_file};
use crate::error::ServerError;

/// The namespace (system store) recording the default workspace.
pub const DEFAULT_WORKSPACE: &str = "server.default_workspace";

/// The name of the workspace created on the first start.
pub const WORKSPACE_NAME: &str = "zt";
/// The username of its owner.
pub const OWNER: &str = "admin";

/// Where the first owner's password is written: `DIR.admin-password` beside `data_dir`.
pub fn password_file(data_dir: &Path) -> PathBuf {
    crate::deployment::beside(data_dir, "admin-password")
}

/// The default workspace, created (with its owner) when there is none yet. Returns the
/// password file when this call created the workspace.
///
/// # Errors
/// The chat service's or the store's; an unreadable password file.
pub async fn default_workspace(
    chat: &Chat,
    system: &dyn KvStore,
    data_dir: &Path,
) -> Result<(TenantId, Option<PathBuf>), ServerError> {
    let namespace = Namespace::new(DEFAULT_WORKSPACE)?;
    if let Some((tenant, _)) = system.get_decoded::<TenantId>(&namespace, b"id").await? {
        return Ok((tenant, None));
    }
    let file = password_file(data_dir);
    // A first start that stopped after writing the file reuses its password.
    let password = match std::fs::read_to_string(&file) {
        Ok(text) => SecretString::from(text.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => generate_secret_file(&file)?,
        Err(source) => {
            return Err(ServerError::Deployment(DeploymentError::Io {
                what: "read",
                path: file,
                source,
            }));
        }
    };
    let (workspace, _) = chat
        .bootstrap(
            WORKSPACE_NAME,
            NewUser {
                username: OWNER.into(),
                email: None,
                display_name: "Administrator".into(),
            },
            &password,
        )
        .await
        .map_err(|e| ServerError::Chat(e.to_string()))?;
    let tenant = workspace.tenant();
    let mut batch = Batch::new();
    batch.put_if_absent(&namespace, b"id", &codec::encode(&tenant)?);
    system.commit(batch).await?;
    Ok((tenant, Some(file)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_file_is_beside_the_data_directory() {
        assert_eq!(
            password_file(Path::new("./zt-data")),
            PathBuf::from("./zt-data.admin-password")
        );
        assert_eq!(
            password_file(Path::new("/srv/zt/")),
            PathBuf::from("/srv/zt.admin-password")
        );
    }
}
