//! SCIM 2.0 (RFC 7643, RFC 7644): the provisioning service's parts that belong to identity.
//!
//! - The filter and PATCH-path language ([`parse_filter`], [`parse_path`]), which takes text
//!   from identity providers and so is written by hand to bound what it accepts and never panic
//!   (fuzz target `scim_filter`, its corpus replayed in zt-core's tests).
//! - The schemas served, as data ([`schema`]), and what they drive: the checking of bodies,
//!   PATCH with the shapes Entra ID and Okta send, projection and sorting ([`resource`]), list
//!   queries ([`ListQuery`]).
//! - SCIM users over the workspace's users ([`ScimUsers`]), their documents and lookup indexes
//!   blinded at rest ([`Records`]).
//! - The workspace's API keys ([`ScimKeys`]): shown once, stored hashed, rotated with an
//!   overlap, revoked.
//!
//! Groups are chat groups, so their SCIM side lives in zt-chat, on the same parts.

mod error;
mod filter;
mod keys;
mod query;
mod records;
pub mod resource;
pub mod schema;
mod users;

pub use error::{ScimError, ScimType};
pub use filter::{
    AttrPath, CompValue, CompareOp, Filter, FilterError, FilterErrorKind, MAX_FILTER_DEPTH,
    MAX_FILTER_LEN, PatchPath, parse_filter, parse_path,
};
pub use keys::{
    MAX_KEYS, MAX_LABEL_CHARS, MAX_OVERLAP, SCIM_KEYS, ScimKeyInfo, ScimKeys, ScimSecret,
    key_tenant,
};
pub use query::{DEFAULT_COUNT, Indexed, ListQuery, MAX_RESULTS};
pub use records::{Record, Records, etag, if_match, name_key, rfc3339};
pub use users::{
    PreparedUser, SCIM_USER_EXTERNAL_IDS, SCIM_USER_NAMES, SCIM_USERS, ScimActor, ScimUsers,
    local_username,
};
