//! Replays every command-mode vector in `protocol/vectors/` against the real executor, running
//! `tests/fixture/main.sh` with bash, so the command executor behaves like every other shim.

use std::path::Path;

use runwarm_protocol::Mode;
use runwarm_protocol::conformance::{Shim, run_all};

#[test]
fn command_mode_vectors_pass() {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixture");
    let shim = Shim {
        name: "command-bash".to_owned(),
        command: vec![
            env!("CARGO_BIN_EXE_runwarm-exec-command").to_owned(),
            "--".to_owned(),
            "bash".to_owned(),
            "{entry}".to_owned(),
        ],
        fixture_root: fixture,
        entry: "main.sh".to_owned(),
        mode: Mode::Command,
        env: Vec::new(),
    };
    match run_all(&shim) {
        Ok(ran) => assert!(ran >= 10, "only {ran} command-mode vectors ran"),
        Err(report) => panic!("{report}"),
    }
}
