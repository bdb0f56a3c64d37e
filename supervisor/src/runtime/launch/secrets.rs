//! The secrets an executor is started with and the values redacted from its output, read from
//! the daemon's store; apart so that what touches a secret's value is in one place.

use std::sync::Arc;

use super::Launcher;
use crate::registry::manifest::{Manifest, SECRETS_DIR, SecretRef};
use crate::worker::StartError;

impl Launcher {
    /// Gives the launcher the daemon's secret store (once; a second call is ignored).
    pub fn set_secrets(&self, store: Arc<crate::secrets::SecretStore>) {
        let _ = self.secrets.set(store);
    }

    /// The secret store, if the daemon gave one.
    pub fn secrets(&self) -> Option<&Arc<crate::secrets::SecretStore>> {
        self.secrets.get()
    }

    /// The values to redact from the output of `manifest`'s executors.
    pub fn redactor(&self, manifest: &Manifest) -> crate::secrets::Redactor {
        match self.secrets.get() {
            Some(store) => store.redactor(&manifest.secret_names()),
            None => crate::secrets::Redactor::default(),
        }
    }

    /// The values of the secrets a manifest names, split into environment variables and files,
    /// read now so a new value reaches every executor started after it was set. Only names go
    /// into the errors.
    pub(super) fn secret_values(&self, m: &Manifest) -> Result<SecretValues, StartError> {
        let mut out = SecretValues::default();
        if m.secrets.is_empty() {
            return Ok(out);
        }
        let store = self.secrets.get().ok_or_else(|| StartError::Unavailable {
            detail: "this process has no secret store".into(),
        })?;
        for secret in &m.secrets {
            let name = secret.name();
            let value = store.get(name).ok_or_else(|| StartError::Unavailable {
                detail: format!("secret {name:?} is not set (runwarm secret set {name})"),
            })?;
            match secret {
                SecretRef::Env(_) => out.env.push((name.to_owned(), value)),
                SecretRef::File(_) if !self.confinement.minimal_root() => {
                    return Err(StartError::Unavailable {
                        detail: format!(
                            "secret {name:?} is wanted as a file in {SECRETS_DIR}, which needs the \
                             sandbox's minimal root (a mount namespace) and this daemon runs \
                             without it (see `sandbox` in /v1/info); deliver it as an \
                             environment variable instead, or run with the sandbox"
                        ),
                    });
                }
                SecretRef::File(_) => out.files.push((name.to_owned(), value)),
            }
        }
        Ok(out)
    }
}

/// A version's secret values as the executor gets them.
#[derive(Default)]
pub(super) struct SecretValues {
    pub(super) env: Vec<(String, String)>,
    pub(super) files: Vec<(String, String)>,
}
