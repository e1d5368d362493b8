//! SCIM errors (RFC 7644 section 3.12): an HTTP status, a `scimType` for the 400s and 409s
//! that have one, and a detail that says what went wrong without naming what the caller may
//! not see.

use serde_json::{Value, json};

use super::schema::ERROR_SCHEMA;

/// The `scimType` of an error (RFC 7644 table 9).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    /// The filter is malformed or names what cannot be filtered.
    InvalidFilter,
    /// More results or values than the service allows.
    TooMany,
    /// A unique value is taken.
    Uniqueness,
    /// A read-only or immutable attribute would change.
    Mutability,
    /// The request body is not a SCIM message.
    InvalidSyntax,
    /// A PATCH path is malformed or names nothing.
    InvalidPath,
    /// A PATCH path's filter matches nothing.
    NoTarget,
    /// A value is missing, of the wrong type, or out of bounds.
    InvalidValue,
    /// The version in `If-Match` is not the resource's.
    InvalidVers,
}

impl ScimType {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::TooMany => "tooMany",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::NoTarget => "noTarget",
            ScimType::InvalidValue => "invalidValue",
            ScimType::InvalidVers => "invalidVers",
        }
    }
}

/// A SCIM error response.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("SCIM {status}: {detail}")]
pub struct ScimError {
    /// The HTTP status.
    pub status: u16,
    /// The `scimType`, where the RFC gives one.
    pub scim_type: Option<ScimType>,
    /// What went wrong.
    pub detail: String,
    /// For 429: how long to wait, in seconds.
    pub retry_after: Option<u64>,
}

impl ScimError {
    /// A 400 of `scim_type`.
    pub fn bad(scim_type: ScimType, detail: impl Into<String>) -> Self {
        ScimError {
            status: 400,
            scim_type: Some(scim_type),
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// A status without a `scimType`.
    pub fn status(status: u16, detail: impl Into<String>) -> Self {
        ScimError {
            status,
            scim_type: None,
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// 404.
    pub fn not_found(what: &str) -> Self {
        Self::status(404, format!("{what} not found"))
    }

    /// 409 `uniqueness`.
    pub fn taken(detail: impl Into<String>) -> Self {
        ScimError {
            status: 409,
            scim_type: Some(ScimType::Uniqueness),
            detail: detail.into(),
            retry_after: None,
        }
    }

    /// 412: the resource changed since the version the client holds.
    pub fn stale() -> Self {
        Self::status(412, "the resource changed since that version")
    }

    /// The error's JSON body.
    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let (Some(t), Value::Object(m)) = (self.scim_type, &mut body) {
            m.insert("scimType".into(), Value::from(t.as_str()));
        }
        body
    }
}

impl From<crate::Error> for ScimError {
    fn from(e: crate::Error) -> Self {
        use crate::Error as E;
        match e {
            E::NotFound(what) => ScimError::status(404, format!("not found: {what}")),
            E::Conflict(detail) => ScimError::taken(detail),
            E::InvalidInput(detail) => ScimError::bad(ScimType::InvalidValue, detail),
            E::InvalidId { .. } => ScimError::not_found("resource"),
            E::AuthenticationFailed => ScimError::status(401, "authentication failed"),
            E::TooManyAttempts { retry_after } => ScimError {
                status: 429,
                scim_type: None,
                detail: "too many requests".into(),
                retry_after: Some(retry_after.as_secs().max(1)),
            },
            other if other.is_temporary() => {
                ScimError::status(503, "the service is unavailable; try again")
            }
            _ => ScimError::status(500, "the service failed"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_follows_the_error_schema() {
        let e = ScimError::bad(ScimType::InvalidFilter, "bad");
        let body = e.to_json();
        assert_eq!(body["status"], "400");
        assert_eq!(body["scimType"], "invalidFilter");
        assert_eq!(body["schemas"][0], ERROR_SCHEMA);
        let body = ScimError::not_found("User").to_json();
        assert!(body.get("scimType").is_none());
    }
}
