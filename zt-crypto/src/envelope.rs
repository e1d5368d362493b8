//! The envelope format: XChaCha20-Poly1305 under a data key, with a key-commitment tag.
//!
//! ```text
//! offset  size  field
//! 0       3     magic "ZTE"
//! 3       1     format version (1)
//! 4       1     key id length L (1..=128)
//! 5       L     key id (ASCII)
//! 5+L     4     key version (u32, big endian)
//! 9+L     24    nonce (random)
//! 33+L    32    commitment tag
//! 65+L    n+16  ciphertext and Poly1305 tag
//! ```
//!
//! From the data key `K`, with `PRK = HKDF-Extract(salt = "zt-envelope-v1", ikm = K)` (SHA-256):
//! - the encryption key is `HKDF-Expand(PRK, "encryption", 32)`;
//! - the commitment tag is `HKDF-Expand(PRK, "commitment" ‖ header[..9+L], 32)`: it commits to
//!   the key and to the key id and version the header names.
//!
//! The AEAD's associated data is the caller's context. Every header byte is bound all the same:
//! - the key id and version (and magic and format) through the commitment, which is derived over
//!   them and checked;
//! - the nonce by the AEAD itself;
//! - the commitment by the check.
//!
//! Keeping the header out of the associated data also keeps Poly1305 on its fast, four-block path.
//!
//! `open` compares the commitment in constant time *before* decrypting. Poly1305 alone is not
//! key-committing: an envelope can be crafted to open under two keys. With the commitment, such
//! an envelope is refused under every key but the one it names, unless an attacker finds two keys
//! whose HKDF outputs collide. Every failure is the same opaque
//! [`Decrypt`](crate::ErrorKind::Decrypt) error.
//!
//! Both derived values depend only on the key and its name, not on the nonce. So an
//! [`EnvelopeKey`] derives them once and each message costs one random nonce on top of the raw
//! AEAD (see docs/PERFORMANCE.md).

use std::fmt;

use hkdf::Hkdf;
use rand::Rng;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize as _, Zeroizing};

use crate::error::{Error, Result};
use crate::key::{DataKey, KEY_LEN};
use crate::kms::{KeyId, KeyRef};

const MAGIC: &[u8; 3] = b"ZTE";
const FORMAT_V1: u8 = 1;
/// The nonce length of XChaCha20-Poly1305.
pub const NONCE_LEN: usize = 24;
const COMMITMENT_LEN: usize = 32;
const TAG_LEN: usize = 16;
const SALT: &[u8] = b"zt-envelope-v1";

/// The bytes an envelope adds to its plaintext for a key id of `key_id_len` bytes.
pub const fn overhead(key_id_len: usize) -> usize {
    9 + key_id_len + NONCE_LEN + COMMITMENT_LEN + TAG_LEN
}

/// The parsed header of an envelope: which key opens it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvelopeHeader {
    /// The data key the envelope was sealed with.
    pub key: KeyRef,
    nonce: [u8; NONCE_LEN],
    commitment: [u8; COMMITMENT_LEN],
    /// Header length in bytes (where the ciphertext starts).
    len: usize,
}

impl EnvelopeHeader {
    /// Reads the header, to learn which key to fetch before opening.
    ///
    /// # Errors
    /// [`Decrypt`](crate::ErrorKind::Decrypt) when the bytes are not an envelope.
    pub fn parse(envelope: &[u8]) -> Result<Self> {
        let malformed = |why: &str| {
            tracing::debug!(reason = why, "envelope rejected");
            Error::Decrypt
        };
        let rest = envelope
            .strip_prefix(MAGIC.as_slice())
            .ok_or_else(|| malformed("magic"))?;
        let (&version, rest) = rest.split_first().ok_or_else(|| malformed("short"))?;
        if version != FORMAT_V1 {
            return Err(malformed("format version"));
        }
        let (&id_len, rest) = rest.split_first().ok_or_else(|| malformed("short"))?;
        let id_len = usize::from(id_len);
        let id = rest.get(..id_len).ok_or_else(|| malformed("short"))?;
        let id = std::str::from_utf8(id)
            .ok()
            .and_then(|id| KeyId::new(id).ok())
            .ok_or_else(|| malformed("key id"))?;
        let rest = &rest[id_len..];
        let (version, rest) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| malformed("short"))?;
        let (nonce, rest) = rest
            .split_first_chunk::<NONCE_LEN>()
            .ok_or_else(|| malformed("short"))?;
        let (commitment, rest) = rest
            .split_first_chunk::<COMMITMENT_LEN>()
            .ok_or_else(|| malformed("short"))?;
        if rest.len() < TAG_LEN {
            return Err(malformed("short"));
        }
        Ok(EnvelopeHeader {
            key: KeyRef {
                id,
                version: u32::from_be_bytes(*version),
            },
            nonce: *nonce,
            commitment: *commitment,
            len: envelope.len() - rest.len(),
        })
    }

    /// The envelope's nonce.
    pub fn nonce(&self) -> &[u8; NONCE_LEN] {
        &self.nonce
    }
}

