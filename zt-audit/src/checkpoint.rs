//! Checkpoints: signed tree heads in the C2SP tlog-checkpoint and signed-note formats.
//!
//! A checkpoint body is three lines, then optional extension lines:
//!
//! ```text
//! <origin>
//! <tree size, decimal>
//! <root hash, base64>
//! ```
//!
//! A signed note is the body, an empty line, and one line per signature:
//! `— <key name> <base64(key hash ‖ Ed25519 signature)>`. The key hash is the first four bytes of
//! `SHA-256(key name ‖ "\n" ‖ 0x01 ‖ public key)`. A verifier key is written
//! `<key name>+<key hash, 8 hex digits>+<base64(0x01 ‖ public key)>`. Both formats are written by
//! hand here; tests check every note against the independent `signed_note` crate.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use sha2::{Digest, Sha256};
use zt_crypto::{SigningKey, VerifyingKey};

use crate::error::{Error, Result};
use crate::merkle::Hash;

const ALG_ED25519: u8 = 0x01;
const SIGNATURE_PREFIX: &str = "\u{2014} ";

/// A signed note's body (through its last newline) and its signature lines.
fn split_note(note: &str) -> Result<(&str, &str)> {
    let split = note
        .find("\n\n")
        .ok_or_else(|| Error::MalformedCheckpoint("no blank line before the signatures".into()))?;
    Ok((&note[..=split], &note[split + 2..]))
}

/// A tree head: which log, how many entries, and the root hash over them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The log's unique name, such as `zt.example/tenant-1/security`.
    pub origin: String,
    /// The number of entries.
    pub size: u64,
    /// The Merkle root over them.
    pub root: Hash,
    /// Extension lines, in order (usually none).
    pub extensions: Vec<String>,
}

fn valid_line(line: &str) -> bool {
    !line.is_empty() && !line.contains('\n')
}

impl Checkpoint {
    /// The checkpoint a signed note carries, without checking any signature: for reading what a
    /// store holds when no key is at hand. Trust it only after [`NoteVerifier::verify`].
    ///
    /// # Errors
    /// [`Error::MalformedCheckpoint`] when the note or its body is malformed.
    pub fn parse_note_unverified(note: &str) -> Result<Self> {
        Checkpoint::parse_body(split_note(note)?.0)
    }

    /// The body text.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when the origin or an extension is empty or spans lines.
    pub fn body(&self) -> Result<String> {
        if !valid_line(&self.origin) || !self.extensions.iter().all(|e| valid_line(e)) {
            return Err(Error::InvalidInput(
                "checkpoint origin and extensions must be single, non-empty lines".into(),
            ));
        }
        let mut body = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        );
        for extension in &self.extensions {
            body.push_str(extension);
            body.push('\n');
        }
        Ok(body)
    }

    /// Parses a body.
    ///
    /// # Errors
    /// [`Error::MalformedCheckpoint`] saying what is wrong.
    pub fn parse_body(body: &str) -> Result<Self> {
        let malformed = |why: &str| Error::MalformedCheckpoint(why.into());
        let text = body
            .strip_suffix('\n')
            .ok_or_else(|| malformed("the body must end with a newline"))?;
        let mut lines = text.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| malformed("no origin"))?;
        let size = lines
            .next()
            .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .filter(|s| *s == "0" || !s.starts_with('0'))
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| malformed("the tree size is not a decimal number"))?;
        let root: Hash = lines
            .next()
            .and_then(|r| BASE64.decode(r).ok())
            .and_then(|r| r.try_into().ok())
            .ok_or_else(|| malformed("the root is not a base64 SHA-256 hash"))?;
        let extensions: Vec<String> = lines.map(str::to_string).collect();
        if extensions.iter().any(String::is_empty) {
            return Err(malformed("empty extension line"));
        }
        Ok(Checkpoint {
            origin: origin.to_string(),
            size,
            root,
            extensions,
        })
    }
}

fn valid_key_name(name: &str) -> bool {
    !name.is_empty() && !name.chars().any(|c| c.is_whitespace() || c == '+')
}

