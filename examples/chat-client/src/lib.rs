//! # zt-chat-client
//!
//! A client of the zt reference chat server's API: what the `zt-chat` command-line tool, the
//! server's end-to-end tests and its load generator use. It shares the wire types with the server
//! through `zt-chat-protocol` and the secure channel and pin store with it through zt-crypto
//! (feature `channel`); it links neither axum nor sled nor zt-chat.
//!
//! - [`Client`] calls `/api/v1` with a bearer token and turns error bodies into
//!   [`ClientError::Api`].
//! - [`Client::identity`] fetches the server's identity and checks that its identity key signed
//!   its realtime channel key; [`KnownServers`] pins it on first use and refuses a change.
//! - [`Client::realtime`] opens the Noise channel to the pinned key and streams
//!   [`ServerRecord`]s.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject as _;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::net::TcpStream;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use zt_crypto::VerifyingKey;

use zt_chat_protocol::admin::AuditPage;
use zt_chat_protocol::error::ErrorBody;
use zt_chat_protocol::lifecycle::{
    ApprovalView, ApprovedView, LegalHoldView, NewLegalHold, RetentionPolicyView,
    RetentionReportView, RetentionView,
};
pub use zt_chat_protocol::realtime::{ClientRecord, Hello, ServerRecord};
pub use zt_chat_protocol::sso::DeviceStartView;
use zt_chat_protocol::sso::{DevicePending, DevicePollRequest};
use zt_chat_protocol::tunnel::{TUNNEL_PATH, TunnelRequest, TunnelResponse};
pub use zt_chat_protocol::views::ChannelKeyView;
pub use zt_chat_protocol::views::{
    ChannelUpdateRequest, ChannelView, IdentityView, LoginRequest, LoginResponse, MessagePageView,
    MessageView, NewChannelRequest, NewMessageRequest, NewUserRequest, PasswordChangeRequest,
    PasswordRequest, ProfileUpdateRequest, SessionView, SessionsEnded, UserView, Visibility,
};
use zt_crypto::channel::{self as noise, Initiator, Reassembler, Transport};
pub use zt_crypto::pins::Pin;
use zt_crypto::pins::write_private as write_private_file;

/// Why a client call failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The server could not be reached, or answered something unreadable.
    #[error("cannot reach the server: {0}")]
    Http(#[from] reqwest::Error),
    /// This client is not bound to a verified server identity, so it sent nothing (see
    /// [`Client::verify`]).
    #[error("the server's identity is not verified; nothing was sent")]
    Unverified,
    /// The server answered something this client cannot read.
    #[error("unreadable answer: {0}")]
    Unreadable(String),
    /// The server answered with an error.
    #[error("{status} {kind}: {message}{}{}", if fields.is_empty() { String::new() } else { format!(" ({})", fields.join(", ")) }, retry_after.map(|s| format!("; retry in {s} s")).unwrap_or_default())]
    Api {
        /// The HTTP status.
        status: u16,
        /// The error's kind.
        kind: String,
        /// Its message.
        message: String,
        /// Its fields.
        fields: Vec<String>,
        /// When to try again (`Retry-After`), if the server said.
        retry_after: Option<u64>,
    },
    /// The server's identity does not hold together (a bad key or signature).
    #[error("the server's identity is invalid: {0}")]
    BadIdentity(String),
    /// The server presents another identity than the one pinned for it.
    #[error(
        "WARNING: the identity of {server} has CHANGED.\n  pinned:    {pinned}\n  presented: {presented}\n\
         Somebody may be impersonating the server, or it was reinstalled. Refusing to connect.\n\
         If the change is expected, remove the pin with `zt-chat forget-server` and connect again."
    )]
    PinMismatch {
        /// The server.
        server: String,
        /// The pinned fingerprint.
        pinned: String,
        /// The presented fingerprint.
        presented: String,
    },
    /// The realtime channel failed.
    #[error("realtime: {0}")]
    Realtime(String),
    /// A local file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl From<noise::ChannelError> for ClientError {
    fn from(e: noise::ChannelError) -> Self {
        ClientError::Realtime(e.to_string())
    }
}

impl From<zt_crypto::pins::PinError> for ClientError {
    fn from(e: zt_crypto::pins::PinError) -> Self {
        match e {
            zt_crypto::pins::PinError::Mismatch {
                server,
                pinned,
                presented,
            } => ClientError::PinMismatch {
                server,
                pinned,
                presented,
            },
            zt_crypto::pins::PinError::Io { path, source } => ClientError::Io { path, source },
            other => ClientError::Io {
                path: PathBuf::new(),
                source: std::io::Error::other(other.to_string()),
            },
        }
    }
}

/// Where a device sign-in stands.
#[derive(Debug)]
pub enum DevicePoll {
    /// Not finished at the provider; poll again after this long.
    Pending(Duration),
    /// Signed in.
    Done(LoginResponse),
}

/// A server identity whose channel key was verified against its identity key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedIdentity {
    /// What the server published.
    pub view: IdentityView,
    /// The realtime channel's static key.
    pub channel_key: [u8; 32],
}

fn hex32(field: &str, text: &str) -> Result<[u8; 32], ClientError> {
    hex::decode(text)
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| ClientError::BadIdentity(format!("{field} is not 32 bytes of hex")))
}

