//! `runwarm audit`: the trail of administrative actions (`GET /v1/audit`).

use clap::Args;
use serde_json::Value;

use crate::client::Method;

use super::error::CliError;
use super::outcome::Outcome;
use super::scripts::show_rows;
use super::table::{Column, Format, col, short_id};
use super::{Ctx, with_query};

#[derive(Debug, Args)]
pub(super) struct AuditArgs {
    /// Only actions on this script.
    #[arg(long)]
    script: Option<String>,
    /// Only this action (register, tag, disable, enable, delete, prewarm, clone, reload, …).
    #[arg(long)]
    action: Option<String>,
    /// How many entries, newest first (default 100, at most 1000).
    #[arg(long)]
    limit: Option<u32>,
}

const COLUMNS: [Column; 7] = [
    col("ID", &["/id"], Format::Plain),
    col("TIME", &["/at"], Format::Plain),
    // "" is the JSON pointer of the whole row: the cell combines uid, gid, pid and via.
    col("WHO", &[""], Format::With(who)),
    col("ACTION", &["/action"], Format::Plain),
    col("SCRIPT", &["/script"], Format::Plain),
    col("TARGET", &["/target"], Format::ShortId),
    col("CHANGE", &[""], Format::With(change)),
];

pub(super) async fn audit(ctx: &Ctx, args: AuditArgs) -> Result<Outcome, CliError> {
    let path = with_query(
        "/v1/audit",
        &[
            ("script", args.script),
            ("action", args.action),
            ("limit", args.limit.map(|n| n.to_string())),
        ],
    );
    let rows = ctx.call(Method::GET, &path, None).await?;
    show_rows(ctx, &rows, &COLUMNS, "no administrative actions recorded")
}

/// `uid:gid pid N` of a socket caller; `signal` for a SIGHUP, whose sender is unknown.
fn who(row: &Value) -> String {
    if row.get("via").and_then(Value::as_str) == Some("signal") {
        return "signal".to_owned();
    }
    let n = |k: &str| row.get(k).map_or_else(|| "?".to_owned(), Value::to_string);
    format!("{}:{} pid {}", n("uid"), n("gid"), n("pid"))
}

/// `before → after`, each a compact `key=value` list with version ids shortened; just one side
/// when only one is recorded.
fn change(row: &Value) -> String {
    let side = |key: &str| match row.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => Some(
            map.iter()
                .map(|(k, v)| format!("{k}={}", scalar(v)))
                .collect::<Vec<_>>()
                .join(" "),
        ),
        Some(other) => Some(scalar(other)),
    };
    match (side("before"), side("after")) {
        (Some(b), Some(a)) => format!("{b} → {a}"),
        (None, Some(a)) => a,
        (Some(b), None) => format!("{b} → -"),
        (None, None) => "-".to_owned(),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "-".to_owned(),
        Value::String(s) => short_id(s),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn cells_show_who_and_the_change_compactly() {
        let tag = json!({"uid": 1000, "gid": 50, "pid": 7, "via": "socket",
            "before": {"version": format!("sha256:{}", "a".repeat(64))},
            "after": {"version": format!("sha256:{}", "b".repeat(64))}});
        assert_eq!(who(&tag), "1000:50 pid 7");
        assert_eq!(
            change(&tag),
            "version=sha256:aaaaaaaaaaaa → version=sha256:bbbbbbbbbbbb"
        );
        let reload = json!({"uid": 0, "gid": 0, "pid": 0, "via": "signal",
            "before": null, "after": {"applied": true}});
        assert_eq!(who(&reload), "signal");
        assert_eq!(change(&reload), "applied=true");
        assert_eq!(change(&json!({})), "-");
        assert_eq!(
            change(&json!({"before": {"latest": null}, "after": {"created": true}})),
            "latest=- → created=true"
        );
    }
}
