//! What the history handle hands its writer: the latest form of each record waiting to be
//! written, the commands naming them, and the signals the two wake each other with.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use tokio::sync::oneshot;

use super::HistoryError;
use crate::execution::ExecutionRecord;

/// Answers a waiter once its records are committed.
pub type Ack = oneshot::Sender<Result<(), HistoryError>>;

/// The latest record for an id, with the sequence number of that update.
#[derive(Debug)]
pub struct Pending {
    pub seq: u64,
    /// Shared with whoever recorded it (a synchronous call answers from the same record): the
    /// queue never copies one.
    pub rec: Arc<ExecutionRecord>,
    /// The record as JSON when whoever recorded it already had it (a synchronous call's
    /// answer), so the writer does not serialise it again.
    pub json: Option<bytes::Bytes>,
}

/// What the handle asks of the writer.
#[derive(Debug)]
pub enum Command {
    /// The pending record for `id` changed; `ack`, when set, wants a durable commit. `prompt`
    /// asks for the commit within the writer's prompt window (2 ms) rather than the batch's interval: the record
    /// may owe a callback, which the delivery worker can only start once it is committed.
    Write {
        id: String,
        ack: Option<Ack>,
        prompt: bool,
    },
    /// Commit everything sent before this.
    Flush(Ack),
    /// Commit everything, then stop.
    Close(Ack),
}

impl Command {
    /// Whether a caller waits for this command's commit: those wake a writer that is gathering
    /// a batch, which then commits at once.
    pub fn is_waited_on(&self) -> bool {
        match self {
            Command::Write { ack, .. } => ack.is_some(),
            Command::Flush(_) | Command::Close(_) => true,
        }
    }

    /// Whether this command asks for a prompt commit (see [`Command::Write`]).
    pub fn is_prompt(&self) -> bool {
        matches!(self, Command::Write { prompt: true, .. })
    }
}

/// What the writer and the handle share to wake each other.
#[derive(Debug, Default)]
pub struct Signals {
    /// Notified after a commit that added callback deliveries (the delivery worker waits on it).
    pub deliveries_owed: Arc<tokio::sync::Notify>,
    /// Set by the record that makes a batch prompt, which then unparks the writer; cleared when
    /// the writer takes the batch, so a batch costs one wake-up however many records owe one.
    pub prompt_pending: AtomicBool,
    /// Whether a callback subscription may exist. While none can, a terminal record owes at
    /// most its own callback and the writer skips the query over `subscriptions` (a tenth of a
    /// warm call's history work). Changed only through `History::change_subscriptions`.
    pub subscriptions: AtomicBool,
}
