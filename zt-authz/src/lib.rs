//! # zt-authz
//!
//! Authorization for zt: deny by default, with decisions that explain themselves.
//!
//! **Status: not yet built.** This crate currently holds only this description; its contents arrive
//! with the zt-authz issue. It will hold tenant roles and permission flags, system roles, permission
//! cascades resolved when the role graph is built, group-scoped roles, segmentation of channels and
//! groups (public, private, hidden), an `Authorizer` returning a `Decision` with its reasons, and a
//! live change feed. It emits audit events only through the `zt_core::AuditSink` port.
