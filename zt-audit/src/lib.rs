//! # zt-audit
//!
//! The tamper-evident audit log of zt.
//!
//! **Built so far:**
//! - [`merkle`]: RFC 6962 / RFC 9162 Merkle tree hashing with inclusion and consistency proofs, and
//!   a verifier that shares only the hash functions with the generator. It is checked against the
//!   transparency-dev vectors and the RFC 6962 known answers.
//! - [`entry`]: the canonical encoding of an audit event, the bytes the tree hashes.
//! - [`log`]: the append-only log over `zt_storage::KvStore`. Appends are group-committed under a
//!   linear head; proofs are read from stored subtree roots.
//! - [`checkpoint`]: signed tree heads in the C2SP tlog-checkpoint and signed-note formats, with
//!   Ed25519, checked against the independent `signed_note` crate.
//!
//! **Still to come with this crate's issue:** the log itself, implementing `zt_core::AuditSink`.
//! - Separate security and compliance stores, fed by the central classification in zt-core.
//! - Pruning that keeps proofs verifiable.
//! - The independent verifier over a whole log.

pub mod checkpoint;
pub mod entry;
mod error;
pub mod layout;
pub mod log;
pub mod merkle;
pub mod trail;
pub mod verify;

pub use error::{Error, Result};
