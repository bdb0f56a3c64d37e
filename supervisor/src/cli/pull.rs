//! `runwarm pull NAME[:TAG|@VERSION] DIR`: a registered version written back as a script folder.
//!
//! The folder is what `runwarm register DIR` reads: `runwarm.toml` holds `name` and the
//! version's manifest as the daemon stored it (every default filled in, which is also what the
//! version id is computed over), and every file is written byte for byte with its executable
//! bit. So registering the folder again names the same version id. A version whose files the
//! folder reader would skip or confuse (a hidden file, a file called `runwarm.toml`) is refused
//! before anything is written, since its folder could not round-trip.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::{Value, json};

use crate::client::{MANIFEST_FILE, Method, Selector, Target, escape};

use super::Ctx;
use super::error::{CliError, UsageError};
use super::outcome::Outcome;
use super::output::{print_json, print_text};

#[derive(Debug, Args)]
pub(super) struct PullArgs {
    /// `NAME`, `NAME:TAG` or `NAME@VERSION` (an id, a unique prefix, or a label).
    target: String,
    /// The folder to write; it must not exist or be empty.
    dir: PathBuf,
}

pub(super) async fn pull(ctx: &Ctx, args: PullArgs) -> Result<Outcome, CliError> {
    let target = Target::parse(&args.target).map_err(UsageError::from)?;
    let version = resolve(ctx, &target).await?;
    let base = format!(
        "/v1/scripts/{}/versions/{}",
        escape(&target.name),
        escape(&version)
    );
    let detail = ctx.call(Method::GET, &base, None).await?;
    let id = detail
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or(&version)
        .to_owned();
    let manifest_text = manifest_toml(&target.name, &detail["manifest"]).map_err(|why| {
        UsageError::Invalid(format!("{target} cannot be written as a folder: {why}"))
    })?;
    let files = file_list(&detail)?;
    if let Some(bad) = files.iter().find(|(path, _)| !round_trips(path)) {
        return Err(UsageError::Invalid(format!(
            "{target} has the file {:?}, which `runwarm register DIR` would skip or mistake for \
             the manifest, so its folder would not register as the same version",
            bad.0
        ))
        .into());
    }
    prepare_dir(&args.dir)?;
    write(
        &args.dir.join(MANIFEST_FILE),
        manifest_text.as_bytes(),
        false,
    )?;
    for (path, executable) in &files {
        let answer = ctx
            .client
            .request(
                Method::GET,
                &format!("{base}/files/{}", escape(path)),
                &[],
                None,
            )
            .await?;
        if !answer.is_success() {
            return Err(super::refused(
                &Method::GET,
                &format!("{base}/files/{path}"),
                answer.problem(),
            ));
        }
        write(&args.dir.join(path), &answer.body, *executable)?;
    }
    if ctx.json {
        print_json(
            &json!({"name": target.name, "version": id, "dir": args.dir, "files": files.len()}),
        )?;
    } else {
        print_text(&format!(
            "pulled {}@{id} into {} ({} file{} and {MANIFEST_FILE})\n",
            target.name,
            args.dir.display(),
            files.len(),
            if files.len() == 1 { "" } else { "s" }
        ))?;
    }
    Ok(Outcome::Success)
}

/// The version a target names: a tag through the script's tag table, anything else as the
/// daemon's version lookup takes it (id, prefix or label).
pub(super) async fn resolve(ctx: &Ctx, target: &Target) -> Result<String, CliError> {
    let tag = match &target.selector {
        Some(Selector::Version(version)) => return Ok(version.clone()),
        Some(Selector::Tag(tag)) => tag.as_str(),
        None => "latest",
    };
    let script = ctx
        .call(
            Method::GET,
            &format!("/v1/scripts/{}", escape(&target.name)),
            None,
        )
        .await?;
    script
        .pointer(&format!("/tags/{tag}"))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| {
            UsageError::Invalid(format!("script {:?} has no tag {tag:?}", target.name)).into()
        })
}

