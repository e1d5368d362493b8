//! Key material that never prints and is wiped when dropped.

use std::fmt;

use rand::Rng;
use zeroize::Zeroizing;

/// The length of every symmetric key in zt: 256 bits.
pub const KEY_LEN: usize = 32;

/// A 256-bit symmetric key (a data key, or key material inside a KMS).
///
/// Its bytes are wiped on drop and never appear in `Debug` output or logs.
///
/// ```
/// use zt_crypto::DataKey;
///
/// let key = DataKey::generate();
/// assert_eq!(format!("{key:?}"), "DataKey(<redacted>)");
/// assert_eq!(key.expose().len(), 32);
/// ```
#[derive(Clone)]
pub struct DataKey(Zeroizing<[u8; KEY_LEN]>);

impl DataKey {
    /// A fresh key from the thread's CSPRNG.
    pub fn generate() -> Self {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        rand::rng().fill_bytes(bytes.as_mut());
        DataKey(bytes)
    }

    /// A key with these bytes. Prefer [`generate`](Self::generate); this is for key material that
    /// comes from a KMS or a known-answer vector.
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> Self {
        DataKey(Zeroizing::new(bytes))
    }

    /// A key from a slice that must be exactly [`KEY_LEN`] bytes.
    ///
    /// # Errors
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) for another length.
    pub fn from_slice(bytes: &[u8]) -> crate::Result<Self> {
        let mut key = Zeroizing::new([0u8; KEY_LEN]);
        if bytes.len() != KEY_LEN {
            return Err(crate::Error::invalid(format!(
                "a key is {KEY_LEN} bytes, not {}",
                bytes.len()
            )));
        }
        key.copy_from_slice(bytes);
        Ok(DataKey(key))
    }

    /// The key bytes. Keep the borrow short and never log it.
    pub fn expose(&self) -> &[u8; KEY_LEN] {
        &self.0
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(<redacted>)")
    }
}

impl PartialEq for DataKey {
    /// Constant-time comparison.
    fn eq(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        self.0[..].ct_eq(&other.0[..]).into()
    }
}

impl Eq for DataKey {}