impl VerifiedIdentity {
    /// Checks that `view`'s fingerprint is its key's, that the key signed the channel key, and
    /// that the channel speaks this client's protocol.
    ///
    /// # Errors
    /// [`ClientError::BadIdentity`].
    pub fn verify(view: IdentityView) -> Result<Self, ClientError> {
        let public = VerifyingKey::from_bytes(&hex32("public_key", &view.public_key)?)
            .map_err(|e| ClientError::BadIdentity(e.to_string()))?;
        if view.channel.protocol != noise::PROTOCOL
            || view.channel.prologue.as_bytes() != noise::PROLOGUE
        {
            return Err(ClientError::BadIdentity(format!(
                "the server speaks {} ({}); this client speaks {} ({})",
                view.channel.protocol,
                view.channel.prologue,
                noise::PROTOCOL,
                String::from_utf8_lossy(noise::PROLOGUE)
            )));
        }
        let channel_key = hex32("channel.static_key", &view.channel.static_key)?;
        let signature: [u8; 64] = hex::decode(&view.channel.signature)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| ClientError::BadIdentity("the signature is not 64 bytes".into()))?;
        noise::verify_channel_key(&public, &view.fingerprint, &channel_key, &signature)
            .map_err(|e| ClientError::BadIdentity(e.to_string()))?;
        Ok(VerifiedIdentity { view, channel_key })
    }
}

/// A client of one server.
#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
    tls: Arc<ClientConfig>,
    /// The verified identity every credentialed call is bound to.
    server: Option<Arc<Bound>>,
}

