//! Sealed archives: streams of named parts in the [age] format, with a signed manifest.
//!
//! An archive is an age file (X25519 recipients, one or more) whose plaintext is a POSIX
//! `ustar` tar stream, so that standard tools open it: `age -d -i key.txt a.age | tar -x`.
//! The tar stream holds, in order:
//!
//! 1. the **parts**, each a regular file, as the writer appended them;
//! 2. `MANIFEST.json`: the archive's kind, creation time, the caller's metadata and, for every
//!    part in order, its name, size and SHA-256;
//! 3. `MANIFEST.sig`: the base64 Ed25519 signature of the manifest by the signing key (for zt,
//!    the server's identity key), over `zt-archive/1 manifest\n` followed by the manifest's
//!    exact bytes.
//!
//! age authenticates the stream (ChaCha20-Poly1305 chunks, the last one marked), so a change
//! to the ciphertext or a cut is found by anyone who can open it. The signed manifest adds what
//! age cannot: that the parts are the signer's, in the signer's order, all of them. Whoever
//! holds a recipient's identity can write a new age file; they cannot sign for the server.
//!
//! [`ArchiveReader`] reads part by part in bounded memory and [`ArchiveReader::finish`]
//! checks the manifest against what was read; a reader must not act on the parts for good
//! before `finish` succeeds (a restore writes into a new directory and keeps it only then).
//! [`verify_archive`] does both, discarding the parts. Refusals are
//! [`Tampered`](crate::ErrorKind::Tampered) and name the part.
//!
//! Memory stays bounded whatever the size of the archive: parts are streamed in 64 KiB
//! chunks, and only the manifest (at most [`MANIFEST_LIMIT`] bytes) is held whole.
//!
//! ```
//! use std::collections::BTreeMap;
//! use zt_crypto::SigningKey;
//! use zt_crypto::archive::{ArchiveIdentity, ArchiveReader, ArchiveWriter};
//!
//! let identity = ArchiveIdentity::generate();
//! let server = SigningKey::generate();
//!
//! let mut writer = ArchiveWriter::new(Vec::new(), &[identity.recipient()], "export", 1_700_000_000)?;
//! writer.append_bytes("messages/0001.jsonl", b"{\"text\":\"hello\"}\n")?;
//! let (sealed, manifest) = writer.finish(BTreeMap::new(), &server)?;
//! assert_eq!(manifest.parts.len(), 1);
//!
//! let mut reader = ArchiveReader::open(sealed.as_slice(), &[identity])?;
//! while let Some(mut part) = reader.next_part()? {
//!     let mut text = String::new();
//!     std::io::Read::read_to_string(&mut part, &mut text).unwrap();
//!     assert_eq!((part.name(), text.as_str()), ("messages/0001.jsonl", "{\"text\":\"hello\"}\n"));
//! }
//! assert_eq!(reader.finish(&server.verifying_key())?, manifest);
//! # Ok::<(), zt_crypto::Error>(())
//! ```
//!
//! [age]: https://c2sp.org/age

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::io::{self, Read, Write};
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use crate::error::{Error, Result};
use crate::signing::{SigningKey, VerifyingKey};

/// The format name in every manifest.
pub const FORMAT: &str = "zt-archive/1";
/// The kind of a KMS recovery kit ([`Kms::recovery_kit`](crate::Kms::recovery_kit)).
pub const RECOVERY_KIT_KIND: &str = "kms-recovery-kit";
/// The name of the manifest member.
pub const MANIFEST_NAME: &str = "MANIFEST.json";
/// The name of the signature member.
pub const SIGNATURE_NAME: &str = "MANIFEST.sig";
/// The largest manifest a reader accepts (it is the one member read whole).
pub const MANIFEST_LIMIT: u64 = 16 << 20;
/// The largest part: what a ustar size field can say (8 GiB less one byte).
pub const PART_LIMIT: u64 = (1 << 33) - 1;
/// The longest part name, in bytes (the ustar name field).
pub const NAME_LIMIT: usize = 100;

/// What the signature covers before the manifest's bytes.
const SIGNATURE_CONTEXT: &[u8] = b"zt-archive/1 manifest\n";
const BLOCK: usize = 512;
/// The largest time a ustar time field holds; later times are written as this.
const MTIME_LIMIT: u64 = 0o77_777_777_777;
/// The largest signature member accepted (a base64 signature and a newline).
const SIGNATURE_LIMIT: u64 = 128;

