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

/// Invocations being run, so that those the shutdown grace cuts off still get a terminal
/// record (`E005`) instead of vanishing with the process.
#[derive(Debug, Default)]
pub struct InFlight {
    records: dashmap::DashMap<String, crate::execution::ExecutionRecord>,
}

impl InFlight {
    /// Notes a run that has begun (its `queued` record).
    pub fn begin(&self, rec: crate::execution::ExecutionRecord) {
        self.records.insert(rec.id.clone(), rec);
    }

    /// Notes a run that has its own terminal record.
    pub fn end(&self, id: &str) {
        self.records.remove(id);
    }

    /// Takes every run still open and finishes it as failed with `E005`.
    pub fn cut_off(&self) -> Vec<crate::execution::ExecutionRecord> {
        let ids: Vec<String> = self.records.iter().map(|r| r.key().clone()).collect();
        ids.into_iter()
            .filter_map(|id| self.records.remove(&id))
            .map(|(_, mut rec)| {
                rec.finish(
                    crate::execution::State::Failed,
                    Some(crate::execution::ExecutionError::new(
                        crate::execution::ErrorCode::E005,
                        "ShutdownGrace",
                        "runwarmd stopped before the invocation finished (server.shutdown_grace_ms ran out)",
                    )),
                );
                rec
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::execution::{ExecutionRecord, State};

    #[test]
    fn cut_off_finishes_open_runs_only() {
        let f = InFlight::default();
        let mut a = ExecutionRecord::queued(
            "a".into(),
            "s".into(),
            "v".into(),
            runwarm_protocol::RawJson::default(),
            runwarm_protocol::Caller::default(),
            String::new(),
        );
        a.state = State::Running;
        f.begin(a.clone());
        a.id = "b".into();
        f.begin(a);
        f.end("b");
        let cut = f.cut_off();
        assert_eq!(cut.len(), 1);
        assert_eq!(cut[0].id, "a");
        assert_eq!(cut[0].state, State::Failed);
        assert_eq!(cut[0].error.as_ref().map(|e| e.code.as_str()), Some("E005"));
        assert!(f.cut_off().is_empty());
    }
}
