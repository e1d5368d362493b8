//! The requests and responses of `/api/v1`: the wire contract, kept apart from zt-chat's types
//! so that the library can change without changing the API. Ids travel as their text form
//! (`usr_…`, `chn_…`), times as Unix milliseconds.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Sign-in.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    /// The workspace id (`tnt_…`); the server's default workspace when absent.
    #[serde(default)]
    pub workspace: Option<String>,
    /// The username.
    pub username: String,
    /// The password.
    pub password: String,
}

/// A new session.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct LoginResponse {
    /// The bearer token: send it as `Authorization: Bearer <token>`. Shown once.
    pub token: String,
    /// The workspace.
    pub workspace: String,
    /// Who signed in.
    pub user: UserView,
}

/// A user.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct UserView {
    /// The id.
    pub id: String,
    /// The username.
    pub username: String,
    /// The name shown to others.
    pub display_name: String,
    /// `active`, `deactivated` or `deleted`.
    pub state: String,
}

/// A new user.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    /// 1 to 64 ASCII letters, digits, `.`, `_` and `-`.
    #[schema(pattern = r"^\s*[A-Za-z0-9._-]{1,64}\s*$")]
    pub username: String,
    /// The name shown to others: up to 128 characters, no control characters.
    #[schema(max_length = 128, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub display_name: String,
    /// An e-mail address.
    #[serde(default)]
    #[schema(max_length = 254, pattern = r"^[^\s@]+@[^\s@]+$")]
    pub email: Option<String>,
    /// The initial password: 12 to 1,024 characters, not a common or guessable one, not
    /// containing the username.
    #[schema(min_length = 12, max_length = 1024)]
    pub password: String,
}

/// A password set for someone by an administrator.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordRequest {
    /// The new password: 12 to 1,024 characters, not a common or guessable one, not containing
    /// the username.
    #[schema(min_length = 12, max_length = 1024)]
    pub password: String,
}

/// One's own new password.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChangeRequest {
    /// The password in use now.
    pub current: String,
    /// The new one, as for [`PasswordRequest`].
    #[schema(min_length = 12, max_length = 1024)]
    pub password: String,
}

/// What to change of one's own profile.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileUpdateRequest {
    /// A new display name: up to 128 characters, no control characters.
    #[serde(default)]
    #[schema(max_length = 128, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub display_name: Option<String>,
    /// A new e-mail address.
    #[serde(default)]
    #[schema(max_length = 254, pattern = r"^[^\s@]+@[^\s@]+$")]
    pub email: Option<String>,
}

/// How many sessions a change ended.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionsEnded {
    /// Their number.
    pub ended: u64,
}

/// Which users.
#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// The username to look up.
    pub username: String,
}

/// A session of the caller.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct SessionView {
    /// The session's id: the hex SHA-256 of its token.
    pub id: String,
    /// `interactive`, `api` or `portal`.
    pub kind: String,
    /// When it began.
    pub created: i64,
    /// When it was last used.
    pub last_seen: i64,
    /// Whether it is the session of this request.
    pub current: bool,
}

/// Public or private.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Members of the workspace may find and join it.
    Public,
    /// Only its members see it.
    Private,
}

/// A new channel.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewChannelRequest {
    /// 1 to 64 characters, unique without case, not only white space, no control characters.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: String,
    /// Public or private.
    pub visibility: Visibility,
    /// Up to 512 characters, no control characters.
    #[serde(default)]
    #[schema(max_length = 512, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub topic: String,
}

/// What to change of a channel; the fields given change together.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChannelUpdateRequest {
    /// A new name: as at creation (`edit_channel`).
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = r"^[^\x00-\x1f\x7f-\x9f]*[^\s\x00-\x1f\x7f-\x9f][^\x00-\x1f\x7f-\x9f]*$"
    )]
    pub name: Option<String>,
    /// A new topic: up to 512 characters, no control characters (`edit_channel`).
    #[serde(default)]
    #[schema(max_length = 512, pattern = r"^[^\x00-\x1f\x7f-\x9f]*$")]
    pub topic: Option<String>,
    /// Archive (`true`: read-only) or unarchive (`archive_channel`).
    #[serde(default)]
    pub archived: Option<bool>,
}

