//! Replays every handler-mode conformance vector against the C# (Mono), Ruby and PHP executor
//! shims, with the fixtures under `executors/*/tests/fixture`.

use std::path::{Path, PathBuf};
use std::process::Command;

use runwarm_protocol::Mode;
use runwarm_protocol::conformance::{Shim, run_all, skip};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Whether `program args…` runs and exits 0.
fn installed(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(shim: &Shim) {
    match run_all(shim) {
        Ok(n) => assert!(n >= 10, "only {n} vectors ran for {}", shim.name),
        Err(e) => panic!("{e}"),
    }
}

fn mcs(args: &[&Path]) {
    let out = match Command::new("mcs").args(args).output() {
        Ok(out) => out,
        Err(e) => panic!("cannot run mcs: {e}"),
    };
    assert!(
        out.status.success(),
        "mcs {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn csharp_shim_passes_every_handler_vector() {
    if !installed("mcs", &["--version"]) || !installed("mono", &["--version"]) {
        return skip("mcs or mono is not installed");
    }
    let dir = repo().join("executors/csharp");
    let mut sources: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("executors/csharp is readable")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "cs"))
        .collect();
    sources.sort();
    // The production build: the shim as an executable, the script as a library against it.
    let out = tempfile::TempDir::new().expect("temp dir");
    let exe = out.path().join("runwarm.exe");
    let dll = out.path().join("script.dll");
    let exe_flag = PathBuf::from(format!("-out:{}", exe.display()));
    let mut args: Vec<&Path> = vec![&exe_flag];
    args.extend(sources.iter().map(PathBuf::as_path));
    mcs(&args);
    let fixture = dir.join("tests/fixture");
    let main_cs = fixture.join("Main.cs");
    mcs(&[
        Path::new("-target:library"),
        &PathBuf::from(format!("-r:{}", exe.display())),
        &PathBuf::from(format!("-out:{}", dll.display())),
        &main_cs,
    ]);
    run(&Shim {
        name: "csharp".into(),
        command: vec![
            "mono".into(),
            exe.to_string_lossy().into_owned(),
            dll.to_string_lossy().into_owned(),
        ],
        fixture_root: fixture,
        entry: "Main.cs".into(),
        mode: Mode::Handler,
        env: vec![],
    });
}

#[test]
fn ruby_shim_passes_every_handler_vector() {
    if !installed("ruby", &["--version"]) {
        return skip("ruby is not installed");
    }
    let dir = repo().join("executors/ruby");
    run(&Shim {
        name: "ruby".into(),
        command: vec![
            "ruby".into(),
            dir.join("runwarm_executor.rb")
                .to_string_lossy()
                .into_owned(),
        ],
        fixture_root: dir.join("tests/fixture"),
        entry: "main.rb".into(),
        mode: Mode::Handler,
        env: vec![],
    });
}

#[test]
fn php_shim_passes_every_handler_vector() {
    if !installed("php", &["--version"]) {
        return skip("php is not installed");
    }
    let dir = repo().join("executors/php");
    run(&Shim {
        name: "php".into(),
        command: vec![
            "php".into(),
            dir.join("runwarm_executor.php")
                .to_string_lossy()
                .into_owned(),
        ],
        fixture_root: dir.join("tests/fixture"),
        entry: "main.php".into(),
        mode: Mode::Handler,
        env: vec![],
    });
}
