//! One version's prepare: compute the keys, take each step's output from the cache or run the
//! step (once, however many versions wait for it), and publish the status as it goes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio::sync::watch;

use super::cache::{self, Level};
use super::setup::{Seen, StepKind, run_step, seal};
use super::status::{PrepareState, PrepareStatus, StepReport};
use super::{Inner, Job, PrepareError, lock};
use crate::runtime::Runtime;

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

pub(super) type Obtained = Result<(PathBuf, StepReport), (PrepareError, StepReport)>;

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

fn now_rfc3339() -> String {
    humantime::format_rfc3339_millis(SystemTime::now()).to_string()
}