/// The header bytes that name the key: magic, format, key id and version.
fn key_header(key: &KeyRef) -> Vec<u8> {
    let id = key.id.as_str().as_bytes();
    let mut out = Vec::with_capacity(9 + id.len() + NONCE_LEN + COMMITMENT_LEN);
    out.extend_from_slice(MAGIC);
    out.push(FORMAT_V1);
    // KeyId::new caps ids at 128 bytes, so the length fits one byte.
    out.push(id.len() as u8);
    out.extend_from_slice(id);
    out.extend_from_slice(&key.version.to_be_bytes());
    out
}

/// A data key ready to seal and open envelopes: its encryption key and commitment are derived
/// once, here, rather than per message. Cache these, not raw data keys.
///
/// ```
/// use zt_crypto::envelope::EnvelopeKey;
/// use zt_crypto::{DataKey, KeyId, KeyRef};
///
/// let key = EnvelopeKey::new(&DataKey::generate(), KeyRef { id: KeyId::new("channel-7")?, version: 1 })?;
/// let sealed = key.seal(b"message", b"tenant=t1;row=42")?;
/// assert_eq!(key.open(&sealed, b"tenant=t1;row=42")?, b"message");
/// assert!(key.open(&sealed, b"tenant=t1;row=43").is_err()); // moved to another row
/// # Ok::<(), zt_crypto::Error>(())
/// ```
pub struct EnvelopeKey {
    key_ref: KeyRef,
    /// The header up to the nonce (magic, format, key id, version).
    key_header: Vec<u8>,
    /// The XChaCha20-Poly1305 key.
    encryption: Zeroizing<[u8; KEY_LEN]>,
    commitment: [u8; COMMITMENT_LEN],
    /// A further secret of the key for derivations elsewhere (the keyring's index key).
    export: Zeroizing<[u8; KEY_LEN]>,
}

impl fmt::Debug for EnvelopeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EnvelopeKey({}, <redacted>)", self.key_ref)
    }
}

impl EnvelopeKey {
    /// Derives the envelope keys of `key`, which the header will name as `key_ref`.
    ///
    /// # Errors
    /// Only if HKDF refuses its output length, which it does not for these sizes.
    pub fn new(key: &DataKey, key_ref: KeyRef) -> Result<Self> {
        let key_header = key_header(&key_ref);
        let hkdf = Hkdf::<Sha256>::new(Some(SALT), key.expose());
        let mut encryption = Zeroizing::new([0u8; KEY_LEN]);
        let mut commitment = [0u8; COMMITMENT_LEN];
        let mut export = Zeroizing::new([0u8; KEY_LEN]);
        hkdf.expand(b"encryption", encryption.as_mut())
            .and_then(|()| hkdf.expand_multi_info(&[b"commitment", &key_header], &mut commitment))
            .and_then(|()| hkdf.expand(b"export", export.as_mut()))
            .map_err(|_| Error::invalid("HKDF output length"))?;
        Ok(EnvelopeKey {
            key_ref,
            key_header,
            encryption,
            commitment,
            export,
        })
    }

    /// The key the header names.
    pub fn key_ref(&self) -> &KeyRef {
        &self.key_ref
    }

    /// `HKDF-Expand(PRK, "export", 32)`: a secret of this key for derivations that are not
    /// envelopes, independent of the encryption key and the commitment.
    pub(crate) fn export_secret(&self) -> &Zeroizing<[u8; KEY_LEN]> {
        &self.export
    }

