//! `Pkcs11Kms`: key-encryption keys inside a PKCS#11 token (feature `kms-pkcs11`).

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use async_trait::async_trait;
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Function, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use rand::Rng;
use secrecy::SecretString;

use crate::error::{Error, Result};
use crate::key::DataKey;
use crate::kms::{EncryptionContext, KeyId, KeyRef, KeyState, KeyVersion, Kms, WrappedKey};

const IV_LEN: usize = 12;
const TAG_BITS: u64 = 128;
const RETIRED: &str = "retired:";
/// The label of a destroyed key's tombstone (a data object: no material).
const DESTROYED: &str = "destroyed:";

/// Where the token is and how to log in.
#[derive(Clone)]
pub struct Pkcs11Config {
    /// The PKCS#11 module, such as `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// The label of the token to use.
    pub token_label: String,
    /// The user PIN.
    pub pin: SecretString,
    /// Prepended to every object label this KMS creates (`<prefix><key id>#<version>`), so
    /// several deployments (or test runs) can share a token.
    pub label_prefix: String,
}

impl fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("pin", &"<redacted>")
            .field("label_prefix", &self.label_prefix)
            .finish()
    }
}

/// One initialised context per module and process: `C_Initialize` is process-global.
fn context(module: &Path) -> Result<Pkcs11> {
    static CONTEXTS: OnceLock<Mutex<HashMap<PathBuf, Pkcs11>>> = OnceLock::new();
    let mut contexts = CONTEXTS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    if let Some(found) = contexts.get(module) {
        return Ok(found.clone());
    }
    let pkcs11 = Pkcs11::new(module).map_err(|e| {
        Error::backend(
            format!("cannot load PKCS#11 module {}", module.display()),
            e,
        )
    })?;
    match pkcs11.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(map_p11("initialising the PKCS#11 module", e)),
    }
    contexts.insert(module.to_path_buf(), pkcs11.clone());
    Ok(pkcs11)
}

fn map_p11(what: &str, e: P11Error) -> Error {
    match e {
        P11Error::Pkcs11(
            RvError::EncryptedDataInvalid
            | RvError::EncryptedDataLenRange
            | RvError::DataInvalid
            | RvError::DataLenRange,
            _,
        )
        // SoftHSM2 reports a failed GCM tag check as CKR_GENERAL_ERROR from C_Decrypt.
        | P11Error::Pkcs11(RvError::GeneralError, Function::Decrypt) => {
            tracing::debug!(error = %e, "PKCS#11 refused to decrypt");
            Error::Decrypt
        }
        P11Error::Pkcs11(
            RvError::DeviceRemoved
            | RvError::DeviceError
            | RvError::DeviceMemory
            | RvError::TokenNotPresent
            | RvError::SessionHandleInvalid
            | RvError::SessionClosed
            | RvError::FunctionFailed,
            _,
        ) => Error::unavailable(format!("{what}: the token is unavailable"), Some(Box::new(e))),
        P11Error::Pkcs11(RvError::PinIncorrect, _) => {
            Error::WrongPassphrase("the PKCS#11 token (wrong PIN)".into())
        }
        other => {
            tracing::debug!(error = ?other, "PKCS#11 error");
            Error::backend(format!("{what}: {other:?}"), other)
        }
    }
}

/// One logged-in session per module and token, shared by every `Pkcs11Kms` of the process:
/// PKCS#11 logins are per application anyway, and SoftHSM2's file store fails
/// (`CKR_GENERAL_ERROR`) when several sessions create objects at once, so calls are serialised.
fn shared_session(config: &Pkcs11Config) -> Result<Arc<Mutex<Session>>> {
    type Sessions = HashMap<(PathBuf, String), Arc<Mutex<Session>>>;
    static SESSIONS: OnceLock<Mutex<Sessions>> = OnceLock::new();
    let mut sessions = SESSIONS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let key = (config.module.clone(), config.token_label.clone());
    if let Some(found) = sessions.get(&key) {
        return Ok(Arc::clone(found));
    }
    let pkcs11 = context(&config.module)?;
    let slots = pkcs11
        .get_slots_with_initialized_token()
        .map_err(|e| map_p11("listing PKCS#11 slots", e))?;
    let slot = slots
        .into_iter()
        .find(|slot| {
            pkcs11
                .get_token_info(*slot)
                .is_ok_and(|info| info.label().trim_end() == config.token_label)
        })
        .ok_or_else(|| Error::Backend {
            message: format!("no PKCS#11 token labelled {:?}", config.token_label),
            source: None,
        })?;
    let session = pkcs11
        .open_rw_session(slot)
        .map_err(|e| map_p11("opening a PKCS#11 session", e))?;
    match session.login(UserType::User, Some(&config.pin)) {
        Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
        Err(e) => return Err(map_p11("logging in to the token", e)),
    }
    let shared = Arc::new(Mutex::new(session));
    sessions.insert(key, Arc::clone(&shared));
    Ok(shared)
}

