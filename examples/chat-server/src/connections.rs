//! The accept loop: HTTP/1.1 connections with read deadlines and limits on how many are open,
//! so slow or idle clients cannot take the server's file descriptors or its attention.
//!
//! - **Header deadline** ([`Connections::header_timeout_secs`]): a request's head must arrive
//!   whole within it, and it runs from the moment the connection waits for a request, so it is
//!   also the idle keep-alive timeout (hyper's `header_read_timeout`).
//! - **Body deadline** ([`Connections::body_timeout_secs`]): a request body must arrive within
//!   it, plus a second for every [`MIN_BODY_RATE`] bytes it carries; a body that stalls or
//!   trickles fails the request, and the connection closes.
//!   A declared chunk or content length never reserves memory: what arrives is counted against the
//!   route's body limit (64 KiB for JSON, the file limit for uploads) and refused past it.
//! - **Open connections** per client address ([`Connections::per_address`]) and in total
//!   ([`Connections::total`]). A connection over either limit is closed at once, before any byte
//!   of it is read; the refusals are counted in `zt_http_connections_refused_total`.
//!
//! WebSocket connections (realtime, the tunnel) count against the same limits while open; their
//! own handshake and idle deadlines apply once upgraded.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Deserialize;
use tokio::sync::watch;
use tower::ServiceExt as _;

use crate::tls::ClientAddr;

/// How long shutdown waits for open HTTP connections to finish their requests.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(10);

/// The connection limits and deadlines (`[connections]` in the settings file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Connections {
    /// Open connections one client address may hold.
    pub per_address: usize,
    /// Open connections in all.
    pub total: usize,
    /// Seconds a client has to send a request's head once the connection waits for one (also
    /// how long an idle keep-alive connection stays open).
    pub header_timeout_secs: u64,
    /// Seconds a request body has to arrive, plus a second per [`MIN_BODY_RATE`] bytes.
    pub body_timeout_secs: u64,
}

impl Default for Connections {
    fn default() -> Self {
        Connections {
            per_address: 64,
            total: 4096,
            header_timeout_secs: 10,
            body_timeout_secs: 15,
        }
    }
}

impl Connections {
    /// Refuses values that would let nothing in or never time out.
    ///
    /// # Errors
    /// What is wrong, for the settings error.
    pub fn check(&self) -> Result<(), String> {
        if self.per_address == 0 || self.total == 0 || self.per_address > self.total {
            return Err(
                "connections: per_address and total must be at least 1, and per_address \
                        at most total"
                    .into(),
            );
        }
        if !(1..=3600).contains(&self.header_timeout_secs)
            || !(1..=3600).contains(&self.body_timeout_secs)
        {
            return Err("connections: the timeouts are 1 to 3600 seconds".into());
        }
        Ok(())
    }

    /// The header deadline.
    pub fn header_timeout(&self) -> Duration {
        Duration::from_secs(self.header_timeout_secs)
    }

    /// The body deadline.
    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.body_timeout_secs)
    }
}

/// The open connections, per address and in all.
#[derive(Debug, Default)]
pub struct OpenConnections {
    per_address: Mutex<HashMap<IpAddr, usize>>,
    total: AtomicUsize,
    /// Connections closed at once for being over a limit.
    pub refused: AtomicUsize,
}

impl OpenConnections {
    /// How many are open.
    pub fn open(&self) -> usize {
        self.total.load(Ordering::Relaxed)
    }

    /// Admits a connection from `ip` within `limits`; the guard gives its place back.
    fn admit(self: &Arc<Self>, ip: IpAddr, limits: &Connections) -> Option<Admitted> {
        let mut per_address = self
            .per_address
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let here = per_address.get(&ip).copied().unwrap_or(0);
        if here >= limits.per_address || self.total.load(Ordering::Relaxed) >= limits.total {
            self.refused.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        per_address.insert(ip, here + 1);
        self.total.fetch_add(1, Ordering::Relaxed);
        Some(Admitted {
            open: Arc::clone(self),
            ip,
        })
    }
}

/// A connection's place among the open ones.
struct Admitted {
    open: Arc<OpenConnections>,
    ip: IpAddr,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        let mut per_address = self
            .open
            .per_address
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(count) = per_address.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                per_address.remove(&self.ip);
            }
        }
        self.open.total.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The slowest a request body may arrive, after its first [`Connections::body_timeout_secs`].
pub const MIN_BODY_RATE: u64 = 1024;

