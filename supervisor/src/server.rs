//! The HTTP accept loop on the Unix socket: peer credentials per connection, a connection cap,
//! a header read timeout, and a graceful drain bounded by the shutdown grace.
//!
//! It replaces `axum::serve` because that offers neither a header timeout nor a cap; handlers
//! still see `ConnectInfo<Peer>` because the loop inserts it into every request.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::UnixListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt;

use crate::api::peer::{Peer, PeerGroups};

/// Limits of the server.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Most connections at once; above it new connections are closed.
    pub max_connections: usize,
    /// Time a client gets to send a request's headers.
    pub header_read_timeout: Duration,
    /// Time open requests get to finish once `stop` turns true.
    pub grace: Duration,
}

/// Serves `app` on `listener` until `stop` turns true, then closes the listener (new
/// connections are refused) and lets open requests finish within the grace. Returns whether
/// every connection finished in time.
pub async fn serve(
    listener: UnixListener,
    app: Router,
    opts: ServeOptions,
    mut stop: watch::Receiver<bool>,
) -> bool {
    let graceful = GracefulShutdown::new();
    let slots = Arc::new(Semaphore::new(opts.max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout);
    let own_pid = i32::try_from(std::process::id()).unwrap_or(0);
    loop {
        let stream = tokio::select! {
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopped(&mut stop) => break,
        };
        let peer = Peer::of(&stream);
        // Read once here, while the connecting process most likely still exists.
        let groups = PeerGroups::of(&peer.0);
        // Over the cap a connection is closed at once (the client sees a reset, not a hang),
        // except the watchdog's own probe: a busy daemon is not a dead one.
        let permit = match Arc::clone(&slots).try_acquire_owned() {
            Ok(p) => Some(p),
            Err(_) if peer.0.pid == own_pid => None,
            Err(_) => {
                tracing::debug!(
                    caller_uid = peer.0.uid,
                    caller_pid = peer.0.pid,
                    "connection refused: server.max_connections reached"
                );
                drop(stream);
                continue;
            }
        };
        let router = app.clone();
        let svc =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                req.extensions_mut().insert(groups.clone());
                router.clone().oneshot(req)
            });
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), svc));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "connection ended with an error");
            }
            drop(permit);
        });
    }
    drop(listener);
    tokio::time::timeout(opts.grace, graceful.shutdown())
        .await
        .is_ok()
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    // A closed channel means the daemon is going away: stop as well.
    let _ = stop.wait_for(|s| *s).await;
}
