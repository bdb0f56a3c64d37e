//! The console's committed bundle (`supervisor/src/console/assets/dist`) is what its sources
//! build to: `npm ci` and `console-ui/build.mjs` into a scratch directory, then every file is
//! compared. So `cargo build` needs no Node.js, and CI proves the bundle was not edited by hand
//! or left stale (docs/design/0010-console-app.md).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use runwarm_e2e::{Need, require};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Every file under `dir`, by its path relative to `dir`.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                out.insert(rel, std::fs::read(&path).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn committed_console_bundle_matches_its_sources() {
    if !require(&[Need::Program("node"), Need::Program("npm")]) {
        return;
    }
    let sources = repo().join("console-ui");
    let scratch = tempfile::Builder::new()
        .prefix("runwarm-console-ui-")
        .tempdir()
        .unwrap();
    // A copy without node_modules, so what is installed is exactly the lock file's.
    let work = scratch.path().join("console-ui");
    for name in [
        "package.json",
        "package-lock.json",
        "build.mjs",
        "tsconfig.json",
    ] {
        std::fs::create_dir_all(&work).unwrap();
        std::fs::copy(sources.join(name), work.join(name)).unwrap();
    }
    for dir in ["src", "static"] {
        run(Command::new("cp")
            .arg("-R")
            .arg(sources.join(dir))
            .arg(work.join(dir)));
    }
    run(Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&work));
    run(Command::new("npx")
        .args(["--no-install", "tsc", "--noEmit", "-p", "."])
        .current_dir(&work));
    let built = scratch.path().join("dist");
    run(Command::new("node")
        .arg("build.mjs")
        .arg(&built)
        .current_dir(&work));

    let committed = files(&repo().join("supervisor/src/console/assets/dist"));
    let fresh = files(&built);
    let missing: Vec<&String> = fresh
        .keys()
        .filter(|k| !committed.contains_key(*k))
        .collect();
    let extra: Vec<&String> = committed
        .keys()
        .filter(|k| !fresh.contains_key(*k))
        .collect();
    let differ: Vec<&String> = fresh
        .iter()
        .filter(|(k, v)| committed.get(*k).is_some_and(|c| c != *v))
        .map(|(k, _)| k)
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && differ.is_empty(),
        "the committed console bundle is not what console-ui builds: not committed {missing:?}, \
         not built {extra:?}, different {differ:?}\nrebuild it with: cd console-ui && npm ci && \
         node build.mjs"
    );
}
