//! `GET /api/v1/tunnel`: the `/api/v1` API carried inside the Noise XK channel to the server's
//! pinned key (see [`zt_chat_protocol::tunnel`]), what the reference client uses for every call
//! that carries a credential or content.
//!
//! The handshake is the realtime channel's ([`crate::realtime`]); its last message's payload is
//! ignored (the token travels with each request). Each request is handed to the same router that
//! answers plain HTTP, with the connection's client address, so rate limits, authentication,
//! audit and metrics are the same whichever way a request came. A failed handshake is audited as
//! `crypto.key_exchange_failed`, a frame that does not open as `crypto.plaintext_rejected`;
//! either, a head that does not parse, or [`IDLE_TIMEOUT`] without a request closes the tunnel.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{Extensions, HeaderValue, Request, header};
use axum::response::{IntoResponse as _, Response};
use tower::ServiceExt as _;
use zt_chat_protocol::tunnel::{
    Body as TunnelBody, MAX_RESPONSE_BODY, TunnelRequest, TunnelResponse,
};
use zt_core::AuditEventKind;
use zt_crypto::channel::{self as noise, MAX_RECORD, Reassembler, Transport};

use crate::api::ApiError;
use crate::realtime::{HANDSHAKE_TIMEOUT, Peer, handshake, next_binary, stopped};
use crate::state::AppState;
use crate::tls::ClientAddr;

/// How long a tunnel may stay open without a request.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a client has to send the whole of one request once its head arrived.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What the tunnel's handler holds: the server's state and the router it hands requests to.
#[derive(Clone)]
pub(crate) struct Tunnel {
    pub(crate) state: AppState,
    pub(crate) app: Router,
}

/// The upgrade handler.
pub(crate) async fn upgrade(
    State(tunnel): State<Tunnel>,
    extensions: Extensions,
    ws: WebSocketUpgrade,
) -> Response {
    let addr = extensions
        .get::<ConnectInfo<ClientAddr>>()
        .map(|ConnectInfo(ClientAddr(addr))| *addr);
    ws.max_message_size(noise::MAX_MESSAGE)
        .max_frame_size(noise::MAX_MESSAGE)
        .read_buffer_size(8 * 1024)
        .write_buffer_size(0)
        .on_upgrade(move |socket| async move {
            let active = Arc::clone(&tunnel.state.realtime.tunnels);
            active.fetch_add(1, Ordering::Relaxed);
            run(tunnel, socket, addr).await;
            active.fetch_sub(1, Ordering::Relaxed);
        })
}

/// Why a tunnel closed early.
enum Broken {
    /// The client went away or the server could not write.
    Gone,
    /// A frame did not open: audited.
    Forged(String),
    /// A head or body out of protocol.
    Protocol,
}

/// Reads one whole record.
async fn record(
    socket: &mut WebSocket,
    transport: &mut Transport,
    records: &mut Reassembler,
) -> Result<Vec<u8>, Broken> {
    loop {
        let frame = match next_binary(socket).await {
            None => return Err(Broken::Gone),
            Some(Err(what)) => return Err(Broken::Forged(what.to_owned())),
            Some(Ok(frame)) => frame,
        };
        let plain = transport
            .open(&frame)
            .map_err(|e| Broken::Forged(e.to_string()))?;
        if let Some(record) = records
            .push(&plain)
            .map_err(|e| Broken::Forged(e.to_string()))?
        {
            return Ok(record);
        }
    }
}

/// Reads `len` bytes of body in records.
async fn body(
    socket: &mut WebSocket,
    transport: &mut Transport,
    records: &mut Reassembler,
    len: u64,
) -> Result<Vec<u8>, Broken> {
    let mut body = TunnelBody::new(len).map_err(|_| Broken::Protocol)?;
    while !body.is_complete() {
        let part = record(socket, transport, records).await?;
        body.push(&part).map_err(|_| Broken::Protocol)?;
    }
    Ok(body.into_bytes())
}

async fn send(
    socket: &mut WebSocket,
    transport: &mut Transport,
    record: &[u8],
) -> Result<(), Broken> {
    let frames = transport.seal_record(record).map_err(|e| {
        tracing::error!(error = %e, "cannot seal a tunnel record");
        Broken::Gone
    })?;
    for frame in frames {
        socket
            .send(WsMessage::Binary(frame.into()))
            .await
            .map_err(|_| Broken::Gone)?;
    }
    Ok(())
}

/// Hands one request to the router and collects its answer; a request the router could not be
/// handed gets the API's own error answer, in the same shape.
async fn answer(
    app: &Router,
    addr: Option<SocketAddr>,
    head: TunnelRequest,
    body: Vec<u8>,
) -> (TunnelResponse, Vec<u8>) {
    let response = match request(addr, head, body) {
        Ok(request) => {
            let Ok(response) = app.clone().oneshot(request).await;
            response
        }
        Err(refused) => refused.into_response(),
    };
    let (parts, body) = response.into_parts();
    let header_text = |name| {
        parts
            .headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
            .map(str::to_owned)
    };
    let limit = usize::try_from(MAX_RESPONSE_BODY).unwrap_or(usize::MAX);
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes.to_vec(),
        Err(e) => {
            tracing::error!(error = %e, "a tunnelled response body could not be read");
            return answer_error(ApiError::internal(&e)).await;
        }
    };
    (
        TunnelResponse {
            status: parts.status.as_u16(),
            content_type: header_text(header::CONTENT_TYPE),
            retry_after: header_text(header::RETRY_AFTER).and_then(|v| v.parse().ok()),
            body_len: bytes.len() as u64,
        },
        bytes,
    )
}