    /// Seals `plaintext`, binding `context`, which must be given again to open.
    ///
    /// # Errors
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) only if the AEAD refuses the sizes.
    pub fn seal(&self, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        self.seal_with_nonce(&nonce, plaintext, context)
    }

    /// [`seal`](Self::seal) with a caller-chosen nonce, for known-answer vectors. Never reuse a
    /// nonce with a key.
    #[doc(hidden)]
    pub fn seal_with_nonce(
        &self,
        nonce: &[u8; NONCE_LEN],
        plaintext: &[u8],
        context: &[u8],
    ) -> Result<Vec<u8>> {
        let header_len = self.key_header.len() + NONCE_LEN + COMMITMENT_LEN;
        let mut out = Vec::with_capacity(header_len + plaintext.len() + TAG_LEN);
        out.extend_from_slice(&self.key_header);
        out.extend_from_slice(nonce);
        out.extend_from_slice(&self.commitment);
        out.extend_from_slice(plaintext);
        let (key, nonce) = self.message_key(nonce)?;
        let tag = key
            .seal_in_place_separate_tag(nonce, Aad::from(context), &mut out[header_len..])
            .map_err(|_| Error::invalid("the AEAD refused the input sizes"))?;
        out.extend_from_slice(tag.as_ref());
        Ok(out)
    }

    /// XChaCha20-Poly1305 as its definition builds it (draft-irtf-cfrg-xchacha, section 2.3):
    /// HChaCha20 of the key and the first 16 nonce bytes gives a subkey, which seals with
    /// IETF ChaCha20-Poly1305 (RFC 8439, ring's assembly) under the nonce `0000 ‖ nonce[16..]`.
    /// The bytes are XChaCha20-Poly1305's; the known-answer vectors check them against
    /// RustCrypto's implementation.
    fn message_key(&self, nonce: &[u8; NONCE_LEN]) -> Result<(LessSafeKey, Nonce)> {
        let mut head = [0u8; 16];
        head.copy_from_slice(&nonce[..16]);
        let mut subkey =
            chacha20::hchacha::<chacha20::R20>((&*self.encryption).into(), &head.into());
        let key = UnboundKey::new(&CHACHA20_POLY1305, subkey.as_slice());
        subkey.as_mut_slice().zeroize();
        let key = key.map_err(|_| Error::invalid("the AEAD refused the key length"))?;
        let mut short = [0u8; 12];
        short[4..].copy_from_slice(&nonce[16..]);
        Ok((LessSafeKey::new(key), Nonce::assume_unique_for_key(short)))
    }

    /// Whether `envelope`'s header names this key (its id and version): a byte comparison,
    /// no proof of anything. A reader of many rows uses it to keep the key it already has
    /// rather than look one up per row; [`open`](Self::open) still checks the commitment.
    pub fn names(&self, envelope: &[u8]) -> bool {
        envelope.starts_with(&self.key_header)
    }

    /// Opens an envelope sealed under this key with the same `context`.
    ///
    /// # Errors
    /// [`Decrypt`](crate::ErrorKind::Decrypt) for every failure: not an envelope, another key or
    /// key name (commitment mismatch, checked before decrypting), another context, any altered
    /// byte.
    pub fn open(&self, envelope: &[u8], context: &[u8]) -> Result<Vec<u8>> {
        let (nonce, start) = self.check_header(envelope)?;
        let mut plaintext = envelope[start..].to_vec();
        self.decrypt_body(&nonce, context, &mut plaintext)?;
        Ok(plaintext)
    }

    /// [`open`](Self::open), decrypting in the envelope's own buffer: no copy of the ciphertext,
    /// for readers that own what they read.
    ///
    /// ```
    /// use zt_crypto::envelope::EnvelopeKey;
    /// use zt_crypto::{DataKey, KeyId, KeyRef};
    ///
    /// let key = EnvelopeKey::new(&DataKey::generate(), KeyRef { id: KeyId::new("channel-7")?, version: 1 })?;
    /// let sealed = key.seal(b"message", b"row=42")?;
    /// assert!(key.names(&sealed));
    /// assert_eq!(key.open_owned(sealed.clone(), b"row=42")?, b"message");
    /// assert!(key.open_owned(sealed, b"row=43").is_err());
    /// # Ok::<(), zt_crypto::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`open`](Self::open).
    pub fn open_owned(&self, mut envelope: Vec<u8>, context: &[u8]) -> Result<Vec<u8>> {
        let (nonce, start) = self.check_header(&envelope)?;
        envelope.drain(..start);
        self.decrypt_body(&nonce, context, &mut envelope)?;
        Ok(envelope)
    }

    /// Checks that `envelope` names this key and carries its commitment (in constant time);
    /// returns the nonce and where the ciphertext starts.
    fn check_header(&self, envelope: &[u8]) -> Result<([u8; NONCE_LEN], usize)> {
        let fixed = self.key_header.len();
        let fields = envelope
            .strip_prefix(self.key_header.as_slice())
            .and_then(|rest| rest.split_first_chunk::<NONCE_LEN>())
            .and_then(|(nonce, rest)| Some((nonce, rest.split_first_chunk::<COMMITMENT_LEN>()?)))
            .filter(|(_, (_, body))| body.len() >= TAG_LEN);
        let Some((nonce, (commitment, _))) = fields else {
            // Parsed only to say why, for the debug log.
            match EnvelopeHeader::parse(envelope) {
                Ok(header) => tracing::debug!(
                    key = %header.key,
                    expected = %self.key_ref,
                    "envelope rejected: it names another key"
                ),
                Err(_) => tracing::debug!("envelope rejected: malformed"),
            }
            return Err(Error::Decrypt);
        };
        if !bool::from(self.commitment.ct_eq(commitment)) {
            tracing::debug!(key = %self.key_ref, "envelope rejected: commitment does not match the key");
            return Err(Error::Decrypt);
        }
        Ok((*nonce, fixed + NONCE_LEN + COMMITMENT_LEN))
    }

    /// Decrypts `body` (ciphertext and tag) in place and cuts the tag off.
    fn decrypt_body(
        &self,
        nonce: &[u8; NONCE_LEN],
        context: &[u8],
        body: &mut Vec<u8>,
    ) -> Result<()> {
        let len = body.len().checked_sub(TAG_LEN).ok_or(Error::Decrypt)?;
        let (key, nonce) = self.message_key(nonce)?;
        if key
            .open_in_place(nonce, Aad::from(context), body.as_mut_slice())
            .is_err()
        {
            // Whatever the failed attempt left in the buffer is not handed on.
            body.zeroize();
            tracing::debug!(key = %self.key_ref, "envelope rejected: authentication failed");
            return Err(Error::Decrypt);
        }
        body.truncate(len);
        Ok(())
    }
}

