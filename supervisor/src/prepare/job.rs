//! One version's prepare: compute the keys, take each step's output from the cache or run the
//! step (once, however many versions wait for it), and publish the status as it goes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::watch;

use super::cache::{self, Level};
use super::status::{PrepareState, PrepareStatus, StepReport};
use super::step::{self, Step, StepLimits};
use super::{Inner, Job, PrepareError, lock};
use crate::runtime::Runtime;
use crate::sandbox::{
    INSIDE_BUILD, INSIDE_DEPS, INSIDE_EXECUTORS, INSIDE_SCRATCH, INSIDE_TOOLCHAIN,
};

/// Variables of the daemon's environment a step inherits: how this host reaches package
/// registries (proxies, mirrors, CA bundles). Nothing else of the daemon's leaks in.
const PASSED_THROUGH: &[&str] = &[
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "UV_INDEX_URL",
    "UV_DEFAULT_INDEX",
    "npm_config_registry",
    "GOPROXY",
    "GOSUMDB",
    "GONOSUMDB",
    "GOPRIVATE",
    "MAVEN_OPTS",
    "PIP_CERT",
    "REQUESTS_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
];

/// The keys of a version's steps; computed without running anything.
pub(super) struct Plan {
    toolchain_key: Option<String>,
    deps: Option<DepsPlan>,
    build_key: Option<String>,
}

struct DepsPlan {
    key: String,
    /// The input files present in the bundle (relative paths).
    present: Vec<String>,
}

pub(super) fn plan(rt: &Runtime, job: &Job) -> Plan {
    let Some(def) = &rt.def.prepare else {
        return Plan {
            toolchain_key: None,
            deps: None,
            build_key: None,
        };
    };
    let rt_version = rt.version.clone().unwrap_or_default();
    let env: String = def.env.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    let deps = def.dependencies.as_ref().and_then(|d| {
        let mut parts: Vec<Vec<u8>> = vec![
            b"deps-v1".to_vec(),
            rt.def.name.as_bytes().to_vec(),
            rt_version.as_bytes().to_vec(),
            d.run.as_bytes().to_vec(),
            env.as_bytes().to_vec(),
        ];
        let mut present = Vec::new();
        for input in &d.inputs {
            parts.push(input.as_bytes().to_vec());
            match std::fs::read(job.root.join(input)) {
                Ok(bytes) => {
                    parts.push(b"present".to_vec());
                    parts.push(bytes);
                    present.push(input.clone());
                }
                Err(_) => parts.push(b"absent".to_vec()),
            }
        }
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        (d.always || !present.is_empty()).then(|| DepsPlan {
            key: cache::key(&refs),
            present,
        })
    });
    let build_key = def.build.as_ref().map(|b| {
        let flags = job.manifest.build.flags.join("\0");
        let deps_key = deps.as_ref().map(|d| d.key.as_str()).unwrap_or_default();
        cache::key(&[
            b"build-v1",
            job.version.as_bytes(),
            rt.def.name.as_bytes(),
            rt_version.as_bytes(),
            b.run.as_bytes(),
            env.as_bytes(),
            deps_key.as_bytes(),
            flags.as_bytes(),
            job.manifest.entry.as_bytes(),
            job.manifest.handler.as_bytes(),
        ])
    });
    let toolchain_key = def.toolchain.as_ref().map(|t| {
        cache::key(&[
            b"toolchain-v1",
            rt.def.name.as_bytes(),
            rt_version.as_bytes(),
            t.run.as_bytes(),
            env.as_bytes(),
        ])
    });
    Plan {
        toolchain_key,
        deps,
        build_key,
    }
}

