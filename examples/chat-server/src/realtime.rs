//! `GET /api/v1/realtime`: the zt-chat hub's events over a WebSocket carrying a Noise XK channel
//! (see [`zt_crypto::channel`]).
//!
//! 1. The client sends `msg1`, the server `msg2`, the client `msg3`, each one binary message.
//!    `msg3` carries a [`Hello`] with the bearer token, encrypted.
//! 2. The server answers [`ServerRecord::Ready`], then each event the caller may read, as it
//!    happens. The client may send [`ClientRecord::Ping`]; the server answers `Pong`.
//! 3. The stream ends with [`ServerRecord::Closed`] when the session is revoked or ends, the
//!    client falls too far behind, or the server shuts down.
//!
//! A failed handshake is audited as `crypto.key_exchange_failed`; any frame after it that is not
//! the next transport message of the channel (a text frame, a plaintext or forged frame, a
//! replayed or reordered one) as `crypto.plaintext_rejected`. Either closes the connection.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::extract::State;
use axum::extract::ws::{CloseFrame, Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::http::Extensions;
use axum::response::Response;
use zeroize::Zeroizing;
use zt_chat::CloseReason;
pub use zt_chat_protocol::realtime::{ClientRecord, Hello, ServerRecord};
use zt_core::{
    Actor, AuditEvent, AuditEventKind, Clock as _, Outcome, SystemClock, TenantId, UserId,
};

use crate::state::AppState;
use zt_crypto::channel::{
    self as noise, ChannelError as NoiseError, Reassembler, Responder, Transport,
};

/// How long a client has to complete the handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The WebSocket read buffer of a realtime connection.
const READ_BUFFER: usize = 4 * 1024;
/// The largest record a client may send (after the handshake it only pings).
pub const MAX_CLIENT_RECORD: usize = 4 * 1024;

fn close_reason(reason: CloseReason) -> &'static str {
    match reason {
        CloseReason::SessionEnded => "session_ended",
        CloseReason::TooSlow => "too_slow",
        CloseReason::Resync => "resync",
        CloseReason::Shutdown => "shutdown",
    }
}

/// The upgrade handler.
pub(crate) async fn upgrade(
    State(state): State<AppState>,
    extensions: Extensions,
    ws: WebSocketUpgrade,
) -> Response {
    let source = crate::api::client_addr(&extensions);
    // Small buffers: an idle connection should cost kilobytes, not tungstenite's 128 KiB default
    // read buffer. A Noise message is at most 64 KiB either way.
    ws.max_message_size(noise::MAX_MESSAGE)
        .max_frame_size(noise::MAX_MESSAGE)
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .on_upgrade(move |socket| async move {
            let active = Arc::clone(&state.realtime.active);
            active.fetch_add(1, Ordering::Relaxed);
            run(state, socket, source).await;
            active.fetch_sub(1, Ordering::Relaxed);
        })
}

/// Who is at the other end, for the audit record.
pub(crate) struct Peer {
    source: Option<IpAddr>,
    tenant: Option<TenantId>,
    user: Option<UserId>,
}

impl Peer {
    /// An anonymous peer at `source`.
    pub(crate) fn from_source(source: Option<IpAddr>) -> Self {
        Peer {
            source,
            tenant: None,
            user: None,
        }
    }

    async fn audit(&self, state: &AppState, kind: AuditEventKind, why: &str) {
        self.audit_target(state, kind, "realtime", why).await;
    }

    /// Records a failure of `kind` on `target` (`realtime`, `tunnel`).
    pub(crate) async fn audit_target(
        &self,
        state: &AppState,
        kind: AuditEventKind,
        target: &str,
        why: &str,
    ) {
        let actor = self.user.map_or(Actor::Anonymous, Actor::User);
        let mut event = AuditEvent::new(kind, actor, SystemClock.now())
            .outcome(Outcome::Failure)
            .target(target);
        if let Some(tenant) = self.tenant {
            event = event.tenant(tenant);
        }
        if let Some(source) = self.source {
            event = event.source(source);
        }
        let recorded = match event.detail("reason", why) {
            Ok(event) => state.audit.append(event).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = recorded {
            tracing::error!(error = %e, kind = kind.name(), "cannot audit a realtime failure");
        }
    }
}

/// The next binary message, or `None` when the client went away. A text frame is `Err`.
pub(crate) async fn next_binary(socket: &mut WebSocket) -> Option<Result<Vec<u8>, &'static str>> {
    loop {
        match socket.recv().await? {
            Ok(WsMessage::Binary(bytes)) => return Some(Ok(bytes.to_vec())),
            Ok(WsMessage::Text(_)) => return Some(Err("a text frame")),
            Ok(WsMessage::Ping(_) | WsMessage::Pong(_)) => {}
            Ok(WsMessage::Close(_)) | Err(_) => return None,
        }
    }
}

pub(crate) async fn handshake(
    state: &AppState,
    socket: &mut WebSocket,
) -> Result<Option<(Zeroizing<Vec<u8>>, Transport)>, NoiseError> {
    let mut responder = Responder::new(&state.channel_key)?;
    let Some(msg1) = next_binary(socket).await else {
        return Ok(None);
    };
    let msg1 = msg1.map_err(|what| NoiseError::Handshake(format!("{what} instead of msg1")))?;
    let msg2 = responder.respond(&msg1)?;
    if socket.send(WsMessage::Binary(msg2.into())).await.is_err() {
        return Ok(None);
    }
    let Some(msg3) = next_binary(socket).await else {
        return Ok(None);
    };
    let msg3 = msg3.map_err(|what| NoiseError::Handshake(format!("{what} instead of msg3")))?;
    Ok(Some(responder.finish(&msg3)?))
}

