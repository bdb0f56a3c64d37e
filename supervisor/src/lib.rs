//! runwarm's supervisor: the daemon `runwarmd` and the client `runwarm`.
//!
//! The life of a request, by folder: `server` accepts the connection → `api` parses and
//! authorises it → `registry` resolves the script version → `invocation` admits it (limits,
//! idempotency), dispatches it and runs its attempts → `pool` hands out a warm `worker` (or
//! starts one through `runtime`, confined by `sandbox`) → the worker speaks the executor
//! protocol → the `execution` record goes to `history`, and from there to `callbacks`.
//!
//! Around that path: `daemon` (start-up, recovery, reload, shutdown, systemd), `config`,
//! `prepare` (a version's dependencies and build), `secrets`, `audit`, `metrics`, `check`
//! (the editor's checkers), `console`, and the client side, `cli` over `client`.

pub mod api;
pub mod audit;
pub mod callbacks;
pub mod check;
pub mod cli;
pub mod client;
pub mod config;
pub mod console;
pub mod daemon;
pub mod execution;
pub mod history;
pub mod invocation;
pub mod metrics;
pub mod pool;
pub mod prepare;
pub mod registry;
pub mod runtime;
pub mod sandbox;
pub mod secrets;
pub mod server;
pub mod sqlite;
pub mod worker;
