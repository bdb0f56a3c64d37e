//! `POST /v1/format`: the first installed `[[format]]` of the runtime that takes the file's
//! extension reads the content on stdin and writes it formatted to stdout. A formatter that
//! fails is taken to have found a syntax error (what formatters fail on), and says where.

use serde::Serialize;
use tokio::time::Instant;

use super::toolbox::{ToolRun, Toolbox, Workspace};
use super::{Checks, FormatRequest, ToolError};
use crate::runtime::{Catalog, Launcher, Runtime};
use crate::sandbox::oneshot::Ended;

/// The answer of `POST /v1/format`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FormatAnswer {
    /// The formatted content.
    pub content: String,
    /// Whether it differs from what was sent.
    pub changed: bool,
    /// The formatter that ran (`ruff format`, `gofmt`, …).
    pub formatter: String,
}

/// Why a file was not formatted.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// Refused before anything ran.
    #[error(transparent)]
    Tool(#[from] ToolError),
    /// No formatter of the runtime takes this file, or none is installed.
    #[error("no formatter for {path} is installed for runtime {runtime}{tried}")]
    Unavailable {
        /// The runtime.
        runtime: String,
        /// The file.
        path: String,
        /// `: tried …`, or empty when the runtime declares none for the extension.
        tried: String,
        /// What to install, from the runtime's definitions.
        install: Vec<String>,
    },
    /// The formatter refused the content (a syntax error).
    #[error("{formatter} could not format {path}: {message}")]
    Syntax {
        /// The formatter.
        formatter: String,
        /// The file.
        path: String,
        /// What it said.
        message: String,
    },
    /// The formatter ran over its time or memory, or its output was over the limit.
    #[error("{formatter} {what}")]
    Limit {
        /// The formatter.
        formatter: String,
        /// What happened.
        what: String,
        /// Which limit.
        time: bool,
    },
}

/// A runtime by name that is available here.
pub(super) fn runtime<'c>(catalog: &'c Catalog, name: &str) -> Result<&'c Runtime, ToolError> {
    let rt = catalog.get(name).ok_or_else(|| ToolError::UnknownRuntime {
        name: name.chars().take(100).collect(),
        known: catalog.names().join(", "),
    })?;
    if !rt.available {
        return Err(ToolError::RuntimeUnavailable {
            name: rt.def.name.clone(),
            detail: rt.detail.clone().unwrap_or_default(),
        });
    }
    Ok(rt)
}

impl Checks {
    /// Formats `req.content`.
    pub async fn format(
        &self,
        launcher: &Launcher,
        req: FormatRequest,
    ) -> Result<FormatAnswer, FormatError> {
        req.validate(self.settings.request_limits())
            .map_err(ToolError::from)?;
        let catalog = launcher.catalog();
        let rt = runtime(&catalog, &req.runtime)?;
        let tools = Toolbox::new(rt, launcher, &self.settings.tool_dirs);
        let ext = super::request::extension(&req.path).unwrap_or_default();
        let takes = |exts: &[String]| {
            let exts = if exts.is_empty() {
                &rt.def.extensions
            } else {
                exts
            };
            exts.iter().any(|e| e == ext)
        };
        let candidates: Vec<_> = rt
            .def
            .format
            .iter()
            .filter(|f| takes(&f.extensions))
            .collect();
        let chosen = candidates.iter().find_map(|f| {
            let program = f.run.first().and_then(|p| tools.program(p))?;
            Some((*f, program))
        });
        let Some((def, program)) = chosen else {
            let names: Vec<&str> = candidates.iter().map(|f| f.name.as_str()).collect();
            return Err(FormatError::Unavailable {
                runtime: rt.def.name.clone(),
                path: req.path.clone(),
                tried: if names.is_empty() {
                    String::new()
                } else {
                    format!(": tried {} in {}", names.join(", "), tools.path_text())
                },
                install: candidates.iter().map(|f| f.install.clone()).collect(),
            });
        };
        // The formatter sees no file, only stdin; the empty folder is its `/var/task`.
        let ws = Workspace::create(&self.scratch, []).map_err(|source| ToolError::Scratch {
            dir: self.scratch.clone(),
            source,
        })?;
        let args = def
            .run
            .iter()
            .skip(1)
            .map(|a| a.replace("{path}", &req.path))
            .collect();
        let deadline = Instant::now() + self.settings.timeout;
        let limit = |what: String, time: bool| FormatError::Limit {
            formatter: def.name.clone(),
            what,
            time,
        };
        let timeout_text = format!(
            "did not finish within {} s and was killed",
            self.settings.timeout.as_secs()
        );
        let Ok(_slot) = tokio::time::timeout_at(deadline, self.slots.acquire()).await else {
            return Err(limit(
                format!(
                    "did not start within {} s: the daemon is busy checking",
                    self.settings.timeout.as_secs()
                ),
                true,
            ));
        };
        let left = deadline.saturating_duration_since(Instant::now());
        let run = ToolRun {
            name: &def.name,
            program: &program,
            args,
            env: &def.env,
            task: ws.dir(),
            stdin: Some(req.content.clone().into_bytes()),
            max_output: self.settings.max_bytes * 2,
        };
        let out = tools
            .run(run, self.settings.run_limits(left))
            .await
            .map_err(|e| limit(format!("could not start: {e}"), false))?;
        match out.ended {
            Ended::Exited(0) if out.stdout_cut => Err(limit(
                format!("wrote more than {} bytes", self.settings.max_bytes * 2),
                false,
            )),
            Ended::Exited(0) => {
                let content = String::from_utf8(out.stdout)
                    .map_err(|_| limit("wrote output that is not UTF-8".into(), false))?;
                Ok(FormatAnswer {
                    changed: content != req.content,
                    content,
                    formatter: def.name.clone(),
                })
            }
            Ended::Exited(_) => Err(FormatError::Syntax {
                formatter: def.name.clone(),
                path: req.path.clone(),
                message: said(&out.stderr, &out.stdout),
            }),
            Ended::TimedOut => Err(limit(timeout_text, true)),
            Ended::OutOfMemory => Err(limit(
                format!(
                    "ran out of memory (limit {} MiB) and was killed",
                    self.settings.memory_bytes >> 20
                ),
                false,
            )),
            Ended::Killed(how) | Ended::WaitFailed(how) => {
                Err(limit(format!("was killed ({how})"), false))
            }
        }
    }
}

/// The first lines a failed formatter printed: where the syntax error is.
fn said(stderr: &[u8], stdout: &[u8]) -> String {
    let text = String::from_utf8_lossy(if stderr.is_empty() { stdout } else { stderr });
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim_end)
        .filter(|l| !l.trim().is_empty())
        .take(5)
        .collect();
    let joined = lines.join("\n");
    if joined.is_empty() {
        "it failed without saying why".to_owned()
    } else {
        joined.chars().take(2000).collect()
    }
}
