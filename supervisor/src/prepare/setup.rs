//! What one prepare step sees: its folders (sources, output, scratch, the toolchain seed as a
//! private hard-link copy), its environment and its read-only binds; and sealing its output
//! once it succeeded.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::job::Obtained;
use super::status::StepReport;
use super::step::{self, Step, StepLimits};
use super::{Inner, Job, PrepareError, cache, lock};
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

/// The read-only folders of earlier steps a step sees.
#[derive(Default)]
pub(super) struct Seen {
    pub(super) deps: Option<PathBuf>,
    pub(super) toolchain: Option<PathBuf>,
}

pub(super) enum StepKind<'a> {
    /// The runtime's seed: sees no script's files at all.
    Toolchain,
    /// The dependency step, seeing only these input files.
    Deps(&'a [String]),
    /// The build step, seeing the whole bundle.
    Build,
}

pub(super) async fn run_step(
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
pub(super) fn seal(dir: &Path) {
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
