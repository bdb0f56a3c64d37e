//! The one task that owns the process signals: SIGTERM/SIGINT ask for a drain, SIGHUP for a
//! reload. Everything else learns about signals from the events it sends.

use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;

/// What a signal asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalEvent {
    /// SIGTERM or SIGINT: drain and exit.
    Stop,
    /// SIGHUP: re-read the configuration.
    Reload,
}

/// Installs the handlers and returns the event stream. Handlers are installed before this
/// returns, so a signal sent right after start-up is not lost.
pub fn listen() -> std::io::Result<mpsc::Receiver<SignalEvent>> {
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let (tx, rx) = mpsc::channel(8);
    tokio::spawn(async move {
        loop {
            let ev = tokio::select! {
                _ = term.recv() => SignalEvent::Stop,
                _ = int.recv() => SignalEvent::Stop,
                _ = hup.recv() => SignalEvent::Reload,
            };
            if tx.send(ev).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}
