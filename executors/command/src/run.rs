//! One request: a fresh working directory with `args.json`, the script spawned in it with the
//! payload on stdin and `PARAM_*` in its environment, its stdout pumped to fd 3, and its exit
//! turned into a `response`.

use std::cell::Cell;
use std::ffi::OsString;
use std::fs::File;
use std::io;
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;
use runwarm_protocol::env::STDOUT_FD;
use runwarm_protocol::{ErrorBody, ExecutorMessage, RequestContext};
use serde_json::{Map, Value};

use crate::child_env::{RequestEnv, child_env};
use crate::command_line::CommandTemplate;
use crate::descendants::kill_leftovers;
use crate::outcome::{Exit, outcome};
use crate::pump::{PumpOutput, pump, stop_pipe};
use crate::signals::{ChildSlot, unblock_signals_on_exec};
use crate::workdir::Workdir;

/// How long stdout may stay open after the script exited: long enough for the last writes to
/// drain, short enough that a background process holding the pipe does not hold the response.
const STDOUT_GRACE: Duration = Duration::from_millis(200);

/// What every request of this executor shares.
#[derive(Debug)]
pub struct Runner<'a> {
    /// The command line template.
    pub template: &'a CommandTemplate,
    /// Where user stdout goes.
    pub user_stdout: &'a File,
    /// The pid SIGTERM is forwarded to.
    pub slot: &'a ChildSlot,
    /// Where working directories are created.
    pub work_base: &'a Path,
    /// Longest stdout line considered as a result.
    pub max_line: usize,
    /// Set when this executor can no longer serve requests safely (leftover processes it could
    /// not kill, or no process can be started): the session exits after the response so the
    /// supervisor starts a fresh one instead of failing every later call.
    pub spent: Cell<bool>,
}

impl Runner<'_> {
    /// Whether the executor should exit after answering the current request.
    pub fn is_spent(&self) -> bool {
        self.spent.get()
    }
}

/// The script as `init` described it.
#[derive(Debug)]
pub struct Script {
    /// `script.root`.
    pub root: String,
    /// `root/entry`, absolute when root is.
    pub entry: PathBuf,
    /// `env` from `init`.
    pub env: Map<String, Value>,
}