/// The TLS configuration of the client: rustls with the ring provider, the webpki roots, and the
/// certificates of `ca`.
fn tls_config(ca: Option<&Path>) -> Result<ClientConfig, ClientError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(ca) = ca {
        let io = |message: String| ClientError::Io {
            path: ca.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, message),
        };
        let certs = CertificateDer::pem_file_iter(ca)
            .map_err(|e| io(e.to_string()))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| io(e.to_string()))?;
        if certs.is_empty() {
            return Err(io("no certificate in the file".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| io(e.to_string()))?;
        }
    }
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map(|b| b.with_root_certificates(roots).with_no_client_auth())
        .map_err(|e| ClientError::Realtime(format!("TLS: {e}")))
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("signed_in", &self.token.is_some())
            .field(
                "bound_to",
                &self.server_identity().map(|i| &i.view.fingerprint),
            )
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of the server at `base` (`http://host:port` or `https://host:port`), trusting
    /// the public web PKI for HTTPS.
    ///
    /// # Errors
    /// [`ClientError::Http`] when no HTTP client can be built.
    pub fn new(base: &str) -> Result<Self, ClientError> {
        Self::with_ca(base, None)
    }

    /// A client that also trusts the certificates in the PEM file `ca` for HTTPS and WSS (a
    /// server with its own or a self-signed certificate).
    ///
    /// # Errors
    /// [`ClientError::Io`] for an unreadable file; [`ClientError::Http`] when no HTTP client
    /// can be built.
    pub fn with_ca(base: &str, ca: Option<&Path>) -> Result<Self, ClientError> {
        let tls = Arc::new(tls_config(ca)?);
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(30))
            .use_preconfigured_tls((*tls).clone())
            .build()?;
        Ok(Client {
            base: base.trim_end_matches('/').to_owned(),
            http,
            token: None,
            tls,
            server: None,
        })
    }

    /// The same client, sending `token`.
    #[must_use]
    pub fn with_token(mut self, token: impl Into<String>) -> Self {
        self.token = Some(token.into());
        self
    }

    /// The server's address.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Trusts `identity` (one the caller checked against its pin): every later call travels
    /// inside a Noise channel to its channel key, so it reaches only the holder of that key.
    #[must_use]
    pub fn bind(mut self, identity: VerifiedIdentity) -> Self {
        self.server = Some(Arc::new(Bound {
            identity,
            tunnel: tokio::sync::Mutex::new(None),
        }));
        self
    }

    /// Fetches the server's identity (sending nothing but the request for it), verifies it,
    /// compares it with the pin in `known` (pinning it on first use), and binds this client to
    /// it (see [`Client::bind`]). [`Pin::New`] says it was pinned just now.
    ///
    /// # Errors
    /// [`ClientError::PinMismatch`] for another identity than the pinned one;
    /// [`ClientError::BadIdentity`]; [`ClientError::Io`]; the HTTP errors.
    pub async fn verify(self, known: &KnownServers) -> Result<(Self, Pin), ClientError> {
        let identity = self.identity().await?;
        let pin = known.check(&self.base, &identity.view)?;
        if pin == Pin::New {
            known.pin(&self.base, &identity.view)?;
        }
        Ok((self.bind(identity), pin))
    }

    /// The identity this client is bound to, if any.
    pub fn server_identity(&self) -> Option<&VerifiedIdentity> {
        self.server.as_ref().map(|bound| &bound.identity)
    }

    fn ws_url(&self, path: &str) -> String {
        match self.base.split_once("://") {
            Some(("https", rest)) => format!("wss://{rest}{path}"),
            Some((_, rest)) => format!("ws://{rest}{path}"),
            None => format!("ws://{}{path}", self.base),
        }
    }

    /// Opens a WebSocket to `path` and runs the Noise handshake to `channel_key`, with `payload`
    /// in its last message.
    async fn channel(
        &self,
        path: &str,
        channel_key: &[u8; 32],
        payload: &[u8],
    ) -> Result<(Ws, Transport), ClientError> {
        let connector = tokio_tungstenite::Connector::Rustls(Arc::clone(&self.tls));
        let (mut ws, _) = tokio_tungstenite::connect_async_tls_with_config(
            self.ws_url(path),
            None,
            false,
            Some(connector),
        )
        .await
        .map_err(|e| ClientError::Realtime(e.to_string()))?;
        let (initiator, msg1) = Initiator::start(channel_key)?;
        send_binary(&mut ws, msg1).await?;
        let msg2 = next_binary(&mut ws).await?.ok_or_else(|| {
            ClientError::Realtime("the server closed during the handshake".into())
        })?;
        let (msg3, transport) = initiator.finish(&msg2, payload)?;
        send_binary(&mut ws, msg3).await?;
        Ok((ws, transport))
    }

    /// Sends one API request through the tunnel of the bound identity.
    async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<Vec<u8>, ClientError> {
        let bound = self.server.as_ref().ok_or(ClientError::Unverified)?;
        let mut tunnel = bound.tunnel.lock().await;
        // The server closes an idle tunnel; one about to be closed is replaced before use, so a
        // request is never sent into a closing channel (and never sent twice).
        if tunnel
            .as_ref()
            .is_none_or(|t| t.used.elapsed() >= TUNNEL_REUSE)
        {
            if let Some(old) = tunnel.take() {
                old.close().await;
            }
            let (ws, transport) = self
                .channel(TUNNEL_PATH, &bound.identity.channel_key, b"")
                .await?;
            *tunnel = Some(TunnelConn {
                ws,
                transport,
                records: Reassembler::default(),
                used: std::time::Instant::now(),
            });
        }
        let Some(open) = tunnel.as_mut() else {
            return Err(ClientError::Realtime("the tunnel is not open".into()));
        };
        let body = body.unwrap_or_default();
        let head = TunnelRequest {
            method: method.to_owned(),
            path: path.to_owned(),
            token: self.token.clone(),
            body_len: body.len() as u64,
        };
        let answer = open.exchange(&head, &body).await;
        match answer {
            Ok((head, body)) => {
                open.used = std::time::Instant::now();
                Self::checked(&head, body)
            }
            Err(e) => {
                // Whatever state the channel is in, it is not used again.
                if let Some(broken) = tunnel.take() {
                    broken.close().await;
                }
                Err(e)
            }
        }
    }

    fn checked(head: &TunnelResponse, body: Vec<u8>) -> Result<Vec<u8>, ClientError> {
        if (200..300).contains(&head.status) {
            return Ok(body);
        }
        Err(match serde_json::from_slice::<ErrorBody>(&body) {
            // The server's words reach a terminal: they are made printable where they enter.
            Ok(ErrorBody { error }) => ClientError::Api {
                status: head.status,
                kind: printable(&error.kind).into_owned(),
                message: printable(&error.message).into_owned(),
                fields: error
                    .fields
                    .iter()
                    .map(|f| printable(f).into_owned())
                    .collect(),
                retry_after: head.retry_after,
            },
            Err(_) => ClientError::Api {
                status: head.status,
                kind: "unknown".into(),
                message: printable(&String::from_utf8_lossy(&body))
                    .chars()
                    .take(200)
                    .collect(),
                fields: Vec::new(),
                retry_after: head.retry_after,
            },
        })
    }

    async fn json<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<T, ClientError> {
        let answer = self.call(method, path, body).await?;
        serde_json::from_slice(&answer).map_err(|e| ClientError::Unreadable(e.to_string()))
    }

    async fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.json("GET", path, None).await
    }

    async fn with_body<B: Serialize, T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let body = serde_json::to_vec(body).map_err(|e| ClientError::Unreadable(e.to_string()))?;
        self.json(method, path, Some(body)).await
    }

    async fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.with_body("POST", path, body).await
    }

    async fn no_content(&self, method: &str, path: &str) -> Result<(), ClientError> {
        self.call(method, path, None).await.map(drop)
    }

    /// The server's identity, verified (not yet compared with a pin). The request carries no
    /// token, whether or not this client has one.
    ///
    /// # Errors
    /// [`ClientError::BadIdentity`]; the HTTP errors.
    pub async fn identity(&self) -> Result<VerifiedIdentity, ClientError> {
        let response = self
            .http
            .get(format!("{}/api/v1/identity", self.base))
            .send()
            .await?;
        let status = response.status();
        if !status.is_success() {
            return Err(ClientError::BadIdentity(format!(
                "the server answered {status} for its identity"
            )));
        }
        VerifiedIdentity::verify(response.json().await?)
    }

    /// Signs in; the answer's token is for [`Client::with_token`].
    ///
    /// # Errors
    /// [`ClientError::Api`] with status 401 for wrong credentials.
    pub async fn login(
        &self,
        workspace: Option<&str>,
        username: &str,
        password: &str,
    ) -> Result<LoginResponse, ClientError> {
        self.post(
            "/api/v1/sessions",
            &LoginRequest {
                workspace: workspace.map(str::to_owned),
                username: username.to_owned(),
                password: password.to_owned(),
            },
        )
        .await
    }

    /// Starts a device sign-in (RFC 8628) with `provider` of `workspace` (an id, or `default`).
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn sso_device_start(
        &self,
        workspace: &str,
        provider: &str,
    ) -> Result<DeviceStartView, ClientError> {
        self.json(
            "POST",
            &format!("/api/v1/sso/{workspace}/{provider}/device"),
            None,
        )
        .await
    }

    /// Polls a device sign-in once.
    ///
    /// # Errors
    /// [`ClientError::Api`] (401 once the provider refused or the handle is used).
    pub async fn sso_device_poll(
        &self,
        workspace: &str,
        handle: &str,
    ) -> Result<DevicePoll, ClientError> {
        let body = serde_json::to_vec(&DevicePollRequest {
            handle: handle.to_owned(),
        })
        .map_err(|e| ClientError::Unreadable(e.to_string()))?;
        let answer = self
            .call(
                "POST",
                &format!("/api/v1/sso/{workspace}/device/poll"),
                Some(body),
            )
            .await?;
        if let Ok(login) = serde_json::from_slice::<LoginResponse>(&answer) {
            return Ok(DevicePoll::Done(login));
        }
        let pending: DevicePending =
            serde_json::from_slice(&answer).map_err(|e| ClientError::Unreadable(e.to_string()))?;
        Ok(DevicePoll::Pending(Duration::from_secs(
            pending.interval.clamp(1, 60),
        )))
    }

    /// Signs in with `provider` by the device flow: `show` tells the user where to go and what
    /// to type; then polls, at the provider's interval, until they are done or the code
    /// expires.
    ///
    /// # Errors
    /// [`ClientError::Api`]; [`ClientError::Realtime`] when the code expires first.
    pub async fn sso_login_device(
        &self,
        workspace: &str,
        provider: &str,
        show: impl FnOnce(&DeviceStartView),
    ) -> Result<LoginResponse, ClientError> {
        let started = self.sso_device_start(workspace, provider).await?;
        show(&started);
        let deadline = std::time::Instant::now() + Duration::from_secs(started.expires_in.min(900));
        let mut wait = Duration::from_secs(started.interval.clamp(1, 60));
        loop {
            tokio::time::sleep(wait).await;
            match self.sso_device_poll(workspace, &started.handle).await? {
                DevicePoll::Done(login) => return Ok(login),
                DevicePoll::Pending(next) => wait = next,
            }
            if std::time::Instant::now() >= deadline {
                return Err(ClientError::Realtime(
                    "the device code expired before the sign-in finished".into(),
                ));
            }
        }
    }

    /// Signs out.
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn logout(&self) -> Result<(), ClientError> {
        self.no_content("DELETE", "/api/v1/sessions/current").await
    }

    /// The caller's sessions.
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn sessions(&self) -> Result<Vec<SessionView>, ClientError> {
        self.get("/api/v1/sessions").await
    }

    /// Ends one of the caller's sessions.
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn revoke_session(&self, id: &str) -> Result<(), ClientError> {
        self.no_content("DELETE", &format!("/api/v1/sessions/{id}"))
            .await
    }

    /// The caller.
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn me(&self) -> Result<UserView, ClientError> {
        self.get("/api/v1/users/me").await
    }

    /// The active user named `username`, if any.
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn find_user(&self, username: &str) -> Result<Option<UserView>, ClientError> {
        let found: Vec<UserView> = self
            .get(&format!("/api/v1/users?username={}", query_value(username)))
            .await?;
        Ok(found.into_iter().next())
    }

    /// Creates a user.
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn create_user(
        &self,
        username: &str,
        display_name: &str,
        password: &str,
    ) -> Result<UserView, ClientError> {
        self.post(
            "/api/v1/users",
            &NewUserRequest {
                username: username.to_owned(),
                display_name: display_name.to_owned(),
                email: None,
                password: password.to_owned(),
            },
        )
        .await
    }

    /// The channels the caller can see.
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn channels(&self) -> Result<Vec<ChannelView>, ClientError> {
        self.get("/api/v1/channels").await
    }

    /// The channel with this id, or else the visible one with this name.
    ///
    /// # Errors
    /// [`ClientError::Api`] with status 404 when there is none.
    pub async fn resolve_channel(&self, id_or_name: &str) -> Result<ChannelView, ClientError> {
        let name = id_or_name.trim_start_matches('#');
        self.channels()
            .await?
            .into_iter()
            .find(|c| c.id == id_or_name || c.name.eq_ignore_ascii_case(name))
            .ok_or_else(|| ClientError::Api {
                status: 404,
                kind: "not_found".into(),
                message: format!("no channel {id_or_name} that you can see"),
                fields: Vec::new(),
                retry_after: None,
            })
    }

    /// Creates a channel.
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn create_channel(
        &self,
        name: &str,
        visibility: Visibility,
        topic: &str,
    ) -> Result<ChannelView, ClientError> {
        self.post(
            "/api/v1/channels",
            &NewChannelRequest {
                name: name.to_owned(),
                visibility,
                topic: topic.to_owned(),
            },
        )
        .await
    }

    /// Adds `user` to `channel`.
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn add_member(&self, channel: &str, user: &str) -> Result<(), ClientError> {
        self.no_content("PUT", &format!("/api/v1/channels/{channel}/members/{user}"))
            .await
    }

    /// Removes `user` from `channel`.
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn remove_member(&self, channel: &str, user: &str) -> Result<(), ClientError> {
        self.no_content(
            "DELETE",
            &format!("/api/v1/channels/{channel}/members/{user}"),
        )
        .await
    }

    /// Posts a message.
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn post_message(
        &self,
        channel: &str,
        body: &str,
    ) -> Result<MessageView, ClientError> {
        self.post(
            &format!("/api/v1/channels/{channel}/messages"),
            &NewMessageRequest {
                body: body.to_owned(),
                thread: None,
                mentions: Vec::new(),
            },
        )
        .await
    }

    /// The newest `limit` messages of `channel`, oldest first.
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn messages(
        &self,
        channel: &str,
        limit: u32,
    ) -> Result<MessagePageView, ClientError> {
        self.get(&format!(
            "/api/v1/channels/{channel}/messages?limit={limit}"
        ))
        .await
    }

    /// The newest `limit` events of the workspace's `log` (`security` or `compliance`).
    ///
    /// # Errors
    /// [`ClientError::Api`] (403 without `view_audit_logs`).
    pub async fn audit(&self, log: &str, limit: u32) -> Result<AuditPage, ClientError> {
        self.get(&format!("/api/v1/admin/audit/{log}?limit={limit}"))
            .await
    }

    /// The workspace's retention (`manage_privacy_and_data`).
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn retention(&self) -> Result<RetentionView, ClientError> {
        self.get("/api/v1/admin/privacy/retention").await
    }

    /// Sets the workspace's retention, or `channel`'s own; `None` removes the channel's own.
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn set_retention(
        &self,
        channel: Option<&str>,
        policy: Option<&RetentionPolicyView>,
    ) -> Result<RetentionView, ClientError> {
        let path = match channel {
            Some(channel) => format!("/api/v1/admin/privacy/retention/channels/{channel}"),
            None => "/api/v1/admin/privacy/retention".to_owned(),
        };
        match policy {
            Some(policy) => self.with_body("PUT", &path, policy).await,
            None => self.json("DELETE", &path, None).await,
        }
    }

    /// Runs retention now (or finishes a run that stopped).
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn run_retention(&self) -> Result<RetentionReportView, ClientError> {
        self.json("POST", "/api/v1/admin/privacy/retention/run", None)
            .await
    }

    /// The legal holds in force.
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn legal_holds(&self) -> Result<Vec<LegalHoldView>, ClientError> {
        self.get("/api/v1/admin/privacy/holds").await
    }

    /// Places a legal hold.
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn place_legal_hold(
        &self,
        hold: &NewLegalHold,
    ) -> Result<LegalHoldView, ClientError> {
        self.with_body("POST", "/api/v1/admin/privacy/holds", hold)
            .await
    }

    /// Asks for a hold's release, which another administrator approves.
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn request_hold_release(&self, hold: &str) -> Result<ApprovalView, ClientError> {
        self.json(
            "DELETE",
            &format!("/api/v1/admin/privacy/holds/{hold}"),
            None,
        )
        .await
    }

    /// The requests waiting for a second administrator.
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn approvals(&self) -> Result<Vec<ApprovalView>, ClientError> {
        self.get("/api/v1/admin/approvals").await
    }

    /// Approves another administrator's request; the server carries it out.
    ///
    /// # Errors
    /// [`ClientError::Api`] (403 for one's own request).
    pub async fn approve(&self, approval: &str) -> Result<ApprovedView, ClientError> {
        self.json(
            "POST",
            &format!("/api/v1/admin/approvals/{approval}/approve"),
            None,
        )
        .await
    }

    /// Deletes a user and everything of theirs (their content by the workspace's policy), or
    /// finishes a deletion that was cut short.
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn delete_user(
        &self,
        user: &str,
    ) -> Result<zt_chat_protocol::lifecycle::UserDeletionView, ClientError> {
        self.json("DELETE", &format!("/api/v1/admin/users/{user}"), None)
            .await
    }

    /// What a user's deletion does with their messages and files.
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn authored_content(
        &self,
    ) -> Result<zt_chat_protocol::lifecycle::AuthoredContentPolicy, ClientError> {
        self.get("/api/v1/admin/privacy/authored-content").await
    }

    /// Sets what a user's deletion does with their messages and files.
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn set_authored_content(
        &self,
        policy: zt_chat_protocol::lifecycle::AuthoredContentView,
    ) -> Result<zt_chat_protocol::lifecycle::AuthoredContentPolicy, ClientError> {
        self.with_body(
            "PUT",
            "/api/v1/admin/privacy/authored-content",
            &zt_chat_protocol::lifecycle::AuthoredContentPolicy { policy },
        )
        .await
    }

    /// What the workspace's data takes (`manage_storage_data`).
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn storage(
        &self,
    ) -> Result<zt_chat_protocol::lifecycle::StorageUseView, ClientError> {
        self.get("/api/v1/admin/storage").await
    }

    /// Removes what deletions left behind (`manage_storage_data`).
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn clean_up_storage(
        &self,
    ) -> Result<zt_chat_protocol::lifecycle::StorageCleanUpView, ClientError> {
        self.json("POST", "/api/v1/admin/storage/clean-up", None)
            .await
    }

    /// The workspace's wipe, if one is scheduled.
    ///
    /// # Errors
    /// [`ClientError::Api`] (404 when none is).
    pub async fn wipe(&self) -> Result<zt_chat_protocol::lifecycle::WipeView, ClientError> {
        self.get("/api/v1/admin/privacy/wipe").await
    }

    /// Schedules the workspace's wipe after `delay_seconds`; a second administrator approves it.
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn schedule_wipe(
        &self,
        delay_seconds: u64,
    ) -> Result<zt_chat_protocol::lifecycle::WipeView, ClientError> {
        self.with_body(
            "POST",
            "/api/v1/admin/privacy/wipe",
            &zt_chat_protocol::lifecycle::NewWipe { delay_seconds },
        )
        .await
    }

    /// Cancels the scheduled wipe.
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn cancel_wipe(&self) -> Result<zt_chat_protocol::lifecycle::WipeView, ClientError> {
        self.json("DELETE", "/api/v1/admin/privacy/wipe", None)
            .await
    }

    /// The deployment's backups, oldest first (`manage_backups`, default workspace).
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn backups(
        &self,
    ) -> Result<Vec<zt_chat_protocol::lifecycle::BackupView>, ClientError> {
        self.get("/api/v1/admin/backups").await
    }

    /// Takes a backup of the whole deployment now.
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn create_backup(
        &self,
    ) -> Result<zt_chat_protocol::lifecycle::BackupView, ClientError> {
        self.json("POST", "/api/v1/admin/backups", None).await
    }

    /// Reads a backup whole on the server and checks it (422 when it does not verify).
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn verify_backup(
        &self,
        id: &str,
    ) -> Result<zt_chat_protocol::lifecycle::BackupVerifiedView, ClientError> {
        self.json("POST", &format!("/api/v1/admin/backups/{id}/verify"), None)
            .await
    }

    /// Deactivates a user: their sessions end.
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn deactivate_user(&self, user: &str) -> Result<UserView, ClientError> {
        self.json(
            "POST",
            &format!("/api/v1/admin/users/{user}/deactivate"),
            None,
        )
        .await
    }

    /// Renames, retitles, archives or unarchives `channel` (the fields given).
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn update_channel(
        &self,
        channel: &str,
        update: &ChannelUpdateRequest,
    ) -> Result<ChannelView, ClientError> {
        self.with_body("PATCH", &format!("/api/v1/channels/{channel}"), update)
            .await
    }

    /// Deletes `channel`: its key is destroyed, so nothing of it can be read again.
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn delete_channel(&self, channel: &str) -> Result<(), ClientError> {
        self.no_content("DELETE", &format!("/api/v1/channels/{channel}"))
            .await
    }

    /// Every user holding a role in the workspace, deactivated ones too (`manage_users`).
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn admin_users(&self) -> Result<Vec<UserView>, ClientError> {
        self.get("/api/v1/admin/users").await
    }

    /// Reactivates a deactivated user.
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn reactivate_user(&self, user: &str) -> Result<UserView, ClientError> {
        self.json(
            "POST",
            &format!("/api/v1/admin/users/{user}/reactivate"),
            None,
        )
        .await
    }

    /// Lifts a user's sign-in lockout.
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn unlock_user(&self, user: &str) -> Result<(), ClientError> {
        self.no_content("POST", &format!("/api/v1/admin/users/{user}/unlock"))
            .await
    }

    /// Sets a user's password; their sessions end.
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn reset_password(
        &self,
        user: &str,
        password: &str,
    ) -> Result<SessionsEnded, ClientError> {
        self.with_body(
            "PUT",
            &format!("/api/v1/admin/users/{user}/password"),
            &PasswordRequest {
                password: password.to_owned(),
            },
        )
        .await
    }

    /// Ends every session of a user.
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn end_sessions(&self, user: &str) -> Result<SessionsEnded, ClientError> {
        self.json(
            "DELETE",
            &format!("/api/v1/admin/users/{user}/sessions"),
            None,
        )
        .await
    }

    /// Changes this client's own password; its other sessions end.
    ///
    /// # Errors
    /// [`ClientError::Api`] (401 for a wrong current password).
    pub async fn change_password(
        &self,
        current: &str,
        password: &str,
    ) -> Result<SessionsEnded, ClientError> {
        self.with_body(
            "PUT",
            "/api/v1/users/me/password",
            &PasswordChangeRequest {
                current: current.to_owned(),
                password: password.to_owned(),
            },
        )
        .await
    }

    /// Changes this client's own display name or address.
    ///
    /// # Errors
    /// [`ClientError::Api`].
    pub async fn update_profile(
        &self,
        update: &ProfileUpdateRequest,
    ) -> Result<UserView, ClientError> {
        self.with_body("PATCH", "/api/v1/users/me", update).await
    }

    /// Opens the realtime stream over a Noise channel to the bound identity's channel key,
    /// authenticating with this client's token inside the channel.
    ///
    /// # Errors
    /// [`ClientError::Unverified`] for a client not bound to an identity;
    /// [`ClientError::Realtime`] when the handshake fails (the server does not hold the key) or
    /// the server refuses the token.
    pub async fn realtime(&self) -> Result<RealtimeStream, ClientError> {
        let bound = self.server.as_ref().ok_or(ClientError::Unverified)?;
        let token = self
            .token
            .clone()
            .ok_or_else(|| ClientError::Realtime("sign in first".into()))?;
        let hello = zeroize::Zeroizing::new(
            serde_json::to_vec(&Hello { token })
                .map_err(|e| ClientError::Realtime(e.to_string()))?,
        );
        let (ws, transport) = self
            .channel("/api/v1/realtime", &bound.identity.channel_key, &hello)
            .await?;
        let mut stream = RealtimeStream {
            ws,
            transport,
            records: Reassembler::default(),
        };
        match stream.next().await? {
            Some(ServerRecord::Ready { .. }) => Ok(stream),
            Some(ServerRecord::Closed { reason }) => Err(ClientError::Realtime(format!(
                "the server closed the stream: {reason}"
            ))),
            other => Err(ClientError::Realtime(format!(
                "expected ready, got {other:?}"
            ))),
        }
    }
}

