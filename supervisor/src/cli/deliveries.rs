//! `runwarm deliveries`: completion callbacks and their attempts (`GET /v1/deliveries`), and
//! `--redeliver ID` to send one again (a dead letter, or one the receiver lost).

use clap::Args;
use serde_json::Value;

use crate::client::Method;

use super::error::CliError;
use super::outcome::Outcome;
use super::output::{print_json, print_text};
use super::scripts::show_rows;
use super::table::{Column, Format, col};
use super::{Ctx, with_query};

#[derive(Debug, Args)]
pub(super) struct DeliveriesArgs {
    /// Only deliveries in this state: pending, delivered or dead.
    #[arg(long)]
    state: Option<String>,
    /// Only this execution's deliveries.
    #[arg(long)]
    execution: Option<String>,
    /// How many, newest first (default 100, at most 1000).
    #[arg(long)]
    limit: Option<u32>,
    /// Send this delivery again now, with a fresh attempt budget.
    #[arg(long, value_name = "ID", conflicts_with_all = ["state", "execution", "limit"])]
    redeliver: Option<i64>,
}

const COLUMNS: [Column; 6] = [
    col("ID", &["/id"], Format::Plain),
    col("STATE", &["/state"], Format::Plain),
    col("ATTEMPTS", &["/attempts"], Format::Plain),
    col("LAST", &[""], Format::With(last)),
    col("EXECUTION", &["/execution_id"], Format::Plain),
    col("URL", &["/url"], Format::Plain),
];

pub(super) async fn deliveries(ctx: &Ctx, args: DeliveriesArgs) -> Result<Outcome, CliError> {
    if let Some(id) = args.redeliver {
        let answer = ctx
            .call(
                Method::POST,
                &format!("/v1/deliveries/{id}/redeliver"),
                None,
            )
            .await?;
        if ctx.json {
            print_json(&answer)?;
        } else {
            print_text(&format!(
                "delivery {id} is pending again and will be sent now\n"
            ))?;
        }
        return Ok(Outcome::Success);
    }
    let path = with_query(
        "/v1/deliveries",
        &[
            ("state", args.state),
            ("execution", args.execution),
            ("limit", args.limit.map(|n| n.to_string())),
        ],
    );
    let rows = ctx.call(Method::GET, &path, None).await?;
    show_rows(ctx, &rows, &COLUMNS, "no deliveries")
}

/// The last attempt's answer: `200`, `503`, or the error when nothing answered.
fn last(row: &Value) -> String {
    match (
        row.get("last_status").and_then(Value::as_u64),
        row.get("last_error").and_then(Value::as_str),
    ) {
        (Some(status), _) => status.to_string(),
        (None, Some(error)) => error.to_owned(),
        (None, None) => "-".to_owned(),
    }
}