/// A [`Kms`] whose key-encryption keys are AES-256 keys generated inside a PKCS#11 token and
/// marked sensitive and non-extractable. They never leave it.
///
/// - **Wrapping** is AES-256-GCM inside the token, with a random 96-bit IV. The associated data
///   binds the key id, the version and the canonical [`EncryptionContext`]. The wrapped form is
///   `IV ‖ ciphertext ‖ tag` (60 bytes for a data key).
/// - **Versions** are separate token objects labelled `<prefix><key id>#<version>`.
/// - **Retiring** a version relabels its object `<prefix>retired:<key id>#<version>`. The key
///   stays in the token, for an operator to destroy, but this KMS no longer unwraps with it.
///
/// The calls block, so they run on the blocking thread pool, through one logged-in session per
/// module and token in the process. Tested against SoftHSM2 (see `scripts/softhsm-init.sh`).
pub struct Pkcs11Kms {
    config: Pkcs11Config,
    session: Arc<Mutex<Session>>,
}

impl fmt::Debug for Pkcs11Kms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Kms")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// The associated data of a wrap: key id, version and context, unambiguously.
fn wrap_aad(key: &KeyRef, context: &EncryptionContext) -> Vec<u8> {
    let id = key.id.as_str().as_bytes();
    let mut out = b"zt-pkcs11-wrap-v1".to_vec();
    out.push(id.len() as u8);
    out.extend_from_slice(id);
    out.extend_from_slice(&key.version.to_be_bytes());
    out.extend_from_slice(&context.canonical_bytes());
    out
}

impl Pkcs11Kms {
    /// Loads the module, finds the token by label, and logs in.
    ///
    /// # Errors
    /// [`Backend`](crate::ErrorKind::Backend) when the module cannot be loaded or the token is
    /// not found; [`WrongPassphrase`](crate::ErrorKind::WrongPassphrase) for a wrong PIN.
    pub async fn connect(config: Pkcs11Config) -> Result<Self> {
        let cfg = config.clone();
        let session = tokio::task::spawn_blocking(move || shared_session(&cfg))
            .await
            .map_err(|e| Error::backend("PKCS#11 task failed", e))??;
        Ok(Pkcs11Kms { config, session })
    }

    fn label(&self, key: &KeyRef) -> String {
        format!("{}{}#{}", self.config.label_prefix, key.id, key.version)
    }

    /// Runs `work` with the session on the blocking pool.
    async fn with_session<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Session) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let session = Arc::clone(&self.session);
        tokio::task::spawn_blocking(move || {
            let session = session.lock().unwrap_or_else(PoisonError::into_inner);
            work(&session)
        })
        .await
        .map_err(|e| Error::backend("PKCS#11 task failed", e))?
    }

    /// The object labelled exactly `label`, if any.
    fn find(session: &Session, label: &str) -> Result<Option<ObjectHandle>> {
        let found = session
            .find_objects(&[
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::Label(label.as_bytes().to_vec()),
            ])
            .map_err(|e| map_p11("finding a key", e))?;
        Ok(found.into_iter().next())
    }

    /// The tombstone of a destroyed `key_id`, if it was destroyed.
    fn tombstone(session: &Session, prefix: &str, key_id: &KeyId) -> Result<Option<ObjectHandle>> {
        let found = session
            .find_objects(&[
                Attribute::Class(ObjectClass::DATA),
                Attribute::Label(format!("{prefix}{DESTROYED}{key_id}").into_bytes()),
            ])
            .map_err(|e| map_p11("finding a tombstone", e))?;
        Ok(found.into_iter().next())
    }

    /// Version `version` of `key_id`: whether it is retired, and its handle.
    fn find_version(
        session: &Session,
        prefix: &str,
        key_id: &KeyId,
        version: u32,
    ) -> Result<Option<(bool, ObjectHandle)>> {
        if let Some(handle) = Self::find(session, &format!("{prefix}{key_id}#{version}"))? {
            return Ok(Some((false, handle)));
        }
        Ok(
            Self::find(session, &format!("{prefix}{RETIRED}{key_id}#{version}"))?
                .map(|handle| (true, handle)),
        )
    }

    /// Every version of `key_id` (versions run from 1 without gaps): (version, retired, handle).
    /// Looks objects up by exact label, so other keys in a shared token are never touched.
    fn versions_in(
        session: &Session,
        prefix: &str,
        key_id: &KeyId,
    ) -> Result<Vec<(u32, bool, ObjectHandle)>> {
        let mut out = Vec::new();
        for version in 1u32.. {
            match Self::find_version(session, prefix, key_id, version)? {
                Some((retired, handle)) => out.push((version, retired, handle)),
                None => break,
            }
        }
        Ok(out)
    }

    fn generate(session: &Session, label: String) -> Result<()> {
        session
            .generate_key(
                &Mechanism::AesKeyGen,
                &[
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::ValueLen(32.into()),
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(true),
                    Attribute::Label(label.into_bytes()),
                ],
            )
            .map(|_| ())
            .map_err(|e| map_p11("generating a key in the token", e))
    }
}

