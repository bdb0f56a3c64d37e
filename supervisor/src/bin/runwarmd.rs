//! `runwarmd`: the runwarm daemon.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use runwarm_supervisor::config::Config;
use runwarm_supervisor::daemon::RunOptions;
use runwarm_supervisor::daemon::logging::{self, fatal};
use runwarm_supervisor::daemon::reload::ConfigLoader;
use runwarm_supervisor::daemon::systemd::SystemdEnv;
use runwarm_supervisor::server::idle_spin;

/// Runs scripts the way AWS Lambda runs functions, on this host, over a Unix socket.
///
/// Without --config it runs on the embedded default: socket and state under ./.runwarm/,
/// samples registered.
#[derive(Debug, Clone, Parser)]
// Named, or clap takes the package name (`runwarm-supervisor`) for `--version` and `--help`.
#[command(name = "runwarmd", version)]
struct Args {
    /// Configuration file (TOML); see `runwarmd --print-default-config`.
    #[arg(long, env = "RUNWARM_CONFIG")]
    config: Option<PathBuf>,
    /// Override the socket path of the configuration.
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Override the state directory of the configuration.
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Print the embedded default configuration (every key, commented) and exit.
    #[arg(long)]
    print_default_config: bool,
    /// Check the configuration FILE without starting: print every violation and exit 1, or
    /// print "configuration ok" and exit 0 (what the systemd unit's ExecReload runs first).
    #[arg(long, value_name = "FILE")]
    check_config: Option<PathBuf>,
}

/// Every executor holds about eight of the daemon's fds (its pipes and cgroup counter files), so
/// the usual soft limit of 1024 would cap a daemon started from a shell at ~100 executors. The
/// hard limit is what the operator allows; systemd's unit sets it explicitly.
fn raise_open_files_limit() {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => {
            if let Err(e) = setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
                tracing::warn!(soft, hard, error = %e, "cannot raise the open-files limit");
            }
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "cannot read the open-files limit"),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if args.print_default_config {
        print!("{}", runwarm_supervisor::config::DEFAULT_TOML);
        return ExitCode::SUCCESS;
    }
    if let Some(file) = &args.check_config {
        return check_config(file);
    }
    let config = match load_config(&args) {
        Ok(c) => c,
        Err(e) => {
            fatal(&format!("runwarmd: {e:#}"));
            return ExitCode::from(2);
        }
    };
    let log_guard = logging::init(&config);
    raise_open_files_limit();
    let epolls_before = idle_spin::epoll_fds();
    // One thread: the current-thread scheduler, which runs the daemon's own future and every
    // task on this thread, with no work-stealing bookkeeping; more: the multi-thread one.
    let one_thread = config.worker_threads == 1;
    let mut builder = if one_thread {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(config.worker_threads);
        b
    };
    let runtime = match builder
        .on_thread_park(idle_spin::before_park)
        .on_thread_unpark(idle_spin::after_unpark)
        .enable_all()
        .build()
    {
        Ok(rt) => {
            tracing::info!(
                threads = config.worker_threads,
                scheduler = if one_thread {
                    "current-thread"
                } else {
                    "multi-thread"
                },
                "async runtime started"
            );
            match idle_spin::arm(&epolls_before, config.idle_spin) {
                Ok(()) => tracing::info!(
                    budget_us = config.idle_spin.as_micros() as u64,
                    "idle spin armed"
                ),
                Err(why) => tracing::info!(%why, "idle spin off"),
            }
            rt
        }
        Err(e) => {
            drop(log_guard);
            fatal(&format!("runwarmd: cannot start the async runtime: {e}"));
            return ExitCode::FAILURE;
        }
    };
    let opts = RunOptions {
        reload: args.config.is_some().then(|| -> ConfigLoader {
            let args = args.clone();
            Box::new(move || load_config(&args))
        }),
        systemd: SystemdEnv::from_process(),
    };
    let outcome = runtime.block_on(runwarm_supervisor::daemon::run_with(config, opts));
    // Tasks still holding executors at this point (cut off by the shutdown grace) are dropped,
    // which kills their executors; do not wait long for the clean-up they hand to blocking
    // threads.
    runtime.shutdown_timeout(std::time::Duration::from_secs(3));
    if let Err(e) = &outcome {
        tracing::error!(error = format!("{e:#}"), "runwarmd failed");
    }
    // Everything logged is written before the last words.
    drop(log_guard);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            fatal(&format!("runwarmd: {e:#}"));
            ExitCode::FAILURE
        }
    }
}

/// `--check-config FILE`: every problem on stderr (one per line, prefixed with the file), exit
/// 1; or "configuration ok" on stdout, exit 0.
fn check_config(file: &Path) -> ExitCode {
    let Ok(cwd) = std::env::current_dir() else {
        fatal("runwarmd: cannot read the current directory");
        return ExitCode::FAILURE;
    };
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(PathBuf::from))
        .unwrap_or_else(|| cwd.clone());
    let problems = runwarm_supervisor::config::check::check_file(file, &cwd, &exe_dir);
    if problems.is_empty() {
        println!("{}: configuration ok", file.display());
        return ExitCode::SUCCESS;
    }
    let lines: Vec<String> = problems
        .iter()
        .map(|p| format!("{}: {p}", file.display()))
        .collect();
    fatal(&lines.join("\n"));
    ExitCode::FAILURE
}

fn load_config(args: &Args) -> anyhow::Result<Config> {
    let cwd = std::env::current_dir().context("reading the current directory")?;
    let exe_dir = std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(PathBuf::from))
        .unwrap_or_else(|| cwd.clone());
    let mut config = match &args.config {
        Some(path) => {
            let text = fs_err::read_to_string(path).context("reading the configuration file")?;
            let base = path
                .parent()
                .map(|p| cwd.join(p))
                .unwrap_or_else(|| cwd.clone());
            Config::from_toml(&text, Some(&path.display().to_string()), &base, &exe_dir)?
        }
        None => Config::embedded_default(&cwd, &exe_dir)?,
    };
    if let Some(s) = &args.socket {
        config.socket = cwd.join(s);
    }
    if let Some(d) = &args.state_dir {
        config.state_dir = cwd.join(d);
    }
    Ok(config)
}
