//! Keep-alive HTTP/1.1 connections to the daemon's Unix socket, reused LIFO.
//!
//! A connection goes back to the idle list only after its whole answer was read, so an idle
//! connection is always between messages. The daemon may close an idle one at any moment;
//! [`Connections::take_ready`] drops those it finds closed, and the caller retries once on a
//! fresh connection when a reused one turns out dead before the request went out.

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use bytes::Bytes;
use http_body_util::Full;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

use super::ClientError;

/// The sending half of one connection.
pub(super) type Sender = SendRequest<Full<Bytes>>;

/// Idle connections kept at most; more concurrent callers get their own and drop them after.
const MAX_IDLE: usize = 32;

#[derive(Debug)]
pub(super) struct Connections {
    socket: PathBuf,
    idle: Mutex<Vec<Sender>>,
}

impl Connections {
    pub(super) fn new(socket: PathBuf) -> Self {
        Self {
            socket,
            idle: Mutex::new(Vec::new()),
        }
    }

    pub(super) fn socket(&self) -> &std::path::Path {
        &self.socket
    }

    fn lock(&self) -> MutexGuard<'_, Vec<Sender>> {
        // The list holds no invariant a panicking holder could break, so a poisoned lock is
        // as good as a clean one.
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The most recently used idle connection that is still open and ready to send.
    pub(super) async fn take_ready(&self) -> Option<Sender> {
        loop {
            let mut sender = self.lock().pop()?;
            if sender.is_closed() {
                continue;
            }
            // Right after an answer the connection task may not have marked the connection
            // ready yet; waiting is brief, and it errors if the daemon closed it meanwhile.
            if sender.ready().await.is_ok() {
                return Some(sender);
            }
        }
    }

    /// Returns a connection whose last answer was read to the end.
    pub(super) fn put_back(&self, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        let mut idle = self.lock();
        if idle.len() < MAX_IDLE {
            idle.push(sender);
        }
    }

    /// Opens a new connection; its I/O runs on a spawned task that ends when it closes.
    pub(super) async fn connect(&self) -> Result<Sender, ClientError> {
        let stream =
            UnixStream::connect(&self.socket)
                .await
                .map_err(|source| ClientError::Connect {
                    socket: self.socket.clone(),
                    source,
                })?;
        let (sender, connection) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(ClientError::Http)?;
        tokio::spawn(async move {
            // The error, if any, reaches the caller through the sender; nothing to add here.
            let _ = connection.await;
        });
        Ok(sender)
    }
}
