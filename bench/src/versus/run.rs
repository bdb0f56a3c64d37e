//! The order of the PHP-FPM anchor section: start PHP-FPM, register the runwarm scripts, then
//! sequential blocks, throughput windows, floors, per-call costs and resident memory, each with
//! every target in turn.

use std::time::Duration;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use runwarm_supervisor::client::Client;

use super::fpm::OwnFpm;
use super::procstat;
use super::{
    Caller, Daemon, FpmPool, NO_RECYCLING, Options, Section, costs, register_hello, rss_with_warm,
    sequential, throughput,
};
use crate::daemon::OwnDaemon;

/// Warm executors of the resident-memory figure.
pub const RSS_EXECUTORS: usize = 32;
/// Throughput windows per target (each `--seconds / ROUNDS` long), taken in turn.
const ROUNDS: usize = 2;
/// How long a script's first call may take (a Node prepare, a cold start under load).
const FIRST_CALL: Duration = Duration::from_secs(120);

/// The anchor section's flags.
#[derive(Debug, clap::Args)]
pub struct AnchorFlags {
    /// Sequential calls per target in the anchor section.
    #[arg(long, default_value_t = 3000)]
    anchor_calls: usize,
    /// Calls per block; the targets take turns block by block.
    #[arg(long, default_value_t = 500)]
    anchor_block: usize,
    /// PHP-FPM's static pool size [default: CPUs].
    #[arg(long)]
    fpm_children: Option<usize>,
    /// Warm calls over which context switches and CPU time are counted (half as many again
    /// under strace).
    #[arg(long, default_value_t = 1000)]
    cost_calls: usize,
    /// Do not count system calls with strace.
    #[arg(long)]
    no_strace: bool,
    /// Also measure the runwarmd of another build (a directory holding runwarmd,
    /// runwarm-exec-command and runwarm-sandbox) in the anchor section, in the same turns.
    #[arg(long)]
    pub compare_bins: Option<PathBuf>,
    /// TOML appended to the compared daemon's config, so that one build under two settings is
    /// measured in the same turns (`--compare-bins target/release --compare-config
    /// $'[server]\nidle_spin_us = 50'`).
    #[arg(long, requires = "compare_bins", default_value = "")]
    compare_config: String,
}

impl AnchorFlags {
    /// The section's options, with the throughput settings it shares with the load phase.
    pub fn options(
        &self,
        clients: usize,
        window: Duration,
        pool_max: usize,
        cpus: usize,
    ) -> Options {
        Options {
            calls: self.anchor_calls.max(1),
            block: self.anchor_block.max(1),
            clients: clients.max(1),
            window,
            pool_max,
            fpm_children: self.fpm_children.unwrap_or(cpus).max(1),
            cost_calls: self.cost_calls.max(1),
            strace: !self.no_strace,
            compare_config: self.compare_config.clone(),
        }
    }
}

/// The section on a daemon of its own (and another build's, with `compare_bins`).
pub async fn alone(opts: &Options, compare_bins: Option<&Path>) -> Result<Section> {
    crate::progress("starting runwarmd from target/release");
    let own = OwnDaemon::start("").await?;
    let pid = own.pid();
    // Read before anything is registered: the idle figure of a fresh daemon.
    let rss_idle = pid.and_then(procstat::rss_kib);
    let measured = on(opts, compare_bins, own.socket(), pid, rss_idle).await;
    let measured =
        measured.map_err(|e| anyhow!("{e:#}\nthe daemon's log ends with:\n{}", own.log_tail()));
    own.stop();
    measured
}

/// The section against the daemon on `socket`, starting the compared build if asked.
pub async fn on(
    opts: &Options,
    compare_bins: Option<&Path>,
    socket: &Path,
    pid: Option<u32>,
    rss_idle: Option<u64>,
) -> Result<Section> {
    let compare = match compare_bins {
        Some(dir) => {
            crate::progress(&format!(
                "starting the compared runwarmd from {}",
                dir.display()
            ));
            Some(OwnDaemon::start_in(dir, &opts.compare_config).await?)
        }
        None => None,
    };
    let daemon = Daemon {
        label: "runwarm".to_owned(),
        socket,
        pid,
        node: true,
    };
    let other = compare.as_ref().map(|c| Daemon {
        label: "compared".to_owned(),
        socket: c.socket(),
        pid: c.pid(),
        node: false,
    });
    let section = measure(&daemon, other.as_ref(), rss_idle, opts).await;
    if let Some(c) = compare {
        c.stop();
    }
    section
}