/// The answer of an [`ApiError`], as the tunnel sends it.
async fn answer_error(error: ApiError) -> (TunnelResponse, Vec<u8>) {
    let (parts, body) = error.into_response().into_parts();
    let bytes = axum::body::to_bytes(body, usize::MAX)
        .await
        .map(|b| b.to_vec())
        .unwrap_or_default();
    (
        TunnelResponse {
            status: parts.status.as_u16(),
            content_type: Some("application/json".into()),
            retry_after: None,
            body_len: bytes.len() as u64,
        },
        bytes,
    )
}

/// The HTTP request a tunnel head describes, with the connection's address.
fn request(
    addr: Option<SocketAddr>,
    head: TunnelRequest,
    body: Vec<u8>,
) -> Result<Request<Body>, ApiError> {
    let mut request = Request::new(Body::from(body));
    let (Ok(method), Ok(uri)) = (
        head.method.parse::<axum::http::Method>(),
        head.path.parse::<axum::http::Uri>(),
    ) else {
        return Err(ApiError::invalid(
            "request",
            "the request line does not parse",
        ));
    };
    *request.method_mut() = method;
    *request.uri_mut() = uri;
    let headers = request.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(token) = head.token {
        let value = HeaderValue::try_from(format!("Bearer {token}"))
            .map_err(|_| ApiError::unauthenticated())?;
        headers.insert(header::AUTHORIZATION, value);
    }
    if let Some(addr) = addr {
        request
            .extensions_mut()
            .insert(ConnectInfo(ClientAddr(addr)));
    }
    Ok(request)
}

async fn run(tunnel: Tunnel, mut socket: WebSocket, addr: Option<SocketAddr>) {
    let state = &tunnel.state;
    let peer = Peer::from_source(addr.map(|a| a.ip()));
    let mut transport =
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, handshake(state, &mut socket)).await {
            Ok(Ok(Some((_, transport)))) => transport,
            Ok(Ok(None)) => return,
            Ok(Err(e)) => {
                peer.audit_target(
                    state,
                    AuditEventKind::KeyExchangeFailed,
                    "tunnel",
                    &e.to_string(),
                )
                .await;
                let _ = socket.send(WsMessage::Close(None)).await;
                return;
            }
            Err(_) => {
                peer.audit_target(
                    state,
                    AuditEventKind::KeyExchangeFailed,
                    "tunnel",
                    "handshake timed out",
                )
                .await;
                let _ = socket.send(WsMessage::Close(None)).await;
                return;
            }
        };
    let mut stop = state.realtime.stop.subscribe();
    let mut records = Reassembler::default();
    loop {
        let head = tokio::select! {
            head = tokio::time::timeout(IDLE_TIMEOUT, record(&mut socket, &mut transport, &mut records)) => head,
            () = stopped(&mut stop) => break,
        };
        let served = match head {
            Err(_) => break,
            Ok(Err(broken)) => Err(broken),
            Ok(Ok(head)) => match TunnelRequest::parse(&head) {
                Err(e) => {
                    tracing::info!(error = %e, "tunnel head refused");
                    Err(Broken::Protocol)
                }
                Ok(head) => {
                    // The head's parser held the length to MAX_REQUEST_BODY.
                    let read = tokio::time::timeout(
                        REQUEST_TIMEOUT,
                        body(&mut socket, &mut transport, &mut records, head.body_len),
                    )
                    .await
                    .unwrap_or(Err(Broken::Protocol));
                    match read {
                        Err(broken) => Err(broken),
                        Ok(body) => {
                            let (response, body) = answer(&tunnel.app, addr, head, body).await;
                            reply(&mut socket, &mut transport, &response, &body).await
                        }
                    }
                }
            },
        };
        match served {
            Ok(()) => {}
            Err(Broken::Gone) => return,
            Err(Broken::Protocol) => break,
            Err(Broken::Forged(why)) => {
                tracing::info!(reason = %why, "tunnel frame rejected");
                peer.audit_target(
                    state,
                    AuditEventKind::PlaintextPacketRejected,
                    "tunnel",
                    &why,
                )
                .await;
                break;
            }
        }
    }
    let _ = socket.send(WsMessage::Close(None)).await;
}

async fn reply(
    socket: &mut WebSocket,
    transport: &mut Transport,
    response: &TunnelResponse,
    body: &[u8],
) -> Result<(), Broken> {
    let head = serde_json::to_vec(response).map_err(|_| Broken::Gone)?;
    send(socket, transport, &head).await?;
    for part in body.chunks(MAX_RECORD) {
        send(socket, transport, part).await?;
    }
    Ok(())
}
