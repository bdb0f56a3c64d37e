//! `runwarm-bench`: measures a real runwarmd over its Unix socket (warm latency, cold starts,
//! throughput under load) and, in the same run, the baseline it is meant to beat (a fresh
//! `python3` process per call), then prints the figures, the ratio and the targets. Two more
//! sections follow: the cost of confinement, and a table per language runtime.
//!
//! Progress goes to stderr, the report to stdout. The exit code says whether the benchmark ran,
//! not whether the targets were met.

mod baseline;
mod confinement;
mod daemon;
mod languages;
mod load;
mod measure;
mod phases;
mod report;
mod runtimes;
mod scenarios;
mod verdict;
mod versus;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Parser;

use crate::phases::{DaemonFigures, anchor_options, measure_daemon};
use crate::report::{Host, Run};

/// Deadline of any single request; a call that takes this long is a hang, not a figure.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Fresh `python3` processes started through PATH (the slow shim path) for the baseline.
const PATH_RUNS: usize = 10;

/// Benchmark runwarmd against a fresh-process-per-call baseline.
#[derive(Debug, Parser)]
#[command(version)]
struct Flags {
    /// Measure the daemon on this socket instead of starting one from target/release.
    #[arg(long)]
    socket: Option<PathBuf>,
    /// Sequential warm calls measured.
    #[arg(long, default_value_t = 2000)]
    calls: usize,
    /// Unmeasured warm calls before them.
    #[arg(long, default_value_t = 200)]
    warmup: usize,
    /// New versions registered and called once each.
    #[arg(long, default_value_t = 20)]
    cold: usize,
    /// Concurrent clients in the throughput test, each with its own connection.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// Length of the throughput window.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// Pool maximum of the throughput script [default: CPUs × 2].
    #[arg(long)]
    pool_max: Option<usize>,
    /// Fresh python3 processes timed for the baseline.
    #[arg(long, default_value_t = 50)]
    baseline_runs: usize,
    /// Skip the confinement-cost section (two more daemons and the /bin/true anchor).
    #[arg(long)]
    no_sandbox_compare: bool,
    /// Measure only the confinement cost (skips the warm, cold, throughput and baseline phases).
    #[arg(long, conflicts_with_all = ["socket", "no_sandbox_compare"])]
    only_confinement: bool,
    /// Skip the per-runtime section (a daemon of its own, every language's prepare, cold
    /// starts, warm calls and fresh processes).
    #[arg(long)]
    no_runtimes: bool,
    /// Measure only the per-runtime section.
    #[arg(long, conflicts_with_all = ["socket", "only_confinement", "no_runtimes"])]
    only_runtimes: bool,
    /// Runtimes of the per-runtime section, comma-separated [default: every available one].
    #[arg(long, value_delimiter = ',', conflicts_with = "no_runtimes")]
    runtimes: Option<Vec<String>>,
    /// Warm calls measured per runtime in the per-runtime section.
    #[arg(long, default_value_t = 500)]
    runtime_calls: usize,
    /// Unmeasured warm calls per runtime before them.
    #[arg(long, default_value_t = 50)]
    runtime_warmup: usize,
    /// Cold calls per runtime (each a fresh executor of one prepared version).
    #[arg(long, default_value_t = 5)]
    runtime_cold: usize,
    /// Fresh processes per runtime for the per-runtime anchor.
    #[arg(long, default_value_t = 20)]
    runtime_fresh: usize,
    /// Skip the PHP-FPM anchor section (PHP-FPM side by side, floors, per-call costs, memory).
    #[arg(long)]
    no_anchor: bool,
    /// Measure only the PHP-FPM anchor section, on a daemon of its own.
    #[arg(long, conflicts_with_all = ["socket", "only_confinement", "only_runtimes", "no_anchor"])]
    only_anchor: bool,
    #[command(flatten)]
    anchor: versus::run::AnchorFlags,
    /// Internal: the echo child of the pipe ping-pong floor.
    #[arg(long = "floor-echo", hide = true)]
    floor_echo: bool,
    /// Print a JSON summary instead of the table.
    #[arg(long)]
    json: bool,
}

