//! The executor shims (Python, Node) embedded in the daemon and written to the state directory
//! at start, so `runwarmd` needs nothing from the source tree at run time.

use std::path::{Path, PathBuf};

use include_dir::{Dir, include_dir};

static PYTHON: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../executors/python");
static NODE: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../executors/node");

/// Shim files written per language: only the executor itself, not its tests.
const SHIMS: &[(&str, &Dir<'_>, &str)] = &[
    ("python", &PYTHON, "runwarm_executor.py"),
    ("node", &NODE, "runwarm_executor.mjs"),
];

/// Writes the shims under `<state_dir>/executors/<language>/` (read-only) and returns that
/// directory, the `{executors}` of runtime definitions.
pub fn install(state_dir: &Path) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let root = state_dir.join("executors");
    for (lang, dir, file) in SHIMS {
        let contents = dir
            .get_file(file)
            .map(include_dir::File::contents)
            .ok_or_else(|| std::io::Error::other(format!("shim {lang}/{file} is not embedded")))?;
        let target_dir = root.join(lang);
        fs_err::create_dir_all(&target_dir)?;
        let target = target_dir.join(file);
        if fs_err::read(&target).ok().as_deref() == Some(contents) {
            continue;
        }
        // Write beside and rename, so an executor starting right now never reads half a file.
        let tmp = target_dir.join(format!(".{file}.tmp"));
        fs_err::write(&tmp, contents)?;
        fs_err::set_permissions(&tmp, std::fs::Permissions::from_mode(0o444))?;
        fs_err::rename(&tmp, &target)?;
    }
    Ok(root)
}