/// The status when every step's output is already cached, without running anything.
pub(super) fn from_cache(inner: &Inner, rt: &Runtime, plan: &Plan) -> Option<PrepareStatus> {
    let mut cache = lock(&inner.cache);
    let mut status = PrepareStatus::pending();
    if let Some(d) = &plan.deps {
        status.prepared.deps = Some(cache.hit(Level::Deps, &rt.def.name, &d.key)?);
        status.dependencies = Some(cached_report(&d.key));
    }
    if let Some(key) = &plan.build_key {
        status.prepared.build = Some(cache.hit(Level::Build, &rt.def.name, key)?);
        status.build = Some(cached_report(key));
    }
    drop(cache);
    let mut figures = lock(&inner.figures);
    let f = figures.entry(rt.def.name.clone()).or_default();
    f.hits += u64::from(plan.deps.is_some()) + u64::from(plan.build_key.is_some());
    status.state = PrepareState::Ready;
    status.duration_ms = Some(0.0);
    Some(status)
}

fn cached_report(key: &str) -> StepReport {
    StepReport {
        key: key.to_owned(),
        cached: true,
        duration_ms: 0.0,
        log: String::new(),
    }
}

/// Runs the version's prepare, publishing its status on `tx`.
pub(super) async fn run(
    inner: Arc<Inner>,
    rt: Runtime,
    job: Job,
    plan: Plan,
    tx: watch::Sender<PrepareStatus>,
) {
    let started = Instant::now();
    tx.send_modify(|s| s.started_at = Some(now_rfc3339()));
    let Some(def) = rt.def.prepare.clone() else {
        tx.send_modify(|s| s.state = PrepareState::Ready);
        return;
    };
    let mut failure: Option<String> = None;
    let mut seed: Option<PathBuf> = None;
    if let (Some(t), Some(key)) = (&def.toolchain, &plan.toolchain_key) {
        tx.send_modify(|s| {
            s.step = Some("toolchain");
            s.state = PrepareState::Running;
        });
        let ran = obtain(&inner, &rt, Level::Toolchain, key, || {
            run_step(
                &inner,
                &rt,
                &job,
                StepKind::Toolchain,
                &t.run,
                Seen::default(),
            )
        })
        .await;
        match ran {
            Ok((path, report)) => {
                seed = Some(path);
                // Shown only when this version had to wait for it.
                let ran_now = !report.cached;
                tx.send_modify(|s| s.toolchain = ran_now.then_some(report));
            }
            Err((e, report)) => {
                failure = Some(e.to_string());
                tx.send_modify(|s| s.toolchain = Some(report));
            }
        }
    }
    let seen = |deps: Option<&Path>| Seen {
        deps: deps.map(Path::to_path_buf),
        toolchain: seed.clone(),
    };
    if let (None, Some(d), Some(dp)) = (&failure, &def.dependencies, &plan.deps) {
        tx.send_modify(|s| {
            s.step = Some("dependencies");
            s.state = PrepareState::Running;
        });
        let ran = obtain(&inner, &rt, Level::Deps, &dp.key, || {
            run_step(
                &inner,
                &rt,
                &job,
                StepKind::Deps(&dp.present),
                &d.run,
                seen(None),
            )
        })
        .await;
        match ran {
            Ok((path, report)) => tx.send_modify(|s| {
                s.prepared.deps = Some(path);
                s.dependencies = Some(report);
            }),
            Err((e, report)) => {
                failure = Some(e.to_string());
                tx.send_modify(|s| s.dependencies = Some(report));
            }
        }
    }
    if let (None, Some(b), Some(key)) = (&failure, &def.build, &plan.build_key) {
        tx.send_modify(|s| {
            s.step = Some("build");
            s.state = PrepareState::Running;
        });
        let deps = tx.borrow().prepared.deps.clone();
        let ran = obtain(&inner, &rt, Level::Build, key, || {
            run_step(
                &inner,
                &rt,
                &job,
                StepKind::Build,
                &b.run,
                seen(deps.as_deref()),
            )
        })
        .await;
        match ran {
            Ok((path, report)) => tx.send_modify(|s| {
                s.prepared.build = Some(path);
                s.build = Some(report);
            }),
            Err((e, report)) => {
                failure = Some(e.to_string());
                tx.send_modify(|s| s.build = Some(report));
            }
        }
    }
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    match &failure {
        None => tracing::info!(script = %job.name, version = %job.version, ms, "version prepared"),
        Some(e) => {
            tracing::warn!(script = %job.name, version = %job.version, error = %e, "prepare failed")
        }
    }
    tx.send_modify(|s| {
        s.step = None;
        s.duration_ms = Some(ms);
        s.state = if failure.is_some() {
            PrepareState::Failed
        } else {
            PrepareState::Ready
        };
        s.error = failure;
    });
    let inner2 = Arc::clone(&inner);
    let _ = tokio::task::spawn_blocking(move || inner2.evict()).await;
}

