//! The executor shims embedded in the daemon and written to the state directory at start, so
//! `runwarmd` needs nothing from the source tree at run time. Interpreted languages run their
//! shim as it is; compiled ones (Go, Java) are built together with each script version by
//! the runtime's build step, from these sources.

use std::path::{Path, PathBuf};

use include_dir::{Dir, DirEntry, include_dir};

static PYTHON: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../executors/python");
static NODE: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../executors/node");
static GO: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../executors/go");
static JAVA: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../executors/java");
static CSHARP: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../executors/csharp");
static RUBY: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../executors/ruby");
static PHP: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../executors/php");

/// The shim folders, by language.
const SHIMS: &[(&str, &Dir<'_>)] = &[
    ("python", &PYTHON),
    ("node", &NODE),
    ("go", &GO),
    ("java", &JAVA),
    ("csharp", &CSHARP),
    ("ruby", &RUBY),
    ("php", &PHP),
];

/// What of a shim folder is installed: its sources, not its tests or documentation.
fn is_shim_file(path: &Path) -> bool {
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or_default();
    let source = [".py", ".mjs", ".go", ".java", ".cs", ".rb", ".php"]
        .iter()
        .any(|ext| name.ends_with(ext))
        || name == "go.mod";
    source && !name.ends_with("_test.go") && !path.starts_with("tests")
}

fn files<'a>(dir: &'a Dir<'a>, out: &mut Vec<&'a include_dir::File<'a>>) {
    for entry in dir.entries() {
        match entry {
            DirEntry::Dir(d) => files(d, out),
            DirEntry::File(f) if is_shim_file(f.path()) => out.push(f),
            DirEntry::File(_) => {}
        }
    }
}

/// Writes the shims under `<state_dir>/executors/<language>/` (read-only) and returns that
/// directory, the `{executors}` of runtime definitions.
pub fn install(state_dir: &Path) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let root = state_dir.join("executors");
    for (lang, dir) in SHIMS {
        let mut shim_files = Vec::new();
        files(dir, &mut shim_files);
        if shim_files.is_empty() {
            return Err(std::io::Error::other(format!("no {lang} shim is embedded")));
        }
        for file in shim_files {
            let contents = file.contents();
            let target = root.join(lang).join(file.path());
            let target_dir = target.parent().unwrap_or(&root).to_path_buf();
            fs_err::create_dir_all(&target_dir)?;
            if fs_err::read(&target).ok().as_deref() == Some(contents) {
                continue;
            }
            // Write beside and rename, so an executor starting right now never reads half a
            // file.
            let name = target
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let tmp = target_dir.join(format!(".{name}.tmp"));
            fs_err::write(&tmp, contents)?;
            fs_err::set_permissions(&tmp, std::fs::Permissions::from_mode(0o444))?;
            fs_err::rename(&tmp, &target)?;
        }
    }
    Ok(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shims_are_installed_without_their_tests() {
        let dir = tempfile::tempdir().unwrap();
        let root = install(dir.path()).unwrap();
        assert!(root.join("python/runwarm_executor.py").is_file());
        assert!(root.join("go/go.mod").is_file());
        assert!(root.join("go/runwarm.go").is_file());
        assert!(!root.join("go/handler_test.go").exists());
        assert!(!root.join("go/tests").exists());
        assert!(!root.join("python/tests").exists());
        assert!(root.join("csharp/RunwarmExecutor.cs").is_file());
        assert!(root.join("ruby/runwarm_executor.rb").is_file());
        assert!(root.join("php/runwarm_executor.php").is_file());
    }
}
