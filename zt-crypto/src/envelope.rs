//! The envelope format: XChaCha20-Poly1305 under a data key, with a key-commitment tag.
//!
//! ```text
//! offset  size  field
//! 0       3     magic "ZTE"
//! 3       1     format version (1)
//! 4       1     key id length L (1..=64)
//! 5       L     key id (ASCII)
//! 5+L     4     key version (u32, big endian)
//! 9+L     24    nonce (random)
//! 33+L    32    commitment tag
//! 65+L    n+16  ciphertext and Poly1305 tag
//! ```
//!
//! From the data key `K` and the nonce `N`:
//! - `PRK = HKDF-Extract(salt = N, ikm = K)` (SHA-256);
//! - the encryption key is `HKDF-Expand(PRK, "zt-envelope-v1 encryption", 32)`;
//! - the commitment tag is `HKDF-Expand(PRK, "zt-envelope-v1 commitment" ‖ header[..33+L], 32)`.
//!
//! `open` recomputes the commitment and compares it in constant time *before* decrypting, so an
//! envelope crafted to open under two keys (possible for bare Poly1305, which is not key
//! committing) is refused under every key but the one it was sealed with. The associated data of
//! the AEAD is the whole header followed by the caller's context, so the header (key id, version,
//! nonce, commitment) cannot be changed either. Every failure is the same opaque
//! [`Decrypt`](crate::ErrorKind::Decrypt) error.

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use hkdf::Hkdf;
use rand::Rng;
use sha2::Sha256;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

use crate::error::{Error, Result};
use crate::key::{DataKey, KEY_LEN};
use crate::kms::{KeyId, KeyRef};

const MAGIC: &[u8; 3] = b"ZTE";
const FORMAT_V1: u8 = 1;
/// The nonce length of XChaCha20-Poly1305.
pub const NONCE_LEN: usize = 24;
const COMMITMENT_LEN: usize = 32;
const TAG_LEN: usize = 16;
const ENCRYPTION_INFO: &[u8] = b"zt-envelope-v1 encryption";
const COMMITMENT_INFO: &[u8] = b"zt-envelope-v1 commitment";

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
    /// Reads the header, to learn which key to fetch before [`open`].
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
}

/// The header bytes before the commitment tag.
fn header_prefix(key: &KeyRef, nonce: &[u8; NONCE_LEN]) -> Vec<u8> {
    let id = key.id.as_str().as_bytes();
    let mut out = Vec::with_capacity(9 + id.len() + NONCE_LEN + COMMITMENT_LEN);
    out.extend_from_slice(MAGIC);
    out.push(FORMAT_V1);
    // KeyId::new caps ids at 64 bytes, so the length fits one byte.
    out.push(id.len() as u8);
    out.extend_from_slice(id);
    out.extend_from_slice(&key.version.to_be_bytes());
    out.extend_from_slice(nonce);
    out
}

/// The encryption key and commitment tag for `key`, `nonce` and the header prefix.
fn derive(
    key: &DataKey,
    nonce: &[u8; NONCE_LEN],
    prefix: &[u8],
) -> Result<(Zeroizing<[u8; KEY_LEN]>, [u8; COMMITMENT_LEN])> {
    let hkdf = Hkdf::<Sha256>::new(Some(nonce), key.expose());
    let mut encryption = Zeroizing::new([0u8; KEY_LEN]);
    let mut commitment = [0u8; COMMITMENT_LEN];
    // Both lengths are far below HKDF-SHA256's 8160-byte limit.
    hkdf.expand(ENCRYPTION_INFO, encryption.as_mut())
        .and_then(|()| hkdf.expand_multi_info(&[COMMITMENT_INFO, prefix], &mut commitment))
        .map_err(|_| Error::invalid("HKDF output length"))?;
    Ok((encryption, commitment))
}