/// The public half of an [`ArchiveIdentity`]: an age X25519 recipient (`age1…`).
#[derive(Clone, PartialEq, Eq)]
pub struct ArchiveRecipient(String);

impl ArchiveRecipient {
    fn age(&self) -> Result<age::x25519::Recipient> {
        age::x25519::Recipient::from_str(&self.0)
            .map_err(|e| Error::invalid(format!("not an age X25519 recipient: {e}")))
    }
}

impl FromStr for ArchiveRecipient {
    type Err = Error;

    /// Parses an `age1…` recipient.
    fn from_str(text: &str) -> Result<Self> {
        let recipient = age::x25519::Recipient::from_str(text.trim())
            .map_err(|e| Error::invalid(format!("not an age X25519 recipient: {e}")))?;
        Ok(ArchiveRecipient(recipient.to_string()))
    }
}

impl fmt::Display for ArchiveRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for ArchiveRecipient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ArchiveRecipient({})", self.0)
    }
}

impl Serialize for ArchiveRecipient {
    fn serialize<S: serde::Serializer>(
        &self,
        serializer: S,
    ) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ArchiveRecipient {
    fn deserialize<D: serde::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        ArchiveRecipient::from_str(&text).map_err(serde::de::Error::custom)
    }
}

/// An age X25519 identity: opens archives sealed to its [`recipient`](Self::recipient). Its
/// secret is never printed by `Debug`; [`to_secret_string`](Self::to_secret_string) gives the
/// `AGE-SECRET-KEY-1…` form the `age` command reads, for the one place it must go.
#[derive(Clone)]
pub struct ArchiveIdentity(age::x25519::Identity);

impl ArchiveIdentity {
    /// A fresh identity from the operating system's CSPRNG.
    pub fn generate() -> Self {
        ArchiveIdentity(age::x25519::Identity::generate())
    }

    /// Parses `AGE-SECRET-KEY-1…` (surrounding blank space and `#` comment lines, as in an age
    /// identity file, are skipped).
    ///
    /// # Errors
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) when no line is an identity.
    pub fn parse(text: &SecretString) -> Result<Self> {
        let line = text
            .expose_secret()
            .lines()
            .map(str::trim)
            .find(|line| !line.is_empty() && !line.starts_with('#'))
            .ok_or_else(|| Error::invalid("no age identity in the text"))?;
        age::x25519::Identity::from_str(line)
            .map(ArchiveIdentity)
            .map_err(|e| Error::invalid(format!("not an age X25519 identity: {e}")))
    }

    /// The secret in the `AGE-SECRET-KEY-1…` form. Never log it.
    pub fn to_secret_string(&self) -> SecretString {
        SecretString::from(self.0.to_string().expose_secret().to_owned())
    }

    /// The public half.
    pub fn recipient(&self) -> ArchiveRecipient {
        ArchiveRecipient(self.0.to_public().to_string())
    }
}

impl fmt::Debug for ArchiveIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ArchiveIdentity({}, <redacted>)", self.recipient())
    }
}

/// One part as the manifest records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartEntry {
    /// Its name in the archive.
    pub name: String,
    /// Its length in bytes.
    pub size: u64,
    /// SHA-256 of its bytes, lowercase hex.
    pub sha256: String,
}

/// What an archive holds, signed by its writer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// What the archive is (for zt: `backup`, `compliance-export`, `portability-export`).
    pub kind: String,
    /// When it was written, in seconds since the Unix epoch.
    pub created: u64,
    /// The signer's public key, base64.
    pub signer: String,
    /// The writer's own facts (a backup's id, an export's scope).
    pub metadata: BTreeMap<String, String>,
    /// Every part, in the order written.
    pub parts: Vec<PartEntry>,
}

impl Manifest {
    /// The sum of the parts' sizes.
    pub fn total_size(&self) -> u64 {
        self.parts.iter().map(|part| part.size).sum()
    }
}