impl Runner<'_> {
    /// Runs the script once and builds the `response` for request `id`.
    pub fn run(
        &self,
        script: &Script,
        id: String,
        payload: &Value,
        context: &RequestContext,
    ) -> ExecutorMessage {
        let failure = |kind: &str, message: String, exit_code: i32| ExecutorMessage::Response {
            id: id.clone(),
            success: false,
            result: None,
            error: Some(ErrorBody {
                kind: kind.to_owned(),
                message,
                trace: None,
            }),
            exit_code: Some(exit_code),
        };
        let mut input = match serde_json::to_vec(payload) {
            Ok(bytes) => bytes,
            Err(e) => return failure("PayloadError", format!("encoding the payload: {e}"), 1),
        };
        input.push(b'\n');
        let workdir = match Workdir::create(self.work_base, &input) {
            Ok(dir) => dir,
            Err(e) => return failure("WorkdirError", e.to_string(), 1),
        };
        let program = self.template.program(&script.entry);
        let mut command = self.command(script, &program, &workdir, payload, context);
        let child = match self.slot.spawn(&mut command) {
            Ok(child) => child,
            Err(e) => {
                // Out of pids (or memory) for a fork: nothing left behind by a request can be
                // the cause (they are all killed), so the executor itself is the problem.
                if matches!(e.raw_os_error(), Some(libc::EAGAIN | libc::ENOMEM)) {
                    self.spent.set(true);
                }
                // The codes a shell reports for the same failures.
                let code = if e.kind() == io::ErrorKind::NotFound {
                    127
                } else {
                    126
                };
                let program = Path::new(&program).display();
                return failure("SpawnError", format!("spawning {program}: {e}"), code);
            }
        };
        match self.supervise(child, &input) {
            Ok((status, output)) => {
                let o = outcome(exit_of(status), output.result);
                ExecutorMessage::Response {
                    id,
                    success: o.success,
                    result: o.result.as_ref().map(runwarm_protocol::RawJson::from_value),
                    error: o.error,
                    exit_code: Some(o.exit_code),
                }
            }
            Err(e) => failure("SystemError", e, 1),
        }
        // `workdir` drops here, after the script and the pump are done with it.
    }

    fn command(
        &self,
        script: &Script,
        program: &OsString,
        workdir: &Workdir,
        payload: &Value,
        context: &RequestContext,
    ) -> Command {
        let args_file = workdir.args_file();
        let env = child_env(&RequestEnv {
            init_env: &script.env,
            payload,
            context,
            args_file: &args_file,
            script_root: &script.root,
        });
        // Said on stderr because that is attributed to this request, where the author looks.
        for note in &env.skipped {
            eprintln!("runwarm-exec-command: {note}");
        }
        let mut command = Command::new(program);
        command
            .args(self.template.args(&script.entry))
            .current_dir(workdir.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            // The script's stdout is the capture pipe, not fd 3; the name would mislead it.
            .env_remove(STDOUT_FD)
            .envs(env.vars);
        unblock_signals_on_exec(&mut command);
        command
    }

    /// Waits for the script while the pump runs, then gives stdout its grace period.
    fn supervise(
        &self,
        mut child: Child,
        input: &[u8],
    ) -> Result<(ExitStatus, PumpOutput), String> {
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(self.abandon(child, "the script's pipes were not set up".to_owned()));
        };
        let (stop_read, stop) = match stop_pipe() {
            Ok(pair) => pair,
            Err(e) => return Err(self.abandon(child, format!("creating the stop pipe: {e}"))),
        };
        let sink = self.user_stdout;
        let max_line = self.max_line;
        thread::scope(|scope| {
            let (done_tx, done_rx) = mpsc::channel::<()>();
            let pumping =
                thread::Builder::new()
                    .name("pump".to_owned())
                    .spawn_scoped(scope, move || {
                        let output = pump(stdin, input, stdout, stop_read, sink, max_line);
                        drop(done_tx);
                        output
                    });
            let pumping = match pumping {
                Ok(handle) => handle,
                Err(e) => return Err(self.abandon(child, format!("starting the pump thread: {e}"))),
            };
            let status = self.reap(&mut child);
            // Whatever the script left running dies with the request, before the grace
            // period: a killed background process no longer holds stdout open.
            let left = kill_leftovers();
            if left.killed > 0 {
                eprintln!(
                    "runwarm-exec-command: killed {} process(es) the script left running",
                    left.killed
                );
            }
            if left.survivors {
                eprintln!(
                    "runwarm-exec-command: processes the script left could not all be killed; \
                     this executor will be replaced"
                );
                self.spent.set(true);
            }
            // The pump ends at EOF; a process that survived the kill above may still hold
            // stdout open, and then the pump is stopped after the grace period. Joining it guarantees every
            // byte it copied to fd 3 is written before the response is.
            if let Err(mpsc::RecvTimeoutError::Timeout) = done_rx.recv_timeout(STDOUT_GRACE) {
                drop(stop);
            }
            let output = pumping
                .join()
                .map_err(|_| "the pump thread panicked".to_owned())?;
            if !output.reached_eof {
                eprintln!(
                    "runwarm-exec-command: a process the script started still holds its stdout; \
                     later output is not captured"
                );
            }
            Ok((status?, output))
        })
    }

    /// Waits until the script exits, then forgets its pid, then reaps it: in this order so
    /// SIGTERM can be forwarded until the very end and never to a reused pid.
    fn reap(&self, child: &mut Child) -> Result<ExitStatus, String> {
        if let Ok(pid) = i32::try_from(child.id()) {
            let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
            while let Err(Errno::EINTR) = waitid(Id::Pid(Pid::from_raw(pid)), flags) {}
        }
        self.slot.clear();
        child
            .wait()
            .map_err(|e| format!("waiting for the script (pid {}): {e}", child.id()))
    }

    /// Kills and reaps a script that cannot be supervised, and whatever it started; returns
    /// `why`.
    fn abandon(&self, mut child: Child, why: String) -> String {
        self.slot.clear();
        let _ = child.kill();
        let _ = child.wait();
        if kill_leftovers().survivors {
            self.spent.set(true);
        }
        why
    }
}

fn exit_of(status: ExitStatus) -> Exit {
    match (status.code(), status.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(signal)) => Exit::Signal(signal),
        // `wait` only returns for exited or killed processes.
        (None, None) => Exit::Code(-1),
    }
}
