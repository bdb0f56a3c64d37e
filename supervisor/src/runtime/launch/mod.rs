//! Turning a script version into a running executor: pick the runtime's command for the mode,
//! fill in the placeholders, build a clean environment, start the worker.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use runwarm_protocol::{InitScript, Mode};
use serde_json::{Map, Value};

use super::Catalog;
use crate::manifest::{Manifest, SECRETS_DIR, SecretRef};
use crate::prepare::{Job, PrepareError, PrepareStatus, Prepared, Preparer};
use crate::sandbox::cgroup::CgroupLimits;
use crate::sandbox::{Binds, Confinement};
use crate::worker::{LaunchSpec, StartError, Worker, WorkerOptions};

/// Base environment of every executor; nothing of the daemon's own environment leaks in.
const BASE_PATH: &str = "/usr/local/bin:/usr/bin:/bin";

/// What a launch needs to know about the script version.
#[derive(Debug, Clone, Copy)]
pub struct ScriptRef<'a> {
    /// Script name.
    pub name: &'a str,
    /// Version id.
    pub version: &'a str,
    /// Materialised, read-only bundle directory.
    pub root: &'a Path,
    /// The manifest.
    pub manifest: &'a Manifest,
}

/// Starts executors for script versions.
#[derive(Debug)]
pub struct Launcher {
    catalog: RwLock<Arc<Catalog>>,
    executors_dir: PathBuf,
    exec_command: PathBuf,
    opts: WorkerOptions,
    instance: String,
    confinement: Arc<Confinement>,
    preparer: Preparer,
    /// Where executors' secrets come from; set once at the daemon's start (tests and tools
    /// that start executors without a daemon have none, and a version naming a secret then
    /// fails to start).
    secrets: std::sync::OnceLock<Arc<crate::secrets::SecretStore>>,
}

impl Launcher {
    /// A launcher over a probed catalog; `executors_dir` holds the shims, `exec_command` is the
    /// command-mode executor binary.
    pub fn new(
        catalog: Catalog,
        executors_dir: PathBuf,
        exec_command: PathBuf,
        opts: WorkerOptions,
        confinement: Arc<Confinement>,
        preparer: Preparer,
    ) -> Self {
        let instance = uuid::Uuid::now_v7().simple().to_string();
        preparer.set_instance(&instance);
        Self {
            catalog: RwLock::new(Arc::new(catalog)),
            executors_dir,
            exec_command,
            opts,
            instance,
            confinement,
            preparer,
            secrets: std::sync::OnceLock::new(),
        }
    }

    /// Gives the launcher the daemon's secret store (once; a second call is ignored).
    pub fn set_secrets(&self, store: Arc<crate::secrets::SecretStore>) {
        let _ = self.secrets.set(store);
    }

    /// The secret store, if the daemon gave one.
    pub fn secrets(&self) -> Option<&Arc<crate::secrets::SecretStore>> {
        self.secrets.get()
    }

    /// The values to redact from the output of `manifest`'s executors.
    pub fn redactor(&self, manifest: &Manifest) -> crate::secrets::Redactor {
        match self.secrets.get() {
            Some(store) => store.redactor(&manifest.secret_names()),
            None => crate::secrets::Redactor::default(),
        }
    }

    /// The values of the secrets a manifest names, split into environment variables and files,
    /// read now so a new value reaches every executor started after it was set. Only names go
    /// into the errors.
    fn secret_values(&self, m: &Manifest) -> Result<SecretValues, StartError> {
        let mut out = SecretValues::default();
        if m.secrets.is_empty() {
            return Ok(out);
        }
        let store = self.secrets.get().ok_or_else(|| StartError::Unavailable {
            detail: "this process has no secret store".into(),
        })?;
        for secret in &m.secrets {
            let name = secret.name();
            let value = store.get(name).ok_or_else(|| StartError::Unavailable {
                detail: format!("secret {name:?} is not set (runwarm secret set {name})"),
            })?;
            match secret {
                SecretRef::Env(_) => out.env.push((name.to_owned(), value)),
                SecretRef::File(_) if !self.confinement.minimal_root() => {
                    return Err(StartError::Unavailable {
                        detail: format!(
                            "secret {name:?} is wanted as a file in {SECRETS_DIR}, which needs the \
                             sandbox's minimal root (a mount namespace) and this daemon runs \
                             without it (see `sandbox` in /v1/info); deliver it as an \
                             environment variable instead, or run with the sandbox"
                        ),
                    });
                }
                SecretRef::File(_) => out.files.push((name.to_owned(), value)),
            }
        }
        Ok(out)
    }