/// `text` as it is safe to print on a terminal: every control character (C0, DEL, C1: escape
/// sequences, bells, carriage returns, NUL, newlines) and every bidirectional override or isolate
/// is shown escaped (`\n`, `\u{1b}`), so a string from the server can neither drive the terminal
/// nor forge a line or reorder what is shown. Text without such characters is returned as is.
///
/// ```
/// use zt_chat_client::printable;
///
/// assert_eq!(printable("hello"), "hello");
/// assert_eq!(printable("\u{1b}]0;pwned\u{7}x"), "\\u{1b}]0;pwned\\u{7}x");
/// assert_eq!(printable("a\nb\r"), "a\\nb\\r");
/// assert_eq!(printable("abc\u{202e}txt.exe"), "abc\\u{202e}txt.exe");
/// ```
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        c.is_control()
            || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if unsafe_char(c) => out.push_str(&format!("\\u{{{:x}}}", u32::from(c))),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `value` percent-encoded for a query string (everything but the unreserved characters).
fn query_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// How long an idle tunnel is reused; the server closes one idle for
/// `zt_chat_server::tunnel::IDLE_TIMEOUT` (60 s).
const TUNNEL_REUSE: std::time::Duration = std::time::Duration::from_secs(45);

/// The identity a client is bound to and its open tunnel.
struct Bound {
    identity: VerifiedIdentity,
    tunnel: tokio::sync::Mutex<Option<TunnelConn>>,
}

