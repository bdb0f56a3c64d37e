//! `include_dir!` embeds the runtime definitions, executor shims and samples but does not tell
//! cargo about files added to those folders later; a changed folder rebuilds the crate.
//!
//! It also sets `RUNWARM_GIT_COMMIT` for `runwarm_build_info` (see [`git_commit`]).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    for dir in ["../runtimes", "../executors", "../samples"] {
        println!("cargo:rerun-if-changed={dir}");
    }
    git_commit();
}

/// The commit being built: `RUNWARM_GIT_COMMIT` from the environment when a packager sets it (a
/// source tarball has no `.git`), else `git rev-parse HEAD` of the checkout. Without either the
/// variable stays unset and the metrics say `unknown`; a build never fails over it.
fn git_commit() {
    println!("cargo:rerun-if-env-changed=RUNWARM_GIT_COMMIT");
    let given = std::env::var("RUNWARM_GIT_COMMIT")
        .ok()
        .filter(|c| !c.is_empty());
    let commit = given.or_else(|| git(&["rev-parse", "--short=12", "HEAD"]));
    if let Some(commit) = commit {
        println!("cargo:rustc-env=RUNWARM_GIT_COMMIT={commit}");
    }
    // Rebuild when HEAD moves: HEAD itself (a checkout), the branch it points to (a commit) and
    // packed-refs (where a branch's ref may live). Only existing files are named: cargo reruns
    // a build script on every build for a path that does not exist.
    let Some(git_dir) = git(&["rev-parse", "--absolute-git-dir"]).map(PathBuf::from) else {
        return;
    };
    let mut watch = vec![git_dir.join("HEAD"), git_dir.join("packed-refs")];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watch.push(git_dir.join(branch));
    }
    for path in watch.iter().filter(|p| p.is_file()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}

/// `git ARGS` in the crate's folder; its trimmed output when it succeeds.
fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(env_dir())
        .output()
        .ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (out.status.success() && !text.is_empty()).then(|| text.to_owned())
}

fn env_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR").map_or_else(|| PathBuf::from("."), PathBuf::from)
}