/// A channel.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ChannelView {
    /// The id.
    pub id: String,
    /// `standard` or `direct`.
    pub kind: String,
    /// The name (empty for a direct message).
    pub name: String,
    /// The topic.
    pub topic: String,
    /// Public or private.
    pub visibility: Visibility,
    /// Whether it is archived.
    pub archived: bool,
    /// Who created it.
    pub created_by: String,
    /// When.
    pub created: i64,
    /// Whether the directory shows it to those who are not members.
    pub listed: bool,
}

/// A message to post.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessageRequest {
    /// The text, up to the server's limit (16 KiB by default), not only white space.
    #[schema(pattern = r"\S")]
    pub body: String,
    /// The message this one replies to.
    #[serde(default)]
    #[schema(pattern = r"^msg_[0-9a-f]{32}$")]
    pub thread: Option<String>,
    /// Ids of the users (`usr_…`) and groups (`grp_…`) it mentions.
    #[serde(default)]
    #[schema(value_type = Vec<MentionId>)]
    pub mentions: Vec<String>,
}

/// The id of a user (`usr_…`) or a group (`grp_…`) a message mentions.
pub struct MentionId;

impl utoipa::PartialSchema for MentionId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::Type::String)
            .pattern(Some(r"^(usr|grp)_[0-9a-f]{32}$"))
            .into()
    }
}

impl ToSchema for MentionId {}

/// A new text for a message.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EditMessageRequest {
    /// The new text, not only white space.
    #[schema(pattern = r"\S")]
    pub body: String,
}

/// A message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MessageView {
    /// The id (time-ordered).
    pub id: String,
    /// The channel.
    pub channel: String,
    /// The author.
    pub author: String,
    /// When it was posted.
    pub created: i64,
    /// When it was last edited.
    pub edited: Option<i64>,
    /// How many times it was edited.
    pub revision: u32,
    /// The text; empty once deleted.
    pub body: String,
    /// The message it replies to.
    pub thread: Option<String>,
    /// Whom it mentions.
    pub mentions: Vec<String>,
    /// Whether it was deleted.
    pub deleted: bool,
}

/// Which page of messages: the newest, or older than `before`, or newer than `after`.
#[derive(Debug, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// A message id: the page just older than it.
    #[serde(default)]
    pub before: Option<String>,
    /// A message id: the page just newer than it.
    #[serde(default)]
    pub after: Option<String>,
    /// How many, 1 to 200 (default 50).
    #[serde(default)]
    #[param(minimum = 1, maximum = 200)]
    pub limit: Option<u32>,
}

/// A page of messages, oldest first.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessagePageView {
    /// The messages.
    pub messages: Vec<MessageView>,
    /// Pass as `before` for older ones; absent when there are none.
    pub older: Option<String>,
    /// Pass as `after` for newer ones; absent when there are none yet.
    pub newer: Option<String>,
}

/// The server's identity, as clients pin it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct IdentityView {
    /// `SHA256:` and the unpadded base64 of SHA-256 over `public_key`: what people compare.
    pub fingerprint: String,
    /// The Ed25519 identity key, hex.
    pub public_key: String,
    /// The signed-note verifier key of the audit checkpoints.
    pub audit_key: String,
    /// The realtime channel's static key, signed by the identity key.
    pub channel: ChannelKeyView,
}

/// The realtime channel's parameters and static key.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
pub struct ChannelKeyView {
    /// The Noise protocol name.
    pub protocol: String,
    /// The prologue both sides mix in.
    pub prologue: String,
    /// The static X25519 key, hex.
    pub static_key: String,
    /// Ed25519 signature by `public_key` over the context string
    /// `zt-chat realtime static key v1` followed by a newline and the 32 key bytes, hex.
    pub signature: String,
}
