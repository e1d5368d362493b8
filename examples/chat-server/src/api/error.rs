//! The one error shape of the API: `{"error": {"kind", "message", "fields"}}` with its status.

use std::error::Error as _;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
pub use zt_chat_protocol::error::{ErrorBody, ErrorDetail};

/// The answers every authenticated route may give besides its own, for the OpenAPI document:
/// 401 without a live session, 429 over a rate limit (with `Retry-After`).
#[derive(utoipa::IntoResponses)]
#[allow(
    dead_code,
    reason = "describes responses in the OpenAPI document; never built"
)]
pub(crate) enum AuthErrors {
    /// No live session.
    #[response(status = 401, description = "Not signed in")]
    Unauthenticated(ErrorBody),
    /// Over a rate limit.
    #[response(status = 429, description = "Rate limited")]
    RateLimited(ErrorBody),
}

/// An error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    status: StatusCode,
    kind: &'static str,
    message: String,
    fields: Vec<String>,
    retry_after: Option<u64>,
}

impl ApiError {
    fn new(status: StatusCode, kind: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            kind,
            message: message.into(),
            fields: Vec::new(),
            retry_after: None,
        }
    }

    /// 400, with the field at fault.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::BAD_REQUEST, "invalid_input", message);
        e.fields.push(field.to_owned());
        e
    }

    /// 401.
    pub fn unauthenticated() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthenticated",
            "a valid session token is required (Authorization: Bearer)",
        )
    }

    /// 401 for a failed sign-in: one answer for an unknown workspace or user, a wrong password
    /// and a deactivated account.
    pub fn sign_in_failed() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "sign_in_failed",
            "the username or password is wrong",
        )
    }

    /// 405: the route exists, the method does not.
    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "this route does not answer that method",
        )
    }

    /// 404.
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no such {what}"),
        )
    }

    /// 403, with the decision's reasons.
    pub fn forbidden(reasons: Vec<String>) -> Self {
        let mut e = Self::new(StatusCode::FORBIDDEN, "forbidden", "not permitted");
        e.fields = reasons;
        e
    }

    /// 429, retry after `seconds`.
    pub fn rate_limited(seconds: u64) -> Self {
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "too many requests; slow down",
        );
        e.retry_after = Some(seconds.max(1));
        e
    }

    /// 413.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", message)
    }

    /// 503.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// 500; the details go to the log, not to the client.
    pub fn internal(detail: &dyn std::error::Error) -> Self {
        // The whole chain: zt-chat keeps the lower error as the source.
        let mut chain = detail.to_string();
        let mut cause = detail.source();
        while let Some(e) = cause {
            chain.push_str(": ");
            chain.push_str(&e.to_string());
            cause = e.source();
        }
        tracing::error!(error = %chain, "internal error");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
    }

    /// A refused single sign-on: 404 for an unknown provider, 503 for one that cannot be
    /// reached, otherwise 401 with the check that failed as its field.
    pub fn sso_refused(refusal: zt_core::identity::SsoRefusal) -> Self {
        use zt_core::identity::SsoRefusal as R;
        if refusal == R::UnknownProvider {
            return Self::not_found("provider");
        }
        if refusal == R::ProviderUnavailable {
            return Self::unavailable("the identity provider cannot be reached");
        }
        if refusal == R::NotOffered {
            return Self::invalid("provider", "the identity provider does not offer that");
        }
        let mut e = Self::new(
            StatusCode::UNAUTHORIZED,
            "sso_failed",
            "single sign-on failed",
        );
        e.fields.push(refusal.code().to_owned());
        e
    }

    /// 409: the request contradicts the current state.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<zt_chat::Error> for ApiError {
    fn from(e: zt_chat::Error) -> Self {
        use zt_chat::Error as E;
        match e {
            E::NotFound(what) => ApiError::not_found(&what),
            E::Forbidden { reasons } => ApiError::forbidden(reasons),
            E::InvalidInput { field, message } => ApiError::invalid(field, message),
            E::Conflict(message) => ApiError::conflict(message),
            E::Unauthenticated => ApiError::unauthenticated(),
            E::TooManyAttempts { retry_after } => ApiError::rate_limited(retry_after.as_secs()),
            E::SsoRefused(refusal) => ApiError::sso_refused(refusal),
            E::Tampered(message) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "tampered", message)
            }
            unavailable @ E::Unavailable { .. } => {
                let cause = unavailable
                    .source()
                    .map(ToString::to_string)
                    .unwrap_or_default();
                tracing::warn!(error = %unavailable, %cause, "a dependency is unavailable");
                ApiError::unavailable("a dependency is unavailable; retry later")
            }
            // zt-chat's error is `non_exhaustive`: a kind added later answers 500 until it is
            // mapped here, and is named in the log.
            other @ (E::Internal { .. } | _) => ApiError::internal(&other),
        }
    }
}

/// zt-core's and zt-authz's errors answer as zt-chat maps them, so every handler reports the same
/// failure the same way.
impl From<zt_core::Error> for ApiError {
    fn from(e: zt_core::Error) -> Self {
        zt_chat::Error::from(e).into()
    }
}

impl From<zt_authz::Error> for ApiError {
    fn from(e: zt_authz::Error) -> Self {
        zt_chat::Error::from(e).into()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::too_large("the request body is too large");
        }
        let mut e = ApiError::invalid("body", rejection.body_text());
        if rejection.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
            e.message = "send the body as application/json".into();
        }
        e
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::invalid("query", rejection.body_text())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                kind: self.kind.to_owned(),
                message: self.message,
                fields: self.fields,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        response
    }
}

/// The result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

impl From<crate::limits::Refusal> for ApiError {
    fn from(r: crate::limits::Refusal) -> Self {
        ApiError::rate_limited(r.retry_after)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_rate_limit_refusal_answers_429() {
        let refused = crate::limits::Refusal {
            retry_after: 3,
            report: true,
        };
        assert_eq!(
            ApiError::from(refused).status(),
            axum::http::StatusCode::TOO_MANY_REQUESTS
        );
    }
}