/// Checks a part name: 1 to [`NAME_LIMIT`] bytes of `A-Z a-z 0-9 . _ - /`, relative, no empty,
/// `.` or `..` segment, and neither of the manifest's own names.
pub fn check_part_name(name: &str) -> Result<()> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/');
    if name.is_empty() || name.len() > NAME_LIMIT || !name.chars().all(allowed) {
        return Err(Error::invalid(format!(
            "part name {name:?}: use 1 to {NAME_LIMIT} characters of A-Z a-z 0-9 . _ - /"
        )));
    }
    if name
        .split('/')
        .any(|segment| segment.is_empty() || segment == "." || segment == "..")
    {
        return Err(Error::invalid(format!(
            "part name {name:?}: no leading, trailing or double '/', no '.' or '..'"
        )));
    }
    if name == MANIFEST_NAME || name == SIGNATURE_NAME {
        return Err(Error::invalid(format!("part name {name:?} is reserved")));
    }
    Ok(())
}

fn io_error(context: &str, e: io::Error) -> Error {
    Error::backend(format!("archive: {context}"), e)
}

// ---------------------------------------------------------------------------------------------
// ustar headers

fn octal(field: &mut [u8], value: u64) -> Result<()> {
    // digits, then a NUL
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    if text.len() > digits {
        return Err(Error::invalid(format!("{value} does not fit a tar field")));
    }
    field[..digits].copy_from_slice(text.as_bytes());
    field[digits] = 0;
    Ok(())
}

