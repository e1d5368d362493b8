//! Key-encryption keys held in process memory: the core of the local adapters.
//!
//! A data key is wrapped with AES-256-KWP (RFC 5649) under a key-encryption key derived for the
//! exact key version and context:
//! `KEK = HKDF-SHA256(salt = "zt-kms-kek-v1", ikm = version material,
//! info = len(id) ‖ id ‖ version ‖ canonical(context))`. AES-KWP has no associated data, so the
//! context is bound through the KEK: under another context the integrity check of the unwrap fails.

use std::collections::BTreeMap;

use aes_kw::KwpAes256;
use aes_kw::cipher::KeyInit;
use hkdf::Hkdf;
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::key::{DataKey, KEY_LEN};
use crate::kms::{EncryptionContext, KeyId, KeyRef, KeyState, KeyVersion, WrappedKey};

const KEK_SALT: &[u8] = b"zt-kms-kek-v1";
/// An AES-KWP-wrapped 32-byte key: 32 bytes padded to whole semiblocks plus the 8-byte IV.
const WRAPPED_LEN: usize = KEY_LEN + 8;
const ENCODING_MAGIC: &[u8; 4] = b"ZTK1";

struct VersionEntry {
    material: DataKey,
    retired: bool,
}

struct KeyEntry {
    current: u32,
    versions: BTreeMap<u32, VersionEntry>,
}

/// Keys, their versions and states, in memory.
#[derive(Default)]
pub(crate) struct KeySet {
    keys: BTreeMap<KeyId, KeyEntry>,
}

fn kek(material: &DataKey, key: &KeyRef, context: &EncryptionContext) -> Result<KwpAes256> {
    let id = key.id.as_str().as_bytes();
    let context = context.canonical_bytes();
    let hkdf = Hkdf::<Sha256>::new(Some(KEK_SALT), material.expose());
    let mut okm = Zeroizing::new([0u8; KEY_LEN]);
    hkdf.expand_multi_info(
        &[&[id.len() as u8], id, &key.version.to_be_bytes(), &context],
        okm.as_mut(),
    )
    .map_err(|_| Error::invalid("HKDF output length"))?;
    KwpAes256::new_from_slice(okm.as_ref()).map_err(|_| Error::invalid("AES-KWP key length"))
}

impl KeySet {
    // A destroyed key stays as a tombstone: no versions, current 0.
    fn entry(&self, id: &KeyId) -> Result<&KeyEntry> {
        match self.keys.get(id) {
            Some(entry) if entry.versions.is_empty() => Err(Error::KeyDestroyed(id.to_string())),
            Some(entry) => Ok(entry),
            None => Err(Error::KeyNotFound(id.to_string())),
        }
    }

    fn entry_mut(&mut self, id: &KeyId) -> Result<&mut KeyEntry> {
        match self.keys.get_mut(id) {
            Some(entry) if entry.versions.is_empty() => Err(Error::KeyDestroyed(id.to_string())),
            Some(entry) => Ok(entry),
            None => Err(Error::KeyNotFound(id.to_string())),
        }
    }

    /// Destroys `id`: every version's material is dropped (and zeroised), a tombstone keeps the
    /// id from being created again. Idempotent.
    pub(crate) fn destroy(&mut self, id: &KeyId) -> Result<()> {
        let entry = self
            .keys
            .get_mut(id)
            .ok_or_else(|| Error::KeyNotFound(id.to_string()))?;
        entry.versions.clear();
        entry.current = 0;
        Ok(())
    }

    pub(crate) fn create(&mut self, id: &KeyId, material: DataKey) -> Result<KeyRef> {
        if self.keys.contains_key(id) {
            return Err(Error::invalid(format!("key {id} exists already")));
        }
        // The encoding counts keys in 16 bits; refuse rather than write a file that cannot be read.
        if self.keys.len() >= usize::from(u16::MAX) {
            return Err(Error::invalid("this key set holds the most keys it can"));
        }
        let mut versions = BTreeMap::new();
        versions.insert(
            1,
            VersionEntry {
                material,
                retired: false,
            },
        );
        self.keys.insert(
            id.clone(),
            KeyEntry {
                current: 1,
                versions,
            },
        );
        Ok(KeyRef {
            id: id.clone(),
            version: 1,
        })
    }

