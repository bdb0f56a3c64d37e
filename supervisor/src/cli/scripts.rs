//! Script commands: `ls`, `versions`, `tag`, `enable`/`disable` (`register`, `show` and `init`
//! have their own modules).

use clap::Args;
use serde_json::{Value, json};

use crate::client::{Method, escape};

use super::error::CliError;
use super::outcome::Outcome;
use super::output::{note, print_json, print_text};
use super::show::VERSION_COLUMNS;
use super::table::{Format, col, render_rows};
use super::{Ctx, with_query};

#[derive(Debug, Args)]
pub(super) struct LsArgs {
    /// Only scripts with this label.
    #[arg(long)]
    tag: Option<String>,
    /// Only scripts of this runtime.
    #[arg(long)]
    runtime: Option<String>,
    /// Only scripts whose name or description contains this text.
    #[arg(short = 'q', long = "query", value_name = "TEXT")]
    query: Option<String>,
}

pub(super) async fn ls(ctx: &Ctx, args: LsArgs) -> Result<Outcome, CliError> {
    let path = with_query(
        "/v1/scripts",
        &[
            ("tag", args.tag),
            ("runtime", args.runtime),
            ("q", args.query),
        ],
    );
    let scripts = ctx.call(Method::GET, &path, None).await?;
    show_rows(
        ctx,
        &scripts,
        &[
            col("NAME", &["/name"], Format::Plain),
            col("RUNTIME", &["/runtime"], Format::Plain),
            col(
                "LATEST",
                &["/latest_version", "/latest", "/version"],
                Format::ShortId,
            ),
            col("TAGS", &["/tags"], Format::Names),
            col("DISABLED", &["/disabled"], Format::Plain),
            col("DESCRIPTION", &["/description"], Format::Plain),
        ],
        "no scripts; register one with `runwarm register DIR`",
    )
}

pub(super) async fn versions(ctx: &Ctx, name: &str) -> Result<Outcome, CliError> {
    let path = format!("/v1/scripts/{}/versions", escape(name));
    let versions = ctx.call(Method::GET, &path, None).await?;
    show_rows(ctx, &versions, &VERSION_COLUMNS, "no versions")
}

pub(super) async fn tag(
    ctx: &Ctx,
    name: &str,
    tag: &str,
    version: &str,
) -> Result<Outcome, CliError> {
    let path = format!("/v1/scripts/{}/tags/{}", escape(name), escape(tag));
    let answer = ctx
        .call(Method::PUT, &path, Some(&json!({"version": version})))
        .await?;
    finish(ctx, &answer, &format!("tagged {name}:{tag} -> {version}"))
}

pub(super) async fn set_enabled(ctx: &Ctx, name: &str, enabled: bool) -> Result<Outcome, CliError> {
    let verb = if enabled { "enable" } else { "disable" };
    let path = format!("/v1/scripts/{}/{verb}", escape(name));
    let answer = ctx.call(Method::POST, &path, None).await?;
    finish(ctx, &answer, &enabled_line(name, enabled))
}

/// What `enable`/`disable` (and its alias `rm`) did, in words that say nothing was deleted.
fn enabled_line(name: &str, enabled: bool) -> String {
    if enabled {
        format!("enabled {name}: invocations are accepted again")
    } else {
        format!(
            "disabled {name}: new invocations are refused; its versions, tags and history stay \
             (`runwarm enable {name}` undoes it)"
        )
    }
}

/// Prints the answer with `--json`, else the one-line summary.
fn finish(ctx: &Ctx, answer: &Value, summary: &str) -> Result<Outcome, CliError> {
    if ctx.json {
        print_json(answer)?;
    } else {
        note(summary);
    }
    Ok(Outcome::Success)
}

/// The rows of a list answer: the list itself, or the one list an object wraps
/// (`{"scripts": […]}`).
pub(super) fn rows_of(answer: &Value) -> Option<&Vec<Value>> {
    answer.as_array().or_else(|| match answer.as_object() {
        Some(object) if object.len() == 1 => object.values().next().and_then(Value::as_array),
        _ => None,
    })
}

/// Prints an array answer as a table (or raw with `--json`); says so when it is empty.
pub(super) fn show_rows(
    ctx: &Ctx,
    answer: &Value,
    columns: &[super::table::Column],
    empty: &str,
) -> Result<Outcome, CliError> {
    match rows_of(answer) {
        Some(rows) if !ctx.json => {
            if rows.is_empty() {
                note(empty);
            } else {
                print_text(&render_rows(rows, columns))?;
            }
        }
        // `--json`, or an answer that is not a list: show it as it came.
        _ => print_json(answer)?,
    }
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn disabling_says_nothing_is_deleted() {
        let line = enabled_line("greet", false);
        assert!(
            line.starts_with("disabled greet: new invocations are refused"),
            "{line}"
        );
        assert!(line.contains("`runwarm enable greet` undoes it"), "{line}");
        assert!(
            !line.contains("remove") && !line.contains("delete"),
            "{line}"
        );
        assert_eq!(
            enabled_line("greet", true),
            "enabled greet: invocations are accepted again"
        );
    }
}
