//! The process-level anchor of the confinement cost: `/bin/true` run directly, through
//! `runwarm-sandbox` with a spec like the daemon's, and through Debian's `bwrap` with a
//! comparable set of namespaces and binds, so the helper's own overhead can be judged against a
//! well-known tool on the same host. Nothing is installed: a missing `bwrap` skips its row.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use runwarm_sandbox::{Layers, SandboxSpec};

use crate::measure::Summary;

/// Timed runs of each way; two more before them warm the page cache.
pub const RUNS: usize = 20;
const WARMUP: usize = 2;
const TRUE: &str = "/bin/true";

/// The three ways' figures; `bwrap` is `Err(why)` when it was skipped or failed. `layers` says
/// where the helper's time goes: the helper run with its layers switched on one after another,
/// each row's figure including the rows above it.
pub struct Anchor {
    pub direct: Summary,
    pub sandbox: Result<Summary, String>,
    pub bwrap: Result<Summary, String>,
    pub layers: Vec<(&'static str, Result<Summary, String>)>,
}

/// Switches one more layer on.
type SwitchOn = fn(&mut Layers);

/// The cumulative steps of the breakdown, in the order the helper applies them.
const LAYER_STEPS: &[(&str, SwitchOn)] = &[
    ("helper, no layer", |_| {}),
    ("+ user namespace", |l| l.user_ns = true),
    ("+ mount ns, minimal root", |l| l.mount_ns = true),
    ("+ pid namespace, init", |l| l.pid_ns = true),
    ("+ ipc and uts namespaces", |l| l.ipc_uts_ns = true),
    ("+ network namespace", |l| l.net_ns = true),
    ("+ caps, no_new_privs, seccomp", |l| {
        l.capabilities = true;
        l.no_new_privs = true;
        l.seccomp = true;
    }),
];

pub fn measure(release_dir: &Path) -> Result<Anchor> {
    let task = tempfile::Builder::new()
        .prefix("rwb-task")
        .tempdir()
        .context("creating a temporary task directory")?;
    // The sandbox user (65534 by default) must be able to enter it.
    fs_err::set_permissions(task.path(), std::fs::Permissions::from_mode(0o755))?;
    let direct = time_runs(&mut Command::new(TRUE)).context("running /bin/true directly")?;
    let sandbox = sandbox_command(release_dir, task.path(), Layers::default())
        .and_then(|mut c| time_runs(&mut c))
        .map_err(|e| format!("{e:#}"));
    let mut layers = Layers::NONE;
    let layers = LAYER_STEPS
        .iter()
        .map(|(label, switch_on)| {
            switch_on(&mut layers);
            let figure = sandbox_command(release_dir, task.path(), layers)
                .and_then(|mut c| time_runs(&mut c))
                .map_err(|e| format!("{e:#}"));
            (*label, figure)
        })
        .collect();
    let bwrap = match find_in_path("bwrap") {
        None => Err("bwrap not installed: apt-get install bubblewrap".to_owned()),
        Some(bwrap) => {
            time_runs(&mut bwrap_command(&bwrap, task.path())).map_err(|e| format!("{e:#}"))
        }
    };
    Ok(Anchor {
        direct,
        sandbox,
        bwrap,
        layers,
    })
}

/// `runwarm-sandbox --spec …` running `/bin/true` with the daemon's default binds and `layers`.
fn sandbox_command(release_dir: &Path, task: &Path, layers: Layers) -> Result<Command> {
    let helper = release_dir.join("runwarm-sandbox");
    if !helper.exists() {
        bail!(
            "{} is missing: run `cargo build --release --workspace --bins` first",
            helper.display()
        );
    }
    let spec = SandboxSpec {
        program: TRUE.into(),
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        ro_binds: SandboxSpec::default_ro_binds(),
        task_dir: task.to_path_buf(),
        // Without the minimal root there is no /var/task to start in.
        cwd: if layers.mount_ns { "/var/task" } else { "/" }.into(),
        layers,
        ..SandboxSpec::default()
    };
    spec.validate().context("the anchor's sandbox spec")?;
    let mut command = Command::new(helper);
    command
        .arg("--spec")
        .arg(serde_json::to_string(&spec).context("encoding the sandbox spec")?);
    Ok(command)
}

/// `bwrap` with the namespaces, binds and capability drop the helper applies; the top-level
/// directories are recreated as what they are on this host (symlinks into /usr on merged-/usr
/// systems, binds otherwise).
fn bwrap_command(bwrap: &Path, task: &Path) -> Command {
    let mut command = Command::new(bwrap);
    command.args(["--unshare-all", "--die-with-parent", "--new-session"]);
    command.args(["--ro-bind", "/usr", "/usr"]);
    for top in ["/bin", "/sbin", "/lib", "/lib64"] {
        let path = Path::new(top);
        match path.read_link() {
            Ok(target) => {
                command.arg("--symlink").arg(target).arg(top);
            }
            Err(_) if path.is_dir() => {
                command.args(["--ro-bind", top, top]);
            }
            Err(_) => {}
        }
    }
    command.args(["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]);
    command.arg("--bind").arg(task).arg("/var/task");
    command.args(["--cap-drop", "ALL", TRUE]);
    command
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

/// Runs the command `WARMUP + RUNS` times, each to completion; any failure is an error.
fn time_runs(command: &mut Command) -> Result<Summary> {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut samples = Vec::with_capacity(RUNS);
    for i in 0..WARMUP + RUNS {
        let started = Instant::now();
        let out = command
            .output()
            .with_context(|| format!("starting {:?}", command.get_program()))?;
        let took = started.elapsed();
        if !out.status.success() {
            bail!(
                "{:?} ended with {}: {}",
                command.get_program(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        if i >= WARMUP {
            samples.push(took);
        }
    }
    Summary::of_durations(&samples).context("no runs were timed")
}

impl Anchor {
    /// The anchor's lines of the confinement section.
    pub fn text(&self) -> String {
        let mut out = String::new();
        let ms = |us: f64| us / 1000.0;
        let _ = writeln!(
            out,
            "  anchor: /bin/true, median of {RUNS} (p90 in brackets)"
        );
        let d = self.direct;
        let _ = writeln!(
            out,
            "    direct                   {:>8.2} ms ({:.2})",
            ms(d.p50),
            ms(d.p90)
        );
        for (label, figure) in [("runwarm-sandbox", &self.sandbox), ("bwrap", &self.bwrap)] {
            match figure {
                Ok(s) => {
                    let _ = writeln!(
                        out,
                        "    {label:<24} {:>8.2} ms ({:.2})   {label} - direct: {:+.2} ms",
                        ms(s.p50),
                        ms(s.p90),
                        ms(s.p50 - d.p50)
                    );
                }
                Err(why) => {
                    let _ = writeln!(out, "    {label:<24} skipped: {why}");
                }
            }
        }
        let _ = writeln!(
            out,
            "  where the helper's time goes: layers switched on one after another (median, ms)"
        );
        let mut previous = d.p50;
        for (label, figure) in &self.layers {
            match figure {
                Ok(s) => {
                    let _ = writeln!(
                        out,
                        "    {label:<32} {:>8.2}   step {:+.2}",
                        ms(s.p50),
                        ms(s.p50 - previous)
                    );
                    previous = s.p50;
                }
                Err(why) => {
                    let _ = writeln!(out, "    {label:<32} failed: {why}");
                }
            }
        }
        out
    }

    /// The breakdown as JSON, medians in microseconds.
    pub fn layers_json(&self) -> serde_json::Value {
        self.layers
            .iter()
            .map(|(label, figure)| match figure {
                Ok(s) => serde_json::json!({"layers": label, "p50_us": s.p50}),
                Err(why) => serde_json::json!({"layers": label, "failed": why}),
            })
            .collect()
    }
}
