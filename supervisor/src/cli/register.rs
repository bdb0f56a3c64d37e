//! `runwarm register`: bundle a folder or a single file, `POST /v1/scripts`, then wait for the
//! version's prepare (dependencies, build) so that exit 0 means the version can run.

use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use serde_json::Value;

use crate::client::{FileBundle, Method, bundle_from_dir, bundle_from_file};

use super::error::{CliError, UsageError};
use super::outcome::Outcome;
use super::output::{print_json, print_stderr, print_text};
use super::prepare::{self, Waited};
use super::scripts::rows_of;
use super::{Ctx, refused};

#[derive(Debug, Args)]
pub(super) struct RegisterArgs {
    /// A script folder holding runwarm.toml, or a single script file.
    path: PathBuf,
    /// Script name [default: `name` in runwarm.toml, else the folder's or file's name].
    #[arg(long)]
    name: Option<String>,
    /// Runtime (python3, node, bash …) [default: runwarm.toml's, or for a single file the
    /// runtime whose extensions include the file's (see `runwarm runtimes`)].
    #[arg(long)]
    runtime: Option<String>,
    /// `handler` (warm, called per request) or `command` (a fresh process per request).
    #[arg(long, value_parser = ["handler", "command"])]
    mode: Option<String>,
    /// Handler function name (handler mode).
    #[arg(long)]
    handler: Option<String>,
    /// Entry file inside the bundle [default: the file's name].
    #[arg(long)]
    entry: Option<String>,
    /// Return right after registering instead of waiting until the version is prepared
    /// (dependencies installed, code built).
    #[arg(long)]
    no_wait: bool,
    /// Stop waiting for the prepare after this long (30s, 5m …) and exit 3; the prepare goes
    /// on in runwarmd [default: no limit].
    #[arg(long, value_parser = humantime::parse_duration, conflicts_with = "no_wait")]
    timeout: Option<Duration>,
}

pub(super) async fn register(ctx: &Ctx, args: RegisterArgs) -> Result<Outcome, CliError> {
    if !args.path.exists() {
        return Err(UsageError::Invalid(format!("{} does not exist", args.path.display())).into());
    }
    let mut body = if args.path.is_dir() {
        let mut body = bundle_from_dir(&args.path)?;
        // Options given with a folder override its runwarm.toml.
        let overrides = [
            ("runtime", &args.runtime),
            ("mode", &args.mode),
            ("handler", &args.handler),
            ("entry", &args.entry),
        ];
        if let Some(manifest) = body.get_mut("manifest").and_then(Value::as_object_mut) {
            for (key, value) in overrides {
                if let Some(value) = value {
                    manifest.insert(key.into(), value.clone().into());
                }
            }
        }
        body
    } else {
        let runtime = match args.runtime.clone() {
            Some(runtime) => runtime,
            None => {
                let runtimes = ctx.call(Method::GET, "/v1/runtimes", None).await?;
                runtime_for_file(&runtimes, &args.path)?
            }
        };
        let opts = FileBundle {
            name: args.name.clone(),
            runtime,
            mode: args.mode,
            handler: args.handler,
            entry: args.entry,
        };
        bundle_from_file(&args.path, &opts)?
    };
    if let Some(name) = args.name {
        body["name"] = name.into();
    }
    let answer = ctx.client.register(&body).await?;
    if !answer.is_success() {
        return Err(refused(&Method::POST, "/v1/scripts", answer.problem()));
    }
    let mut registered = answer.json()?;
    let created = registered
        .get("created")
        .and_then(Value::as_bool)
        .unwrap_or(answer.status == 201);
    let name = text_field(&registered, "name");
    let version = text_field(&registered, "version");
    let immediate = registered.get("prepare").filter(|p| !p.is_null()).cloned();

    let waited = match immediate {
        // No prepare (the runtime has none), or the caller does not want to wait.
        None => Waited::Finished(None),
        Some(state) if args.no_wait => Waited::Finished(Some(state)),
        Some(_) => prepare::wait(ctx, &name, &version, args.timeout).await?,
    };
    let (outcome, prepare) = match waited {
        Waited::Finished(None) => (Outcome::Success, None),
        Waited::Finished(Some(p)) => (prepare::outcome_of(&p), Some(p)),
        Waited::TimedOut(p) => (Outcome::TimedOut, Some(p)),
        Waited::Interrupted(p) => (Outcome::Interrupted, Some(p)),
    };
    if let Some(p) = &prepare {
        registered["prepare"] = p.clone();
    }
    if ctx.json {
        print_json(&registered)?;
        return Ok(outcome);
    }
    let headline = registered_line(&name, &version, created, prepare.as_ref());
    let standing = prepare::standing(prepare.as_ref().unwrap_or(&Value::Null));
    match outcome {
        Outcome::Success => print_text(&headline)?,
        Outcome::TimedOut => print_stderr(&format!(
            "{headline}\nerror: not prepared within {} ({standing}); runwarmd goes on preparing \
             it\n\nhint: run the same `runwarm register` again to wait for it\n",
            args.timeout
                .map(|t| humantime::format_duration(t).to_string())
                .unwrap_or_default(),
        )),
        Outcome::Interrupted => print_stderr(&format!(
            "{headline}\nstopped waiting ({standing}); runwarmd goes on preparing it\n\nhint: \
             run the same `runwarm register` again to wait for it\n",
        )),
        Outcome::ScriptFailed | Outcome::SystemError | Outcome::Usage | Outcome::Rejected => {
            let prepare = prepare.unwrap_or(Value::Null);
            print_stderr(&prepare::failure_report(&name, &version, &prepare));
        }
    }
    Ok(outcome)
}

