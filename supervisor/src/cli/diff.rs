//! `runwarm diff NAME A B`: what changed between two versions of a script, manifest key by
//! manifest key (dotted paths such as `limits.timeout_ms`), then file by file, with the changed
//! lines of text files in unified form. A and B are what `@` takes (an id, a unique prefix, a
//! label) or a tag.

use clap::Args;
use serde_json::{Map, Value, json};

use crate::client::{Method, Selector, Target, escape};

use super::Ctx;
use super::error::CliError;
use super::outcome::Outcome;
use super::output::{print_json, print_text};
use super::pull::resolve;

/// Files larger than this are compared by hash only: a line diff of a large file is both slow
/// (quadratic) and unreadable.
const MAX_DIFF_LINES: usize = 4000;
/// Unchanged lines shown around each change.
const CONTEXT: usize = 3;

#[derive(Debug, Args)]
pub(super) struct DiffArgs {
    /// Script name.
    name: String,
    /// The older version: id, unique prefix, label or tag.
    a: String,
    /// The newer version: id, unique prefix, label or tag.
    b: String,
}

/// One side of the comparison.
struct Side {
    id: String,
    manifest: Value,
    /// `(path, sha256, executable)`, sorted by path.
    files: Vec<(String, String, bool)>,
}

pub(super) async fn diff(ctx: &Ctx, args: DiffArgs) -> Result<Outcome, CliError> {
    let a = load(ctx, &args.name, &args.a).await?;
    let b = load(ctx, &args.name, &args.b).await?;
    let manifest = manifest_changes(&a.manifest, &b.manifest);
    let files = file_changes(&a, &b);
    if ctx.json {
        let manifest: Vec<Value> = manifest
            .iter()
            .map(|(key, before, after)| json!({"key": key, "a": before, "b": after}))
            .collect();
        let files: Vec<Value> = files
            .iter()
            .map(|(path, change)| json!({"path": path, "change": change}))
            .collect();
        print_json(&json!({"a": a.id, "b": b.id, "manifest": manifest, "files": files}))?;
        return Ok(Outcome::Success);
    }
    let mut out = format!("--- {}@{}\n+++ {}@{}\n", args.name, a.id, args.name, b.id);
    if manifest.is_empty() && files.is_empty() {
        out.push_str("no differences\n");
    }
    if !manifest.is_empty() {
        out.push_str("manifest:\n");
        for (key, before, after) in &manifest {
            out.push_str(&format!("  {key}: {} -> {}\n", shown(before), shown(after)));
        }
    }
    if !files.is_empty() {
        out.push_str("files:\n");
        for (path, change) in &files {
            out.push_str(&format!("  {change:<10} {path}\n"));
        }
    }
    for (path, change) in &files {
        if *change != "modified" {
            continue;
        }
        let (Some(old), Some(new)) = (
            text(ctx, &args.name, &a.id, path).await?,
            text(ctx, &args.name, &b.id, path).await?,
        ) else {
            out.push_str(&format!("\n{path}: binary or large, contents differ\n"));
            continue;
        };
        out.push_str(&format!("\n--- a/{path}\n+++ b/{path}\n"));
        out.push_str(&unified(&old, &new));
    }
    print_text(&out)?;
    Ok(Outcome::Success)
}

async fn load(ctx: &Ctx, name: &str, which: &str) -> Result<Side, CliError> {
    // A tag is tried only when no version answers to the text: ids, prefixes and labels win,
    // as they do after `@`.
    let path = |v: &str| format!("/v1/scripts/{}/versions/{}", escape(name), escape(v));
    let detail = match ctx.call(Method::GET, &path(which), None).await {
        Ok(detail) => detail,
        Err(CliError::Refused { problem, .. }) if problem.status == 404 => {
            let target = Target {
                name: name.to_owned(),
                selector: Some(Selector::Tag(which.to_owned())),
            };
            let id = resolve(ctx, &target).await?;
            ctx.call(Method::GET, &path(&id), None).await?
        }
        Err(e) => return Err(e),
    };
    let mut files: Vec<(String, String, bool)> = detail
        .get("files")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|f| {
            Some((
                f.get("path")?.as_str()?.to_owned(),
                f.get("sha256")?.as_str()?.to_owned(),
                f.get("executable").and_then(Value::as_bool) == Some(true),
            ))
        })
        .collect();
    files.sort();
    Ok(Side {
        id: detail
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or(which)
            .to_owned(),
        manifest: detail.get("manifest").cloned().unwrap_or(Value::Null),
        files,
    })
}

/// A file's text, or `None` when it is not UTF-8 or too long to diff by line.
async fn text(ctx: &Ctx, name: &str, id: &str, path: &str) -> Result<Option<String>, CliError> {
    let url = format!(
        "/v1/scripts/{}/versions/{}/files/{}",
        escape(name),
        escape(id),
        escape(path)
    );
    let answer = ctx.client.request(Method::GET, &url, &[], None).await?;
    if !answer.is_success() {
        return Err(super::refused(&Method::GET, &url, answer.problem()));
    }
    Ok(String::from_utf8(answer.body.to_vec())
        .ok()
        .filter(|t| t.lines().count() <= MAX_DIFF_LINES))
}

