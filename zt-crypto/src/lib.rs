//! # zt-crypto
//!
//! The cryptographic leaf of the zt workspace; it depends on no other zt crate.
//!
//! - [`envelope`]: data encryption. XChaCha20-Poly1305 under a 256-bit [`DataKey`], with a
//!   key-commitment tag checked before decryption, and the caller's context bound as associated
//!   data. Failures are one opaque [`ErrorKind::Decrypt`].
//! - [`Kms`]: key-encryption keys that never leave their KMS. It wraps and unwraps data keys
//!   under an [`EncryptionContext`] that must match, with versioned rotation and retirement.
//!   Adapters: [`LocalKms`] (a passphrase-sealed key file with AES-256-KWP wrapping) and, with the
//!   `testing` feature, [`InsecureFixedKms`]. All run the same [`conformance`] suite.
//!
//! - [`Keyring`]: tenant keys wrapped by the KMS, per-scope data keys (channel, user, file)
//!   wrapped by the tenant key, the index key that blinds lookups, bounded caching, an outage
//!   policy, and crypto-shredding ([`Keyring::destroy_scope_key`]).
//! - [`SigningKey`] / [`VerifyingKey`]: Ed25519 for the server identity and audit checkpoints.
//! - With the `kms-pkcs11` feature, `Pkcs11Kms`: key-encryption keys inside an HSM.
//! - With the `channel` feature, `channel` (the Noise XK realtime channel and the check of a
//!   server's signed channel key) and `pins` (the known-servers pin store).
//!
//! - [`archive`]: sealed archives for exports and backups: age files (so the `age` command
//!   opens them) holding a tar stream of parts and a manifest signed by the server's key,
//!   verified part by part in bounded memory.
//!
//! ## Why key commitment
//! Poly1305 is not key-committing. An attacker who can choose keys can craft one ciphertext that
//! opens under two keys (Len, Grubbs and Ristenpart, 2021), which breaks any design where a
//! ciphertext can reach more than one key, such as rotation, multiple recipients or a key picked
//! from a header. Every envelope therefore carries an HKDF-derived commitment to its key, and
//! `open` checks it before decrypting.
//!
//! ```
//! use zt_crypto::{DataKey, KeyId, KeyRef, envelope};
//!
//! let key = DataKey::generate();
//! let other = DataKey::generate();
//! let key_ref = KeyRef { id: KeyId::new("scope")?, version: 1 };
//! let sealed = envelope::seal(&key, &key_ref, b"secret", b"ctx")?;
//! assert_eq!(envelope::open(&other, &sealed, b"ctx").unwrap_err().kind(), zt_crypto::ErrorKind::Decrypt);
//! # Ok::<(), zt_crypto::Error>(())
//! ```

pub mod archive;
#[cfg(feature = "channel")]
pub mod channel;
#[cfg(test)]
mod conformance_runs;
pub mod envelope;
mod error;
mod key;
mod keyring;
mod keyset;
mod kms;
mod local;
#[cfg(feature = "channel")]
pub mod pins;
#[cfg(feature = "kms-pkcs11")]
mod pkcs11;
mod signing;
#[cfg(any(test, feature = "testing"))]
mod testing;

#[cfg(any(test, feature = "conformance"))]
pub mod conformance;

pub use error::{Error, ErrorKind, Result};
pub use key::{DataKey, KEY_LEN};
pub use keyring::{
    IndexKey, KeyRecords, Keyring, KeyringConfig, KeyringEvent, OutagePolicy, RecordVersion,
    TenantDestroyed,
};
pub use kms::{EncryptionContext, KeyId, KeyRef, KeyState, KeyVersion, Kms, WrappedKey};
pub use local::{KdfParams, LocalKms};
#[cfg(feature = "kms-pkcs11")]
pub use pkcs11::{Pkcs11Config, Pkcs11Kms};
pub use signing::{SigningKey, VerifyingKey};
#[cfg(any(test, feature = "testing"))]
pub use testing::{InsecureFixedKms, MemoryKeyRecords};