type Obtained = Result<(PathBuf, StepReport), (PrepareError, StepReport)>;

/// The output under `key`: from the cache, from another version's run of the same step, or by
/// running the step (`make`) as the one that all others with this key wait for.
async fn obtain<F, Fut>(
    inner: &Arc<Inner>,
    rt: &Runtime,
    level: Level,
    key: &str,
    make: F,
) -> Obtained
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(PathBuf, StepReport), (PrepareError, StepReport)>>,
{
    let runtime = rt.def.name.as_str();
    let flight_key = (level, key.to_owned());
    let leader = {
        if let Some(path) = lock(&inner.cache).hit(level, runtime, key) {
            lock(&inner.figures)
                .entry(runtime.to_owned())
                .or_default()
                .hits += 1;
            return Ok((path, cached_report(key)));
        }
        let mut flights = lock(&inner.flights);
        match flights.get(&flight_key) {
            Some(rx) => Err(rx.clone()),
            None => {
                let (ftx, frx) = watch::channel(None);
                flights.insert(flight_key.clone(), frx);
                Ok(ftx)
            }
        }
    };
    match leader {
        Err(mut rx) => {
            let shared = rx
                .wait_for(Option::is_some)
                .await
                .ok()
                .and_then(|r| r.clone());
            lock(&inner.figures)
                .entry(runtime.to_owned())
                .or_default()
                .hits += 1;
            match shared {
                Some(Ok(path)) => Ok((path, cached_report(key))),
                Some(Err(e)) => Err((e, cached_report(key))),
                None => Err((
                    PrepareError::Failed {
                        summary: "the step this version waited for was abandoned".into(),
                        log: String::new(),
                    },
                    cached_report(key),
                )),
            }
        }
        Ok(ftx) => {
            let made = {
                let _slot = inner.slots.acquire().await;
                make().await
            };
            let out = match made {
                Ok((tmp, report)) => commit(inner, level, runtime, key, tmp, report).await,
                Err(e) => Err(e),
            };
            let out = out.map_err(|(e, mut r)| {
                r.key = key.to_owned();
                (e, r)
            });
            {
                let mut figures = lock(&inner.figures);
                let f = figures.entry(runtime.to_owned()).or_default();
                f.misses += 1;
                f.failures += u64::from(out.is_err());
                let report = match &out {
                    Ok((_, r)) | Err((_, r)) => r,
                };
                f.last_prepare_ms = Some(report.duration_ms);
                f.last_prepare_at = Some(now_rfc3339());
                if let Some(observe) = inner.on_step.get() {
                    let step = match level {
                        Level::Toolchain => "toolchain",
                        Level::Deps => "dependencies",
                        Level::Build => "build",
                    };
                    let took = std::time::Duration::try_from_secs_f64(report.duration_ms / 1000.0);
                    observe(runtime, step, took.unwrap_or_default());
                }
            }
            let _ = ftx.send(Some(
                out.as_ref()
                    .map(|(p, _)| p.clone())
                    .map_err(|(e, _)| e.clone()),
            ));
            lock(&inner.flights).remove(&flight_key);
            out
        }
    }
}

