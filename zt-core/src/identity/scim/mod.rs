//! SCIM 2.0 (RFC 7643, RFC 7644): the pieces of the provisioning service that stand on their
//! own. Today that is the filter and PATCH-path language ([`parse_filter`], [`parse_path`]),
//! which takes text from identity providers and so is written by hand to bound what it accepts
//! and never panic (fuzz target `scim_filter`, its corpus replayed in zt-core's tests).

mod filter;

pub use filter::{
    AttrPath, CompValue, CompareOp, Filter, FilterError, FilterErrorKind, MAX_FILTER_DEPTH,
    MAX_FILTER_LEN, PatchPath, parse_filter, parse_path,
};
