//! The API's request and response types are the protocol package's ([`zt_chat_protocol::views`]);
//! the server's `views` module turns zt-chat's values into them; here ids are parsed.

pub use zt_chat_protocol::views::*;

use super::error::ApiError;

/// Parses an id of the API.
pub(crate) fn parse_id<T: std::str::FromStr>(field: &str, text: &str) -> Result<T, ApiError> {
    text.parse()
        .map_err(|_| ApiError::invalid(field, format!("not a valid {field} id")))
}
