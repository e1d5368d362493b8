//! # zt-chat
//!
//! The chat domain of zt, composed from the other crates.
//!
//! **Status: not yet built.** This crate currently holds only this description; its contents arrive
//! with the zt-chat issue. It will hold workspaces, channels, groups and their membership sources,
//! messages and files, realtime fan-out, and the data lifecycle: retention, legal hold, export, user
//! deletion, wipe and encrypted backups.