fn header(name: &str, size: u64, mtime: u64) -> Result<[u8; BLOCK]> {
    let mut block = [0u8; BLOCK];
    block[..name.len()].copy_from_slice(name.as_bytes());
    octal(&mut block[100..108], 0o600)?;
    octal(&mut block[108..116], 0)?;
    octal(&mut block[116..124], 0)?;
    octal(&mut block[124..136], size)?;
    octal(&mut block[136..148], mtime.min(MTIME_LIMIT))?;
    block[156] = b'0';
    block[257..263].copy_from_slice(b"ustar\0");
    block[263..265].copy_from_slice(b"00");
    block[148..156].fill(b' ');
    let sum: u64 = block.iter().map(|&b| u64::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    block[148..156].copy_from_slice(text.as_bytes());
    Ok(block)
}

fn padding(size: u64) -> usize {
    let rest = (size % BLOCK as u64) as usize;
    if rest == 0 { 0 } else { BLOCK - rest }
}

fn parse_octal(field: &[u8]) -> Option<u64> {
    let text = field.split(|&b| b == 0).next()?;
    let text = std::str::from_utf8(text).ok()?.trim_matches(' ');
    if text.is_empty() {
        return None;
    }
    u64::from_str_radix(text, 8).ok()
}

/// Parses a header this module wrote: it must be byte for byte the header [`header`] writes
/// for its name, size and time, so no byte of the tar stream escapes the manifest's signature.
/// Returns the name, size and modification time.
fn parse_header(block: &[u8; BLOCK]) -> std::result::Result<(String, u64, u64), String> {
    let stored = parse_octal(&block[148..156]).ok_or("a tar header's checksum field is damaged")?;
    let sum: u64 = block
        .iter()
        .enumerate()
        .map(|(i, &b)| {
            if (148..156).contains(&i) {
                32
            } else {
                u64::from(b)
            }
        })
        .sum();
    if stored != sum {
        return Err("a tar header's checksum does not match".into());
    }
    if &block[257..263] != b"ustar\0" || &block[263..265] != b"00" || block[156] != b'0' {
        return Err("a tar member is not a plain ustar file".into());
    }
    if block[345..500].iter().any(|&b| b != 0) {
        return Err("a tar member uses a name prefix".into());
    }
    let raw = block[..100].split(|&b| b == 0).next().unwrap_or_default();
    let name = std::str::from_utf8(raw)
        .map_err(|_| "a tar member's name is not UTF-8".to_string())?
        .to_string();
    let size = parse_octal(&block[124..136]).ok_or("a tar header's size field is damaged")?;
    let mtime = parse_octal(&block[136..148]).ok_or("a tar header's time field is damaged")?;
    if name.len() > NAME_LIMIT || header(&name, size, mtime).ok().as_ref() != Some(block) {
        return Err(format!(
            "the tar header of {name:?} is not one this format writes"
        ));
    }
    Ok((name, size, mtime))
}

/// Fails unless every byte is zero (padding and the end of the tar stream carry nothing).
fn zeros(bytes: &[u8], where_: &str) -> Result<()> {
    if bytes.iter().any(|&b| b != 0) {
        return Err(Error::tampered(format!(
            "{where_}: padding that is not zero"
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// writing

/// Writes an archive: [`append`](Self::append) parts, then [`finish`](Self::finish) signs the
/// manifest and closes the age stream. An archive not finished does not open (age refuses a
/// stream without its last chunk).
pub struct ArchiveWriter<W: Write> {
    out: age::stream::StreamWriter<W>,
    kind: String,
    created: u64,
    parts: Vec<PartEntry>,
    names: HashSet<String>,
    /// Set by a failed append: the stream is then unusable.
    broken: bool,
}

impl<W: Write> fmt::Debug for ArchiveWriter<W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArchiveWriter")
            .field("kind", &self.kind)
            .field("parts", &self.parts.len())
            .finish_non_exhaustive()
    }
}

impl<W: Write> ArchiveWriter<W> {
    /// Starts an archive of `kind` sealed to every one of `recipients`, written to `out`.
    /// `created` is the time in seconds since the Unix epoch (recorded, signed, and the parts'
    /// modification time).
    ///
    /// # Errors
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) without recipients;
    /// [`Backend`](crate::ErrorKind::Backend) when `out` fails.
    pub fn new(out: W, recipients: &[ArchiveRecipient], kind: &str, created: u64) -> Result<Self> {
        if recipients.is_empty() {
            return Err(Error::invalid("an archive needs at least one recipient"));
        }
        let parsed = recipients
            .iter()
            .map(ArchiveRecipient::age)
            .collect::<Result<Vec<_>>>()?;
        let encryptor =
            age::Encryptor::with_recipients(parsed.iter().map(|r| r as &dyn age::Recipient))
                .map_err(|e| Error::invalid(format!("archive recipients: {e}")))?;
        let out = encryptor
            .wrap_output(out)
            .map_err(|e| io_error("writing the header", e))?;
        Ok(ArchiveWriter {
            out,
            kind: kind.to_string(),
            created,
            parts: Vec::new(),
            names: HashSet::new(),
            broken: false,
        })
    }

    /// Appends a part of exactly `size` bytes read from `data`, streaming (64 KiB at a time).
    ///
    /// # Errors
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) for a bad or repeated name, a size over
    /// [`PART_LIMIT`], or `data` ending before `size` bytes (the writer is then unusable);
    /// [`Backend`](crate::ErrorKind::Backend) when reading or writing fails.
    pub fn append(&mut self, name: &str, size: u64, data: &mut dyn Read) -> Result<()> {
        self.usable()?;
        check_part_name(name)?;
        if size > PART_LIMIT {
            return Err(Error::invalid(format!(
                "part {name}: over {PART_LIMIT} bytes"
            )));
        }
        if self.names.contains(name) {
            return Err(Error::invalid(format!("part {name} was already appended")));
        }
        self.broken = true;
        let block = header(name, size, self.created)?;
        self.out
            .write_all(&block)
            .map_err(|e| io_error("writing a part", e))?;
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 64 * 1024];
        let mut left = size;
        while left > 0 {
            let want = usize::try_from(left.min(buffer.len() as u64)).unwrap_or(buffer.len());
            let got = match data.read(&mut buffer[..want]) {
                Ok(0) => {
                    return Err(Error::invalid(format!(
                        "part {name}: its source ended {left} bytes short of {size}"
                    )));
                }
                Ok(got) => got,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(io_error(&format!("reading part {name}"), e)),
            };
            hasher.update(&buffer[..got]);
            self.out
                .write_all(&buffer[..got])
                .map_err(|e| io_error("writing a part", e))?;
            left -= got as u64;
        }
        self.out
            .write_all(&[0u8; BLOCK][..padding(size)])
            .map_err(|e| io_error("writing a part", e))?;
        self.broken = false;
        self.names.insert(name.to_string());
        self.parts.push(PartEntry {
            name: name.to_string(),
            size,
            sha256: hex::encode(hasher.finalize()),
        });
        Ok(())
    }

    /// Appends a part held in memory.
    ///
    /// # Errors
    /// As [`append`](Self::append).
    pub fn append_bytes(&mut self, name: &str, bytes: &[u8]) -> Result<()> {
        let mut data = bytes;
        self.append(name, bytes.len() as u64, &mut data)
    }

    /// The parts appended so far.
    pub fn parts(&self) -> &[PartEntry] {
        &self.parts
    }

    /// Writes the manifest with `metadata`, signs it with `signer`, ends the tar and age
    /// streams and returns the output and the manifest.
    ///
    /// # Errors
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) after a failed append or for a
    /// manifest over [`MANIFEST_LIMIT`]; [`Backend`](crate::ErrorKind::Backend) when writing
    /// fails.
    pub fn finish(
        mut self,
        metadata: BTreeMap<String, String>,
        signer: &SigningKey,
    ) -> Result<(W, Manifest)> {
        self.usable()?;
        let manifest = Manifest {
            format: FORMAT.to_string(),
            kind: self.kind.clone(),
            created: self.created,
            signer: BASE64.encode(signer.verifying_key().to_bytes()),
            metadata,
            parts: std::mem::take(&mut self.parts),
        };
        let bytes = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| Error::invalid(format!("manifest: {e}")))?;
        if bytes.len() as u64 > MANIFEST_LIMIT {
            return Err(Error::invalid(format!(
                "the manifest would be over {MANIFEST_LIMIT} bytes: use fewer, larger parts"
            )));
        }
        let signature = signer.sign(&signed_bytes(&bytes));
        let signature = format!("{}\n", BASE64.encode(signature));
        for (name, member) in [
            (MANIFEST_NAME, bytes.as_slice()),
            (SIGNATURE_NAME, signature.as_bytes()),
        ] {
            let block = header(name, member.len() as u64, self.created)?;
            self.out
                .write_all(&block)
                .and_then(|()| self.out.write_all(member))
                .and_then(|()| {
                    self.out
                        .write_all(&[0u8; BLOCK][..padding(member.len() as u64)])
                })
                .map_err(|e| io_error("writing the manifest", e))?;
        }
        self.out
            .write_all(&[0u8; 2 * BLOCK])
            .map_err(|e| io_error("ending the archive", e))?;
        let mut out = self
            .out
            .finish()
            .map_err(|e| io_error("ending the archive", e))?;
        out.flush().map_err(|e| io_error("ending the archive", e))?;
        Ok((out, manifest))
    }

    fn usable(&self) -> Result<()> {
        if self.broken {
            return Err(Error::invalid(
                "an append failed part-way: this archive cannot be finished; start again",
            ));
        }
        Ok(())
    }
}

