//! `POST /v1/check`: every installed checker of the runtime over the request's files, within
//! one time budget for the whole request; each reports whether it ran and, if not, why.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::parse::{self, Diagnostic};
use super::toolbox::{ToolRun, Toolbox, Workspace};
use super::{CheckRequest, Checks, ToolError};
use crate::runtime::{CheckDefinition, Launcher, Runtime};
use crate::sandbox::oneshot::Ended;

/// Most bytes of a checker's stdout or stderr read.
const MAX_OUTPUT: usize = 1 << 20;

/// The answer of `POST /v1/check`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CheckAnswer {
    /// What the checkers found, by path, line and column.
    pub diagnostics: Vec<Diagnostic>,
    /// Every checker the runtime declares, in order: whether it ran, and if not why.
    pub checkers: Vec<CheckerReport>,
}

/// One checker's part in a check.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CheckerReport {
    /// Its name (also the `source` of its diagnostics).
    pub name: String,
    /// Whether it ran to its end and its verdict is in `diagnostics`.
    pub ran: bool,
    /// Why it did not run or its verdict is missing: not installed, timed out, failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// How long its runs took, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

impl CheckerReport {
    fn skipped(name: &str, reason: String) -> Self {
        Self {
            name: name.to_owned(),
            ran: false,
            reason: Some(reason),
            duration_ms: None,
        }
    }
}

impl Checks {
    /// Runs the checks of `req`.
    pub async fn check(
        &self,
        launcher: &Launcher,
        req: CheckRequest,
    ) -> Result<CheckAnswer, ToolError> {
        req.validate(self.settings.request_limits())?;
        let catalog = launcher.catalog();
        let rt = super::formatting::runtime(&catalog, &req.runtime)?;
        let tools = Toolbox::new(rt, launcher, &self.settings.tool_dirs);
        let ws = Workspace::create(
            &self.scratch,
            req.files.iter().map(|(p, c)| (p.as_str(), c.as_str())),
        )
        .map_err(|source| ToolError::Scratch {
            dir: self.scratch.clone(),
            source,
        })?;
        let deadline = Instant::now() + self.settings.timeout;
        let installed = |name: &str| {
            rt.def
                .check
                .iter()
                .find(|c| c.name == name)
                .and_then(|c| c.run.first())
                .and_then(|p| tools.program(p))
                .is_some()
        };
        let all_files: Vec<&str> = req.files.keys().map(String::as_str).collect();
        let mut diagnostics = Vec::new();
        let mut checkers = Vec::new();
        for def in &rt.def.check {
            let Some(program) = def.run.first().and_then(|p| tools.program(p)) else {
                let what = def.run.first().map_or("", String::as_str);
                checkers.push(CheckerReport::skipped(
                    &def.name,
                    format!("not installed: no `{what}` in {}", tools.path_text()),
                ));
                continue;
            };
            if let Some(other) = def.unless.as_deref().filter(|o| installed(o)) {
                checkers.push(CheckerReport::skipped(
                    &def.name,
                    format!("{other} runs instead (it covers these rules)"),
                ));
                continue;
            }
            let targets = targets(def, rt, &req);
            if targets.is_empty() {
                checkers.push(CheckerReport::skipped(
                    &def.name,
                    "no file it reads was sent".into(),
                ));
                continue;
            }
            let (mut found, report) = self
                .run_checker(
                    &tools,
                    def,
                    &program,
                    &targets,
                    Sources {
                        dir: ws.dir(),
                        files: &all_files,
                    },
                    deadline,
                )
                .await;
            found.retain(|d| req.path.as_ref().is_none_or(|p| &d.path == p));
            diagnostics.extend(found);
            checkers.push(report);
        }
        // Sorted on every field, so the copies a tool repeats (gofmt does) are neighbours.
        diagnostics.sort_by(|a, b| {
            (&a.path, a.line, a.column, &a.source, &a.message)
                .cmp(&(&b.path, b.line, b.column, &b.source, &b.message))
        });
        diagnostics.dedup();
        Ok(CheckAnswer {
            diagnostics,
            checkers,
        })
    }

