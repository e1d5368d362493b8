//! # zt-audit
//!
//! The tamper-evident audit log of zt.
//!
//! **Status: not yet built.** This crate currently holds only this description; its contents arrive
//! with the zt-audit issue. It will implement `zt_core::AuditSink` with:
//!
//! - separate security and compliance stores, fed by the central classification in zt-core;
//! - an append-only Merkle tree with RFC 6962 hashing, built on `zt_storage::KvStore`;
//! - signed checkpoints in the C2SP signed-note format, inclusion and consistency proofs;
//! - pruning that keeps proofs verifiable, and a verifier independent of the writer.