fn signed_bytes(manifest: &[u8]) -> Vec<u8> {
    let mut signed = Vec::with_capacity(SIGNATURE_CONTEXT.len() + manifest.len());
    signed.extend_from_slice(SIGNATURE_CONTEXT);
    signed.extend_from_slice(manifest);
    signed
}

// ---------------------------------------------------------------------------------------------
// reading

struct Current {
    name: String,
    size: u64,
    left: u64,
    hasher: Sha256,
}

/// Reads an archive part by part; see the [module](self) documentation.
pub struct ArchiveReader<R: Read> {
    input: age::stream::StreamReader<R>,
    current: Option<Current>,
    seen: Vec<PartEntry>,
    /// The manifest member's header, once reached: the parts are over.
    manifest_size: Option<u64>,
    /// The modification time of every member so far (all must be the manifest's `created`).
    mtime: Option<u64>,
    failed: bool,
}

impl<R: Read> fmt::Debug for ArchiveReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArchiveReader")
            .field("parts_read", &self.seen.len())
            .finish_non_exhaustive()
    }
}

/// Maps an error of the age stream while reading the payload.
fn payload_error(where_: &str, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => Error::tampered(format!(
            "{where_}: the encrypted stream is damaged, altered or cut short ({e})"
        )),
        _ => io_error(where_, e),
    }
}

