//! `runwarm-exec-command [--] PROGRAM [ARGS...]`: runwarm's generic command-mode executor. It
//! speaks the executor protocol on fd 0/fd 1 and runs `PROGRAM ARGS... ENTRY` as a fresh
//! process per request (payload on stdin, in `args.json` and as `PARAM_*` variables; exit code
//! 0 is success; the last stdout line is the result when it is JSON). Script stdout goes to
//! fd 3, script stderr to fd 2. See README.md beside this crate.

mod child_env;
mod command_line;
mod descendants;
mod fds;
mod line_reader;
mod outcome;
mod pump;
mod run;
mod session;
mod signals;
mod workdir;

use std::process::ExitCode;

use command_line::CommandTemplate;
use runwarm_protocol::DEFAULT_MAX_LINE_BYTES;
use runwarm_protocol::env::STDOUT_FD;
use signals::ChildSlot;

static CHILD: ChildSlot = ChildSlot::new();

fn main() -> ExitCode {
    // Before any thread exists, so every later thread inherits the mask and only the signal
    // thread ever takes SIGTERM.
    if let Err(e) = signals::block_forwarded() {
        eprintln!("runwarm-exec-command: blocking SIGTERM: {e}");
        return ExitCode::FAILURE;
    }
    // Before anything is opened, so only inherited fds are touched.
    if let Err(e) = fds::mark_inherited_fds_cloexec() {
        eprintln!("runwarm-exec-command: listing inherited fds in /proc/self/fd: {e}");
    }
    let template = match CommandTemplate::parse(std::env::args_os().skip(1)) {
        Ok(template) => template,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // Before any script runs, so a daemonized grandchild is reparented here and killed at the
    // end of its request rather than outliving it.
    if let Err(e) = descendants::become_subreaper() {
        eprintln!("runwarm-exec-command: becoming the reaper of the scripts' orphans: {e}");
    }
    let stdout_fd = std::env::var(STDOUT_FD).ok();
    let user_stdout = match fds::user_stdout(stdout_fd.as_deref()) {
        Ok((file, warning)) => {
            if let Some(warning) = warning {
                eprintln!("runwarm-exec-command: {warning}");
            }
            file
        }
        Err(e) => {
            eprintln!("runwarm-exec-command: duplicating stderr for user stdout: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(e) = signals::spawn_forwarder(&CHILD) {
        eprintln!("runwarm-exec-command: starting the signal thread: {e}");
        return ExitCode::FAILURE;
    }
    let work_base = workdir::base_dir(std::env::var_os("TMPDIR").as_deref());
    let runner = run::Runner {
        template: &template,
        user_stdout: &user_stdout,
        slot: &CHILD,
        work_base: &work_base,
        max_line: DEFAULT_MAX_LINE_BYTES,
        spent: std::cell::Cell::new(false),
    };
    session::serve(
        &runner,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
    )
}