#[async_trait]
impl Kms for Pkcs11Kms {
    async fn create_key(&self, key_id: &KeyId) -> Result<KeyRef> {
        let prefix = self.config.label_prefix.clone();
        let id = key_id.clone();
        let key = KeyRef {
            id: key_id.clone(),
            version: 1,
        };
        let label = self.label(&key);
        self.with_session(move |session| {
            if Self::tombstone(session, &prefix, &id)?.is_some() {
                return Err(Error::KeyDestroyed(id.to_string()));
            }
            if !Self::versions_in(session, &prefix, &id)?.is_empty() {
                return Err(Error::invalid(format!("key {id} exists already")));
            }
            Self::generate(session, label)
        })
        .await?;
        Ok(key)
    }

    async fn key_versions(&self, key_id: &KeyId) -> Result<Vec<KeyVersion>> {
        let prefix = self.config.label_prefix.clone();
        let id = key_id.clone();
        let versions = self
            .with_session(move |session| Self::versions_in(session, &prefix, &id))
            .await?;
        let current = versions.iter().map(|(v, _, _)| *v).max();
        if current.is_none() {
            return Err(Error::KeyNotFound(key_id.to_string()));
        }
        Ok(versions
            .into_iter()
            .map(|(version, retired, _)| KeyVersion {
                version,
                state: if retired {
                    KeyState::Retired
                } else if Some(version) == current {
                    KeyState::Current
                } else {
                    KeyState::Enabled
                },
            })
            .collect())
    }

    async fn wrap(
        &self,
        key_id: &KeyId,
        key: &DataKey,
        context: &EncryptionContext,
    ) -> Result<WrappedKey> {
        let prefix = self.config.label_prefix.clone();
        let id = key_id.clone();
        let context = context.clone();
        let plain = zeroize::Zeroizing::new(*key.expose());
        self.with_session(move |session| {
            let versions = Self::versions_in(session, &prefix, &id)?;
            let Some(&(version, _, handle)) = versions.last() else {
                return Err(Error::KeyNotFound(id.to_string()));
            };
            let key_ref = KeyRef { id, version };
            let aad = wrap_aad(&key_ref, &context);
            let mut iv = [0u8; IV_LEN];
            rand::rng().fill_bytes(&mut iv);
            let mut iv_param = iv;
            let params = GcmParams::new(&mut iv_param, &aad, TAG_BITS.into())
                .map_err(|e| map_p11("GCM parameters", e))?;
            let sealed = session
                .encrypt(&Mechanism::AesGcm(params), handle, plain.as_ref())
                .map_err(|e| map_p11("wrapping in the token", e))?;
            let mut ciphertext = iv.to_vec();
            ciphertext.extend_from_slice(&sealed);
            Ok(WrappedKey {
                key: key_ref,
                ciphertext,
            })
        })
        .await
    }

    async fn unwrap(&self, wrapped: &WrappedKey, context: &EncryptionContext) -> Result<DataKey> {
        let prefix = self.config.label_prefix.clone();
        let wrapped = wrapped.clone();
        let context = context.clone();
        self.with_session(move |session| {
            let found = Self::find_version(session, &prefix, &wrapped.key.id, wrapped.key.version)?;
            let Some((retired, handle)) = found else {
                return Err(Error::KeyNotFound(wrapped.key.to_string()));
            };
            if retired {
                return Err(Error::KeyRetired(wrapped.key.to_string()));
            }
            if wrapped.ciphertext.len() != IV_LEN + crate::KEY_LEN + 16 {
                return Err(Error::Decrypt);
            }
            let (iv, sealed) = wrapped.ciphertext.split_at(IV_LEN);
            let mut iv: [u8; IV_LEN] = iv.try_into().map_err(|_| Error::Decrypt)?;
            let aad = wrap_aad(&wrapped.key, &context);
            let params = GcmParams::new(&mut iv, &aad, TAG_BITS.into())
                .map_err(|e| map_p11("GCM parameters", e))?;
            let plain = zeroize::Zeroizing::new(
                session
                    .decrypt(&Mechanism::AesGcm(params), handle, sealed)
                    .map_err(|e| map_p11("unwrapping in the token", e))?,
            );
            DataKey::from_slice(&plain).map_err(|_| Error::Decrypt)
        })
        .await
    }

