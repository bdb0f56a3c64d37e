//! Start-up, serving and shutdown of `runwarmd`.
//!
//! Order matters: state and history first (crash recovery runs before anything is served),
//! then runtimes and registry, then the socket; readiness is declared only when the listener
//! is bound, and on SIGTERM/SIGINT readiness drops before the listener closes.

mod cgroups;
pub mod logging;
pub mod recovery;
pub mod reload;
pub mod shutdown;
mod signals;
mod startup;
pub mod systemd;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::UnixListener;

use crate::invocation::admission::Admission;

use sd_notify::NotifyState;

use crate::api::access::AccessState;
use crate::api::{self, AppShared, AppState};
use crate::config::Config;
use crate::daemon::reload::{ConfigLoader, Reloadable};
use crate::daemon::systemd::{Notifier, SystemdEnv};
use crate::history::{History, HistoryConfig};
use crate::invocation::Invoker;
use crate::invocation::dispatch::Dispatcher;
use crate::metrics::Metrics;
use crate::pool::Pools;
use crate::registry::samples::Samples;
use crate::registry::{Registry, RegistryLimits};
use crate::runtime::{Catalog, Launcher};
use crate::server::ServeOptions;
use crate::worker::WorkerOptions;

use cgroups::{kill_remaining_executors, remove_cgroup_parents};
use startup::{bind_socket, start_preparing};

/// How long executors get to exit after `shutdown` before they are killed.
const EXECUTOR_GRACE: Duration = Duration::from_secs(2);

/// How often `STATUS=` is refreshed for systemd.
const STATUS_EVERY: Duration = Duration::from_secs(5);

/// What the daemon takes from its surroundings besides the configuration.
#[derive(Default)]
pub struct RunOptions {
    /// Re-reads the configuration on SIGHUP; without it SIGHUP only logs.
    pub reload: Option<ConfigLoader>,
    /// The systemd environment (notify socket, watchdog, socket activation).
    pub systemd: SystemdEnv,
}

/// The pools' global budget a configuration sets.
fn budget(config: &Config) -> crate::pool::Budget {
    crate::pool::Budget {
        workers: config.max_workers,
        memory_mb: config.max_memory_mb,
    }
}

