//! What the daemon does between ready and stop: it waits for signals and applies a SIGHUP's
//! reload, recording each in the audit trail; start-up and shutdown stay in `mod.rs` around it.

use sd_notify::NotifyState;
use tokio::sync::mpsc;

use crate::audit::AuditLog;
use crate::config::Config;
use crate::daemon::reload::{ConfigLoader, Reloadable};
use crate::daemon::shutdown::SignalEvent;
use crate::daemon::systemd::Notifier;

/// Serves until SIGTERM or SIGINT (or until the signal listener ends), applying each SIGHUP's
/// reload to `reloadable`; `in_force` is the configuration a reload is compared with.
pub(super) async fn until_stopped(
    signals: &mut mpsc::Receiver<SignalEvent>,
    reload: Option<&ConfigLoader>,
    notifier: &Notifier,
    reloadable: &Reloadable,
    mut in_force: Config,
    audit: &AuditLog,
) {
    while let Some(ev) = signals.recv().await {
        match ev {
            SignalEvent::Stop => break,
            SignalEvent::Reload => {
                let Some(load) = reload else {
                    tracing::warn!(
                        "SIGHUP ignored: the daemon was started without a configuration file"
                    );
                    continue;
                };
                notifier.notify(&[NotifyState::Reloading]);
                let applied = crate::daemon::reload::apply(&in_force, load(), reloadable).await;
                // The kernel does not tell who sent the signal: recorded as uid 0, via signal.
                // No caller waits for an answer, so a failed row can only be logged (loudly).
                let event = crate::audit::Event::new("reload")
                    .after(serde_json::json!({ "applied": applied.is_some() }));
                let log = audit.clone();
                match tokio::task::spawn_blocking(move || log.record_signal(&event)).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::error!(error = %e, action = "reload",
                        "AUDIT FAILURE: a reload was applied but could not be recorded"),
                    Err(e) => tracing::error!(error = %e, action = "reload",
                        "AUDIT FAILURE: the audit task of a reload failed"),
                }
                if let Some(c) = applied {
                    in_force = c;
                }
                notifier.notify(&[NotifyState::Ready, NotifyState::Status("serving")]);
            }
        }
    }
}
