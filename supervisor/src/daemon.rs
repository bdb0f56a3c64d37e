//! Start-up, serving and shutdown of `runwarmd`.
//!
//! Order matters: state and history first (crash recovery runs before anything is served),
//! then runtimes and registry, then the socket; readiness is declared only when the listener
//! is bound, and on SIGTERM/SIGINT readiness drops before the listener closes.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::net::UnixListener;

use crate::admission::Admission;
use crate::api::{self, AppState, peer::Peer};
use crate::config::Config;
use crate::dispatch::Dispatcher;
use crate::history::{History, HistoryConfig};
use crate::invocation::Invoker;
use crate::pool::Pools;
use crate::registry::{Registry, RegistryLimits};
use crate::runtime::{Catalog, Launcher};
use crate::samples::Samples;
use crate::worker::WorkerOptions;

/// How long executors get to exit after `shutdown` before they are killed.
const EXECUTOR_GRACE: Duration = Duration::from_secs(2);

/// Runs the daemon until SIGTERM or SIGINT.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let started = Instant::now();
    let config = Arc::new(config);
    fs_err::create_dir_all(&config.state_dir).context("creating the state directory")?;

    let history = History::open(
        &config.state_dir,
        HistoryConfig {
            batch_max: config.history_batch_max,
            flush_interval: config.history_flush_interval,
            retention: config.history_retention,
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
    let idempotency = crate::idempotency::IdempotencyStore::open(&config.state_dir)
        .context("opening the idempotency key store")?;

    let executors_dir = crate::executors::install(&config.state_dir)
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
    let launcher = Arc::new(Launcher::new(
        catalog,
        executors_dir,
        config.exec_command.clone(),
        WorkerOptions {
            max_line_bytes: config.max_line_bytes,
            max_output_bytes: config.max_output_bytes,
            init_timeout: config.init_timeout,
        },
    ));

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

    let pools = Pools::new(Arc::clone(&launcher), config.max_workers, config.queue_max);
    let ready = Arc::new(AtomicBool::new(false));
    let invoker = Invoker::new(pools.clone());
    let dispatcher = Dispatcher::new(
        invoker.clone(),
        history.clone(),
        Admission::new(
            config.max_workers + config.queue_max,
            crate::admission::rate_limit(config.rate_per_uid as f64, config.rate_burst as f64),
        ),
    );
    let state = AppState {
        registry,
        history: history.clone(),
        invoker,
        pools: pools.clone(),
        config: Arc::clone(&config),
        samples,
        ready: Arc::clone(&ready),
        started,
        target_cache: Arc::default(),
        dispatcher,
        idempotency,
    };
    crate::recovery::resume(&state, resumable);

    let listener = bind_socket(&config.socket)?;
    let maintenance = {
        let pools = pools.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                pools.maintain();
            }
        })
    };

    ready.store(true, Ordering::Release);
    tracing::info!(socket = %config.socket.display(), state_dir = %config.state_dir.display(), startup_ms = started.elapsed().as_millis() as u64, "runwarmd ready");

    let app = api::router(state).into_make_service_with_connect_info::<Peer>();
    let ready_flag = Arc::clone(&ready);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            wait_for_stop_signal().await;
            ready_flag.store(false, Ordering::Release);
            tracing::info!("stop signal received: draining");
        })
        .await
        .context("serving the API")?;

    maintenance.abort();
    pools.shutdown(EXECUTOR_GRACE).await;
    history
        .close()
        .await
        .context("flushing execution history")?;
    let _ = fs_err::remove_file(&config.socket);
    tracing::info!("runwarmd stopped");
    Ok(())
}

/// Binds the socket, replacing a stale file but refusing to steal a live daemon's socket.
fn bind_socket(path: &Path) -> anyhow::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    if let Some(dir) = path.parent() {
        fs_err::create_dir_all(dir).context("creating the socket directory")?;
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            anyhow::bail!(
                "another runwarmd is already serving on {}; stop it or choose another socket",
                path.display()
            );
        }
        fs_err::remove_file(path).context("removing a stale socket file")?;
    }
    let listener = UnixListener::bind(path)
        .with_context(|| format!("binding the API socket {}", path.display()))?;
    fs_err::set_permissions(path, std::fs::Permissions::from_mode(0o660))
        .context("setting the socket's permissions")?;
    Ok(listener)
}

async fn wait_for_stop_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; the daemon stops only when killed");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = int.recv() => {},
    }
}
