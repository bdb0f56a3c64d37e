//! Replays every conformance vector against the Python and Node executor shims, with the
//! fixtures under `executors/*/tests/fixture`.

use std::path::{Path, PathBuf};
use std::process::Command;

use runwarm_protocol::Mode;
use runwarm_protocol::conformance::{Shim, run_all, skip};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The real interpreter behind `python3` (a pyenv shim costs ~75 ms per start).
fn python() -> Option<String> {
    let out = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .ok()?;
    let path = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (out.status.success() && !path.is_empty()).then_some(path)
}

fn node() -> Option<String> {
    let ok = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    ok.then(|| "node".to_owned())
}

fn python_shim(name: &str, entry: &str) -> Option<Shim> {
    let python = python()?;
    let dir = repo().join("executors/python");
    Some(Shim {
        name: name.into(),
        command: vec![
            python,
            dir.join("runwarm_executor.py")
                .to_string_lossy()
                .into_owned(),
        ],
        fixture_root: dir.join("tests/fixture"),
        entry: entry.into(),
        mode: Mode::Handler,
        env: vec![("PYTHONDONTWRITEBYTECODE".into(), "1".into())],
    })
}

fn node_shim(name: &str, entry: &str) -> Option<Shim> {
    let node = node()?;
    let dir = repo().join("executors/node");
    Some(Shim {
        name: name.into(),
        command: vec![
            node,
            dir.join("runwarm_executor.mjs")
                .to_string_lossy()
                .into_owned(),
        ],
        fixture_root: dir.join("tests/fixture"),
        entry: entry.into(),
        mode: Mode::Handler,
        env: vec![],
    })
}

fn run(shim: Option<Shim>, program: &str) {
    let Some(shim) = shim else {
        return skip(&format!("{program} is not installed"));
    };
    match run_all(&shim) {
        Ok(n) => assert!(n >= 10, "only {n} vectors ran for {}", shim.name),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn python_shim_passes_every_handler_vector() {
    run(python_shim("python", "main.py"), "python3");
}

#[test]
fn python_shim_with_async_handler_passes_every_handler_vector() {
    run(python_shim("python-async", "main_async.py"), "python3");
}

#[test]
fn node_shim_with_commonjs_fixture_passes_every_handler_vector() {
    run(node_shim("node-cjs", "main.js"), "node");
}

#[test]
fn node_shim_with_esm_fixture_passes_every_handler_vector() {
    run(node_shim("node-esm", "main.mjs"), "node");
}