fn key_hash(name: &str, public: &VerifyingKey) -> [u8; 4] {
    let mut hasher = Sha256::new();
    hasher.update(name.as_bytes());
    hasher.update(b"\n");
    hasher.update([ALG_ED25519]);
    hasher.update(public.to_bytes());
    let digest: [u8; 32] = hasher.finalize().into();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// Signs checkpoints as signed notes.
#[derive(Debug)]
pub struct NoteSigner {
    name: String,
    key: SigningKey,
}

impl NoteSigner {
    /// A signer called `name` (no spaces, no `+`), signing with `key`.
    ///
    /// # Errors
    /// [`Error::InvalidInput`] for an unacceptable name.
    pub fn new(name: impl Into<String>, key: SigningKey) -> Result<Self> {
        let name = name.into();
        if !valid_key_name(&name) {
            return Err(Error::InvalidInput(format!(
                "key name {name:?} has a space or '+'"
            )));
        }
        Ok(NoteSigner { name, key })
    }

    /// The verifier key others use to check this signer's notes.
    pub fn verifier_key(&self) -> String {
        let public = self.key.verifying_key();
        let mut encoded = vec![ALG_ED25519];
        encoded.extend_from_slice(&public.to_bytes());
        format!(
            "{}+{}+{}",
            self.name,
            hex_lower(&key_hash(&self.name, &public)),
            BASE64.encode(encoded)
        )
    }

    /// The signed note of `checkpoint`.
    ///
    /// # Errors
    /// As [`Checkpoint::body`].
    pub fn sign(&self, checkpoint: &Checkpoint) -> Result<String> {
        let body = checkpoint.body()?;
        let signature = self.key.sign(body.as_bytes());
        let mut blob = key_hash(&self.name, &self.key.verifying_key()).to_vec();
        blob.extend_from_slice(&signature);
        Ok(format!(
            "{body}\n{SIGNATURE_PREFIX}{} {}\n",
            self.name,
            BASE64.encode(blob)
        ))
    }
}

fn hex_lower(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks signed checkpoints against one verifier key.
#[derive(Debug, Clone)]
pub struct NoteVerifier {
    name: String,
    hash: [u8; 4],
    key: VerifyingKey,
}

impl NoteVerifier {
    /// Reads a verifier key (`name+hash+base64key`).
    ///
    /// # Errors
    /// [`Error::InvalidInput`] when it is malformed, not Ed25519, or its hash does not match.
    pub fn from_verifier_key(vkey: &str) -> Result<Self> {
        let bad = |why: &str| Error::InvalidInput(format!("verifier key: {why}"));
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(hash), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(bad("expected name+hash+key"));
        };
        if !valid_key_name(name) {
            return Err(bad("bad name"));
        }
        let key = BASE64.decode(key).map_err(|_| bad("key is not base64"))?;
        let Some((&ALG_ED25519, public)) = key.split_first() else {
            return Err(bad("not an Ed25519 key"));
        };
        let public: [u8; 32] = public.try_into().map_err(|_| bad("wrong key length"))?;
        let key = VerifyingKey::from_bytes(&public).map_err(|_| bad("not a valid key"))?;
        let expected = key_hash(name, &key);
        if hash != hex_lower(&expected) {
            return Err(bad("the key hash does not match"));
        }
        Ok(NoteVerifier {
            name: name.to_string(),
            hash: expected,
            key,
        })
    }

    /// Verifies a signed note carrying a checkpoint, and returns the checkpoint. Signatures by
    /// other keys are ignored; at least one by this key must verify, and none by it may fail.
    ///
    /// # Errors
    /// [`Error::MalformedCheckpoint`] for a malformed note or body; [`Error::BadSignature`]
    /// when no signature by this key verifies.
    pub fn verify(&self, note: &str) -> Result<Checkpoint> {
        let malformed = |why: &str| Error::MalformedCheckpoint(why.into());
        let (body, signatures) = split_note(note)?;
        let signatures = signatures
            .strip_suffix('\n')
            .ok_or_else(|| malformed("the signatures must end with a newline"))?;
        let mut verified = false;
        for line in signatures.split('\n') {
            let rest = line
                .strip_prefix(SIGNATURE_PREFIX)
                .ok_or_else(|| malformed("a signature line must start with an em dash"))?;
            let (name, blob) = rest
                .split_once(' ')
                .ok_or_else(|| malformed("a signature line needs a name and a signature"))?;
            let blob = BASE64
                .decode(blob)
                .map_err(|_| malformed("a signature is not base64"))?;
            if name != self.name || blob.get(..4) != Some(&self.hash[..]) {
                continue;
            }
            let signature: [u8; 64] = blob[4..]
                .try_into()
                .map_err(|_| Error::BadSignature(self.name.clone()))?;
            self.key
                .verify(body.as_bytes(), &signature)
                .map_err(|_| Error::BadSignature(self.name.clone()))?;
            verified = true;
        }
        if !verified {
            return Err(Error::BadSignature(self.name.clone()));
        }
        Checkpoint::parse_body(body)
    }
}
