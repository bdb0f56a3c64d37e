//! Turning a script version into a running executor: pick the runtime's command for the mode,
//! fill in the placeholders, build a clean environment, start the worker.
//!
//! The launcher and the start itself are here; the command and environment it fills in
//! (`plan.rs`), the prepare steps it waits for (`prepare.rs`) and the secrets it hands over
//! (`secrets.rs`) each have a file.

mod plan;
mod prepare;
mod secrets;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use runwarm_protocol::Mode;

use super::Catalog;
use crate::prepare::{Prepared, Preparer};
use crate::registry::manifest::Manifest;
use crate::sandbox::cgroup::CgroupLimits;
use crate::sandbox::{Binds, Confinement};
use crate::worker::{StartError, Worker, WorkerOptions};

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

    /// The memory limit an executor of `manifest` gets, in MiB (the manifest's, else the
    /// runtime's default), which it counts against the pools' memory budget; 0 without one.
    pub fn memory_mb(&self, manifest: &Manifest) -> u64 {
        manifest
            .limits
            .memory_mb
            .or_else(|| {
                self.catalog()
                    .get(&manifest.runtime)
                    .and_then(|r| r.def.limits.memory_mb)
            })
            .unwrap_or(0)
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
            network_host: m.network == crate::registry::manifest::Network::Host,
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