    /// The prepare service.
    pub fn preparer(&self) -> &Preparer {
        &self.preparer
    }

    /// Starts preparing a version (a registration, or the daemon's start); `None` when its
    /// runtime has nothing to prepare.
    pub fn submit_prepare(
        &self,
        script: ScriptRef<'_>,
        retry_failed: bool,
    ) -> Option<PrepareStatus> {
        let catalog = self.catalog();
        let rt = catalog.get(&script.manifest.runtime)?;
        if rt.def.prepare.is_none() || !rt.available {
            return None;
        }
        Some(self.preparer.submit(rt, job(script), retry_failed))
    }

    /// Takes a version's prepared folders from the cache if they are all there, running
    /// nothing (the daemon's start with `prepare.at_start = "lazy"`).
    pub fn restore_prepare(&self, script: ScriptRef<'_>) {
        let catalog = self.catalog();
        let rt = catalog.get(&script.manifest.runtime);
        if let Some(rt) = rt.filter(|rt| rt.def.prepare.is_some() && rt.available) {
            self.preparer.restore(rt, &job(script));
        }
    }

    /// Waits until the version is prepared (preparing it if it is not), at most until
    /// `deadline`. Runtimes without a prepare section are ready at once.
    pub async fn prepare(
        &self,
        script: ScriptRef<'_>,
        deadline: tokio::time::Instant,
    ) -> Result<(), StartError> {
        let catalog = self.catalog();
        let Some(rt) = catalog.get(&script.manifest.runtime) else {
            return Ok(());
        };
        if rt.def.prepare.is_none() || !rt.available {
            return Ok(());
        }
        if self.preparer.prepared(script.version).is_some() {
            return Ok(());
        }
        self.preparer
            .ensure(rt, job(script), deadline)
            .await
            .map(drop)
            .map_err(StartError::Prepare)
    }

    /// The folder of the executor shims (the runtimes' own libraries, which `javac` and `mcs`
    /// checks compile against).
    pub fn executors_dir(&self) -> &std::path::Path {
        &self.executors_dir
    }

    /// The confinement executors start under.
    pub fn confinement(&self) -> &Arc<Confinement> {
        &self.confinement
    }

