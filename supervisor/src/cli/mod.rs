//! The `runwarm` command line: parse, call runwarmd through [`crate::client`], print, and turn
//! the [`Outcome`] into the documented exit code.

mod audit;
mod console;
mod daemon;
mod deliveries;
mod diff;
mod docs;
mod error;
mod executions;
mod init;
mod invoke;
mod logs;
mod outcome;
mod output;
mod payload;
mod prepare;
mod progress;
mod pull;
mod register;
mod scripts;
mod secret;
mod show;
mod socket;
mod table;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use serde_json::Value;

use crate::client::{Client, Method, Problem};

pub use error::{CliError, UsageError};
pub use outcome::{EXIT_CODES, Outcome};
pub use payload::{read_body_arg, read_payload};
pub use socket::default_socket;

/// Deadline of every call but an invocation or a followed log, which last as long as the
/// script may run.
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// runwarm: register and invoke scripts on the local runwarmd.
#[derive(Debug, Parser)]
#[command(name = "runwarm", version, after_long_help = EXIT_CODES)]
pub struct Cli {
    /// The daemon's socket [default: ./.runwarm/runwarm.sock if it exists, else
    /// $XDG_RUNTIME_DIR/runwarm/runwarm.sock if it exists, else /run/runwarm/runwarm.sock]
    #[arg(long, global = true, env = "RUNWARM_SOCKET", value_name = "PATH")]
    socket: Option<PathBuf>,
    /// Print the daemon's JSON instead of tables and summaries.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Register a script folder (with runwarm.toml) or a single file as a new version, and
    /// wait until it is prepared (dependencies installed, code built).
    #[command(after_long_help = EXIT_CODES)]
    Register(register::RegisterArgs),
    /// Run a script and print its result; the exit code says how it went.
    #[command(after_long_help = EXIT_CODES)]
    Invoke(invoke::InvokeArgs),
    /// Start a new script folder (runwarm.toml and a handler) for a runtime.
    Init(init::InitArgs),
    /// List scripts.
    Ls(scripts::LsArgs),
    /// Show one script: parameters schema, limits, pool, tags, and who registered each version.
    Show {
        /// Script name.
        name: String,
    },
    /// List a script's versions, newest first, with who registered each.
    Versions {
        /// Script name.
        name: String,
    },
    /// Point a tag at a version (an atomic rollback or roll-forward).
    Tag {
        /// Script name.
        name: String,
        /// Tag (`prod`, `canary`, …).
        tag: String,
        /// Version id (`sha256:…`).
        version: String,
    },
    /// Refuse new invocations of a script; nothing is deleted: versions, tags and history stay,
    /// and `enable` undoes it (`rm` is an older name of this command).
    #[command(alias = "rm")]
    Disable {
        /// Script name.
        name: String,
    },
    /// Accept invocations of a disabled script again.
    Enable {
        /// Script name.
        name: String,
    },
    /// List recent executions.
    Executions(executions::ExecutionsArgs),
    /// Print an execution's output (with -f, follow it until it ends), or the output of recent
    /// executions (--script, --since, --tail).
    #[command(after_long_help = EXIT_CODES)]
    Logs(executions::LogsArgs),
    /// Stop an execution: a queued one never runs, a running one's executor is killed.
    Cancel {
        /// Execution id.
        id: String,
    },
    /// Run an execution again: the same script version and payload, as a new execution.
    #[command(after_long_help = EXIT_CODES)]
    Replay(executions::ReplayArgs),
    /// Write a version back as a script folder (runwarm.toml and its files) that `runwarm
    /// register DIR` turns into the same version id.
    Pull(pull::PullArgs),
    /// Show what changed between two versions of a script: manifest keys, files, and the
    /// changed lines of text files.
    Diff(diff::DiffArgs),
    /// List completion callbacks with their attempts (`--state dead` for dead letters), or
    /// send one again (`--redeliver ID`).
    Deliveries(deliveries::DeliveriesArgs),
    /// Show the warm pools.
    Pools,
    /// Start executors ahead of the invocations that will need them.
    Prewarm(daemon::PrewarmArgs),
    /// List runtimes, whether this host has them, and their prepare caches.
    Runtimes,
    /// List the sample scripts.
    Samples(daemon::SamplesArgs),
    /// Show the daemon's version, configuration and active confinement layers.
    Info,
    /// Send a raw request (exit 0 for 2xx, 4 for 4xx, 5 otherwise).
    Api(daemon::ApiArgs),
    /// Show the audit trail: who registered, tagged, disabled, enabled, prewarmed, cloned or
    /// reloaded what, when, and the state before and after, newest first.
    Audit(audit::AuditArgs),
    /// Manage secrets scripts get as environment variables: `set NAME` (value from stdin or
    /// --from-file, never from the command line), `ls`, `rm NAME`. Admin only.
    Secret(secret::SecretArgs),
    /// Serve the web console on 127.0.0.1 and print its URL with a one-time token; API calls
    /// from the page reach runwarmd as the user running this command.
    Console(console::ConsoleArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(docs::CompletionsArgs),
    /// Write the manual pages (runwarm.1 and one per command), or print runwarm.1.
    Man(docs::ManArgs),
}

/// Parses the command line, runs the command and returns its exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // Help and version go to stdout with 0; every other clap error is a usage error.
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                Outcome::Usage.exit_code()
            } else {
                Outcome::Success.exit_code()
            });
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            output::print_stderr(&format!("error: cannot start the async runtime: {e}"));
            return ExitCode::from(Outcome::SystemError.exit_code());
        }
    };
    let outcome = match runtime.block_on(run(cli)) {
        Ok(outcome) => outcome,
        Err(err) => {
            output::print_stderr(&output::format_error(&err));
            err.outcome()
        }
    };
    ExitCode::from(outcome.exit_code())
}