/// Seals a finished step's output and moves it into the cache under `key`.
async fn commit(
    inner: &Arc<Inner>,
    level: Level,
    runtime: &str,
    key: &str,
    tmp: PathBuf,
    mut report: StepReport,
) -> Obtained {
    report.key = key.to_owned();
    let (inner2, runtime2, key2) = (Arc::clone(inner), runtime.to_owned(), key.to_owned());
    let committed = tokio::task::spawn_blocking(move || {
        seal(&tmp);
        lock(&inner2.cache).commit(level, &runtime2, &key2, &tmp)
    })
    .await;
    match committed {
        Ok(Ok(path)) => Ok((path, report)),
        Ok(Err(e)) => Err((
            PrepareError::Failed {
                summary: format!("moving the prepared output into the cache: {e}"),
                log: String::new(),
            },
            report,
        )),
        Err(e) => Err((
            PrepareError::Failed {
                summary: format!("the cache commit task failed: {e}"),
                log: String::new(),
            },
            report,
        )),
    }
}

/// The read-only folders of earlier steps a step sees.
#[derive(Default)]
struct Seen {
    deps: Option<PathBuf>,
    toolchain: Option<PathBuf>,
}

enum StepKind<'a> {
    /// The runtime's seed: sees no script's files at all.
    Toolchain,
    /// The dependency step, seeing only these input files.
    Deps(&'a [String]),
    /// The build step, seeing the whole bundle.
    Build,
}