    async fn rotate(&self, key_id: &KeyId) -> Result<u32> {
        let prefix = self.config.label_prefix.clone();
        let id = key_id.clone();
        self.with_session(move |session| {
            let versions = Self::versions_in(session, &prefix, &id)?;
            let Some(&(last, _, _)) = versions.last() else {
                return Err(Error::KeyNotFound(id.to_string()));
            };
            let next = last
                .checked_add(1)
                .ok_or_else(|| Error::invalid(format!("key {id} has run out of versions")))?;
            Self::generate(session, format!("{prefix}{id}#{next}"))?;
            Ok(next)
        })
        .await
    }

    async fn retire(&self, key_id: &KeyId, version: u32) -> Result<()> {
        let prefix = self.config.label_prefix.clone();
        let id = key_id.clone();
        self.with_session(move |session| {
            let versions = Self::versions_in(session, &prefix, &id)?;
            let current = versions.iter().map(|(v, _, _)| *v).max();
            let Some(&(_, retired, handle)) = versions.iter().find(|(v, _, _)| *v == version)
            else {
                return Err(Error::KeyNotFound(format!("{id}#{version}")));
            };
            if Some(version) == current {
                return Err(Error::invalid(format!(
                    "{id}#{version} is the current version; rotate before retiring it"
                )));
            }
            if retired {
                return Ok(());
            }
            session
                .update_attributes(
                    handle,
                    &[Attribute::Label(
                        format!("{prefix}{RETIRED}{id}#{version}").into_bytes(),
                    )],
                )
                .map_err(|e| map_p11("retiring a key version", e))
        })
        .await
    }

    /// Destroys every version's object in the token (C_DestroyObject) and leaves a data object
    /// as a tombstone, so the id is not made again.
    async fn destroy(&self, key_id: &KeyId) -> Result<()> {
        let prefix = self.config.label_prefix.clone();
        let id = key_id.clone();
        self.with_session(move |session| {
            let versions = Self::versions_in(session, &prefix, &id)?;
            if versions.is_empty() {
                return match Self::tombstone(session, &prefix, &id)? {
                    Some(_) => Ok(()),
                    None => Err(Error::KeyNotFound(id.to_string())),
                };
            }
            if Self::tombstone(session, &prefix, &id)?.is_none() {
                session
                    .create_object(&[
                        Attribute::Class(ObjectClass::DATA),
                        Attribute::Token(true),
                        Attribute::Private(true),
                        Attribute::Label(format!("{prefix}{DESTROYED}{id}").into_bytes()),
                    ])
                    .map_err(|e| map_p11("writing a tombstone", e))?;
            }
            // Newest first: versions are found from 1 up to the first gap, so one cut short
            // leaves the rest findable by the next call.
            for (_, _, handle) in versions.into_iter().rev() {
                session
                    .destroy_object(handle)
                    .map_err(|e| map_p11("destroying a key version", e))?;
            }
            Ok(())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use cryptoki::object::AttributeType;

    use super::*;

    /// The key material stays in the token: sensitive, not extractable, and its value unreadable.
    #[tokio::test]
    async fn keys_never_leave_the_token() {
        let var = |name| std::env::var(name).ok();
        let (Some(module), Some(token), Some(pin)) = (
            var("ZT_TEST_PKCS11_MODULE"),
            var("ZT_TEST_PKCS11_TOKEN"),
            var("ZT_TEST_PKCS11_PIN"),
        ) else {
            println!("skipped: keys_never_leave_the_token (ZT_TEST_PKCS11_MODULE is not set)");
            return;
        };
        let prefix = format!("zt-test-{:016x}:", rand::random::<u64>());
        let kms = Pkcs11Kms::connect(Pkcs11Config {
            module: module.into(),
            token_label: token,
            pin: SecretString::from(pin),
            label_prefix: prefix.clone(),
        })
        .await
        .unwrap();
        let id = KeyId::new("sealed-in").unwrap();
        kms.create_key(&id).await.unwrap();
        let label = format!("{prefix}sealed-in#1");
        kms.with_session(move |session| {
            let handle = Pkcs11Kms::find(session, &label)?.expect("created");
            let flags = session
                .get_attributes(handle, &[AttributeType::Sensitive, AttributeType::Extractable])
                .unwrap();
            assert!(flags.contains(&Attribute::Sensitive(true)), "{flags:?}");
            assert!(flags.contains(&Attribute::Extractable(false)), "{flags:?}");
            let value = session.get_attributes(handle, &[AttributeType::Value]);
            assert!(
                !matches!(&value, Ok(attrs) if attrs.iter().any(|a| matches!(a, Attribute::Value(_)))),
                "the key value was readable: {value:?}"
            );
            Ok(())
        })
        .await
        .unwrap();
    }
}