/// What every command gets: the client and whether to print raw JSON.
struct Ctx {
    client: Client,
    json: bool,
}

impl Ctx {
    /// Sends a request and returns the JSON of a 2xx answer (`null` for an empty body); an
    /// error status becomes [`CliError::Refused`].
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, CliError> {
        let bytes = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| UsageError::Invalid(format!("request body: {e}")))?;
        let answer = self
            .client
            .request(method.clone(), path, &[], bytes)
            .await?;
        if !answer.is_success() {
            return Err(refused(&method, path, answer.problem()));
        }
        if answer.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Value::Null);
        }
        Ok(answer.json()?)
    }
}

fn refused(method: &Method, path: &str, problem: Problem) -> CliError {
    CliError::Refused {
        method: method.to_string(),
        path: path.to_owned(),
        problem: Box::new(problem),
    }
}

async fn run(cli: Cli) -> Result<Outcome, CliError> {
    // What needs no daemon is answered before a client exists.
    let command = match cli.command {
        Command::Init(args) => return init::init(cli.json, args),
        Command::Completions(args) => return docs::completions(&args),
        Command::Man(args) => return docs::man(&args, cli.json),
        command => command,
    };
    let socket = cli.socket.unwrap_or_else(|| {
        default_socket(
            |p| p.exists(),
            std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from),
        )
    });
    if let Command::Console(args) = command {
        return console::console(socket, args).await;
    }
    let open_ended = match &command {
        Command::Invoke(_) | Command::Replay(_) => true,
        Command::Logs(args) => args.follow,
        _ => false,
    };
    let client = Client::new(socket);
    let client = if open_ended {
        client
    } else {
        client.with_timeout(CALL_TIMEOUT)
    };
    let ctx = Ctx {
        client,
        json: cli.json,
    };
    match command {
        Command::Register(args) => register::register(&ctx, args).await,
        Command::Invoke(args) => invoke::invoke(&ctx, args).await,
        Command::Ls(args) => scripts::ls(&ctx, args).await,
        Command::Show { name } => show::show(&ctx, &name).await,
        Command::Versions { name } => scripts::versions(&ctx, &name).await,
        Command::Tag { name, tag, version } => scripts::tag(&ctx, &name, &tag, &version).await,
        Command::Disable { name } => scripts::set_enabled(&ctx, &name, false).await,
        Command::Enable { name } => scripts::set_enabled(&ctx, &name, true).await,
        Command::Executions(args) => executions::list(&ctx, args).await,
        Command::Logs(args) => executions::logs(&ctx, args).await,
        Command::Cancel { id } => executions::cancel(&ctx, &id).await,
        Command::Replay(args) => executions::replay(&ctx, args).await,
        Command::Pull(args) => pull::pull(&ctx, args).await,
        Command::Diff(args) => diff::diff(&ctx, args).await,
        Command::Deliveries(args) => deliveries::deliveries(&ctx, args).await,
        Command::Pools => daemon::pools(&ctx).await,
        Command::Prewarm(args) => daemon::prewarm(&ctx, args).await,
        Command::Runtimes => daemon::runtimes(&ctx).await,
        Command::Samples(args) => daemon::samples(&ctx, args).await,
        Command::Info => daemon::info(&ctx).await,
        Command::Api(args) => daemon::api(&ctx, args).await,
        Command::Audit(args) => audit::audit(&ctx, args).await,
        Command::Secret(args) => secret::secret(&ctx, args).await,
        // Answered above; an `Ok` keeps this match total without a panic.
        Command::Init(_) | Command::Completions(_) | Command::Man(_) | Command::Console(_) => {
            Ok(Outcome::Success)
        }
    }
}

/// Appends `key=value` pairs whose value is set, escaped, as a query string.
fn with_query(path: &str, pairs: &[(&str, Option<String>)]) -> String {
    let query: Vec<String> = pairs
        .iter()
        .filter_map(|(k, v)| {
            v.as_ref()
                .map(|v| format!("{k}={}", crate::client::escape(v)))
        })
        .collect();
    if query.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", query.join("&"))
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn queries_skip_unset_values_and_escape_the_rest() {
        assert_eq!(with_query("/v1/scripts", &[("tag", None)]), "/v1/scripts");
        assert_eq!(
            with_query(
                "/v1/scripts",
                &[
                    ("tag", Some("a b".into())),
                    ("q", None),
                    ("runtime", Some("node".into()))
                ]
            ),
            "/v1/scripts?tag=a%20b&runtime=node"
        );
    }

    #[test]
    fn invoke_parses_its_options() {
        let cli = Cli::try_parse_from([
            "runwarm",
            "invoke",
            "hello:prod",
            "-d",
            "{}",
            "--async",
            "--timeout",
            "1m 30s",
            "--idempotency-key",
            "k",
            "--json",
        ])
        .unwrap();
        assert!(cli.json);
        let Command::Invoke(args) = cli.command else {
            panic!("not invoke: {:?}", cli.command);
        };
        assert_eq!(args.timeout, Some(Duration::from_secs(90)));
        assert!(args.respond_async);
        assert_eq!(args.data.as_deref(), Some("{}"));
    }

    #[test]
    fn bad_usage_is_a_clap_error() {
        assert!(Cli::try_parse_from(["runwarm", "invoke"]).is_err());
        assert!(Cli::try_parse_from(["runwarm", "invoke", "x", "--timeout", "soon"]).is_err());
        assert!(Cli::try_parse_from(["runwarm", "frobnicate"]).is_err());
    }
}