/// Seals `plaintext` under `key`, named `key_ref` in the header, binding `context`. For many
/// messages under one key, build an [`EnvelopeKey`] once instead.
///
/// ```
/// use zt_crypto::{DataKey, KeyId, KeyRef, envelope};
///
/// let key = DataKey::generate();
/// let key_ref = KeyRef { id: KeyId::new("channel-42")?, version: 1 };
/// let sealed = envelope::seal(&key, &key_ref, b"hello", b"tenant=t1")?;
/// assert_eq!(envelope::EnvelopeHeader::parse(&sealed)?.key, key_ref);
/// assert_eq!(envelope::open(&key, &sealed, b"tenant=t1")?, b"hello");
/// assert!(envelope::open(&key, &sealed, b"tenant=t2").is_err());
/// # Ok::<(), zt_crypto::Error>(())
/// ```
///
/// # Errors
/// As [`EnvelopeKey::seal`].
pub fn seal(key: &DataKey, key_ref: &KeyRef, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>> {
    EnvelopeKey::new(key, key_ref.clone())?.seal(plaintext, context)
}

/// Opens an envelope under `key`, for the key the header names.
///
/// # Errors
/// As [`EnvelopeKey::open`].
pub fn open(key: &DataKey, envelope: &[u8], context: &[u8]) -> Result<Vec<u8>> {
    let header = EnvelopeHeader::parse(envelope)?;
    EnvelopeKey::new(key, header.key)?.open(envelope, context)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn key_ref(id: &str, version: u32) -> KeyRef {
        KeyRef {
            id: KeyId::new(id).unwrap(),
            version,
        }
    }

    /// An envelope whose AEAD part is genuinely valid under `key`, but whose header carries
    /// `commitment` instead of the one `key` gives. Only the commitment check can refuse it.
    fn with_forged_commitment(
        key: &DataKey,
        key_ref: &KeyRef,
        commitment: [u8; COMMITMENT_LEN],
        plaintext: &[u8],
        context: &[u8],
    ) -> Vec<u8> {
        let mut forged = EnvelopeKey::new(key, key_ref.clone()).unwrap();
        forged.commitment = commitment;
        forged
            .seal_with_nonce(&[7u8; NONCE_LEN], plaintext, context)
            .unwrap()
    }

    #[test]
    fn the_commitment_is_checked_before_decryption() {
        let (a, b) = (DataKey::generate(), DataKey::generate());
        let ref_a = key_ref("scope-a", 1);
        // A's honest commitment on an envelope whose ciphertext B would decrypt: refused.
        let honest_a = EnvelopeKey::new(&a, ref_a.clone()).unwrap().commitment;
        let forged = with_forged_commitment(&b, &ref_a, honest_a, b"attack", b"");
        assert_eq!(
            open(&b, &forged, b"").unwrap_err().kind(),
            crate::ErrorKind::Decrypt
        );
        assert_eq!(
            open(&a, &forged, b"").unwrap_err().kind(),
            crate::ErrorKind::Decrypt
        );
        // The same construction with B's own commitment opens, so the refusal above came from
        // the commitment check alone.
        let commitment_b = EnvelopeKey::new(&b, ref_a.clone()).unwrap().commitment;
        let genuine = with_forged_commitment(&b, &ref_a, commitment_b, b"attack", b"");
        assert_eq!(open(&b, &genuine, b"").unwrap(), b"attack");
    }

    #[test]
    fn a_header_repointed_at_another_valid_key_fails() {
        let (a, b) = (DataKey::generate(), DataKey::generate());
        let sealed = seal(&a, &key_ref("scope-a", 1), b"secret", b"ctx").unwrap();
        // Rewrite the header to name scope-b#2 and open with scope-b's key: the commitment
        // (computed over the header) and the AEAD both refuse, as one opaque error.
        let header = EnvelopeHeader::parse(&sealed).unwrap();
        let mut repointed = key_header(&key_ref("scope-b", 2));
        repointed.extend_from_slice(&sealed[header.len - COMMITMENT_LEN - NONCE_LEN..]);
        assert_eq!(
            EnvelopeHeader::parse(&repointed).unwrap().key,
            key_ref("scope-b", 2)
        );
        assert_eq!(
            open(&b, &repointed, b"ctx").unwrap_err().kind(),
            crate::ErrorKind::Decrypt
        );
        assert_eq!(
            open(&a, &repointed, b"ctx").unwrap_err().kind(),
            crate::ErrorKind::Decrypt
        );
    }

    #[test]
    fn every_altered_byte_and_every_truncation_fails() {
        let key = DataKey::generate();
        let sealed = seal(&key, &key_ref("k", 3), b"some plaintext", b"ctx").unwrap();
        assert_eq!(sealed.len(), b"some plaintext".len() + overhead(1));
        for i in 0..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x80;
            assert!(open(&key, &bad, b"ctx").is_err(), "byte {i}");
        }
        for cut in 0..sealed.len() {
            assert!(open(&key, &sealed[..cut], b"ctx").is_err(), "cut at {cut}");
        }
        assert!(open(&key, &sealed, b"ctx2").is_err());
        assert!(open(&key, &sealed, b"").is_err());
    }

    proptest! {
        #[test]
        fn seal_then_open_round_trips(
            plaintext in proptest::collection::vec(any::<u8>(), 0..512),
            context in proptest::collection::vec(any::<u8>(), 0..64),
            version in any::<u32>(),
        ) {
            let key = DataKey::generate();
            let sealed = seal(&key, &key_ref("prop", version), &plaintext, &context).unwrap();
            prop_assert_eq!(EnvelopeHeader::parse(&sealed).unwrap().key.version, version);
            prop_assert_eq!(open(&key, &sealed, &context).unwrap(), plaintext);
        }

        #[test]
        fn parsing_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = EnvelopeHeader::parse(&bytes);
            let _ = open(&DataKey::from_bytes([1; KEY_LEN]), &bytes, b"");
        }
    }
}
