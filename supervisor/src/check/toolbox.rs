//! Finding a runtime's tools and running one of them confined: the check `PATH` (the
//! configured tool folders, the interpreter's folder, the system's), the read-only binds the
//! tool needs to see itself (its folder, the interpreter a venv links to), the environment, and
//! the temporary folder the sources are written to.

use std::path::{Path, PathBuf};

use crate::runtime::{Launcher, Runtime};
use crate::sandbox::oneshot::{self, Capture, OneShot, RunLimits, RunOutcome};
use crate::sandbox::{Binds, INSIDE_EXECUTORS};
use crate::worker::LaunchSpec;

const SYSTEM_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Where one request's tools are looked for and what they see.
#[derive(Debug)]
pub struct Toolbox<'a> {
    /// The runtime.
    pub runtime: &'a Runtime,
    launcher: &'a Launcher,
    path_dirs: Vec<PathBuf>,
    ro: Vec<(PathBuf, PathBuf)>,
}

impl<'a> Toolbox<'a> {
    /// The tools of `runtime`, found in `tool_dirs` (each one's `bin` and `node_modules/.bin`),
    /// the interpreter's folder and the system's.
    pub fn new(runtime: &'a Runtime, launcher: &'a Launcher, tool_dirs: &[PathBuf]) -> Self {
        let mut path_dirs = Vec::new();
        let mut ro = vec![(launcher.executors_dir().to_owned(), INSIDE_EXECUTORS.into())];
        for dir in tool_dirs.iter().filter(|d| d.is_dir()) {
            path_dirs.push(dir.join("bin"));
            path_dirs.push(dir.join("node_modules/.bin"));
            ro.push((dir.clone(), dir.clone()));
            // A venv's python is a link to the interpreter it was made with, which must be
            // there too (a pyenv prefix under /root, say).
            if let Some(prefix) = crate::sandbox::interpreter_prefix(&dir.join("bin/python")) {
                ro.push((prefix.clone(), prefix));
            }
        }
        if let Some(interpreter) = runtime.interpreter.as_deref() {
            if let Some(dir) = interpreter.parent() {
                path_dirs.push(dir.to_owned());
            }
            if let Some(prefix) = crate::sandbox::interpreter_prefix(interpreter) {
                ro.push((prefix.clone(), prefix));
            }
        }
        path_dirs.extend(std::env::split_paths(SYSTEM_PATH));
        ro.extend(
            runtime
                .def
                .host_paths
                .iter()
                .filter(|p| p.exists())
                .map(|p| (p.clone(), p.clone())),
        );
        ro.sort();
        ro.dedup();
        Self {
            runtime,
            launcher,
            path_dirs,
            ro,
        }
    }

    /// The host path of a tool command's program: `{interpreter}`, or a name on the check PATH.
    pub fn program(&self, name: &str) -> Option<PathBuf> {
        if name == "{interpreter}" {
            return self
                .runtime
                .available
                .then(|| self.runtime.interpreter.clone())
                .flatten();
        }
        self.path_dirs
            .iter()
            .map(|d| d.join(name))
            .find(|p| is_executable(p))
    }