/// Runs the daemon until SIGTERM or SIGINT, without systemd integration or reload.
pub async fn run(config: Config) -> anyhow::Result<()> {
    run_with(config, RunOptions::default()).await
}

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run_with(config: Config, opts: RunOptions) -> anyhow::Result<()> {
    let started = Instant::now();
    let notifier = Notifier::new(&opts.systemd);
    // Installed first: a SIGTERM during start-up must not kill the daemon half-way.
    let mut signals = crate::daemon::shutdown::listen().context("installing signal handlers")?;
    let config = Arc::new(config);
    fs_err::create_dir_all(&config.state_dir).context("creating the state directory")?;

    let history = History::open(
        &config.state_dir,
        HistoryConfig {
            batch_max: config.history_batch_max,
            flush_interval: config.history_flush_interval,
            retention: config.history_retention,
            min_free_bytes: config.history_min_free_bytes,
        },
    )
    .context("opening execution history")?;
    // Accepted work a previous daemon never started is read before anything else touches the
    // history; what had started can never finish and fails with E005.
    let resumable = history
        .queued()
        .context("reading executions accepted by the previous daemon")?;
    let recovered = history
        .recover_started()
        .context("recovering interrupted executions")?;
    if recovered > 0 {
        tracing::warn!(
            recovered,
            "executions interrupted by the previous daemon marked failed (E005)"
        );
    }
    // The outbox lives in history.db; the worker and the API each get their own connection so
    // neither waits behind the other or the history writer longer than a statement.
    let callback_key = crate::callbacks::load_or_create_key(&config.state_dir)
        .context("reading or creating the callback key (callback.key in the state directory)")?;
    let callback_stop = tokio_util::sync::CancellationToken::new();
    let delivery_metrics = crate::callbacks::DeliveryMetrics::default();
    let callback_worker = tokio::spawn(crate::callbacks::worker::run(
        history
            .side_connection()
            .context("opening the callback outbox for delivery")?,
        config.callbacks.clone(),
        callback_key.clone(),
        delivery_metrics.clone(),
        crate::callbacks::worker::Wake::new(history.deliveries_owed()),
        callback_stop.clone(),
    ));
    let callbacks = Arc::new(crate::api::callbacks::CallbackApi::new(
        history
            .side_connection()
            .context("opening the callback outbox for the API")?,
        callback_key,
        history.deliveries_owed(),
    ));
    let idempotency = crate::invocation::idempotency::IdempotencyStore::open(&config.state_dir)
        .context("opening the idempotency key store")?;
    // A daemon that cannot keep its audit trail does not start: it would apply administrative
    // actions it cannot record.
    let audit = crate::audit::AuditLog::open(&config.state_dir)
        .context("opening the audit trail (audit.db)")?;

    let executors_dir = crate::runtime::shims::install(&config.state_dir)
        .context("installing executor shims into the state directory")?;
    let catalog = Catalog::load(&config.runtimes_dirs, Duration::from_secs(10))
        .await
        .context("loading runtime definitions")?;
    for rt in catalog.all() {
        match (&rt.version, &rt.detail) {
            (Some(v), _) => {
                tracing::info!(runtime = %rt.def.name, version = %v, "runtime available")
            }
            (None, detail) => {
                tracing::warn!(runtime = %rt.def.name, detail = ?detail, "runtime unavailable")
            }
        }
    }
    if !config.exec_command.exists() {
        tracing::warn!(path = %config.exec_command.display(), "command-mode executor binary not found; command-mode scripts will fail (set exec_command)");
    }
    let confinement = Arc::new(
        crate::sandbox::Confinement::detect(
            config.sandbox.clone(),
            &config.state_dir.join("sandbox-probe"),
        )
        .await?,
    );
    let preparer = crate::prepare::Preparer::new(
        &config.state_dir,
        config.prepare.clone(),
        Arc::clone(&confinement),
        executors_dir.clone(),
    )
    .context("opening the prepare cache")?;
    let launcher = Arc::new(Launcher::new(
        catalog,
        executors_dir,
        config.exec_command.clone(),
        WorkerOptions {
            max_line_bytes: config.max_line_bytes,
            max_output_bytes: config.max_output_bytes,
            init_timeout: config.init_timeout,
        },
        Arc::clone(&confinement),
        preparer,
    ));

    // systemd's credentials (LoadCredential=) are read where systemd put them, never copied
    // into the state directory.
    let secrets = Arc::new(
        crate::secrets::SecretStore::open(
            &config.state_dir,
            std::env::var_os("CREDENTIALS_DIRECTORY").map(std::path::PathBuf::from),
        )
        .context("opening the secret store")?,
    );
    launcher.set_secrets(Arc::clone(&secrets));

    let registry = Arc::new(
        Registry::open(
            &config.state_dir,
            RegistryLimits {
                max_files: config.max_files,
                max_file_bytes: config.max_file_bytes,
                max_bundle_bytes: config.max_bundle_bytes,
            },
        )
        .context("opening the script registry")?,
    );
    let samples = Arc::new(Samples::embedded().context("reading the bundled samples")?);
    if config.load_samples {
        let catalog = launcher.catalog();
        for s in samples.all() {
            match registry.register(&s.body, &|rt| catalog.get(rt).is_some()) {
                Ok(r) => {
                    tracing::debug!(sample = %s.id, version = %r.version, created = r.created, "sample registered")
                }
                Err(e) => tracing::warn!(sample = %s.id, error = %e, "sample not registered"),
            }
        }
    }

    let pools = Pools::new(Arc::clone(&launcher), budget(&config), config.queue_max);
    // Before anything prepares, so every step that runs is timed.
    let metrics = Arc::new(Metrics::with_sources(
        pools.clone(),
        history.clone(),
        &delivery_metrics,
    ));
    {
        // A weak handle: the preparer lives inside the launcher the metrics read, so a strong
        // one would be a cycle.
        let metrics = Arc::downgrade(&metrics);
        launcher
            .preparer()
            .observe_steps(Box::new(move |runtime, step, took| {
                if let Some(m) = metrics.upgrade() {
                    m.prepare_step(runtime, step, took);
                }
            }));
    }
    start_preparing(&registry, &pools);
    let ready = Arc::new(AtomicBool::new(false));
    let access = Arc::new(AccessState::new(config.access.clone()));
    let inflight = Arc::new(crate::daemon::shutdown::InFlight::default());
    let invoker = Invoker::new(pools.clone()).with_history(history.clone());
    let dispatcher = Dispatcher::new(
        invoker.clone(),
        history.clone(),
        Admission::new(
            config.max_workers + config.queue_max,
            crate::invocation::admission::rate_limit(
                config.rate_per_uid as f64,
                config.rate_burst as f64,
            ),
        ),
        Arc::clone(&metrics),
        Arc::clone(&inflight),
    );

    let state = AppState::new(AppShared {
        access: Arc::clone(&access),
        metrics,
        inflight: Arc::clone(&inflight),
        registry,
        history: history.clone(),
        invoker,
        pools: pools.clone(),
        config: Arc::clone(&config),
        samples,
        ready: Arc::clone(&ready),
        started,
        target_cache: Arc::default(),
        dispatcher: dispatcher.clone(),
        idempotency,
        audit: audit.clone(),
        secrets,
        callbacks,
        checks: Arc::new(crate::check::Checks::new(
            config.check.clone(),
            config.state_dir.join("check"),
        )),
    });
    crate::daemon::recovery::resume(&state, resumable);

    // Under socket activation systemd owns the socket file: it keeps listening while the daemon
    // restarts and starts it again on the next connection, so the daemon must leave it there.
    let mut owns_socket_file = false;
    let listener = match crate::daemon::systemd::inherited_listener(&opts.systemd)
        .context("taking the socket passed by systemd (LISTEN_FDS)")?
    {
        Some(l) => {
            tracing::info!("serving the socket passed by systemd");
            UnixListener::from_std(l).context("registering the inherited socket")?
        }
        None => {
            owns_socket_file = true;
            bind_socket(&config.socket, &config.access)?
        }
    };
    let served_path = listener
        .local_addr()
        .ok()
        .and_then(|a| a.as_pathname().map(Path::to_path_buf))
        .unwrap_or_else(|| config.socket.clone());
    let maintenance = {
        let (pools, history) = (pools.clone(), history.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                pools.maintain();
                history.space().sample();
            }
        })
    };

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let server = tokio::spawn(crate::server::serve(
        listener,
        api::router(state),
        ServeOptions {
            slots: config.slots,
            header_read_timeout: config.header_read_timeout,
            grace: config.shutdown_grace,
        },
        Arc::clone(&access),
        stop_rx,
    ));
    ready.store(true, Ordering::Release);
    notifier.notify(&[NotifyState::Ready, NotifyState::Status("serving")]);
    tracing::info!(socket = %served_path.display(), state_dir = %config.state_dir.display(), startup_ms = started.elapsed().as_millis() as u64, "runwarmd ready");
    let watchdog = opts.systemd.watchdog.map(|interval| {
        tokio::spawn(crate::daemon::systemd::watchdog_loop(
            notifier.clone(),
            interval,
            served_path.clone(),
        ))
    });
    let status = {
        let (notifier, pools) = (notifier.clone(), pools.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(STATUS_EVERY);
            loop {
                tick.tick().await;
                let views = pools.views();
                let (live, waiting) = pools.totals();
                let busy: usize = views.iter().map(|v| v.busy).sum();
                let line = format!("workers live={live} busy={busy}, waiting={waiting}");
                notifier.notify(&[NotifyState::Status(&line)]);
            }
        })
    };

    let reloadable = Reloadable {
        pools: pools.clone(),
        access,
        dispatcher,
    };
    let in_force = (*config).clone();
    signals::until_stopped(
        &mut signals,
        opts.reload.as_ref(),
        &notifier,
        &reloadable,
        in_force,
        &audit,
    )
    .await;

    ready.store(false, Ordering::Release);
    notifier.notify(&[NotifyState::Stopping, NotifyState::Status("draining")]);
    tracing::info!(
        grace_ms = config.shutdown_grace.as_millis() as u64,
        "stop signal received: draining"
    );
    let _ = stop_tx.send(true);
    match server.await {
        Ok(true) => {}
        Ok(false) => tracing::warn!(
            "requests still open after the shutdown grace; their executors are killed"
        ),
        Err(e) => tracing::error!(error = %e, "the server task failed"),
    }
    for rec in inflight.cut_off() {
        tracing::warn!(execution_id = %rec.id, script = %rec.script, version = %rec.version,
            caller_uid = rec.caller.uid, caller_gid = rec.caller.gid, caller_pid = rec.caller.pid,
            state = rec.state.as_str(), code = "E005", "execution cut off by the shutdown grace");
        history.record(rec);
    }
    if let Some(w) = watchdog {
        w.abort();
    }
    status.abort();
    maintenance.abort();
    pools.shutdown(EXECUTOR_GRACE).await;
    kill_remaining_executors(&confinement).await;
    remove_cgroup_parents(&confinement).await;
    // Deliveries cut off here stay pending in the outbox; the next daemon sends them.
    callback_stop.cancel();
    if let Err(e) = callback_worker.await {
        tracing::error!(error = %e, "the callback worker failed");
    }
    history
        .close()
        .await
        .context("flushing execution history")?;
    if owns_socket_file {
        let _ = fs_err::remove_file(&config.socket);
    }
    tracing::info!("runwarmd stopped");
    Ok(())
}