fn text_field(object: &Value, key: &str) -> String {
    object
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_owned()
}

/// `registered NAME VERSION (new)`, with how the prepare went when there was one.
fn registered_line(name: &str, version: &str, created: bool, prepare: Option<&Value>) -> String {
    let mut line = format!(
        "registered {name} {version} ({})",
        if created { "new" } else { "unchanged" }
    );
    if let Some(prepare) = prepare {
        line.push_str(", ");
        line.push_str(&prepare::summary(prepare));
    }
    line
}

/// The runtime whose `extensions` (from `GET /v1/runtimes`) include the file's extension; a
/// usage error listing the known extensions when none or several do.
pub(super) fn runtime_for_file(runtimes: &Value, file: &Path) -> Result<String, UsageError> {
    let runtimes: &[Value] = rows_of(runtimes).map_or(&[], Vec::as_slice);
    let claims: Vec<(&str, Vec<String>)> = runtimes
        .iter()
        .filter_map(|rt| {
            let name = rt.get("name").and_then(Value::as_str)?;
            let extensions = rt
                .get("extensions")
                .and_then(Value::as_array)
                .map(|list| {
                    list.iter()
                        .filter_map(Value::as_str)
                        .map(|e| e.trim_start_matches('.').to_ascii_lowercase())
                        .filter(|e| !e.is_empty())
                        .collect()
                })
                .unwrap_or_default();
            Some((name, extensions))
        })
        .collect();
    let known = claims
        .iter()
        .filter(|(_, extensions)| !extensions.is_empty())
        .map(|(name, extensions)| {
            let dotted: Vec<String> = extensions.iter().map(|e| format!(".{e}")).collect();
            format!("{} ({name})", dotted.join(" "))
        })
        .collect::<Vec<_>>();
    let known = if known.is_empty() {
        "runwarmd lists no extensions".to_owned()
    } else {
        format!("known extensions: {}", known.join(", "))
    };
    let Some(extension) = file
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
    else {
        return Err(UsageError::Invalid(format!(
            "{} has no extension to tell its runtime by; pass --runtime ({known})",
            file.display()
        )));
    };
    let matching: Vec<&str> = claims
        .iter()
        .filter(|(_, extensions)| extensions.contains(&extension))
        .map(|(name, _)| *name)
        .collect();
    match matching.as_slice() {
        [one] => Ok((*one).to_owned()),
        [] => Err(UsageError::Invalid(format!(
            "no runtime claims the extension .{extension} of {}; pass --runtime ({known})",
            file.display()
        ))),
        several => Err(UsageError::Invalid(format!(
            "the extension .{extension} of {} belongs to several runtimes ({}); pass --runtime",
            file.display(),
            several.join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn catalog() -> Value {
        json!([
            {"name": "bash", "extensions": ["sh", "bash"]},
            {"name": "node", "extensions": ["js", ".mjs", "cjs"]},
            {"name": "python3", "extensions": ["py"]},
            {"name": "custom", "extensions": []},
            {"name": "legacy"},
        ])
    }

    #[test]
    fn a_files_extension_picks_its_runtime() {
        let pick = |file: &str| runtime_for_file(&catalog(), Path::new(file));
        assert_eq!(pick("hello.py").ok().as_deref(), Some("python3"));
        assert_eq!(pick("dir/Check.SH").ok().as_deref(), Some("bash"));
        assert_eq!(pick("a.b.mjs").ok().as_deref(), Some("node"));
        let wrapped = json!({"runtimes": catalog()});
        assert_eq!(
            runtime_for_file(&wrapped, Path::new("x.js"))
                .ok()
                .as_deref(),
            Some("node")
        );
    }

    #[test]
    fn unknown_or_missing_extensions_list_the_known_ones() {
        let known = "known extensions: .sh .bash (bash), .js .mjs .cjs (node), .py (python3)";
        let err = runtime_for_file(&catalog(), Path::new("notes.txt"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(
            err,
            format!("no runtime claims the extension .txt of notes.txt; pass --runtime ({known})")
        );
        let err = runtime_for_file(&catalog(), Path::new("Makefile"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("Makefile has no extension"), "{err}");
        assert!(err.contains(known), "{err}");
        let err = runtime_for_file(&json!([]), Path::new("x.py"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("runwarmd lists no extensions"), "{err}");
    }

    #[test]
    fn an_extension_of_several_runtimes_is_ambiguous() {
        let runtimes = json!([
            {"name": "python3", "extensions": ["py"]},
            {"name": "pypy", "extensions": ["py"]},
        ]);
        let err = runtime_for_file(&runtimes, Path::new("x.py"))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert_eq!(
            err,
            "the extension .py of x.py belongs to several runtimes (python3, pypy); pass --runtime"
        );
    }

    #[test]
    fn the_registered_line_carries_the_prepare() {
        assert_eq!(
            registered_line("hello", "sha256:1", true, None),
            "registered hello sha256:1 (new)"
        );
        assert_eq!(
            registered_line("hello", "sha256:1", false, Some(&json!("pending"))),
            "registered hello sha256:1 (unchanged), prepare pending"
        );
        let ready = json!({"state": "ready", "duration_ms": 1200.0,
            "dependencies": {"key": "k", "cached": true, "duration_ms": 0.0},
            "build": {"key": "b", "cached": false, "duration_ms": 1200.0}});
        assert_eq!(
            registered_line("hello", "sha256:1", true, Some(&ready)),
            "registered hello sha256:1 (new), prepared in 1.2 s (dependencies cached)"
        );
    }
}
