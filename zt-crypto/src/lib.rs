//! # zt-crypto
//!
//! The cryptographic leaf of the zt workspace. It depends on no other zt crate.
//!
//! **Status: not yet built.** This crate currently holds only this description; its contents arrive
//! with the zt-crypto issue. It will hold:
//!
//! - envelope encryption: XChaCha20-Poly1305 data encryption under per-scope data keys that are
//!   wrapped by a KMS key, with a key-commitment tag checked before decryption;
//! - the object-safe `Kms` trait and its adapters (a local, passphrase-sealed key file using
//!   AES-256-KWP, and PKCS#11 hardware tokens), plus a conformance suite every adapter runs;
//! - keyrings with rotation and crypto-shredding, sealed archives for backups and exports;
//! - ed25519 signing keys, the Noise XK secure channel and server-identity pinning.
//!
//! See `docs/architecture.md` and the key hierarchy in the shared architecture notes.