/// An open API tunnel.
struct TunnelConn {
    ws: Ws,
    transport: Transport,
    records: Reassembler,
    used: std::time::Instant,
}

impl TunnelConn {
    async fn send_record(&mut self, record: &[u8]) -> Result<(), ClientError> {
        for frame in self.transport.seal_record(record)? {
            send_binary(&mut self.ws, frame).await?;
        }
        Ok(())
    }

    async fn record(&mut self) -> Result<Vec<u8>, ClientError> {
        loop {
            let frame = next_binary(&mut self.ws)
                .await?
                .ok_or_else(|| ClientError::Realtime("the server closed the tunnel".into()))?;
            let plain = self.transport.open(&frame)?;
            if let Some(record) = self.records.push(&plain)? {
                return Ok(record);
            }
        }
    }

    /// Sends one request and reads its answer.
    async fn exchange(
        &mut self,
        head: &TunnelRequest,
        body: &[u8],
    ) -> Result<(TunnelResponse, Vec<u8>), ClientError> {
        let bytes = zeroize::Zeroizing::new(
            serde_json::to_vec(head).map_err(|e| ClientError::Unreadable(e.to_string()))?,
        );
        self.send_record(&bytes).await?;
        for part in body.chunks(noise::MAX_RECORD) {
            self.send_record(part).await?;
        }
        let head = TunnelResponse::parse(&self.record().await?)
            .map_err(|e| ClientError::Unreadable(e.to_string()))?;
        let mut body = zt_chat_protocol::tunnel::Body::new(head.body_len)
            .map_err(|e| ClientError::Unreadable(e.to_string()))?;
        while !body.is_complete() {
            body.push(&self.record().await?)
                .map_err(|e| ClientError::Unreadable(e.to_string()))?;
        }
        let body = body.into_bytes();
        Ok((head, body))
    }

