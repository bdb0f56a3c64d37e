//! Checking and formatting source for the console's editor: `POST /v1/check` and
//! `POST /v1/format`.
//!
//! The tools are declared by each runtime (`[[check]]`, `[[format]]` in `runtimes/*.toml`);
//! their output is read by the parsers in [`parse`]. The source is hostile input: each tool runs
//! through the same sandbox helper as executors and prepare steps (`sandbox::oneshot`), as the
//! sandbox user, without network, over a read-only copy of the files, with a time, memory,
//! process and output limit, and never more than `[check] concurrency` at once. See
//! docs/design/0009-check-format-lsp.md.

mod checking;
mod config;
mod formatting;
pub mod parse;
pub mod request;
mod toolbox;

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::Semaphore;

pub use checking::{CheckAnswer, CheckerReport};
pub use config::RawCheck;
pub use formatting::{FormatAnswer, FormatError};
pub use parse::{Diagnostic, Severity};
pub use request::{
    CheckRequest, FormatRequest, PATH_MAX, PATH_PATTERN, RequestError, RequestLimits,
};

use crate::sandbox::oneshot::RunLimits;

/// The `[check]` section of the daemon's config.
#[derive(Debug, Clone)]
pub struct CheckSettings {
    /// Folders holding tools (each one's `bin` and `node_modules/.bin` go on the PATH, and the
    /// folder is bound read-only into the sandbox).
    pub tool_dirs: Vec<PathBuf>,
    /// Time one request's tools may take together.
    pub timeout: Duration,
    /// Memory of one tool run.
    pub memory_bytes: u64,
    /// Processes (threads) of one tool run.
    pub pids: u64,
    /// CPU cores of one tool run.
    pub cpu: f64,
    /// Size of a tool's private `/tmp` (javac's classes, Go's cache).
    pub tmp_bytes: u64,
    /// Tool runs at once, over all requests (others wait their turn).
    pub concurrency: usize,
    /// Files in one check.
    pub max_files: usize,
    /// Bytes of source in one request.
    pub max_bytes: usize,
}

impl Default for CheckSettings {
    fn default() -> Self {
        Self {
            tool_dirs: vec!["/opt/runwarm-lint".into(), "/opt/runwarm-lsp".into()],
            timeout: Duration::from_secs(10),
            memory_bytes: 512 << 20,
            pids: 128,
            cpu: 1.0,
            tmp_bytes: 128 << 20,
            concurrency: 2,
            max_files: 64,
            max_bytes: 1 << 20,
        }
    }
}

impl CheckSettings {
    /// The largest request body the routes read (JSON escaping can double the source).
    pub fn max_body_bytes(&self) -> usize {
        self.max_bytes * 2 + 64 * 1024
    }

    fn request_limits(&self) -> RequestLimits {
        RequestLimits {
            max_files: self.max_files,
            max_bytes: self.max_bytes,
        }
    }

    fn run_limits(&self, timeout: Duration) -> RunLimits {
        RunLimits {
            timeout,
            memory_bytes: self.memory_bytes,
            pids: self.pids,
            cpu: self.cpu,
            tmp_bytes: self.tmp_bytes,
        }
    }
}

/// The check and format service.
#[derive(Debug)]
pub struct Checks {
    settings: CheckSettings,
    scratch: PathBuf,
    slots: Semaphore,
}

impl Checks {
    /// The service; sources are written under `scratch` (emptied now: what is there was left
    /// by a daemon that died mid-check).
    pub fn new(settings: CheckSettings, scratch: PathBuf) -> Self {
        let _ = std::fs::remove_dir_all(&scratch);
        let slots = Semaphore::new(settings.concurrency.max(1));
        Self {
            settings,
            scratch,
            slots,
        }
    }

    /// The settings in force.
    pub fn settings(&self) -> &CheckSettings {
        &self.settings
    }
}

/// Why a check or format request is refused (besides the format-specific errors).
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The body.
    #[error(transparent)]
    Request(#[from] RequestError),
    /// No such runtime.
    #[error("unknown runtime {name:?}; known runtimes: {known}")]
    UnknownRuntime {
        /// Asked for.
        name: String,
        /// Known.
        known: String,
    },
    /// The runtime's interpreter is missing on this host.
    #[error("runtime {name} is not available on this host: {detail}")]
    RuntimeUnavailable {
        /// The runtime.
        name: String,
        /// Why, from its probe.
        detail: String,
    },
    /// Writing the sources failed.
    #[error("cannot write the sources to check under {dir}")]
    Scratch {
        /// The folder.
        dir: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}
