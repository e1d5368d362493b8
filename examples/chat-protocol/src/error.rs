//! The body of every error answer.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// What went wrong.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable code: `invalid_input`, `unauthenticated`, `forbidden`, `not_found`, `conflict`,
    /// `too_large`, `rate_limited`, `unavailable`, `internal`.
    pub kind: String,
    /// For people; never holds a secret.
    pub message: String,
    /// The request fields at fault (for `invalid_input`), or the decision's reason codes (for
    /// `forbidden`).
    pub fields: Vec<String>,
}