fn shown(value: &Value) -> String {
    match value {
        Value::Null => "(unset)".to_owned(),
        other => other.to_string(),
    }
}

/// `(dotted key, a, b)` for every leaf that differs; objects are walked, arrays compared whole.
fn manifest_changes(a: &Value, b: &Value) -> Vec<(String, Value, Value)> {
    let mut left = Map::new();
    let mut right = Map::new();
    flatten("", a, &mut left);
    flatten("", b, &mut right);
    let mut keys: Vec<&String> = left.keys().chain(right.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let (x, y) = (
                left.get(k).cloned().unwrap_or(Value::Null),
                right.get(k).cloned().unwrap_or(Value::Null),
            );
            (x != y).then(|| (k.clone(), x, y))
        })
        .collect()
}

fn flatten(prefix: &str, value: &Value, out: &mut Map<String, Value>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (k, v) in map {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, v, out);
            }
        }
        other => {
            out.insert(prefix.to_owned(), other.clone());
        }
    }
}

/// `(path, added | removed | modified | mode)` for every file that differs.
fn file_changes(a: &Side, b: &Side) -> Vec<(String, &'static str)> {
    let mut paths: Vec<&String> = a.files.iter().chain(&b.files).map(|f| &f.0).collect();
    paths.sort();
    paths.dedup();
    let find = |side: &Side, p: &str| side.files.iter().find(|f| f.0 == p).cloned();
    paths
        .into_iter()
        .filter_map(|p| {
            let change = match (find(a, p), find(b, p)) {
                (None, Some(_)) => "added",
                (Some(_), None) => "removed",
                (Some(x), Some(y)) if x.1 != y.1 => "modified",
                (Some(x), Some(y)) if x.2 != y.2 => "mode",
                _ => return None,
            };
            Some((p.clone(), change))
        })
        .collect()
}

/// The changed lines of `old` → `new` in unified form (`@@ -l,n +l,n @@` hunks with
/// [`CONTEXT`] lines around each change), from a longest-common-subsequence table.
fn unified(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // lcs[i][j]: length of the LCS of a[i..] and b[j..].
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    // The edit script: (tag, line, old index, new index).
    let mut ops: Vec<(char, &str, usize, usize)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', a[i], i, j));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            // Removals before additions on a tie, as diff(1) prints them.
            ops.push(('-', a[i], i, j));
            i += 1;
        } else {
            ops.push(('+', b[j], i, j));
            j += 1;
        }
    }
    let mut out = String::new();
    let mut k = 0;
    while k < ops.len() {
        if ops[k].0 == ' ' {
            k += 1;
            continue;
        }
        // A hunk: from CONTEXT lines before this change to CONTEXT lines after the last change
        // that is no more than 2 * CONTEXT unchanged lines from the previous one.
        let start = k.saturating_sub(CONTEXT);
        let mut end = k;
        let mut quiet = 0;
        let mut m = k;
        while m < ops.len() && quiet <= 2 * CONTEXT {
            if ops[m].0 == ' ' {
                quiet += 1;
            } else {
                quiet = 0;
                end = m;
            }
            m += 1;
        }
        let stop = (end + 1 + CONTEXT).min(ops.len());
        let hunk = &ops[start..stop];
        let old_len = hunk.iter().filter(|o| o.0 != '+').count();
        let new_len = hunk.iter().filter(|o| o.0 != '-').count();
        out.push_str(&format!(
            "@@ -{},{old_len} +{},{new_len} @@\n",
            hunk[0].2 + 1,
            hunk[0].3 + 1
        ));
        for (tag, line, _, _) in hunk {
            out.push_str(&format!("{tag}{line}\n"));
        }
        k = stop;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_changes_are_dotted_keys() {
        let a = json!({"runtime": "python3", "limits": {"timeout_ms": 500}, "label": "1.0"});
        let b = json!({"runtime": "python3", "limits": {"timeout_ms": 900, "pids": 8}});
        assert_eq!(
            manifest_changes(&a, &b),
            [
                ("label".to_owned(), json!("1.0"), Value::Null),
                ("limits.pids".to_owned(), Value::Null, json!(8)),
                ("limits.timeout_ms".to_owned(), json!(500), json!(900)),
            ]
        );
    }

    #[test]
    fn unified_shows_changes_with_context() {
        let old = "a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n";
        let new = "a\nb\nc\nd\nE\nf\ng\nh\ni\nj\nk\n";
        let text = unified(old, new);
        assert_eq!(
            text,
            "@@ -2,9 +2,10 @@\n b\n c\n d\n-e\n+E\n f\n g\n h\n i\n j\n+k\n"
        );
        assert_eq!(unified("same\n", "same\n"), "");
    }
}
