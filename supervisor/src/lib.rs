//! runwarm's supervisor: the daemon `runwarmd` and the client `runwarm`.
//!
//! The life of a request: `api` parses it → `registry` resolves the script version →
//! `pool` hands out a warm `worker` (or starts one through `runtime`) → the worker speaks the
//! executor protocol → the `execution` record goes to `history`.

pub mod admission;
pub mod api;
pub mod audit;
pub mod callbacks;
pub mod check;
pub mod check_config;
pub mod cli;
pub mod client;
pub mod config;
pub mod console;
pub mod daemon;
pub mod dispatch;
pub mod events;
pub mod execution;
pub mod executors;
pub mod history;
pub mod idempotency;
pub mod idle_spin;
pub mod invocation;
pub mod manifest;
pub mod metrics;
pub mod pool;
pub mod prepare;
pub mod recovery;
pub mod registry;
pub mod reload;
pub mod retry;
pub mod runtime;
pub mod samples;
pub mod sandbox;
pub mod secrets;
pub mod server;
pub mod shutdown;
pub mod sqlite;
pub mod systemd;
pub mod worker;
