//! `runwarmd`: the runwarm daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use runwarm_supervisor::config::{Config, LogFormat};
use runwarm_supervisor::daemon::RunOptions;
use runwarm_supervisor::reload::ConfigLoader;
use runwarm_supervisor::systemd::SystemdEnv;

/// Runs scripts the way AWS Lambda runs functions, on this host, over a Unix socket.
///
/// Without --config it runs on the embedded default: socket and state under ./.runwarm/,
/// samples registered.
#[derive(Debug, Clone, Parser)]
#[command(version)]
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
    let config = match load_config(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("runwarmd: {e:#}");
            return ExitCode::from(2);
        }
    };
    init_logging(&config);
    raise_open_files_limit();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("runwarmd: cannot start the async runtime: {e}");
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
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "runwarmd failed");
            eprintln!("runwarmd: {e:#}");
            ExitCode::FAILURE
        }
    }
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

fn init_logging(config: &Config) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let json = match config.log_format {
        LogFormat::Json => true,
        LogFormat::Human => false,
        LogFormat::Auto => !std::io::stderr().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.init();
    }
}
