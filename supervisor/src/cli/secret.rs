//! `runwarm secret set|ls|rm`. A value is read from stdin or `--from-file`, never from the
//! command line: argv is readable by every local user in `/proc/<pid>/cmdline` and ends up in
//! shell history.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use clap::{Args, Subcommand};
use serde_json::json;

use crate::client::{Method, escape};

use super::Ctx;
use super::error::{CliError, UsageError};
use super::outcome::Outcome;
use super::output::{note, print_json};
use super::scripts::show_rows;
use super::table::{Format, col};

/// Largest value read (the daemon's limit); one more byte is read to tell "too large".
const MAX_VALUE: u64 = crate::secrets::MAX_VALUE_BYTES as u64;

#[derive(Debug, Args)]
pub(super) struct SecretArgs {
    #[command(subcommand)]
    command: SecretCommand,
}

#[derive(Debug, Subcommand)]
enum SecretCommand {
    /// Set a secret from stdin (or --from-file); scripts naming it in `secrets` get it as an
    /// environment variable, and their executors are recycled to read the new value.
    Set {
        /// Secret name (an environment variable name, e.g. DB_PASSWORD).
        name: String,
        /// Read the value from this file instead of stdin.
        #[arg(long, value_name = "FILE")]
        from_file: Option<PathBuf>,
    },
    /// List secrets: name, source, who set them, when, and which scripts use them (never
    /// values).
    Ls,
    /// Remove a secret from the store.
    Rm {
        /// Secret name.
        name: String,
    },
}

pub(super) async fn secret(ctx: &Ctx, args: SecretArgs) -> Result<Outcome, CliError> {
    match args.command {
        SecretCommand::Set { name, from_file } => set(ctx, &name, from_file).await,
        SecretCommand::Ls => ls(ctx).await,
        SecretCommand::Rm { name } => {
            let path = format!("/v1/secrets/{}", escape(&name));
            let answer = ctx.call(Method::DELETE, &path, None).await?;
            if ctx.json {
                print_json(&answer)?;
            } else {
                note(&format!("removed secret {name}"));
            }
            Ok(Outcome::Success)
        }
    }
}

/// The value: the bytes read, less one trailing newline (what `echo` and most editors add,
/// and never meant as part of a password), which must be UTF-8.
fn read_value(from_file: Option<&PathBuf>) -> Result<String, UsageError> {
    let mut bytes = Vec::new();
    match from_file {
        Some(path) => {
            let f = std::fs::File::open(path).map_err(|source| UsageError::ReadFile {
                path: path.clone(),
                source,
            })?;
            f.take(MAX_VALUE + 2)
                .read_to_end(&mut bytes)
                .map_err(|source| UsageError::ReadFile {
                    path: path.clone(),
                    source,
                })?;
        }
        None => {
            let stdin = std::io::stdin();
            if stdin.is_terminal() {
                // Not echoing a typed value would need a terminal library; asking for a pipe
                // keeps the value out of the screen's scrollback instead.
                return Err(UsageError::Invalid(
                    "give the value on stdin (e.g. `runwarm secret set NAME < FILE`) or with --from-file; it is never taken from the command line".into(),
                ));
            }
            stdin
                .lock()
                .take(MAX_VALUE + 2)
                .read_to_end(&mut bytes)
                .map_err(UsageError::ReadStdin)?;
        }
    }
    strip_newline(bytes)
}

fn strip_newline(mut bytes: Vec<u8>) -> Result<String, UsageError> {
    if bytes.ends_with(b"\r\n") {
        bytes.truncate(bytes.len() - 2);
    } else if bytes.ends_with(b"\n") {
        bytes.truncate(bytes.len() - 1);
    }
    if bytes.len() as u64 > MAX_VALUE {
        return Err(UsageError::Invalid(format!(
            "the value is over {MAX_VALUE} bytes"
        )));
    }
    if bytes.is_empty() {
        return Err(UsageError::Invalid("the value is empty".into()));
    }
    String::from_utf8(bytes).map_err(|_| UsageError::Invalid("the value is not UTF-8".into()))
}

async fn set(ctx: &Ctx, name: &str, from_file: Option<PathBuf>) -> Result<Outcome, CliError> {
    let value = read_value(from_file.as_ref())?;
    let path = format!("/v1/secrets/{}", escape(name));
    let answer = ctx
        .call(Method::PUT, &path, Some(&json!({ "value": value })))
        .await?;
    if ctx.json {
        print_json(&answer)?;
    } else {
        let created = answer
            .get("created")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false);
        let recycled = answer
            .get("recycled_pools")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        let verb = if created { "set" } else { "replaced" };
        note(&format!(
            "{verb} secret {name}; {recycled} pool(s) recycled, new executors read the new value"
        ));
    }
    Ok(Outcome::Success)
}

async fn ls(ctx: &Ctx) -> Result<Outcome, CliError> {
    let list = ctx.call(Method::GET, "/v1/secrets", None).await?;
    show_rows(
        ctx,
        &list,
        &[
            col("NAME", &["/name"], Format::Plain),
            col("SOURCE", &["/source"], Format::Plain),
            col("SET BY", &["/set_by/uid"], Format::Plain),
            col("SET AT", &["/set_at"], Format::Plain),
            col("USED BY", &["/used_by"], Format::Names),
        ],
        "no secrets; set one with `runwarm secret set NAME < FILE`",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_trailing_newline_is_dropped() {
        assert_eq!(strip_newline(b"pw\n".to_vec()).unwrap(), "pw");
        assert_eq!(strip_newline(b"pw\r\n".to_vec()).unwrap(), "pw");
        assert_eq!(strip_newline(b"pw\n\n".to_vec()).unwrap(), "pw\n");
        assert!(strip_newline(b"\n".to_vec()).is_err());
        assert!(strip_newline(vec![0xff, 0xfe]).is_err());
    }
}