    /// The folder searched, for messages.
    pub fn path_text(&self) -> String {
        std::env::join_paths(&self.path_dirs)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    /// The confinement tools run under.
    pub fn confinement(&self) -> &crate::sandbox::Confinement {
        self.launcher.confinement()
    }

    /// `{executors}` as the tool sees it.
    pub fn executors_inside(&self) -> String {
        if self.launcher.confinement().minimal_root() {
            INSIDE_EXECUTORS.to_owned()
        } else {
            self.launcher.executors_dir().to_string_lossy().into_owned()
        }
    }

    /// Runs `program args` in `task` (seen at `/var/task`, read-only), without network.
    pub async fn run(&self, tool: ToolRun<'_>, limits: RunLimits) -> Result<RunOutcome, String> {
        let confinement = self.launcher.confinement();
        let cwd = oneshot::inside_task(confinement, tool.task);
        let mut env: Vec<(String, String)> = vec![
            ("PATH".into(), self.path_text()),
            ("LANG".into(), "C.UTF-8".into()),
            ("HOME".into(), "/tmp".into()),
            ("TMPDIR".into(), "/tmp".into()),
            // Every process a check starts carries the daemon instance, so a leak is found.
            (
                "RUNWARM_INSTANCE".into(),
                self.launcher.instance().to_owned(),
            ),
        ];
        env.extend(tool.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        let run = OneShot {
            name: format!("check-{}", sanitized(tool.name)),
            inner: LaunchSpec {
                program: tool.program.to_owned(),
                args: tool.args,
                env,
                cwd,
                spec_fd: None,
            },
            binds: Binds {
                task_dir: tool.task.to_owned(),
                ro: self.ro.clone(),
                rw: Vec::new(),
                network_host: false,
                tmp_size_bytes: None,
                secret_files: Vec::new(),
            },
            stdin: tool.stdin,
            capture: Capture::Head(tool.max_output),
        };
        // Its own task: a caller that goes away (the client hung up) must not drop the run
        // half-way, which would leave the tool's children to the kernel's mercy; the run ends
        // by itself within its time limit, killing what is left.
        let confinement = std::sync::Arc::clone(confinement);
        tokio::spawn(async move { oneshot::run(&confinement, run, limits).await })
            .await
            .map_err(|e| format!("the tool's task failed: {e}"))?
    }
}

/// One run of a tool.
#[derive(Debug)]
pub struct ToolRun<'a> {
    /// Checker or formatter name.
    pub name: &'a str,
    /// Host path of the program.
    pub program: &'a Path,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment (the tool definition's `env`).
    pub env: &'a std::collections::BTreeMap<String, String>,
    /// The sources' folder.
    pub task: &'a Path,
    /// Bytes on stdin.
    pub stdin: Option<Vec<u8>>,
    /// Bytes of stdout (and of stderr) kept.
    pub max_output: usize,
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// A name fit for a cgroup: `go vet` → `go-vet`.
fn sanitized(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// A folder holding one request's sources, removed when dropped.
#[derive(Debug)]
pub struct Workspace {
    dir: PathBuf,
}

impl Workspace {
    /// A fresh folder under `parent` with `files` written into it, readable by every uid (the
    /// tools run as the sandbox user), writable by none but the daemon.
    pub fn create<'f>(
        parent: &Path,
        files: impl IntoIterator<Item = (&'f str, &'f str)>,
    ) -> std::io::Result<Self> {
        use std::os::unix::fs::PermissionsExt;
        let dir = parent.join(uuid::Uuid::now_v7().simple().to_string());
        fs_err::create_dir_all(&dir)?;
        let ws = Self { dir };
        let mode = |m| std::fs::Permissions::from_mode(m);
        fs_err::set_permissions(&ws.dir, mode(0o755))?;
        for (rel, content) in files {
            let path = ws.dir.join(rel);
            if let Some(parent) = path.parent() {
                fs_err::create_dir_all(parent)?;
                let mut d = parent.to_path_buf();
                while d.starts_with(&ws.dir) && d != ws.dir {
                    fs_err::set_permissions(&d, mode(0o755))?;
                    d.pop();
                }
            }
            fs_err::write(&path, content)?;
            fs_err::set_permissions(&path, mode(0o644))?;
        }
        Ok(ws)
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }
}

impl Drop for Workspace {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_workspace_holds_the_files_and_goes_away() {
        let root = std::env::temp_dir().join(format!("rw-ws-{}", std::process::id()));
        let ws = Workspace::create(&root, [("main.py", "x = 1\n"), ("lib/u.py", "")]).unwrap();
        let dir = ws.dir().to_owned();
        assert_eq!(
            std::fs::read_to_string(dir.join("main.py")).unwrap(),
            "x = 1\n"
        );
        assert!(dir.join("lib/u.py").is_file());
        drop(ws);
        assert!(!dir.exists());
        let _ = std::fs::remove_dir_all(root);
    }

    #[test]
    fn cgroup_names_are_plain() {
        assert_eq!(sanitized("go vet"), "go-vet");
        assert_eq!(sanitized("g++"), "g--");
    }
}
