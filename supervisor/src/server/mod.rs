//! The HTTP accept loop on the Unix socket: peer credentials per connection, per-uid connection
//! slots (`slots`), a header read timeout, and a graceful drain bounded by the shutdown grace.
//!
//! It replaces `axum::serve` because that offers neither a header timeout nor a cap; handlers
//! still see `ConnectInfo<Peer>` because the loop inserts it into every request. Request bodies
//! are bounded in time by `api::body` (a minimum rate), which only the handler can do: it alone
//! knows when a body is wanted.

pub mod idle_spin;
mod slots;

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::UnixListener;
use tokio::sync::watch;
use tower::ServiceExt;

pub use slots::SlotLimits;
use slots::{InFlight, Refusal, Slots};

use crate::api::access::{AccessState, Identity};
use crate::api::peer::{Peer, PeerGroups};

/// Limits of the server.
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Connection slots: shared, per uid, and the privileged reserve.
    pub slots: SlotLimits,
    /// Time a client gets to send a request's headers.
    pub header_read_timeout: Duration,
    /// Time open requests get to finish once `stop` turns true.
    pub grace: Duration,
}

/// Serves `app` on `listener` until `stop` turns true, then closes the listener (new
/// connections are refused) and lets open requests finish within the grace. Returns whether
/// every connection finished in time. `access` says who is privileged (always gets a slot).
pub async fn serve(
    listener: UnixListener,
    app: Router,
    opts: ServeOptions,
    access: Arc<AccessState>,
    mut stop: watch::Receiver<bool>,
) -> bool {
    let graceful = GracefulShutdown::new();
    let slots = Slots::new(opts.slots);
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
        // The watchdog's own probe counts as privileged: a busy daemon is not a dead one.
        let who = Identity {
            caller: peer.0,
            groups: Arc::clone(&groups.0),
        };
        let privileged =
            peer.0.pid == own_pid || access.current().is_admin(&who, access.daemon_uid);
        // Refused connections are closed at once (the client sees a reset, not a hang).
        let slot = match slots.admit(peer.0.uid, privileged) {
            Ok(slot) => slot,
            Err(why) => {
                tracing::debug!(
                    caller_uid = peer.0.uid,
                    caller_pid = peer.0.pid,
                    open = slots.open(),
                    reason = match why {
                        Refusal::PerUid => "server.max_connections_per_uid reached",
                        Refusal::Full => "server.max_connections reached, none idle",
                    },
                    "connection refused"
                );
                drop(stream);
                continue;
            }
        };
        let router = app.clone();
        let conn_state = slot.conn();
        let svc =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                let in_flight = conn_state.begin();
                req.extensions_mut().insert(ConnectInfo(peer));
                req.extensions_mut().insert(groups.clone());
                let served = router.clone().oneshot(req);
                async move {
                    let resp = served.await?;
                    // The request stays in flight until its body is sent (an event stream).
                    Ok::<_, std::convert::Infallible>(resp.map(|body| {
                        Body::new(Tracked {
                            body,
                            _in_flight: in_flight,
                        })
                    }))
                }
            });
        let conn = graceful.watch(http.serve_connection(TokioIo::new(stream), svc));
        tokio::spawn(async move {
            tokio::pin!(conn);
            loop {
                tokio::select! {
                    r = &mut conn => {
                        if let Err(e) = r {
                            tracing::debug!(error = %e, "connection ended with an error");
                        }
                        break;
                    }
                    () = slot.eviction_requested() => if slot.confirm_eviction() {
                        tracing::debug!(caller_uid = peer.0.uid, "closing an idle connection to make room");
                        break;
                    },
                }
            }
            drop(slot);
        });
    }
    drop(listener);
    tokio::time::timeout(opts.grace, graceful.shutdown())
        .await
        .is_ok()
}

/// A response body that keeps its request in flight until it is fully sent or dropped.
struct Tracked {
    body: Body,
    _in_flight: InFlight,
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

async fn stopped(stop: &mut watch::Receiver<bool>) {
    // A closed channel means the daemon is going away: stop as well.
    let _ = stop.wait_for(|s| *s).await;
}
