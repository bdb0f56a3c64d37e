//! What needs no daemon: `init`, completions, the man page and `runwarmd --version`.

use std::path::Path;
use std::process::Command;

use super::{describe, runwarm};

#[test]
fn init_completions_and_man_need_no_daemon() {
    let nowhere = Path::new("/nonexistent/runwarm.sock");
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("greet");
    let out = runwarm(
        &[
            "init",
            "--runtime",
            "go",
            "greet",
            "--dir",
            target.to_str().unwrap(),
        ],
        nowhere,
    );
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("(runwarm.toml, main.go) for go"));
    let main = std::fs::read_to_string(target.join("main.go")).unwrap();
    assert!(main.contains("runwarm.Start(handler)"), "{main}");
    assert!(!target.join("go.mod").exists());
    let again = runwarm(
        &[
            "init",
            "-r",
            "go",
            "greet",
            "--dir",
            target.to_str().unwrap(),
        ],
        nowhere,
    );
    assert_eq!(again.status.code(), Some(2), "{}", describe(&again));
    let unknown = runwarm(&["init", "-r", "cobol", "x"], nowhere);
    assert_eq!(unknown.status.code(), Some(2), "{}", describe(&unknown));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("python3"));
    let bad_name = runwarm(&["init", "-r", "bash", "Not A Name"], nowhere);
    assert_eq!(bad_name.status.code(), Some(2), "{}", describe(&bad_name));

    for shell in ["bash", "zsh", "fish"] {
        let out = runwarm(&["completions", shell], nowhere);
        assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("replay"),
            "{shell}"
        );
    }
    let man_dir = dir.path().join("man1");
    let out = runwarm(&["man", "--out", man_dir.to_str().unwrap()], nowhere);
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    assert!(man_dir.join("runwarm.1").exists() && man_dir.join("runwarm-cancel.1").exists());
    let page = runwarm(&["man"], nowhere);
    assert!(String::from_utf8_lossy(&page.stdout).starts_with(".ie \\n(.g"));
}

#[test]
fn runwarmd_names_itself_in_its_version() {
    let out = Command::new(env!("CARGO_BIN_EXE_runwarmd"))
        .arg("--version")
        .output()
        .expect("runs runwarmd");
    assert_eq!(out.status.code(), Some(0), "{}", describe(&out));
    let version = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        version.trim(),
        format!("runwarmd {}", env!("CARGO_PKG_VERSION")),
        "{version}"
    );
}

/// The README's completion and manual page lines, run as printed but with `sudo` left out,
/// `/usr/local` moved into a temporary folder and `runwarm` being this build's binary.
#[test]
fn the_readmes_completion_and_man_steps_install_what_they_say() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let block = readme
        .split_once("Shell completions and manual pages come from the installed client")
        .and_then(|(_, rest)| rest.split_once("```sh\n"))
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(block, _)| block)
        .expect("README's install section has the completions block");
    let prefix = tempfile::tempdir().unwrap();
    let bin = Path::new(env!("CARGO_BIN_EXE_runwarm"));
    let script = block
        .replace("sudo ", "")
        .replace("/usr/local", &prefix.path().display().to_string());
    let out = Command::new("sh")
        .args(["-euc", &script])
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin.parent().unwrap().display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}\n{script}", describe(&out));
    let share = prefix.path().join("share");
    for file in [
        "bash-completion/completions/runwarm",
        "zsh/site-functions/_runwarm",
        "fish/vendor_completions.d/runwarm.fish",
        "man/man1/runwarm.1",
        "man/man1/runwarm-invoke.1",
    ] {
        let text = std::fs::read_to_string(share.join(file)).unwrap_or_default();
        assert!(text.contains("invoke"), "{file} missing or empty");
    }
    // bash loads it and completes `runwarm` with it.
    let loaded = Command::new("bash")
        .args([
            "-c",
            &format!(
                "source {} && complete -p runwarm",
                share.join("bash-completion/completions/runwarm").display()
            ),
        ])
        .output()
        .unwrap();
    assert_eq!(loaded.status.code(), Some(0), "{}", describe(&loaded));
    assert!(String::from_utf8_lossy(&loaded.stdout).contains(" runwarm"));
}