    /// Runs one checker (once per file, or once over all of them) and reads its verdict.
    async fn run_checker(
        &self,
        tools: &Toolbox<'_>,
        def: &CheckDefinition,
        program: &Path,
        targets: &[&str],
        sources: Sources<'_>,
        deadline: Instant,
    ) -> (Vec<Diagnostic>, CheckerReport) {
        let Sources {
            dir: task,
            files: all_files,
        } = sources;
        let per_file = def.run.iter().any(|a| a.contains("{file}"));
        let batches: Vec<Vec<&str>> = if per_file {
            targets.iter().map(|t| vec![*t]).collect()
        } else {
            vec![targets.to_vec()]
        };
        let inside = crate::sandbox::oneshot::inside_task(tools.confinement(), task);
        let started = std::time::Instant::now();
        let mut found = Vec::new();
        let fail = |reason: String, started: std::time::Instant| CheckerReport {
            name: def.name.clone(),
            ran: false,
            reason: Some(reason),
            duration_ms: Some(millis(started.elapsed())),
        };
        for batch in batches {
            let args = arguments(def, &batch, tools);
            let Ok(_slot) = tokio::time::timeout_at(deadline, self.slots.acquire()).await else {
                let why = format!(
                    "not run: the check's {} s were spent",
                    self.settings.timeout.as_secs()
                );
                return (found, fail(why, started));
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                let why = format!(
                    "not run: the check's {} s were spent",
                    self.settings.timeout.as_secs()
                );
                return (found, fail(why, started));
            }
            let run = ToolRun {
                name: &def.name,
                program,
                args,
                env: &def.env,
                task,
                stdin: None,
                max_output: MAX_OUTPUT,
            };
            let out = match tools.run(run, self.settings.run_limits(left)).await {
                Ok(out) => out,
                Err(e) => return (found, fail(format!("could not start: {e}"), started)),
            };
            let stdout = String::from_utf8_lossy(&out.stdout);
            let stderr = String::from_utf8_lossy(&out.stderr);
            let mut parsed = parse::parse(def.parser, &stdout, &stderr);
            parsed.retain_mut(|d| match relative(&d.path, &inside, task, all_files) {
                Some(rel) => {
                    d.path = rel;
                    d.source = def.name.clone();
                    true
                }
                None => false,
            });
            match out.ended {
                Ended::TimedOut => {
                    let why = format!(
                        "did not finish within the check's {} s and was killed",
                        self.settings.timeout.as_secs()
                    );
                    return (found, fail(why, started));
                }
                Ended::OutOfMemory => {
                    let why = format!(
                        "ran out of memory (limit {} MiB) and was killed",
                        self.settings.memory_bytes >> 20
                    );
                    return (found, fail(why, started));
                }
                Ended::Exited(0) => {}
                Ended::Exited(code) if parsed.is_empty() => {
                    let why = format!("exited with status {code}: {}", last_line(&stderr, &stdout));
                    return (found, fail(why, started));
                }
                Ended::Exited(_) => {}
                Ended::Killed(how) | Ended::WaitFailed(how) => {
                    return (found, fail(format!("was killed ({how})"), started));
                }
            }
            found.extend(parsed);
        }
        let report = CheckerReport {
            name: def.name.clone(),
            ran: true,
            reason: None,
            duration_ms: Some(millis(started.elapsed())),
        };
        (found, report)
    }
}

/// Where a request's files are, and their relative paths.
#[derive(Debug, Clone, Copy)]
struct Sources<'a> {
    dir: &'a Path,
    files: &'a [&'a str],
}

/// The files a checker reads: those with its extensions (the runtime's by default); only the
/// requested one for a checker that runs per file.
fn targets<'r>(def: &CheckDefinition, rt: &Runtime, req: &'r CheckRequest) -> Vec<&'r str> {
    let exts = if def.extensions.is_empty() {
        &rt.def.extensions
    } else {
        &def.extensions
    };
    let per_file = def.run.iter().any(|a| a.contains("{file}"));
    req.files
        .keys()
        .filter(|p| super::request::extension(p).is_some_and(|e| exts.iter().any(|x| x == e)))
        .filter(|p| !per_file || req.path.as_ref().is_none_or(|want| want == *p))
        .map(String::as_str)
        .collect()
}

/// The command's arguments with its placeholders filled in.
fn arguments(def: &CheckDefinition, batch: &[&str], tools: &Toolbox<'_>) -> Vec<String> {
    let interpreter = tools
        .runtime
        .interpreter
        .as_deref()
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let executors = tools.executors_inside();
    let mut args = Vec::new();
    for a in def.run.iter().skip(1) {
        if a == "{files}" {
            args.extend(batch.iter().map(|f| (*f).to_owned()));
            continue;
        }
        let file = batch.first().copied().unwrap_or_default();
        args.push(
            a.replace("{file}", file)
                .replace("{executors}", &executors)
                .replace("{interpreter}", &interpreter),
        );
    }
    args
}

/// A path as a tool printed it, as one of the request's files: relative to the sources' folder
/// however the tool spelled it (`main.py`, `./main.py`, `/var/task/main.py`); `None` for files
/// that are not the request's (a system header, the runtime's own library).
fn relative(raw: &str, inside: &Path, host: &Path, files: &[&str]) -> Option<String> {
    let mut p = raw.trim();
    for root in [inside, host] {
        if let Some(rest) = Path::new(p).strip_prefix(root).ok().and_then(Path::to_str) {
            p = rest;
        }
    }
    while let Some(rest) = p.strip_prefix("./") {
        p = rest;
    }
    files.iter().find(|f| **f == p).map(|f| (*f).to_owned())
}

/// The last line that says something, for a failure reason.
fn last_line(stderr: &str, stdout: &str) -> String {
    let line = stderr
        .lines()
        .chain(stdout.lines())
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("(no output)");
    line.chars().take(300).collect()
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tool_paths_map_back_to_the_request_files() {
        let inside = Path::new("/var/task");
        let host = Path::new("/state/check/0190");
        let files = ["main.py", "lib/u.py"];
        assert_eq!(
            relative("main.py", inside, host, &files).as_deref(),
            Some("main.py")
        );
        assert_eq!(
            relative("./lib/u.py", inside, host, &files).as_deref(),
            Some("lib/u.py")
        );
        assert_eq!(
            relative("/var/task/main.py", inside, host, &files).as_deref(),
            Some("main.py")
        );
        assert_eq!(
            relative("/state/check/0190/lib/u.py", inside, host, &files).as_deref(),
            Some("lib/u.py")
        );
        assert_eq!(relative("/usr/include/stdio.h", inside, host, &files), None);
        assert_eq!(
            relative(
                "/opt/runwarm/executors/java/runwarm/X.java",
                inside,
                host,
                &files
            ),
            None
        );
    }

    #[test]
    fn the_failure_reason_is_the_last_line_said() {
        assert_eq!(last_line("a\nboom\n\n", ""), "boom");
        assert_eq!(last_line("", ""), "(no output)");
    }
}
