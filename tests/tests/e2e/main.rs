//! End-to-end tests: one binary (link time matters on a small machine), one module per area.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod abuse;
mod api_fuzz;
mod async_ops;
mod audit;
mod bad_input;
mod callbacks;
mod cli;
mod console;
mod console_browser;
mod faults;
mod hostile;
mod languages;
mod lineage;
mod metrics;
mod ops;
mod pools;
mod prepare;
mod readback;
mod retries;
mod runtimes;
mod samples;
mod secrets;
mod spec_channel;
mod systemd_real;
mod trust;