impl<R: Read> ArchiveReader<R> {
    /// Opens an archive with whichever of `identities` it was sealed to.
    ///
    /// # Errors
    /// [`Decrypt`](crate::ErrorKind::Decrypt) when none of them opens it;
    /// [`Tampered`](crate::ErrorKind::Tampered) when the age header is damaged or altered;
    /// [`InvalidInput`](crate::ErrorKind::InvalidInput) when it is not an age file of
    /// recipients (a passphrase-sealed file, say).
    pub fn open(input: R, identities: &[ArchiveIdentity]) -> Result<Self> {
        let decryptor = age::Decryptor::new(input).map_err(|e| match e {
            age::DecryptError::Io(e) if e.kind() != io::ErrorKind::UnexpectedEof => {
                io_error("reading the header", e)
            }
            other => Error::tampered(format!(
                "not an age archive, or its header is damaged: {other}"
            )),
        })?;
        if decryptor.is_scrypt() {
            return Err(Error::invalid(
                "the archive is sealed with a passphrase, not to recipients",
            ));
        }
        let input = decryptor
            .decrypt(identities.iter().map(|i| &i.0 as &dyn age::Identity))
            .map_err(|e| match e {
                age::DecryptError::NoMatchingKeys => Error::Decrypt,
                age::DecryptError::Io(e) => io_error("reading the header", e),
                other => Error::tampered(format!("the archive's header does not verify: {other}")),
            })?;
        Ok(ArchiveReader {
            input,
            current: None,
            seen: Vec::new(),
            manifest_size: None,
            mtime: None,
            failed: false,
        })
    }