/// A request body too slow: it paused longer than the deadline, or fell below
/// [`MIN_BODY_RATE`].
#[derive(Debug, thiserror::Error)]
#[error("the request body arrived too slowly")]
pub struct BodyTooSlow;

/// A request body with a deadline: `timeout` from its start, plus a second for every
/// [`MIN_BODY_RATE`] bytes received. A body that stalls fails once the deadline passes; one that
/// trickles (a byte at a time, each in time for an idle timeout) fails as well, as the bytes it
/// sends move its deadline only by what they are worth at the minimum rate.
struct DeadlineBody {
    inner: Body,
    start: tokio::time::Instant,
    timeout: Duration,
    received: u64,
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl DeadlineBody {
    fn new(inner: Body, timeout: Duration) -> Self {
        let start = tokio::time::Instant::now();
        DeadlineBody {
            inner,
            start,
            timeout,
            received: 0,
            sleep: Box::pin(tokio::time::sleep_until(start + timeout)),
        }
    }

    fn deadline(&self) -> tokio::time::Instant {
        self.start + self.timeout + Duration::from_millis(self.received * 1000 / MIN_BODY_RATE)
    }
}

impl axum::body::HttpBody for DeadlineBody {
    type Data = axum::body::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        use std::task::Poll;
        let this = &mut *self;
        match std::pin::Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received = this.received.saturating_add(data.len() as u64);
                    let deadline = this.deadline();
                    this.sleep.as_mut().reset(deadline);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTooSlow)))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

/// A connection's socket with its place: the place is given back when the socket closes, also
/// after an upgrade to a WebSocket took it over.
struct Counted<T> {
    io: T,
    _admitted: Admitted,
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for Counted<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for Counted<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then lets open requests finish (up to
/// 10 s) and returns.
pub(crate) async fn serve<L>(
    mut listener: L,
    app: Router,
    limits: Connections,
    open: Arc<OpenConnections>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) where
    L: Listener<Addr = SocketAddr>,
{
    let (closing, close) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout())
        .max_buf_size(64 * 1024)
        .keep_alive(true);
    loop {
        let (io, addr) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let Some(admitted) = open.admit(addr.ip(), &limits) else {
            tracing::debug!(client = %addr.ip(), "connection over the limit, closed");
            drop(io);
            continue;
        };
        let app = app.clone();
        let body_timeout = limits.body_timeout();
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let mut request =
                request.map(|body| Body::new(DeadlineBody::new(Body::new(body), body_timeout)));
            request
                .extensions_mut()
                .insert(ConnectInfo(ClientAddr(addr)));
            app.clone().oneshot(request)
        });
        let io = Counted {
            io,
            _admitted: admitted,
        };
        let connection = builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        let mut close = close.clone();
        tokio::spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let closing = async move {
                // An error means the loop is gone: closing too.
                let _ = close.wait_for(|closing| *closing).await;
            };
            tokio::select! {
                _ = connection.as_mut() => {}
                () = closing => {
                    connection.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(CLOSE_TIMEOUT, connection.as_mut()).await;
                }
            }
        });
    }
    drop(listener);
    drop(close);
    let _ = closing.send(true);
    // Every connection task holds a receiver: they are gone once all finished.
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, closing.closed()).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_address_has_its_share_and_all_of_them_the_total() {
        let limits = Connections {
            per_address: 2,
            total: 3,
            ..Connections::default()
        };
        let open = Arc::new(OpenConnections::default());
        let a: IpAddr = "127.0.0.2".parse().unwrap();
        let b: IpAddr = "127.0.0.3".parse().unwrap();
        let first = open.admit(a, &limits).unwrap();
        let _second = open.admit(a, &limits).unwrap();
        assert!(open.admit(a, &limits).is_none(), "a third from one address");
        let _other = open.admit(b, &limits).unwrap();
        assert!(open.admit(b, &limits).is_none(), "over the total");
        assert_eq!(open.open(), 3);
        drop(first);
        assert!(open.admit(a, &limits).is_some(), "a place was given back");
        assert_eq!(open.refused.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn limits_that_admit_nothing_are_refused() {
        assert!(Connections::default().check().is_ok());
        for bad in [
            Connections {
                per_address: 0,
                ..Connections::default()
            },
            Connections {
                per_address: 10,
                total: 5,
                ..Connections::default()
            },
            Connections {
                header_timeout_secs: 0,
                ..Connections::default()
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
    }
}