/// Measures `daemon` (and `compare`, another build's daemon, when given) against PHP-FPM.
pub async fn measure(
    daemon: &Daemon<'_>,
    compare: Option<&Daemon<'_>>,
    rss_idle_kib: Option<u64>,
    opts: &Options,
) -> Result<Section> {
    crate::progress(&format!(
        "anchor: PHP-FPM, static pool of {}",
        opts.fpm_children
    ));
    let fpm = OwnFpm::start(opts.fpm_children).await?;
    let measured = measure_with(daemon, compare, rss_idle_kib, opts, &fpm).await;
    fpm.stop();
    measured
}

async fn measure_with(
    daemon: &Daemon<'_>,
    compare: Option<&Daemon<'_>>,
    rss_idle_kib: Option<u64>,
    opts: &Options,
    fpm: &OwnFpm,
) -> Result<Section> {
    let client = Client::new(daemon.socket).with_timeout(crate::REQUEST_TIMEOUT);
    let mut labels = Vec::new();
    let mut targets = Vec::new();
    let py = register_hello(&client, "bench-anchor-py", "python3", 2, 1, None).await?;
    first_call(&py, "the python script").await?;
    labels.push(format!("{} python3", daemon.label));
    targets.push(py.clone());
    if daemon.node {
        let node = register_hello(&client, "bench-anchor-node", "node", 2, 1, None).await;
        match node {
            Ok(node) if first_call(&node, "the node script").await.is_ok() => {
                labels.push(format!("{} node", daemon.label));
                targets.push(node);
            }
            Ok(_) | Err(_) => crate::progress("anchor: node is not available; no node row"),
        }
    }
    let compare_client =
        compare.map(|c| Client::new(c.socket).with_timeout(crate::REQUEST_TIMEOUT));
    let mut compare_py = None;
    if let (Some(c), Some(cc)) = (compare, &compare_client) {
        let caller = register_hello(cc, "bench-anchor-py", "python3", 2, 1, None).await?;
        first_call(&caller, "the compared daemon's python script").await?;
        labels.push(format!("{} python3", c.label));
        targets.push(caller.clone());
        compare_py = Some(caller);
    }
    let fpm_pool = FpmPool::new(fpm, fpm.children());
    let fpm_one = Caller::Fpm(std::sync::Arc::clone(&fpm_pool));
    first_call(&fpm_one, "PHP-FPM").await?;
    labels.push("php-fpm".to_owned());
    targets.push(fpm_one.clone());

    crate::progress(&format!(
        "anchor: {} sequential calls per target in blocks of {}",
        opts.calls, opts.block
    ));
    let seq = sequential(&targets, opts.calls, opts.block).await;
    let sequential: Vec<_> = labels.into_iter().zip(seq).collect();

    crate::progress(&format!(
        "anchor: throughput, {} clients, {} windows of {:.1} s per target",
        opts.clients,
        ROUNDS,
        opts.window.as_secs_f64() / ROUNDS as f64
    ));
    // The first row is the one the target reads: recycled as PHP-FPM's workers are, never.
    let load = "bench-anchor-load";
    let load_default = "bench-anchor-load-recycled";
    register_hello(
        &client,
        load,
        "python3",
        opts.pool_max,
        0,
        Some(NO_RECYCLING),
    )
    .await?;
    register_hello(&client, load_default, "python3", opts.pool_max, 0, None).await?;
    let socket = daemon.socket.to_path_buf();
    let make_rw = |name: &'static str| {
        let socket = socket.clone();
        move || Caller::Runwarm {
            client: Client::new(&socket).with_timeout(crate::REQUEST_TIMEOUT),
            name: name.to_owned(),
        }
    };
    let (make_load, make_recycled) = (make_rw(load), make_rw(load_default));
    let pool = std::sync::Arc::clone(&fpm_pool);
    let make_fpm = move || Caller::Fpm(std::sync::Arc::clone(&pool));
    let mut makers: Vec<(String, &(dyn Fn() -> Caller + Sync))> = vec![
        (format!("{} python3", daemon.label), &make_load),
        (
            format!("php-fpm ({} kept connections)", fpm.children()),
            &make_fpm,
        ),
        (
            format!("{} python3, default recycling", daemon.label),
            &make_recycled,
        ),
    ];
    let make_cmp;
    if let Some(c) = compare {
        register_hello(
            compare_client
                .as_ref()
                .context("the compared daemon's client")?,
            load,
            "python3",
            opts.pool_max,
            0,
            Some(NO_RECYCLING),
        )
        .await?;
        let socket = c.socket.to_path_buf();
        make_cmp = move || Caller::Runwarm {
            client: Client::new(&socket).with_timeout(crate::REQUEST_TIMEOUT),
            name: load.to_owned(),
        };
        makers.push((format!("{} python3", c.label), &make_cmp));
    }
    let fns: Vec<&(dyn Fn() -> Caller + Sync)> = makers.iter().map(|(_, f)| *f).collect();
    let windows = throughput(&fns, opts.clients, opts.window / ROUNDS as u32, ROUNDS).await;
    let throughput = makers.into_iter().map(|(l, _)| l).zip(windows).collect();

    crate::progress("anchor: floors (pipe ping-pong, JSON-lines echo)");
    let python = crate::baseline::resolve_interpreter()?;
    let floors = super::floors::measure(&python);

    crate::progress(&format!(
        "anchor: costs per warm call over {} calls{}",
        opts.cost_calls,
        if opts.strace {
            ", then strace -c -f"
        } else {
            ""
        }
    ));
    let mut all_costs = Vec::new();
    let mut costs_error = None;
    let mut sides: Vec<(&Daemon<'_>, &Caller, &super::Sequential)> = Vec::new();
    sides.push((daemon, &py, &sequential[0].1));
    if let (Some(c), Some(caller)) = (compare, &compare_py)
        && let Some((_, seq)) = sequential.iter().find(|(l, _)| l.starts_with(&c.label))
    {
        sides.push((c, caller, seq));
    }
    for (d, caller, seq) in sides {
        let Some(pid) = d.pid else {
            costs_error = Some(format!("{}: the daemon's pid is unknown", d.label));
            continue;
        };
        let executors: Vec<u32> = seq
            .pids
            .iter()
            .filter_map(|&p| u32::try_from(p).ok())
            .flat_map(procstat::tree)
            .collect();
        let groups = vec![
            (format!("{} daemon", d.label), vec![pid]),
            (format!("{} executor", d.label), executors),
        ];
        match costs(caller, groups, opts.cost_calls, opts.strace).await {
            Ok(c) => all_costs.extend(c),
            Err(e) => costs_error = Some(format!("{}: {e:#}", d.label)),
        }
    }
    let fpm_pids = fpm.pid().map(procstat::tree).unwrap_or_default();
    match costs(
        &fpm_one,
        vec![("php-fpm master + workers".to_owned(), fpm_pids)],
        opts.cost_calls,
        opts.strace,
    )
    .await
    {
        Ok(c) => all_costs.extend(c),
        Err(e) => costs_error = Some(format!("php-fpm: {e:#}")),
    }

    crate::progress(&format!(
        "anchor: daemon's resident memory with {RSS_EXECUTORS} warm executors"
    ));
    let rss_warm = match daemon.pid {
        Some(pid) => rss_with_warm(&client, pid, RSS_EXECUTORS)
            .await
            .map_err(|e| format!("{e:#}")),
        None => Err("the daemon's pid is unknown".to_owned()),
    };
    Ok(Section {
        fpm_label: fpm.binary().display().to_string(),
        fpm_children: fpm.children(),
        pool_max: opts.pool_max,
        clients: opts.clients,
        sequential,
        throughput,
        floors,
        costs: all_costs,
        costs_error,
        rss_idle_kib,
        rss_warm,
        rss_warm_count: RSS_EXECUTORS,
    })
}

/// The first call of a target, retried while it is still being prepared or started.
async fn first_call(caller: &Caller, what: &str) -> Result<()> {
    let until = std::time::Instant::now() + FIRST_CALL;
    loop {
        match caller.call().await.1 {
            Ok(_) => return Ok(()),
            Err(e) if std::time::Instant::now() >= until => {
                bail!(
                    "{what} did not answer within {} s: {e}",
                    FIRST_CALL.as_secs()
                )
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}
