//! `runwarm`, the command-line client of runwarmd; see `runwarm --help` for the exit codes.

fn main() -> std::process::ExitCode {
    runwarm_supervisor::cli::main()
}