/// Seals `plaintext` under `key`, named `key_ref` in the header, binding `context` (which must be
/// given again to open).
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
/// [`InvalidInput`](crate::ErrorKind::InvalidInput) only if the AEAD refuses the sizes.
pub fn seal(key: &DataKey, key_ref: &KeyRef, plaintext: &[u8], context: &[u8]) -> Result<Vec<u8>> {
    let mut nonce = [0u8; NONCE_LEN];
    rand::rng().fill_bytes(&mut nonce);
    seal_with_nonce(key, key_ref, &nonce, plaintext, context)
}

/// [`seal`] with a caller-chosen nonce, for known-answer vectors. Never reuse a nonce with a key:
/// production code calls [`seal`].
#[doc(hidden)]
pub fn seal_with_nonce(
    key: &DataKey,
    key_ref: &KeyRef,
    nonce: &[u8; NONCE_LEN],
    plaintext: &[u8],
    context: &[u8],
) -> Result<Vec<u8>> {
    let mut header = header_prefix(key_ref, nonce);
    let (encryption, commitment) = derive(key, nonce, &header)?;
    header.extend_from_slice(&commitment);
    let mut aad = Vec::with_capacity(header.len() + context.len());
    aad.extend_from_slice(&header);
    aad.extend_from_slice(context);
    let cipher = XChaCha20Poly1305::new(&(*encryption).into());
    let ciphertext = cipher
        .encrypt(
            &XNonce::from(*nonce),
            Payload {
                msg: plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| Error::invalid("the AEAD refused the input sizes"))?;
    let mut out = header;
    out.extend_from_slice(&ciphertext);
    Ok(out)
}

/// Opens an envelope sealed under `key` with the same `context`.
///
/// # Errors
/// [`Decrypt`](crate::ErrorKind::Decrypt) for every failure: not an envelope, another key
/// (commitment mismatch, checked before decrypting), another context, any altered byte.
pub fn open(key: &DataKey, envelope: &[u8], context: &[u8]) -> Result<Vec<u8>> {
    let header = EnvelopeHeader::parse(envelope)?;
    let prefix = &envelope[..header.len - COMMITMENT_LEN];
    let (encryption, commitment) = derive(key, &header.nonce, prefix)?;
    if !bool::from(commitment.ct_eq(&header.commitment)) {
        tracing::debug!(key = %header.key, "envelope rejected: commitment does not match the key");
        return Err(Error::Decrypt);
    }
    let mut aad = Vec::with_capacity(header.len + context.len());
    aad.extend_from_slice(&envelope[..header.len]);
    aad.extend_from_slice(context);
    let cipher = XChaCha20Poly1305::new(&(*encryption).into());
    cipher
        .decrypt(
            &XNonce::from(header.nonce),
            Payload {
                msg: &envelope[header.len..],
                aad: &aad,
            },
        )
        .map_err(|_| {
            tracing::debug!(key = %header.key, "envelope rejected: authentication failed");
            Error::Decrypt
        })
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
        let nonce = [7u8; NONCE_LEN];
        let mut header = header_prefix(key_ref, &nonce);
        let (encryption, _) = derive(key, &nonce, &header).unwrap();
        header.extend_from_slice(&commitment);
        let mut aad = header.clone();
        aad.extend_from_slice(context);
        let ciphertext = XChaCha20Poly1305::new(&(*encryption).into())
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .unwrap();
        header.extend_from_slice(&ciphertext);
        header
    }

    #[test]
    fn the_commitment_is_checked_before_decryption() {
        let (a, b) = (DataKey::generate(), DataKey::generate());
        let ref_a = key_ref("scope-a", 1);
        // A's honest commitment on an envelope whose ciphertext B would decrypt: refused.
        let honest_a = {
            let sealed = seal_with_nonce(&a, &ref_a, &[7u8; NONCE_LEN], b"x", b"").unwrap();
            EnvelopeHeader::parse(&sealed).unwrap().commitment
        };
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
        let nonce = [7u8; NONCE_LEN];
        let (_, commitment_b) = derive(&b, &nonce, &header_prefix(&ref_a, &nonce)).unwrap();
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
        let mut repointed = header_prefix(&key_ref("scope-b", 2), &header.nonce);
        repointed.extend_from_slice(&sealed[header.len - COMMITMENT_LEN..]);
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