    async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

async fn send_binary(ws: &mut Ws, bytes: Vec<u8>) -> Result<(), ClientError> {
    ws.send(WsMessage::Binary(bytes.into()))
        .await
        .map_err(|e| ClientError::Realtime(e.to_string()))
}

async fn next_binary(ws: &mut Ws) -> Result<Option<Vec<u8>>, ClientError> {
    loop {
        match ws.next().await {
            None | Some(Ok(WsMessage::Close(_))) => return Ok(None),
            Some(Ok(WsMessage::Binary(bytes))) => return Ok(Some(bytes.to_vec())),
            Some(Ok(WsMessage::Text(_))) => {
                return Err(ClientError::Realtime("the server sent a text frame".into()));
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(ClientError::Realtime(e.to_string())),
        }
    }
}

/// An open realtime stream.
pub struct RealtimeStream {
    ws: Ws,
    transport: Transport,
    records: Reassembler,
}

impl fmt::Debug for RealtimeStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RealtimeStream").finish_non_exhaustive()
    }
}

impl RealtimeStream {
    /// The next record; `None` once the server closed the connection.
    ///
    /// # Errors
    /// [`ClientError::Realtime`] for a frame that does not open or parse.
    pub async fn next(&mut self) -> Result<Option<ServerRecord>, ClientError> {
        loop {
            let Some(frame) = next_binary(&mut self.ws).await? else {
                return Ok(None);
            };
            let plain = self.transport.open(&frame)?;
            if let Some(record) = self.records.push(&plain)? {
                return serde_json::from_slice(&record)
                    .map(Some)
                    .map_err(|e| ClientError::Realtime(format!("unreadable record: {e}")));
            }
        }
    }