async fn run_step(
    inner: &Arc<Inner>,
    rt: &Runtime,
    job: &Job,
    kind: StepKind<'_>,
    script: &str,
    seen: Seen,
) -> Obtained {
    let deps = seen.deps.as_deref();
    let name = match kind {
        StepKind::Toolchain => "toolchain",
        StepKind::Deps(_) => "dependencies",
        StepKind::Build => "build",
    };
    let fail = |summary: String| {
        (
            PrepareError::Failed {
                summary: summary.clone(),
                log: String::new(),
            },
            StepReport {
                key: String::new(),
                cached: false,
                duration_ms: 0.0,
                log: summary,
            },
        )
    };
    let folders = {
        let cache = lock(&inner.cache);
        (|| -> std::io::Result<_> {
            Ok((
                cache.scratch(name)?,
                cache.scratch("scratch")?,
                cache.scratch("inputs")?,
            ))
        })()
    };
    let (out, scratch, inputs) =
        folders.map_err(|e| fail(format!("creating the {name} step's folders: {e}")))?;
    let cleanup = |dirs: &[&Path]| {
        for d in dirs {
            let _ = cache::make_writable(d);
            let _ = std::fs::remove_dir_all(d);
        }
    };
    let src = match kind {
        StepKind::Deps(present) => {
            // The step sees only the files its key covers: a requirements file that pointed at
            // another file of the bundle must not make two bundles share one environment.
            for rel in present {
                let to = inputs.join(rel);
                let copied = to
                    .parent()
                    .map_or(Ok(()), std::fs::create_dir_all)
                    .and_then(|()| std::fs::copy(job.root.join(rel), &to).map(drop));
                if let Err(e) = copied {
                    cleanup(&[&out, &scratch, &inputs]);
                    return Err(fail(format!("copying {rel} for the dependency step: {e}")));
                }
            }
            inputs.clone()
        }
        StepKind::Build => job.root.clone(),
        StepKind::Toolchain => inputs.clone(),
    };
    let confined = inner.confinement.minimal_root();
    let sandbox_ids = inner.confinement.namespaces().then(|| {
        let s = inner.confinement.settings();
        (s.uid, s.gid)
    });
    let home = scratch.join("home");
    let _ = std::fs::create_dir_all(&home);
    if let Some((uid, gid)) = sandbox_ids {
        for d in [&out, &scratch, &home] {
            let _ = std::os::unix::fs::chown(d, Some(uid), Some(gid));
        }
    }
    let inside = |host: &Path, at: &str| {
        if confined {
            PathBuf::from(at)
        } else {
            host.to_owned()
        }
    };
    let (out_at, deps_at) = match kind {
        StepKind::Toolchain => (INSIDE_TOOLCHAIN, None),
        StepKind::Deps(_) => (INSIDE_DEPS, None),
        StepKind::Build => (INSIDE_BUILD, deps.map(|d| inside(d, INSIDE_DEPS))),
    };
    let src_in = step::inside_src(confined, &src);
    let scratch_in = inside(&scratch, INSIDE_SCRATCH);
    let entry = job.manifest.entry.clone();
    let mode = job.manifest.mode.unwrap_or(rt.def.default_mode);
    let entry_stem = entry
        .rsplit_once('.')
        .map_or(entry.as_str(), |(s, _)| s)
        .to_owned();
    let mut env: Vec<(String, String)> = vec![
        ("PATH".into(), step_path(rt)),
        ("LANG".into(), "C.UTF-8".into()),
        (
            "HOME".into(),
            scratch_in.join("home").to_string_lossy().into_owned(),
        ),
        ("TMPDIR".into(), "/tmp".into()),
        ("RUNWARM_SRC".into(), src_in.to_string_lossy().into_owned()),
        (
            "RUNWARM_OUT".into(),
            inside(&out, out_at).to_string_lossy().into_owned(),
        ),
        (
            "RUNWARM_SCRATCH".into(),
            scratch_in.to_string_lossy().into_owned(),
        ),
        (
            "RUNWARM_EXECUTORS".into(),
            inside(&inner.executors_dir, INSIDE_EXECUTORS)
                .to_string_lossy()
                .into_owned(),
        ),
        (
            "RUNWARM_INTERPRETER".into(),
            rt.interpreter
                .as_deref()
                .map(Path::to_string_lossy)
                .unwrap_or_default()
                .into_owned(),
        ),
        (
            "RUNWARM_RUNTIME_VERSION".into(),
            rt.version.clone().unwrap_or_default(),
        ),
        ("RUNWARM_ENTRY".into(), entry.clone()),
        ("RUNWARM_ENTRY_STEM".into(), entry_stem),
        ("RUNWARM_HANDLER".into(), job.manifest.handler.clone()),
        ("RUNWARM_MODE".into(), mode.as_str().to_owned()),
        (
            "RUNWARM_BUILD_FLAGS".into(),
            job.manifest.build.flags.join(" "),
        ),
    ];
    if let Some(d) = &deps_at {
        env.push(("RUNWARM_DEPS".into(), d.to_string_lossy().into_owned()));
    } else if matches!(kind, StepKind::Deps(_)) {
        env.push((
            "RUNWARM_DEPS".into(),
            inside(&out, out_at).to_string_lossy().into_owned(),
        ));
    }
    if let Some(t) = &seen.toolchain {
        // A private copy made of hard links: the step may add to it (Go writes its own
        // packages' build results there) and read the seed, but not change a seeded file
        // (they belong to the daemon and are read-only), and the next step starts clean.
        let farm = scratch.join("toolchain");
        if let Err(e) = link_farm(t, &farm, sandbox_ids) {
            cleanup(&[&out, &scratch, &inputs]);
            return Err(fail(format!(
                "linking the toolchain seed for the {name} step: {e}"
            )));
        }
        env.push((
            "RUNWARM_TOOLCHAIN".into(),
            scratch_in.join("toolchain").to_string_lossy().into_owned(),
        ));
    }
    if let Some(instance) = inner.instance.get() {
        env.push(("RUNWARM_INSTANCE".into(), instance.clone()));
    }
    for name in PASSED_THROUGH {
        if let Ok(v) = std::env::var(name) {
            env.push(((*name).to_owned(), v));
        }
    }
    env.extend(rt.def.prepare.iter().flat_map(|p| p.env.clone()));
    let mut ro: Vec<(PathBuf, PathBuf)> =
        vec![(inner.executors_dir.clone(), INSIDE_EXECUTORS.into())];
    if let Some(d) = deps {
        ro.push((d.to_owned(), INSIDE_DEPS.into()));
    }

    if let Some(prefix) = rt
        .interpreter
        .as_deref()
        .and_then(crate::sandbox::interpreter_prefix)
    {
        ro.push((prefix.clone(), prefix));
    }
    ro.extend(
        rt.def
            .host_paths
            .iter()
            .filter(|p| p.exists())
            .map(|p| (p.clone(), p.clone())),
    );
    let s = &inner.settings;
    let limits = StepLimits {
        timeout: s.timeout,
        memory_bytes: s.memory_bytes,
        pids: s.pids,
        cpu: s.cpu,
        tmp_bytes: s.tmp_bytes,
    };
    let step = Step {
        name,
        script,
        src: &src,
        ro,
        rw: vec![
            (out.clone(), out_at.into()),
            (scratch.clone(), INSIDE_SCRATCH.into()),
        ],
        env,
        cwd: src_in,
    };
    let ran = step::run(&inner.confinement, step, limits).await;
    cleanup(&[&scratch, &inputs]);
    let outcome = match ran {
        Ok(o) => o,
        Err(e) => {
            cleanup(&[&out]);
            return Err(fail(format!("the {name} step could not start: {e}")));
        }
    };
    let report = StepReport {
        key: String::new(),
        cached: false,
        duration_ms: outcome.elapsed.as_secs_f64() * 1000.0,
        log: outcome.log.clone(),
    };
    if !outcome.ok {
        cleanup(&[&out]);
        let tail = step::summary(&outcome.log, super::SUMMARY_LINES);
        let summary = if tail.is_empty() {
            outcome.status
        } else {
            format!("{}:\n{tail}", outcome.status)
        };
        return Err((
            PrepareError::Failed {
                summary,
                log: outcome.log,
            },
            report,
        ));
    }
    Ok((out, report))
}