    /// The next part, or `None` once the parts are over. The previous part's unread bytes are
    /// read (and hashed) first.
    ///
    /// # Errors
    /// [`Tampered`](crate::ErrorKind::Tampered) when the stream is damaged, cut short, or holds
    /// something other than this module's parts.
    pub fn next_part(&mut self) -> Result<Option<Part<'_, R>>> {
        if self.failed {
            return Err(Error::tampered("an earlier read of this archive failed"));
        }
        if self.manifest_size.is_some() {
            return Ok(None);
        }
        let outcome = self.advance();
        if outcome.is_err() {
            self.failed = true;
        }
        Ok(outcome?.then_some(Part { reader: self }))
    }

    /// Finishes the current part; reads the next header. `true` when it starts a part.
    fn advance(&mut self) -> Result<bool> {
        if let Some(current) = self.current.as_ref() {
            let name = current.name.clone();
            io::copy(&mut PartBytes { reader: self }, &mut io::sink())
                .map_err(|e| payload_error(&format!("part {name}"), e))?;
            self.close_part()?;
        }
        let mut block = [0u8; BLOCK];
        let where_ = match self.seen.last() {
            Some(last) => format!("after part {}", last.name),
            None => "at the first part".to_string(),
        };
        self.input
            .read_exact(&mut block)
            .map_err(|e| payload_error(&where_, e))?;
        if block.iter().all(|&b| b == 0) {
            return Err(Error::tampered(format!(
                "{where_}: the archive ends without its manifest"
            )));
        }
        let (name, size, mtime) =
            parse_header(&block).map_err(|m| Error::tampered(format!("{where_}: {m}")))?;
        self.same_time(mtime, &where_)?;
        if name == MANIFEST_NAME {
            self.manifest_size = Some(size);
            return Ok(false);
        }
        check_part_name(&name)
            .map_err(|_| Error::tampered(format!("{where_}: a member named {name:?}")))?;
        if size > PART_LIMIT {
            return Err(Error::tampered(format!(
                "part {name}: a size over the limit"
            )));
        }
        self.current = Some(Current {
            name,
            size,
            left: size,
            hasher: Sha256::new(),
        });
        Ok(true)
    }

    fn same_time(&mut self, mtime: u64, where_: &str) -> Result<()> {
        match self.mtime {
            Some(seen) if seen != mtime => Err(Error::tampered(format!(
                "{where_}: members of one archive with different times"
            ))),
            _ => {
                self.mtime = Some(mtime);
                Ok(())
            }
        }
    }

    /// Records the current part (fully read) and checks its padding.
    fn close_part(&mut self) -> Result<()> {
        let Some(current) = self.current.take() else {
            return Ok(());
        };
        let mut pad = [0u8; BLOCK];
        let pad = &mut pad[..padding(current.size)];
        self.input
            .read_exact(pad)
            .map_err(|e| payload_error(&format!("part {}", current.name), e))?;
        zeros(pad, &format!("part {}", current.name))?;
        self.seen.push(PartEntry {
            name: current.name,
            size: current.size,
            sha256: hex::encode(current.hasher.finalize()),
        });
        Ok(())
    }

    /// Reads the rest (remaining parts are read and hashed), then the manifest and its
    /// signature, and checks them: signed by `signer`, and listing exactly the parts read,
    /// in their order, with their sizes and hashes. Returns the manifest.
    ///
    /// # Errors
    /// [`Tampered`](crate::ErrorKind::Tampered), naming the first part that differs (altered,
    /// out of order, missing or not in the manifest), or saying the manifest is signed by
    /// another key, does not verify, or the archive is cut short.
    pub fn finish(mut self, signer: &VerifyingKey) -> Result<Manifest> {
        while self.next_part()?.is_some() {}
        let manifest_size = self
            .manifest_size
            .ok_or_else(|| Error::tampered("the archive ends without its manifest"))?;
        if manifest_size > MANIFEST_LIMIT {
            return Err(Error::tampered("the manifest is over its size limit"));
        }
        let bytes = self.read_member(MANIFEST_NAME, manifest_size)?;
        let mut block = [0u8; BLOCK];
        self.input
            .read_exact(&mut block)
            .map_err(|e| payload_error("after the manifest", e))?;
        let (name, size, mtime) = parse_header(&block)
            .map_err(|m| Error::tampered(format!("after the manifest: {m}")))?;
        if name != SIGNATURE_NAME || size > SIGNATURE_LIMIT {
            return Err(Error::tampered(
                "the manifest is not followed by its signature",
            ));
        }
        self.same_time(mtime, "the signature")?;
        let signature = self.read_member(SIGNATURE_NAME, size)?;
        let mut end = [0u8; 2 * BLOCK];
        self.input
            .read_exact(&mut end)
            .map_err(|e| payload_error("at the end of the archive", e))?;
        let mut extra = [0u8; 1];
        let trailing = self
            .input
            .read(&mut extra)
            .map_err(|e| payload_error("at the end of the archive", e))?;
        if end.iter().any(|&b| b != 0) || trailing != 0 {
            return Err(Error::tampered(
                "something follows the manifest's signature",
            ));
        }

        let manifest: Manifest = serde_json::from_slice(&bytes)
            .map_err(|e| Error::tampered(format!("the manifest does not parse: {e}")))?;
        let expected = BASE64.encode(signer.to_bytes());
        if manifest.signer != expected {
            let named = BASE64
                .decode(&manifest.signer)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .and_then(|b| VerifyingKey::from_bytes(&b).ok())
                .map_or_else(|| "an unknown key".to_string(), |k| k.fingerprint());
            return Err(Error::tampered(format!(
                "the manifest is signed by {named}, not by the expected {}",
                signer.fingerprint()
            )));
        }
        let signature = std::str::from_utf8(&signature)
            .ok()
            .and_then(|text| BASE64.decode(text.trim_end_matches('\n')).ok())
            .and_then(|bytes| <[u8; 64]>::try_from(bytes).ok())
            .ok_or_else(|| Error::tampered("the manifest's signature is malformed"))?;
        signer
            .verify(&signed_bytes(&bytes), &signature)
            .map_err(|_| Error::tampered("the manifest's signature does not verify"))?;
        if self.mtime != Some(manifest.created.min(MTIME_LIMIT)) {
            return Err(Error::tampered("the members' time is not the manifest's"));
        }
        if manifest.format != FORMAT {
            return Err(Error::tampered(format!(
                "unknown archive format {:?}",
                manifest.format
            )));
        }
        compare_parts(&manifest.parts, &self.seen)?;
        Ok(manifest)
    }

    fn read_member(&mut self, name: &str, size: u64) -> Result<Vec<u8>> {
        let len =
            usize::try_from(size).map_err(|_| Error::tampered(format!("{name} is too large")))?;
        let mut bytes = vec![0u8; len + padding(size)];
        self.input
            .read_exact(&mut bytes)
            .map_err(|e| payload_error(name, e))?;
        zeros(&bytes[len..], name)?;
        bytes.truncate(len);
        Ok(bytes)
    }
}

