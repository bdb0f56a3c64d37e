//! The phases run against one daemon (an own one from `target/release`, or a given socket):
//! warm latency, cold starts, throughput, then the PHP-FPM anchor, with the daemon's log tail
//! when a phase fails.

use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use runwarm_supervisor::client::Client;

use crate::daemon::OwnDaemon;
use crate::report::DaemonUnderTest;
use crate::{Flags, REQUEST_TIMEOUT, load, progress, scenarios, versus};

/// What was measured against the daemon.
pub(crate) struct DaemonFigures {
    pub daemon: DaemonUnderTest,
    pub warm: scenarios::Warm,
    pub cold: scenarios::Cold,
    pub load: load::Load,
    pub anchor: Option<versus::Section>,
}

/// The phases' figures, before the daemon is stopped.
struct PhaseFigures {
    version: Option<String>,
    warm: scenarios::Warm,
    cold: scenarios::Cold,
    load: load::Load,
    anchor: Option<versus::Section>,
}

pub(crate) fn anchor_options(flags: &Flags, cpus: usize, window: Duration) -> versus::Options {
    let pool_max = flags.pool_max.unwrap_or(cpus * 2).max(1);
    flags.anchor.options(flags.clients, window, pool_max, cpus)
}

pub(crate) async fn measure_daemon(
    flags: &Flags,
    cpus: usize,
    window: Duration,
) -> Result<DaemonFigures> {
    let own = match &flags.socket {
        Some(_) => None,
        None => {
            progress("starting runwarmd from target/release");
            Some(OwnDaemon::start("").await?)
        }
    };
    let (socket, label) = match (&flags.socket, &own) {
        (Some(socket), _) => (socket.clone(), format!("given socket {}", socket.display())),
        (None, Some(own)) => (
            own.socket().to_path_buf(),
            format!("{} in {}", own.binary().display(), own.dir().display()),
        ),
        (None, None) => bail!("no daemon to measure: neither --socket nor an own daemon"),
    };
    let measured = measure_phases(flags, cpus, window, &socket).await;
    let measured = match (measured, &own) {
        (Err(error), Some(own)) => Err(anyhow!(
            "{error:#}\nthe daemon's log ends with:\n{}",
            own.log_tail()
        )),
        (other, _) => other,
    };
    let PhaseFigures {
        version,
        warm,
        cold,
        load,
        anchor,
    } = measured?;
    let stopped = own.map(OwnDaemon::stop);
    let daemon = DaemonUnderTest {
        label,
        version,
        stopped,
    };
    Ok(DaemonFigures {
        daemon,
        warm,
        cold,
        load,
        anchor,
    })
}

async fn measure_phases(
    flags: &Flags,
    cpus: usize,
    window: Duration,
    socket: &std::path::Path,
) -> Result<PhaseFigures> {
    let client = Client::new(socket).with_timeout(REQUEST_TIMEOUT);
    let info = client
        .get_json("/v1/info")
        .await
        .with_context(|| format!("asking the daemon on {} for /v1/info", socket.display()))?;
    let version = info["version"].as_str().map(str::to_owned);
    let pid = info["pid"].as_u64().and_then(|p| u32::try_from(p).ok());
    // Before anything is registered: the idle figure (of a fresh daemon unless --socket).
    let rss_idle = pid.and_then(versus::procstat::rss_kib);
    progress(&format!(
        "warm latency: {} warm-up + {} measured calls",
        flags.warmup, flags.calls
    ));
    let warm = scenarios::measure_warm(&client, flags.calls, flags.warmup).await?;
    progress(&format!("cold start: {} new versions", flags.cold));
    let cold = scenarios::measure_cold(&client, flags.cold.max(1)).await?;
    let pool_max = flags.pool_max.unwrap_or(cpus * 2).max(1);
    progress(&format!(
        "throughput: {} clients for {:.1} s, pool max {pool_max}",
        flags.clients, flags.seconds
    ));
    let load = load::measure_load(socket, REQUEST_TIMEOUT, flags.clients, pool_max, window).await?;
    let anchor = if flags.no_anchor {
        None
    } else {
        Some(
            versus::run::on(
                &anchor_options(flags, cpus, window),
                flags.anchor.compare_bins.as_deref(),
                socket,
                pid,
                rss_idle,
            )
            .await?,
        )
    };
    Ok(PhaseFigures {
        version,
        warm,
        cold,
        load,
        anchor,
    })
}