async fn send(
    socket: &mut WebSocket,
    transport: &mut Transport,
    record: &ServerRecord,
) -> Result<(), ()> {
    let json = serde_json::to_vec(record).map_err(|e| {
        tracing::error!(error = %e, "cannot encode a realtime record");
    })?;
    send_json(socket, transport, &json).await
}

async fn send_json(
    socket: &mut WebSocket,
    transport: &mut Transport,
    json: &[u8],
) -> Result<(), ()> {
    let frames = transport.seal_record(json).map_err(|e| {
        tracing::error!(error = %e, "cannot seal a realtime record");
    })?;
    for frame in frames {
        socket
            .send(WsMessage::Binary(frame.into()))
            .await
            .map_err(|_| ())?;
    }
    Ok(())
}

async fn close(socket: &mut WebSocket, transport: &mut Transport, reason: &str) {
    let _ = send(
        socket,
        transport,
        &ServerRecord::Closed {
            reason: reason.to_owned(),
        },
    )
    .await;
    let _ = socket
        .send(WsMessage::Close(Some(CloseFrame {
            code: axum::extract::ws::close_code::NORMAL,
            reason: reason.into(),
        })))
        .await;
}

/// Completes once shutdown began.
pub(crate) async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    // An error means the sender is gone: the server is stopping too.
    let _ = stop.wait_for(|stop| *stop).await;
}

async fn run(state: AppState, mut socket: WebSocket, source: Option<IpAddr>) {
    let mut peer = Peer::from_source(source);
    let (hello, mut transport) =
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(&state, &mut socket)).await {
            Ok(Ok(Some(done))) => done,
            Ok(Ok(None)) => return,
            Ok(Err(e)) => {
                tracing::info!(error = %e, "realtime handshake failed");
                peer.audit(&state, AuditEventKind::KeyExchangeFailed, &e.to_string())
                    .await;
                let _ = socket.send(WsMessage::Close(None)).await;
                return;
            }
            Err(_) => {
                peer.audit(
                    &state,
                    AuditEventKind::KeyExchangeFailed,
                    "handshake timed out",
                )
                .await;
                let _ = socket.send(WsMessage::Close(None)).await;
                return;
            }
        };
    let hello: Option<Hello> = serde_json::from_slice(&hello).ok();
    let authenticated = match hello {
        Some(hello) => crate::api::authenticate(&state, &hello.token).await.ok(),
        None => None,
    };
    let Some((workspace, caller, token)) = authenticated else {
        close(&mut socket, &mut transport, "unauthenticated").await;
        return;
    };
    peer.tenant = Some(workspace.tenant());
    peer.user = Some(caller.user());
    let mut subscription = match workspace.subscribe(&token).await {
        Ok(s) => s,
        Err(_) => {
            close(&mut socket, &mut transport, "unauthenticated").await;
            return;
        }
    };
    drop(token);
    let ready = ServerRecord::Ready {
        workspace: workspace.tenant().to_string(),
        user: caller.user().to_string(),
    };
    if send(&mut socket, &mut transport, &ready).await.is_err() {
        return;
    }
    let mut stop = state.realtime.stop.subscribe();
    let mut records = Reassembler::default();
    loop {
        tokio::select! {
            next = subscription.next() => match next {
                Ok(event) => {
                    let Ok(json) = state.realtime.encoded.encode(&event) else {
                        tracing::error!("cannot encode a realtime event");
                        return;
                    };
                    if send_json(&mut socket, &mut transport, &json).await.is_err() {
                        return;
                    }
                }
                Err(reason) => {
                    close(&mut socket, &mut transport, close_reason(reason)).await;
                    return;
                }
            },
            frame = next_binary(&mut socket) => {
                let Some(frame) = frame else { return };
                let record = match frame {
                    Err(what) => Err(what.to_owned()),
                    Ok(frame) => transport
                        .open(&frame)
                        .and_then(|plain| records.push(&plain))
                        .map_err(|e| e.to_string()),
                };
                match record {
                    Ok(None) => {}
                    Ok(Some(record)) if record.len() <= MAX_CLIENT_RECORD => {
                        match serde_json::from_slice::<ClientRecord>(&record) {
                            Ok(ClientRecord::Ping) => {
                                if send(&mut socket, &mut transport, &ServerRecord::Pong).await.is_err() {
                                    return;
                                }
                            }
                            Err(_) => {
                                close(&mut socket, &mut transport, "protocol_error").await;
                                return;
                            }
                        }
                    }
                    Ok(Some(_)) => {
                        close(&mut socket, &mut transport, "protocol_error").await;
                        return;
                    }
                    Err(why) => {
                        tracing::info!(reason = %why, "realtime frame rejected");
                        peer.audit(&state, AuditEventKind::PlaintextPacketRejected, &why).await;
                        // The channel's nonces are out of step: nothing more can be sealed for
                        // this client that it could open, so the socket closes without a record.
                        let _ = socket.send(WsMessage::Close(None)).await;
                        return;
                    }
                }
            }
            () = stopped(&mut stop) => {
                close(&mut socket, &mut transport, "shutdown").await;
                return;
            }
        }
    }
}