/// Names the first difference between the signed list and the parts read.
fn compare_parts(signed: &[PartEntry], seen: &[PartEntry]) -> Result<()> {
    let position: HashMap<&str, usize> = signed
        .iter()
        .enumerate()
        .map(|(i, part)| (part.name.as_str(), i))
        .collect();
    for (i, part) in seen.iter().enumerate() {
        match position.get(part.name.as_str()) {
            None => {
                return Err(Error::tampered(format!(
                    "part {} is not in the signed manifest",
                    part.name
                )));
            }
            Some(&at) if at != i => {
                return Err(match signed.get(i) {
                    Some(expected) if !seen.iter().any(|s| s.name == expected.name) => {
                        Error::tampered(format!("part {} is missing", expected.name))
                    }
                    _ => Error::tampered(format!(
                        "part {} is out of order: read at position {}, signed at {}",
                        part.name,
                        i + 1,
                        at + 1
                    )),
                });
            }
            Some(&at) => {
                let expected = &signed[at];
                if expected.size != part.size || expected.sha256 != part.sha256 {
                    return Err(Error::tampered(format!("part {} was altered", part.name)));
                }
            }
        }
    }
    if let Some(missing) = signed.get(seen.len()) {
        return Err(Error::tampered(format!("part {} is missing", missing.name)));
    }
    Ok(())
}

/// The raw bytes of the current part (no error mapping), for draining.
struct PartBytes<'a, R: Read> {
    reader: &'a mut ArchiveReader<R>,
}

impl<R: Read> Read for PartBytes<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let reader = &mut *self.reader;
        let Some(current) = reader.current.as_mut() else {
            return Ok(0);
        };
        if current.left == 0 || buf.is_empty() {
            return Ok(0);
        }
        let want = usize::try_from(current.left.min(buf.len() as u64)).unwrap_or(buf.len());
        let got = reader.input.read(&mut buf[..want])?;
        if got == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the archive ends inside a part",
            ));
        }
        current.hasher.update(&buf[..got]);
        current.left -= got as u64;
        Ok(got)
    }
}

/// One part being read: its name, size and bytes ([`Read`]). An error reading it names the part
/// (kind [`InvalidData`](io::ErrorKind::InvalidData) when the archive is damaged or cut short).
pub struct Part<'a, R: Read> {
    reader: &'a mut ArchiveReader<R>,
}

impl<R: Read> fmt::Debug for Part<'_, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Part")
            .field("name", &self.name())
            .field("size", &self.size())
            .finish()
    }
}

impl<R: Read> Part<'_, R> {
    /// Its name.
    pub fn name(&self) -> &str {
        self.reader.current.as_ref().map_or("", |c| c.name.as_str())
    }

    /// Its length in bytes, as its header says (checked against the manifest by `finish`).
    pub fn size(&self) -> u64 {
        self.reader.current.as_ref().map_or(0, |c| c.size)
    }
}

impl<R: Read> Read for Part<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let outcome = PartBytes {
            reader: &mut *self.reader,
        }
        .read(buf);
        outcome.map_err(|e| {
            self.reader.failed = true;
            // Named only on failure: a read is the hot path of a restore.
            let name = self.name().to_string();
            io::Error::new(
                io::ErrorKind::InvalidData,
                payload_error(&format!("part {name}"), e),
            )
        })
    }
}

/// Reads a whole archive, discarding the parts, and checks it as
/// [`ArchiveReader::finish`] does. Returns the manifest.
///
/// # Errors
/// As [`ArchiveReader::open`] and [`ArchiveReader::finish`].
pub fn verify_archive<R: Read>(
    input: R,
    identities: &[ArchiveIdentity],
    signer: &VerifyingKey,
) -> Result<Manifest> {
    ArchiveReader::open(input, identities)?.finish(signer)
}

/// Helpers for the fuzz target and tests (not part of the API).
#[doc(hidden)]
pub mod fuzzing {
    use super::{ArchiveRecipient, Error, Result, Write as _};

    /// Seals `plain` as an age file to `recipient`: what anyone holding a recipient's identity
    /// can do, so the tar stream inside is untrusted input as much as the file is.
    pub fn seal_plaintext(plain: &[u8], recipient: &ArchiveRecipient) -> Result<Vec<u8>> {
        let recipient = recipient.age()?;
        let encryptor =
            age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
                .map_err(|e| Error::invalid(e.to_string()))?;
        let mut out = Vec::new();
        let mut writer = encryptor
            .wrap_output(&mut out)
            .map_err(|e| super::io_error("sealing", e))?;
        writer
            .write_all(plain)
            .map_err(|e| super::io_error("sealing", e))?;
        writer.finish().map_err(|e| super::io_error("sealing", e))?;
        Ok(out)
    }
}