    pub(crate) fn versions(&self, id: &KeyId) -> Result<Vec<KeyVersion>> {
        let entry = self.entry(id)?;
        Ok(entry
            .versions
            .iter()
            .map(|(&version, v)| KeyVersion {
                version,
                state: if v.retired {
                    KeyState::Retired
                } else if version == entry.current {
                    KeyState::Current
                } else {
                    KeyState::Enabled
                },
            })
            .collect())
    }

    pub(crate) fn wrap(
        &self,
        id: &KeyId,
        key: &DataKey,
        context: &EncryptionContext,
    ) -> Result<WrappedKey> {
        let entry = self.entry(id)?;
        let version = entry
            .versions
            .get(&entry.current)
            .ok_or_else(|| Error::Corrupt(format!("key {id} has no current version")))?;
        let key_ref = KeyRef {
            id: id.clone(),
            version: entry.current,
        };
        let mut out = vec![0u8; WRAPPED_LEN];
        kek(&version.material, &key_ref, context)?
            .wrap_key(key.expose(), &mut out)
            .map_err(|_| Error::invalid("AES-KWP refused the key size"))?;
        Ok(WrappedKey {
            key: key_ref,
            ciphertext: out,
        })
    }

    pub(crate) fn unwrap(
        &self,
        wrapped: &WrappedKey,
        context: &EncryptionContext,
    ) -> Result<DataKey> {
        let entry = self.entry(&wrapped.key.id)?;
        let version = entry
            .versions
            .get(&wrapped.key.version)
            .ok_or_else(|| Error::KeyNotFound(wrapped.key.to_string()))?;
        if version.retired {
            return Err(Error::KeyRetired(wrapped.key.to_string()));
        }
        if wrapped.ciphertext.len() != WRAPPED_LEN {
            tracing::debug!(key = %wrapped.key, "unwrap rejected: wrong length");
            return Err(Error::Decrypt);
        }
        let mut out = Zeroizing::new([0u8; KEY_LEN]);
        let unwrapped = kek(&version.material, &wrapped.key, context)?
            .unwrap_key(&wrapped.ciphertext, out.as_mut())
            .map_err(|_| {
                tracing::debug!(key = %wrapped.key, "unwrap rejected: integrity check failed");
                Error::Decrypt
            })?;
        DataKey::from_slice(unwrapped).map_err(|_| Error::Decrypt)
    }

    pub(crate) fn rotate(&mut self, id: &KeyId, material: DataKey) -> Result<u32> {
        let entry = self.entry_mut(id)?;
        // The encoding counts versions in 16 bits.
        if entry.versions.len() >= usize::from(u16::MAX) {
            return Err(Error::invalid(format!(
                "key {id} holds the most versions it can"
            )));
        }
        let next = entry
            .versions
            .keys()
            .next_back()
            .copied()
            .unwrap_or(0)
            .checked_add(1)
            .ok_or_else(|| Error::invalid(format!("key {id} has run out of versions")))?;
        entry.versions.insert(
            next,
            VersionEntry {
                material,
                retired: false,
            },
        );
        entry.current = next;
        Ok(next)
    }

    pub(crate) fn retire(&mut self, id: &KeyId, version: u32) -> Result<()> {
        let entry = self.entry_mut(id)?;
        if version == entry.current {
            return Err(Error::invalid(format!(
                "{id}#{version} is the current version; rotate before retiring it"
            )));
        }
        let v = entry
            .versions
            .get_mut(&version)
            .ok_or_else(|| Error::KeyNotFound(format!("{id}#{version}")))?;
        v.retired = true;
        Ok(())
    }