    /// Sends a ping; the server answers [`ServerRecord::Pong`].
    ///
    /// # Errors
    /// [`ClientError::Realtime`].
    pub async fn ping(&mut self) -> Result<(), ClientError> {
        let record = serde_json::to_vec(&ClientRecord::Ping)
            .map_err(|e| ClientError::Realtime(e.to_string()))?;
        for frame in self.transport.seal_record(&record)? {
            send_binary(&mut self.ws, frame).await?;
        }
        Ok(())
    }

    /// Sends `bytes` as a raw binary frame, outside the channel: what a broken or hostile client
    /// does (for tests).
    ///
    /// # Errors
    /// [`ClientError::Realtime`].
    pub async fn send_raw(&mut self, bytes: Vec<u8>) -> Result<(), ClientError> {
        send_binary(&mut self.ws, bytes).await
    }

    /// Closes the connection.
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// The servers this client pinned (trust on first use), in a file: [`zt_crypto::pins`] keyed by
/// the server's published identity.
///
/// ```
/// use zt_chat_client::{ChannelKeyView, ClientError, IdentityView, KnownServers, Pin};
///
/// let identity = |fingerprint: &str| IdentityView {
///     fingerprint: fingerprint.into(),
///     public_key: "00".repeat(32),
///     audit_key: String::new(),
///     channel: ChannelKeyView {
///         protocol: String::new(),
///         prologue: String::new(),
///         static_key: String::new(),
///         signature: String::new(),
///     },
/// };
/// let dir = tempfile::tempdir()?;
/// let known = KnownServers::new(dir.path().join("known_servers"));
/// let first = identity("SHA256:first");
/// assert_eq!(known.check("http://chat.example", &first)?, Pin::New);
/// known.pin("http://chat.example", &first)?;
/// // Another identity for the same server is refused, naming both fingerprints.
/// let refused = known.check("http://chat.example", &identity("SHA256:other"));
/// assert!(matches!(refused, Err(ClientError::PinMismatch { .. })));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone)]
pub struct KnownServers(zt_crypto::pins::KnownServers);

impl KnownServers {
    /// The pins in `path` (a missing file has none).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        KnownServers(zt_crypto::pins::KnownServers::new(path))
    }

