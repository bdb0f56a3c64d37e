//! `runwarm console`: serve the web console on 127.0.0.1 and print its one-time URL.

use std::path::PathBuf;
use std::process::Stdio;

use super::error::CliError;
use super::outcome::Outcome;
use super::output;
use crate::console::{Console, LspSettings};

/// Options of `runwarm console`.
#[derive(Debug, clap::Args)]
pub struct ConsoleArgs {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Print the URL only; do not start a browser.
    #[arg(long)]
    no_open: bool,
    /// Folder holding the language servers (pyright-langserver in its node_modules/.bin);
    /// PATH is searched after it.
    #[arg(long, default_value = "/opt/runwarm-lsp")]
    lsp_dir: PathBuf,
    /// Seconds without a message from the editor after which its language server is stopped.
    #[arg(long, default_value_t = 300)]
    lsp_idle_secs: u64,
}

/// Serves until interrupted (Ctrl-C or SIGTERM).
pub async fn console(socket: PathBuf, args: ConsoleArgs) -> Result<Outcome, CliError> {
    let console = Console::bind(args.port, socket)
        .await?
        .with_lsp(LspSettings {
            dir: args.lsp_dir,
            idle: std::time::Duration::from_secs(args.lsp_idle_secs.max(1)),
        });
    let url = console.url();
    output::print_text(&url)?;
    output::note("the URL's token works once; stop the console with Ctrl-C");
    if !args.no_open {
        open_browser(&url);
    }
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(CliError::Output)?;
    tokio::select! {
        served = console.serve() => served?,
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    Ok(Outcome::Success)
}

/// Asks the desktop to open the URL; without one (a server, a container), the printed URL
/// is the way in.
fn open_browser(url: &str) {
    let started = tokio::process::Command::new("xdg-open")
        .arg(url)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    if started.is_err() {
        output::note("cannot start a browser (xdg-open); open the URL above");
    }
}