/// `(path, executable)` of every file of a version detail.
fn file_list(detail: &Value) -> Result<Vec<(String, bool)>, CliError> {
    let files = detail
        .get("files")
        .and_then(Value::as_array)
        .ok_or_else(|| UsageError::Invalid("the version detail lists no files".into()))?;
    Ok(files
        .iter()
        .filter_map(|f| {
            let path = f.get("path")?.as_str()?.to_owned();
            let executable = f.get("executable").and_then(Value::as_bool) == Some(true);
            Some((path, executable))
        })
        .collect())
}

/// Whether the folder reader keeps `path` as it is: it skips every entry whose name starts
/// with `.` and reads `runwarm.toml` at the top as the manifest.
fn round_trips(path: &str) -> bool {
    path != MANIFEST_FILE && !path.split('/').any(|segment| segment.starts_with('.'))
}

/// `runwarm.toml`: `name`, then the manifest's keys. JSON `null` has no TOML spelling; the
/// daemon never stores one outside `params`, and a schema using it cannot be written here.
fn manifest_toml(name: &str, manifest: &Value) -> Result<String, String> {
    let Value::Object(keys) = manifest else {
        return Err("the version has no manifest object".into());
    };
    let mut table = toml::Table::new();
    table.insert("name".into(), toml::Value::String(name.to_owned()));
    for (key, value) in keys {
        table.insert(key.clone(), to_toml(value, key)?);
    }
    toml::to_string(&table).map_err(|e| e.to_string())
}

fn to_toml(value: &Value, at: &str) -> Result<toml::Value, String> {
    Ok(match value {
        Value::Null => return Err(format!("{at} is null, which TOML cannot hold")),
        Value::Bool(b) => toml::Value::Boolean(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => toml::Value::Integer(i),
            (None, Some(f)) if n.is_f64() => toml::Value::Float(f),
            _ => return Err(format!("{at} = {n} does not fit a TOML number")),
        },
        Value::String(s) => toml::Value::String(s.clone()),
        Value::Array(items) => toml::Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, v)| to_toml(v, &format!("{at}[{i}]")))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => toml::Value::Table(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), to_toml(v, &format!("{at}.{k}"))?)))
                .collect::<Result<_, String>>()?,
        ),
    })
}

/// Creates `dir`, or accepts it when it exists and is empty: pulling never overwrites.
fn prepare_dir(dir: &Path) -> Result<(), CliError> {
    let failed = |source| CliError::WriteFolder {
        path: dir.to_owned(),
        source,
    };
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                return Err(failed(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "the folder is not empty",
                )));
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            std::fs::create_dir_all(dir).map_err(failed)
        }
        Err(e) => Err(failed(e)),
    }
}

fn write(path: &Path, bytes: &[u8], executable: bool) -> Result<(), CliError> {
    let failed = |source| CliError::WriteFolder {
        path: path.to_owned(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(failed)?;
    }
    std::fs::write(path, bytes).map_err(failed)?;
    let mode = if executable { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_reads_back_as_the_same_json() {
        let manifest = json!({"runtime": "python3", "entry": "main.py", "handler": "handler",
            "limits": {"timeout_ms": 500, "cpu": 0.5}, "env": {}, "tags": [],
            "params": {"type": "object", "properties": {"n": {"minimum": 1.5}}},
            "pool": {"min_warm": 0, "max": 4}, "label": "1.4.0"});
        let text = manifest_toml("greet", &manifest).unwrap();
        let mut back: toml::Table = toml::from_str(&text).unwrap();
        assert_eq!(
            back.remove("name"),
            Some(toml::Value::String("greet".into()))
        );
        let back: Value = serde_json::to_value(back).unwrap();
        assert_eq!(back, manifest, "{text}");
        assert!(manifest_toml("x", &json!({"params": {"const": null}})).is_err());
    }

    #[test]
    fn hidden_files_and_a_second_manifest_cannot_round_trip() {
        assert!(round_trips("main.py") && round_trips("lib/util.py"));
        assert!(!round_trips(".env") && !round_trips("lib/.cache/x"));
        assert!(!round_trips("runwarm.toml"));
        assert!(round_trips("lib/runwarm.toml"));
    }
}
