//! Ed25519 signing keys: for audit checkpoints and the server's identity.

use std::fmt;

use ed25519_dalek::Signer as _;

use crate::error::{Error, Result};

/// An Ed25519 signing key. Its secret half is wiped on drop and never printed.
///
/// ```
/// use zt_crypto::SigningKey;
///
/// let key = SigningKey::generate();
/// let signature = key.sign(b"tree head");
/// key.verifying_key().verify(b"tree head", &signature)?;
/// assert!(key.verifying_key().verify(b"another head", &signature).is_err());
/// assert_eq!(format!("{key:?}"), format!("SigningKey({}, <redacted>)", key.verifying_key()));
/// # Ok::<(), zt_crypto::Error>(())
/// ```
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    /// A fresh key from the thread's CSPRNG.
    pub fn generate() -> Self {
        SigningKey(ed25519_dalek::SigningKey::generate(&mut rand::rng()))
    }

    /// The key with this 32-byte seed (for keys stored sealed elsewhere, and for vectors).
    pub fn from_seed(seed: &[u8; 32]) -> Self {
        SigningKey(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// The seed, to store the key sealed (for example in an envelope). Never log it.
    pub fn to_seed(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.0.to_bytes())
    }

    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        VerifyingKey(self.0.verifying_key())
    }

    /// Signs `message` (pure Ed25519, deterministic).
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.0.sign(message).to_bytes()
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey({}, <redacted>)", self.verifying_key())
    }
}

/// An Ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct VerifyingKey(ed25519_dalek::VerifyingKey);

impl VerifyingKey {
    /// The key with these 32 bytes.
    ///
    /// # Errors
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) when they are not a valid point.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self> {
        ed25519_dalek::VerifyingKey::from_bytes(bytes)
            .map(VerifyingKey)
            .map_err(|_| Error::invalid("not an Ed25519 public key"))
    }

    /// The 32 bytes.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// `SHA256:` and the unpadded base64 of SHA-256 over the key: how a server identity is
    /// shown to people, by the server and by the clients that pin it.
    ///
    /// ```
    /// let key = zt_crypto::SigningKey::from_seed(&[7; 32]).verifying_key();
    /// assert!(key.fingerprint().starts_with("SHA256:"));
    /// assert_eq!(key.fingerprint().len(), 7 + 43);
    /// ```
    pub fn fingerprint(&self) -> String {
        use base64::Engine as _;
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(self.to_bytes());
        format!(
            "SHA256:{}",
            base64::engine::general_purpose::STANDARD_NO_PAD.encode(digest)
        )
    }

    /// Verifies `signature` over `message` strictly: non-canonical encodings and small-order
    /// keys are refused (`verify_strict`).
    ///
    /// # Errors
    /// [`BadSignature`](crate::ErrorKind::BadSignature) when it does not verify.
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> Result<()> {
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        self.0
            .verify_strict(message, &signature)
            .map_err(|_| Error::BadSignature)
    }
}

impl fmt::Display for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in &self.to_bytes()[..8] {
            write!(f, "{byte:02x}")?;
        }
        f.write_str("…")
    }
}

impl fmt::Debug for VerifyingKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VerifyingKey({self})")
    }
}