fn main() -> ExitCode {
    let flags = Flags::parse();
    match run(&flags) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("runwarm-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(flags: &Flags) -> Result<()> {
    if flags.floor_echo {
        return versus::floors::echo_child();
    }
    // Checked before anything starts, so a typo does not cost a daemon start and two phases.
    let window = Duration::try_from_secs_f64(flags.seconds)
        .with_context(|| format!("--seconds {} is not a duration", flags.seconds))?;
    runtimes::check_names(flags.runtimes.as_deref())?;
    let host = Host::probe();
    // One thread is plenty to drive the clients and leaves the CPUs to the daemon and its
    // executors, which are what is being measured.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    if flags.only_confinement {
        let (compare, anchor) = measure_confinement(&runtime)?;
        let mut stdout = std::io::stdout().lock();
        if flags.json {
            let summary = serde_json::json!({
                "confinement": confinement::json(&compare, &anchor),
            });
            writeln!(stdout, "{}", serde_json::to_string_pretty(&summary)?)?;
        } else {
            write!(stdout, "{}", confinement::text(&compare, &anchor))?;
        }
        return Ok(());
    }
    if flags.only_anchor {
        let section = runtime.block_on(versus::run::alone(
            &anchor_options(flags, host.cpus, window),
            flags.anchor.compare_bins.as_deref(),
        ))?;
        let mut stdout = std::io::stdout().lock();
        if flags.json {
            let summary = serde_json::json!({
                "host": {"cpus": host.cpus, "cpu_model": host.cpu_model, "kernel": host.kernel,
                         "loadavg_at_start": host.loadavg, "idle": host.idle},
                "anchor": versus::report::json(&section, None),
            });
            writeln!(stdout, "{}", serde_json::to_string_pretty(&summary)?)?;
        } else {
            writeln!(stdout, "{}", host.line())?;
            write!(stdout, "{}", versus::report::text(&section, None))?;
        }
        return Ok(());
    }
    if flags.only_runtimes {
        let section = runtimes::measure(&runtime, &runtime_options(flags))?;
        let mut stdout = std::io::stdout().lock();
        if flags.json {
            let summary = serde_json::json!({"runtimes": runtimes::json(&section)});
            writeln!(stdout, "{}", serde_json::to_string_pretty(&summary)?)?;
        } else {
            write!(stdout, "{}", runtimes::text(&section))?;
        }
        return runtime_rows_ran(&section);
    }
    let DaemonFigures {
        daemon,
        warm,
        cold,
        load,
        anchor,
    } = runtime.block_on(measure_daemon(flags, host.cpus, window))?;
    progress(&format!(
        "baseline: {} fresh python3 processes (+{PATH_RUNS} through PATH)",
        flags.baseline_runs
    ));
    let baseline = baseline::measure(flags.baseline_runs, PATH_RUNS, &scenarios::payload())?;
    let confinement = if flags.no_sandbox_compare {
        None
    } else {
        Some(measure_confinement(&runtime)?)
    };
    let runtimes = if flags.no_runtimes {
        None
    } else {
        Some(runtimes::measure(&runtime, &runtime_options(flags))?)
    };
    let run = Run {
        host,
        daemon,
        warm,
        cold,
        load,
        baseline,
    };
    // What confinement added to the warm p50, for the anchor's confinement target.
    let confinement_added = confinement.as_ref().and_then(|(c, _)| c.warm_added());
    let mut stdout = std::io::stdout().lock();
    if flags.json {
        let mut summary = report::json(&run);
        if let (Some(section), Some(map)) = (&anchor, summary.as_object_mut()) {
            map.insert(
                "anchor".into(),
                versus::report::json(section, confinement_added),
            );
        }
        if let (Some((compare, anchor)), Some(map)) = (&confinement, summary.as_object_mut()) {
            map.insert("confinement".into(), confinement::json(compare, anchor));
        }
        if let (Some(section), Some(map)) = (&runtimes, summary.as_object_mut()) {
            map.insert("runtimes".into(), runtimes::json(section));
        }
        let text = serde_json::to_string_pretty(&summary)?;
        writeln!(stdout, "{text}")?;
    } else {
        write!(stdout, "{}", report::text(&run))?;
        if let Some((compare, anchor)) = &confinement {
            write!(stdout, "{}", confinement::text(compare, anchor))?;
        }
        if let Some(section) = &anchor {
            write!(
                stdout,
                "{}",
                versus::report::text(section, confinement_added)
            )?;
        }
        if let Some(section) = &runtimes {
            write!(stdout, "{}", runtimes::text(section))?;
        }
    }
    match &runtimes {
        Some(section) => runtime_rows_ran(section),
        None => Ok(()),
    }
}

fn runtime_options(flags: &Flags) -> runtimes::Options {
    runtimes::Options {
        runtimes: flags.runtimes.clone(),
        calls: flags.runtime_calls,
        warmup: flags.runtime_warmup,
        cold: flags.runtime_cold,
        fresh: flags.runtime_fresh,
    }
}

/// A runtime row that could not be measured (a failed prepare, a dependency step that was not
/// cached, failed calls) fails the run, after the report is printed.
fn runtime_rows_ran(section: &runtimes::Section) -> Result<()> {
    match section.failed_rows() {
        0 => Ok(()),
        n => bail!("{n} runtime row(s) failed; the reasons are under the runtimes table"),
    }
}

/// The confinement section: a confined and an unconfined daemon, then the `/bin/true` anchor.
fn measure_confinement(
    runtime: &tokio::runtime::Runtime,
) -> Result<(confinement::Compare, confinement::anchor::Anchor)> {
    progress(&format!(
        "confinement cost: {} cold starts and {} warm calls on a confined and an unconfined daemon",
        confinement::COLD_RUNS,
        confinement::WARM_CALLS
    ));
    let compare = runtime.block_on(confinement::measure())?;
    progress(&format!(
        "confinement anchor: /bin/true x{} directly, through runwarm-sandbox and bwrap",
        confinement::anchor::RUNS
    ));
    let anchor = confinement::anchor::measure(&daemon::release_dir()?)?;
    Ok((compare, anchor))
}

pub(crate) fn progress(message: &str) {
    eprintln!("runwarm-bench: {message}");
}
