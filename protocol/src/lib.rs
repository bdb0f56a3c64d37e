//! The runwarm executor protocol, version 1: JSON Lines between the supervisor and an executor.
//!
//! `PROTOCOL.md` beside this crate is the normative text; this crate holds the message types
//! ([`message`]), the line codec with its maximum line length ([`codec`]), the names of the
//! environment variables executors read ([`env`](mod@env)), and the conformance runner that replays
//! `vectors/*.jsonl` against any executor ([`conformance`]).
#![warn(missing_docs)]

pub mod codec;
pub mod conformance;
pub mod env;
mod executor_wire;
pub mod message;
pub mod raw_json;
mod supervisor_wire;

pub use codec::{CodecError, JsonLinesCodec};
pub use message::{
    Caller, ErrorBody, ExecutorMessage, InitScript, Mode, RequestContext, SupervisorMessage,
};
pub use raw_json::RawJson;

/// The protocol version this crate speaks, sent in `init` and expected back in `ready`.
pub const PROTOCOL_VERSION: u32 = 1;

/// Default maximum length of one protocol line in bytes (8 MiB).
pub const DEFAULT_MAX_LINE_BYTES: usize = 8 * 1024 * 1024;
