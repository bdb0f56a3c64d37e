//! The errors of the execution history, one variant per thing that can fail, each naming the
//! file or operation so a person can act on it.

use std::path::PathBuf;
use std::sync::Arc;

/// What can go wrong with the history.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The state directory could not be created.
    #[error("cannot create state directory {path}: {source}")]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The database could not be opened, configured or brought to this build's schema.
    #[error("cannot open execution history {path}: {source}")]
    Open {
        /// The database file.
        path: PathBuf,
        /// Why.
        source: crate::sqlite::OpenError,
    },
    /// The writer thread could not be started.
    #[error("cannot start the history writer thread: {0}")]
    SpawnWriter(#[source] std::io::Error),
    /// A batch could not be committed (the writer keeps retrying unless it is closing).
    #[error("writing execution history failed: {0}")]
    Write(#[source] Arc<rusqlite::Error>),
    /// A query failed.
    #[error("reading execution history failed: {0}")]
    Read(#[source] rusqlite::Error),
    /// A stored record is not valid JSON for this build.
    #[error("stored execution {id} cannot be decoded: {source}")]
    Decode {
        /// The execution id.
        id: String,
        /// Why.
        source: serde_json::Error,
    },
    /// The file system under the state directory is full (or below its headroom): durable
    /// work is refused until space returns.
    #[error(
        "the disk under the state directory {dir} is full: free space there (the execution \
         history and bundles live in it); asynchronous invocations are refused until it returns"
    )]
    DiskFull {
        /// The state directory.
        dir: PathBuf,
    },
    /// The history was closed.
    #[error("execution history is closed")]
    Closed,
    /// The writer thread ended without answering (it should not; see the daemon log).
    #[error("the history writer thread stopped unexpectedly")]
    WriterStopped,
    /// A blocking read task died.
    #[error("history read task failed: {0}")]
    ReadTask(#[source] tokio::task::JoinError),
}