    /// This daemon instance's id. Every executor (and every process it starts) carries it in
    /// `RUNWARM_INSTANCE`, so leaks can be found in `/proc/*/environ`.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The current catalog.
    pub fn catalog(&self) -> Arc<Catalog> {
        match self.catalog.read() {
            Ok(c) => Arc::clone(&c),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Replaces the catalog (reload); executors already running keep theirs.
    pub fn set_catalog(&self, catalog: Catalog) {
        match self.catalog.write() {
            Ok(mut c) => *c = Arc::new(catalog),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(catalog),
        }
    }

    /// The mode a manifest resolves to (its own, else the runtime's default).
    pub fn mode_of(&self, manifest: &Manifest) -> Mode {
        manifest.mode.unwrap_or_else(|| {
            self.catalog()
                .get(&manifest.runtime)
                .map(|r| r.def.default_mode)
                .unwrap_or_default()
        })
    }

    /// Effective invocation timeout in milliseconds: manifest, else runtime default, else `fallback`.
    pub fn timeout_ms(&self, manifest: &Manifest, fallback: u64) -> u64 {
        manifest
            .limits
            .timeout_ms
            .or_else(|| {
                self.catalog()
                    .get(&manifest.runtime)
                    .and_then(|r| r.def.limits.timeout_ms)
            })
            .unwrap_or(fallback)
    }

    /// Builds the launch spec without starting anything.
    /// With `inside`, paths are written as the executor sees them in the sandbox's minimal root.
    pub fn plan(
        &self,
        script: ScriptRef<'_>,
        inside: bool,
        prepared: &Prepared,
    ) -> Result<(LaunchSpec, InitScript, Map<String, Value>), StartError> {
        let catalog = self.catalog();
        let m = script.manifest;
        let unavailable = |detail: String| StartError::Unavailable { detail };
        let rt = catalog
            .get(&m.runtime)
            .ok_or_else(|| unavailable(format!("runtime {:?} is not defined", m.runtime)))?;
        if !rt.available {
            return Err(unavailable(format!(
                "runtime {:?} is not available on this host: {}",
                m.runtime,
                rt.detail.as_deref().unwrap_or("probe failed")
            )));
        }
        let mode = m.mode.unwrap_or(rt.def.default_mode);
        let template = rt
            .def
            .command_for(mode)
            .filter(|_| rt.def.modes.contains(&mode))
            .ok_or_else(|| {
                unavailable(format!(
                    "runtime {:?} has no {} mode",
                    m.runtime,
                    mode.as_str()
                ))
            })?;
        let (root, executors, exec_command) = if inside {
            (
                PathBuf::from(crate::sandbox::INSIDE_TASK),
                PathBuf::from(crate::sandbox::INSIDE_EXECUTORS),
                PathBuf::from(crate::sandbox::INSIDE_EXEC_COMMAND),
            )
        } else {
            (
                script.root.to_owned(),
                self.executors_dir.clone(),
                self.exec_command.clone(),
            )
        };
        let entry = root.join(&m.entry);
        let entry_stem = m
            .entry
            .rsplit_once('.')
            .map_or(m.entry.as_str(), |(s, _)| s);
        // A runtime without that step still gets the path: a classpath or module path naming
        // a folder that does not exist is harmless, and a program there fails with its name.
        let (deps, build) = if inside {
            (
                PathBuf::from(crate::sandbox::INSIDE_DEPS),
                PathBuf::from(crate::sandbox::INSIDE_BUILD),
            )
        } else {
            let missing = || script.root.join(".runwarm-not-prepared");
            (
                prepared.deps.clone().unwrap_or_else(missing),
                prepared.build.clone().unwrap_or_else(missing),
            )
        };
        let interpreter = rt
            .interpreter
            .as_deref()
            .map(Path::to_string_lossy)
            .unwrap_or_default();
        let fill = |arg: &str| {
            arg.replace("{interpreter}", &interpreter)
                .replace("{executors}", &executors.to_string_lossy())
                .replace("{exec_command}", &exec_command.to_string_lossy())
                .replace("{entry}", &entry.to_string_lossy())
                .replace("{entry_stem}", entry_stem)
                .replace("{root}", &root.to_string_lossy())
                .replace("{deps}", &deps.to_string_lossy())
                .replace("{build}", &build.to_string_lossy())
        };
        let mut argv = template.iter().map(|a| fill(a));
        let program = PathBuf::from(argv.next().unwrap_or_default());
        let args: Vec<String> = argv.collect();

        let mut env: Vec<(String, String)> = vec![
            ("PATH".into(), BASE_PATH.into()),
            ("LANG".into(), "C.UTF-8".into()),
            ("HOME".into(), "/tmp".into()),
            ("TMPDIR".into(), "/tmp".into()),
            ("RUNWARM_INSTANCE".into(), self.instance.clone()),
        ];
        env.extend(rt.def.env.iter().map(|(k, v)| (k.clone(), fill(v))));
        env.extend(m.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let init_env: Map<String, Value> = m
            .env
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        let (load_root, load_entry) = match &rt.def.load {
            Some(load) => (fill(&load.root), fill(&load.entry)),
            None => (root.to_string_lossy().into_owned(), m.entry.clone()),
        };
        let init = InitScript {
            name: script.name.to_owned(),
            version: script.version.to_owned(),
            root: load_root,
            entry: load_entry,
            handler: m.handler.clone(),
            mode,
        };
        let spec = LaunchSpec {
            program,
            args,
            env,
            cwd: root,
            spec_fd: None,
        };
        Ok((spec, init, init_env))
    }

    /// The version's prepared folders; an error when its runtime prepares and it is not ready.
    fn prepared(&self, script: ScriptRef<'_>) -> Result<Prepared, StartError> {
        let catalog = self.catalog();
        let needs = catalog
            .get(&script.manifest.runtime)
            .is_some_and(|r| r.def.prepare.is_some());
        if !needs {
            return Ok(Prepared::default());
        }
        self.preparer.prepared(script.version).ok_or_else(|| {
            match self.preparer.status(script.version) {
                Some(s) if s.state == crate::prepare::PrepareState::Failed => {
                    StartError::Prepare(PrepareError::Failed {
                        summary: s.error.unwrap_or_default(),
                        log: String::new(),
                    })
                }
                s => StartError::Prepare(PrepareError::Pending {
                    step: s.and_then(|s| s.step).unwrap_or("queued"),
                }),
            }
        })
    }

    /// Starts a worker for the script and completes its handshake.
    pub async fn start(&self, script: ScriptRef<'_>) -> Result<Worker, StartError> {
        let confined = self.confinement.namespaces();
        let prepared = self.prepared(script)?;
        let (mut spec, init, env) =
            self.plan(script, self.confinement.minimal_root(), &prepared)?;
        // Secrets go into the executor's own environment only: not into `plan` (whose output
        // may be shown), not into the init message's `env` (which the protocol echoes and
        // records), so they exist nowhere but in the sandboxed process.
        let secrets = self.secret_values(script.manifest)?;
        spec.env.extend(secrets.env);
        let mut opts = self.opts.clone();
        if let Some(ms) = self
            .catalog()
            .get(&script.manifest.runtime)
            .and_then(|r| r.def.init_timeout_ms)
        {
            opts.init_timeout = std::time::Duration::from_millis(ms);
        }
        if !confined {
            return Worker::start(&spec, init, env, opts).await;
        }
        let catalog = self.catalog();
        let m = script.manifest;
        let rt = catalog.get(&m.runtime);
        let defaults = rt.map(|r| r.def.limits).unwrap_or_default();
        let limits = CgroupLimits {
            memory_bytes: m.limits.memory_mb.or(defaults.memory_mb).map(|mb| mb << 20),
            pids: m.limits.pids.or(defaults.pids),
            cpu_cores: m.limits.cpu.or(defaults.cpu),
        };
        let id = uuid::Uuid::now_v7().simple().to_string();
        let interpreter = rt.and_then(|r| r.interpreter.as_deref());
        let binds = Binds {
            task_dir: script.root.to_owned(),
            ro: rt.map(|r| executor_binds(r, &prepared)).unwrap_or_default(),
            rw: Vec::new(),
            network_host: m.network == crate::manifest::Network::Host,
            tmp_size_bytes: None,
            secret_files: secrets.files,
        };
        let wrapped = self
            .confinement
            .wrap(
                &id,
                &spec,
                binds,
                &self.executors_dir,
                &self.exec_command,
                interpreter,
                &limits,
            )
            .map_err(|detail| StartError::Unavailable { detail })?;
        let started = Worker::start(&wrapped.launch, init, env, opts).await;
        match started {
            Ok(mut w) => {
                w.set_cgroup(wrapped.cgroup, limits.memory_bytes);
                Ok(w)
            }
            Err(e) => {
                if let Some(cg) = wrapped.cgroup {
                    // Killing and removing a cgroup waits for it to empty: not on this thread.
                    tokio::task::spawn_blocking(move || drop(cg));
                }
                Err(e)
            }
        }
    }
}

fn job(script: ScriptRef<'_>) -> Job {
    Job {
        name: script.name.to_owned(),
        version: script.version.to_owned(),
        root: script.root.to_owned(),
        manifest: script.manifest.clone(),
    }
}

/// Read-only binds an executor of this runtime gets beyond the system directories: the
/// runtime's host paths, the version's prepared folders and the runtime's binds into them.
fn executor_binds(rt: &super::Runtime, prepared: &Prepared) -> Vec<(PathBuf, PathBuf)> {
    let mut ro: Vec<(PathBuf, PathBuf)> = rt
        .def
        .host_paths
        .iter()
        .filter(|p| p.exists())
        .map(|p| (p.clone(), p.clone()))
        .collect();
    if let Some(d) = &prepared.deps {
        ro.push((d.clone(), crate::sandbox::INSIDE_DEPS.into()));
    }
    if let Some(b) = &prepared.build {
        ro.push((b.clone(), crate::sandbox::INSIDE_BUILD.into()));
    }
    for (inside, source) in rt.def.prepare.iter().flat_map(|p| &p.binds) {
        let host = [("{deps}/", &prepared.deps), ("{build}/", &prepared.build)]
            .into_iter()
            .find_map(|(prefix, dir)| Some(dir.as_ref()?.join(source.strip_prefix(prefix)?)));
        if let Some(host) = host.filter(|h| h.exists()) {
            ro.push((host, PathBuf::from(inside)));
        }
    }
    ro
}

/// A version's secret values as the executor gets them.
#[derive(Default)]
struct SecretValues {
    env: Vec<(String, String)>,
    files: Vec<(String, String)>,
}
