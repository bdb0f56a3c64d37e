//! A version's prepare steps as the launcher sees them: submitted at registration or start,
//! waited for before a pool slot is taken, and their folders looked up when an executor starts.

use super::{Launcher, ScriptRef};
use crate::prepare::{Job, PrepareError, PrepareStatus, Prepared, Preparer};
use crate::worker::StartError;

impl Launcher {
    /// The prepare service.
    pub fn preparer(&self) -> &Preparer {
        &self.preparer
    }

    /// Starts preparing a version (a registration, or the daemon's start); `None` when its
    /// runtime has nothing to prepare.
    pub fn submit_prepare(
        &self,
        script: ScriptRef<'_>,
        retry_failed: bool,
    ) -> Option<PrepareStatus> {
        let catalog = self.catalog();
        let rt = catalog.get(&script.manifest.runtime)?;
        if rt.def.prepare.is_none() || !rt.available {
            return None;
        }
        Some(self.preparer.submit(rt, job(script), retry_failed))
    }

    /// Takes a version's prepared folders from the cache if they are all there, running
    /// nothing (the daemon's start with `prepare.at_start = "lazy"`).
    pub fn restore_prepare(&self, script: ScriptRef<'_>) {
        let catalog = self.catalog();
        let rt = catalog.get(&script.manifest.runtime);
        if let Some(rt) = rt.filter(|rt| rt.def.prepare.is_some() && rt.available) {
            self.preparer.restore(rt, &job(script));
        }
    }

    /// Waits until the version is prepared (preparing it if it is not), at most until
    /// `deadline`. Runtimes without a prepare section are ready at once.
    pub async fn prepare(
        &self,
        script: ScriptRef<'_>,
        deadline: tokio::time::Instant,
    ) -> Result<(), StartError> {
        let catalog = self.catalog();
        let Some(rt) = catalog.get(&script.manifest.runtime) else {
            return Ok(());
        };
        if rt.def.prepare.is_none() || !rt.available {
            return Ok(());
        }
        if self.preparer.prepared(script.version).is_some() {
            return Ok(());
        }
        self.preparer
            .ensure(rt, job(script), deadline)
            .await
            .map(drop)
            .map_err(StartError::Prepare)
    }

    /// The version's prepared folders; an error when its runtime prepares and it is not ready.
    pub(super) fn prepared(&self, script: ScriptRef<'_>) -> Result<Prepared, StartError> {
        let catalog = self.catalog();
        let needs = catalog
            .get(&script.manifest.runtime)
            .is_some_and(|r| r.def.prepare.is_some());
        if !needs {
            return Ok(Prepared::default());
        }
        self.preparer.prepared(script.version).ok_or_else(|| {
            match self.preparer.status(script.version) {
                Some(s) if s.state == crate::prepare::PrepareState::Failed => {
                    StartError::Prepare(PrepareError::Failed {
                        summary: s.error.unwrap_or_default(),
                        log: String::new(),
                    })
                }
                s => StartError::Prepare(PrepareError::Pending {
                    step: s.and_then(|s| s.step).unwrap_or("queued"),
                }),
            }
        })
    }
}

fn job(script: ScriptRef<'_>) -> Job {
    Job {
        name: script.name.to_owned(),
        version: script.version.to_owned(),
        root: script.root.to_owned(),
        manifest: script.manifest.clone(),
    }
}