    /// Compares `identity` with the pin of `server`.
    ///
    /// # Errors
    /// [`ClientError::PinMismatch`] when another key is pinned; [`ClientError::Io`].
    pub fn check(&self, server: &str, identity: &IdentityView) -> Result<Pin, ClientError> {
        Ok(self
            .0
            .check(server, &identity.fingerprint, &identity.public_key)?)
    }

    /// Pins `identity` for `server`.
    ///
    /// # Errors
    /// [`ClientError::Io`].
    pub fn pin(&self, server: &str, identity: &IdentityView) -> Result<(), ClientError> {
        Ok(self
            .0
            .pin(server, &identity.fingerprint, &identity.public_key)?)
    }

    /// Removes the pin of `server`; whether there was one.
    ///
    /// # Errors
    /// [`ClientError::Io`].
    pub fn forget(&self, server: &str) -> Result<bool, ClientError> {
        Ok(self.0.forget(server)?)
    }
}

/// Writes `bytes` to `path` through a temporary file of mode 0600 renamed over it, creating the
/// directory (mode 0700) if needed.
///
/// # Errors
/// [`ClientError::Io`].
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), ClientError> {
    write_private_file(path, bytes).map_err(|source| ClientError::Io {
        path: path.to_path_buf(),
        source,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(seed: u8) -> IdentityView {
        let key = zt_crypto::SigningKey::from_seed(&[seed; 32]);
        let channel = noise::StaticKeypair::generate().unwrap();
        IdentityView {
            fingerprint: key.verifying_key().fingerprint(),
            public_key: hex::encode(key.verifying_key().to_bytes()),
            audit_key: String::new(),
            channel: ChannelKeyView {
                protocol: noise::PROTOCOL.into(),
                prologue: "zt-chat/1".into(),
                static_key: hex::encode(channel.public()),
                signature: hex::encode(key.sign(&noise::channel_key_message(&channel.public()))),
            },
        }
    }

    #[test]
    fn an_identity_verifies_only_when_its_key_signed_its_channel_key() {
        let good = identity(1);
        VerifiedIdentity::verify(good.clone()).unwrap();
        let mut swapped = good.clone();
        swapped.channel.static_key = identity(2).channel.static_key;
        assert!(matches!(
            VerifiedIdentity::verify(swapped),
            Err(ClientError::BadIdentity(_))
        ));
        let mut lying = good.clone();
        lying.fingerprint = identity(3).fingerprint;
        assert!(VerifiedIdentity::verify(lying).is_err());
        let mut other_version = good;
        other_version.channel.prologue = "zt-chat/2".into();
        assert!(VerifiedIdentity::verify(other_version).is_err());
    }

    #[test]
    fn pins_are_kept_per_server_and_a_change_is_refused_with_both_fingerprints() {
        let dir = tempfile::tempdir().unwrap();
        let known = KnownServers::new(dir.path().join("sub/known_servers"));
        let first = identity(1);
        let second = identity(2);
        assert_eq!(known.check("http://a", &first).unwrap(), Pin::New);
        known.pin("http://a", &first).unwrap();
        known.pin("http://b", &second).unwrap();
        assert_eq!(known.check("http://a", &first).unwrap(), Pin::Matches);
        match known.check("http://a", &second).unwrap_err() {
            ClientError::PinMismatch {
                pinned, presented, ..
            } => {
                assert_eq!(pinned, first.fingerprint);
                assert_eq!(presented, second.fingerprint);
            }
            other => panic!("{other}"),
        }
        let warning = known.check("http://a", &second).unwrap_err().to_string();
        assert!(warning.contains(&first.fingerprint) && warning.contains(&second.fingerprint));
        assert!(known.forget("http://a").unwrap());
        assert!(!known.forget("http://a").unwrap());
        assert_eq!(known.check("http://a", &second).unwrap(), Pin::New);
        assert_eq!(known.check("http://b", &second).unwrap(), Pin::Matches);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(dir.path().join("sub/known_servers"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
