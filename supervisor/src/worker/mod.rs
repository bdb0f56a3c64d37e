//! One executor process and its protocol session.
//!
//! A [`Worker`] is started by [`Worker::start`] (spawn + `init` handshake), serves one request at
//! a time through [`Worker::invoke`], and is killed as a process group when anything goes wrong:
//! a worker that saw a timeout or a protocol fault is never handed out again.

mod output;
mod session;
mod spawn;

pub use output::{Capture, LogScanner};
pub use session::{
    Fault, InvokeOutcome, OutputChunk, OutputSink, StartError, Worker, WorkerOptions,
};
pub use spawn::{LaunchSpec, SpawnError, pass_spec_fd, spawn_executor};