/// Mirrors `seed` at `farm`: directories created anew (owned by the sandbox user, so the step
/// can add entries), files hard-linked (same inodes: no copy, still read-only to the step).
fn link_farm(seed: &Path, farm: &Path, owner: Option<(u32, u32)>) -> std::io::Result<()> {
    let mut stack = vec![(seed.to_path_buf(), farm.to_path_buf())];
    while let Some((from, to)) = stack.pop() {
        std::fs::create_dir(&to)?;
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&to, Some(uid), Some(gid))?;
        }
        for entry in std::fs::read_dir(&from)? {
            let entry = entry?;
            let kind = entry.file_type()?;
            let target = to.join(entry.file_name());
            if kind.is_dir() {
                stack.push((entry.path(), target));
            } else if kind.is_file() {
                std::fs::hard_link(entry.path(), target)?;
            }
        }
    }
    Ok(())
}

/// The interpreter's own folder first: that is where its tools are (`go`, `uv` beside a
/// pyenv Python, `javac` beside `java`), wherever the host installed them.
fn step_path(rt: &Runtime) -> String {
    let base = "/usr/local/bin:/usr/bin:/bin";
    match rt.interpreter.as_deref().and_then(Path::parent) {
        Some(dir) if dir.is_absolute() => format!("{}:{base}", dir.display()),
        _ => base.to_owned(),
    }
}

/// Hands a finished output back to the daemon's user and takes away write permission, so no
/// executor (running as the sandbox user) can change what other versions share.
fn seal(dir: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let root = nix::unistd::geteuid().is_root();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(meta) = p.symlink_metadata() else {
            continue;
        };
        if root {
            let _ = std::os::unix::fs::lchown(&p, Some(0), Some(0));
        }
        if meta.file_type().is_symlink() {
            continue;
        }
        let mode = meta.permissions().mode() & !0o022;
        let _ = std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode));
        if let (true, Ok(entries)) = (meta.is_dir(), std::fs::read_dir(&p)) {
            stack.extend(entries.flatten().map(|e| e.path()));
        }
    }
}

fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}