    /// The binary form, for sealing: `"ZTK1"`, key count (u16), then per key: id length (u8),
    /// id, current version (u32), version count (u16), and per version: number (u32), retired
    /// flag (u8), 32 bytes of material. Integers are big endian. A destroyed key is its id with
    /// current version 0 and no versions.
    pub(crate) fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::new());
        out.extend_from_slice(ENCODING_MAGIC);
        out.extend_from_slice(&(self.keys.len() as u16).to_be_bytes());
        for (id, entry) in &self.keys {
            out.push(id.as_str().len() as u8);
            out.extend_from_slice(id.as_str().as_bytes());
            out.extend_from_slice(&entry.current.to_be_bytes());
            out.extend_from_slice(&(entry.versions.len() as u16).to_be_bytes());
            for (version, v) in &entry.versions {
                out.extend_from_slice(&version.to_be_bytes());
                out.push(u8::from(v.retired));
                out.extend_from_slice(v.material.expose());
            }
        }
        out
    }

    /// Reads [`encode`](Self::encode)'s form.
    pub(crate) fn decode(bytes: &[u8]) -> Result<Self> {
        let corrupt = |why: &str| Error::Corrupt(format!("key set: {why}"));
        let mut reader = Reader(bytes);
        if reader.take(4)? != ENCODING_MAGIC {
            return Err(corrupt("unknown format"));
        }
        let count = reader.u16()?;
        let mut keys = BTreeMap::new();
        for _ in 0..count {
            let id_len = usize::from(reader.u8()?);
            let id = std::str::from_utf8(reader.take(id_len)?)
                .ok()
                .and_then(|id| KeyId::new(id).ok())
                .ok_or_else(|| corrupt("bad key id"))?;
            let current = reader.u32()?;
            let mut versions = BTreeMap::new();
            for _ in 0..reader.u16()? {
                let version = reader.u32()?;
                let retired = match reader.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err(corrupt("bad version state")),
                };
                let material = DataKey::from_slice(reader.take(KEY_LEN)?)?;
                versions.insert(version, VersionEntry { material, retired });
            }
            // A destroyed key's tombstone: current 0, no versions.
            let destroyed = current == 0 && versions.is_empty();
            if !destroyed && !versions.contains_key(&current) {
                return Err(corrupt("current version missing"));
            }
            keys.insert(id, KeyEntry { current, versions });
        }
        if !reader.0.is_empty() {
            return Err(corrupt("trailing bytes"));
        }
        Ok(KeySet { keys })
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(Error::Corrupt("key set: truncated".into()));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        let b = self.take(2)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_encoding_round_trips_and_refuses_what_it_cannot_hold() {
        let mut keys = KeySet::default();
        let id = KeyId::new("k").unwrap();
        keys.create(&id, DataKey::from_bytes([1; KEY_LEN])).unwrap();
        keys.rotate(&id, DataKey::from_bytes([2; KEY_LEN])).unwrap();
        keys.retire(&id, 1).unwrap();
        let decoded = KeySet::decode(&keys.encode()).unwrap();
        assert_eq!(decoded.versions(&id).unwrap(), keys.versions(&id).unwrap());
        for cut in 0..keys.encode().len() {
            assert!(KeySet::decode(&keys.encode()[..cut]).is_err(), "cut {cut}");
        }
        // Fill the version count to its 16-bit limit: the next rotation is refused.
        let entry = keys.keys.get_mut(&id).unwrap();
        for v in 3..=u32::from(u16::MAX) {
            entry.versions.insert(
                v,
                VersionEntry {
                    material: DataKey::from_bytes([0; KEY_LEN]),
                    retired: false,
                },
            );
        }
        let err = keys.rotate(&id, DataKey::generate()).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::InvalidInput);
        assert!(
            KeySet::decode(&keys.encode()).is_ok(),
            "what was written still reads"
        );
    }
}
