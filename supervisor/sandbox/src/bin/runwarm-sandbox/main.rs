//! `runwarm-sandbox --spec-fd N [--status-fd N]` (or `--spec JSON`, for people and tests):
//! confines one executor as the spec says and execs it. The daemon passes the spec on an fd so
//! no argv shows it. fds 0–3 pass through untouched. A step that fails before exec is reported as one JSON line on
//! the status fd and on stderr, and the helper exits 125; otherwise the exit status is the
//! executor's (128+signal when it was killed).
#![allow(unsafe_code)]

mod cgroups;
mod mounts;
mod namespaces;
mod network;
mod privileges;
mod reaper;
mod run;
mod status_pipe;

use std::io::Write;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use runwarm_sandbox::{EXIT_STEP_FAILED, SandboxSpec, Step, StepFailure};

use crate::status_pipe::StatusPipe;

fn main() {
    let mut status = StatusPipe::none();
    let code = match parse_args(std::env::args().skip(1)) {
        Ok((spec, status_fd)) => {
            if let Some(fd) = status_fd {
                // SAFETY: the daemon hands this fd to us for our exclusive use; nothing else in
                // this single-threaded process owns or closes it.
                status = StatusPipe::new(unsafe { OwnedFd::from_raw_fd(fd) });
            }
            match run::run(&spec, &mut status) {
                Ok(code) => code,
                Err(failure) => {
                    status.report(&failure);
                    EXIT_STEP_FAILED
                }
            }
        }
        Err(failure) => {
            let _ = std::io::stderr().write_all(failure.to_stderr_line().as_bytes());
            EXIT_STEP_FAILED
        }
    };
    std::process::exit(code);
}

/// Parses `--spec JSON` and `--status-fd N`.
fn parse_args(
    mut args: impl Iterator<Item = String>,
) -> Result<(SandboxSpec, Option<RawFd>), StepFailure> {
    let usage = |what: &str| {
        StepFailure::new(
            Step::Args,
            libc::EINVAL,
            format!("{what}; usage: runwarm-sandbox (--spec JSON | --spec-fd N) [--status-fd N]"),
        )
    };
    let mut spec = None;
    let mut status_fd = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--spec" => {
                let json = args.next().ok_or_else(|| usage("--spec needs a value"))?;
                let parsed: SandboxSpec = serde_json::from_str(&json).map_err(|e| {
                    StepFailure::new(Step::Args, libc::EINVAL, format!("spec is not valid: {e}"))
                })?;
                spec = Some(parsed);
            }
            "--spec-fd" => {
                let value = args
                    .next()
                    .ok_or_else(|| usage("--spec-fd needs a value"))?;
                let fd: RawFd = value
                    .parse()
                    .map_err(|_| usage("--spec-fd is not a number"))?;
                if fd <= 3 {
                    return Err(usage("--spec-fd must be above 3"));
                }
                spec = Some(read_spec_fd(fd)?);
            }
            "--status-fd" => {
                let value = args
                    .next()
                    .ok_or_else(|| usage("--status-fd needs a value"))?;
                let fd: RawFd = value
                    .parse()
                    .map_err(|_| usage("--status-fd is not a number"))?;
                // 0–3 belong to the executor; a status fd there would be handed to the script.
                if fd <= 3 {
                    return Err(usage("--status-fd must be above 3"));
                }
                status_fd = Some(fd);
            }
            other => return Err(usage(&format!("unknown argument {other:?}"))),
        }
    }
    let spec = spec.ok_or_else(|| usage("--spec is required"))?;
    Ok((spec, status_fd))
}

/// Reads and parses the whole spec from `fd` (a memfd the daemon wrote and rewound, or a pipe),
/// then closes it.
fn read_spec_fd(fd: RawFd) -> Result<SandboxSpec, StepFailure> {
    use std::io::Read;
    // A spec far beyond any real one is refused rather than read into memory.
    const MAX_SPEC: u64 = 64 << 20;
    // SAFETY: the daemon hands this fd to us for our exclusive use; nothing else in this
    // single-threaded process owns or closes it, and the File closes it when dropped.
    let file = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(fd) });
    let mut json = Vec::new();
    file.take(MAX_SPEC + 1)
        .read_to_end(&mut json)
        .map_err(|e| StepFailure::io(Step::Args, &e, format!("reading the spec from fd {fd}")))?;
    if json.len() as u64 > MAX_SPEC {
        return Err(StepFailure::new(
            Step::Args,
            libc::E2BIG,
            format!("the spec on fd {fd} is larger than {MAX_SPEC} bytes"),
        ));
    }
    serde_json::from_slice(&json)
        .map_err(|e| StepFailure::new(Step::Args, libc::EINVAL, format!("spec is not valid: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> impl Iterator<Item = String> {
        list.iter()
            .map(|s| (*s).to_owned())
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn arguments_parse_and_bad_ones_are_typed() {
        let (spec, fd) = parse_args(args(&[
            "--spec",
            r#"{"program":"/bin/true"}"#,
            "--status-fd",
            "7",
        ]))
        .unwrap();
        assert_eq!(spec.program, std::path::Path::new("/bin/true"));
        assert_eq!(fd, Some(7));
        for bad in [
            &["--spec"][..],
            &["--spec", "{"],
            &["--status-fd", "3", "--spec", "{}"],
            &[],
        ] {
            let err = parse_args(args(bad)).unwrap_err();
            assert_eq!(err.step, Step::Args, "{bad:?}");
        }
    }
}
