//! `runwarmd --check-config FILE`: validates a configuration without starting anything, the way
//! `php-fpm -t` or `nginx -t` do, so `ExecReload=` (and an operator before a restart) can refuse a
//! broken file before the daemon ever sees it.
//!
//! It reports what [`Config::validate`] reports (every violation, each with its key) and what a
//! start would trip over next: runtime definition files that do not parse, and helper binaries
//! that are not there. It does not probe runtimes or touch the state directory.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::config::Config;
use crate::sandbox::SandboxMode;

/// Every problem of the configuration file at `path`; empty when it is fine. `cwd` resolves a
/// relative `path`, `exe_dir` is where the helper binaries default to (next to `runwarmd`).
pub fn check_file(path: &Path, cwd: &Path, exe_dir: &Path) -> Vec<String> {
    let text = match fs_err::read_to_string(cwd.join(path)) {
        Ok(t) => t,
        Err(e) => return vec![e.to_string()],
    };
    let base = path
        .parent()
        .map_or_else(|| cwd.to_path_buf(), |p| cwd.join(p));
    match Config::from_toml(&text, Some(&path.display().to_string()), &base, exe_dir) {
        Ok(config) => check_startable(&config),
        Err(e) => e.violations,
    }
}

/// What a valid configuration would still fail on at start.
pub fn check_startable(config: &Config) -> Vec<String> {
    let mut problems = crate::runtime::check_definitions(&config.runtimes_dirs);
    let mut executable = |key: &str, file: &Path| {
        let ok = std::fs::metadata(file)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
        if !ok {
            problems.push(format!(
                "{key}: {} is not an executable file",
                file.display()
            ));
        }
    };
    executable("exec_command", &config.exec_command);
    if config.sandbox.mode != SandboxMode::Off {
        executable("sandbox.binary", &config.sandbox.binary);
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exe(dir: &Path, name: &str) {
        let p = dir.join(name);
        std::fs::write(&p, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn a_good_file_has_no_problem() {
        let dir = tempfile::tempdir().unwrap();
        exe(dir.path(), "runwarm-exec-command");
        exe(dir.path(), "runwarm-sandbox");
        std::fs::write(dir.path().join("c.toml"), "socket = \"s.sock\"\n").unwrap();
        assert_eq!(
            check_file(Path::new("c.toml"), dir.path(), dir.path()),
            Vec::<String>::new()
        );
    }

    #[test]
    fn every_violation_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let rt = dir.path().join("rt");
        std::fs::create_dir(&rt).unwrap();
        std::fs::write(rt.join("bad.toml"), "name = 3\n").unwrap();
        std::fs::write(
            dir.path().join("c.toml"),
            "[pools]\nmax_workers = 0\n[log]\nformat = \"xml\"\n",
        )
        .unwrap();
        let problems = check_file(Path::new("c.toml"), dir.path(), dir.path());
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("pools.max_workers"), "{problems:?}");
        assert!(problems[1].starts_with("log.format"), "{problems:?}");

        // Valid keys, but a start would fail: a broken runtime file, missing helpers.
        std::fs::write(dir.path().join("c.toml"), "runtimes_dirs = [\"rt\"]\n").unwrap();
        let problems = check_file(Path::new("c.toml"), dir.path(), dir.path());
        let text = problems.join("\n");
        assert_eq!(problems.len(), 3, "{text}");
        assert!(text.contains("bad.toml"), "{text}");
        assert!(text.contains("exec_command:"), "{text}");
        assert!(text.contains("sandbox.binary:"), "{text}");
    }

    #[test]
    fn an_unreadable_or_unparsable_file_is_one_problem() {
        let dir = tempfile::tempdir().unwrap();
        let missing = check_file(Path::new("nope.toml"), dir.path(), dir.path());
        assert_eq!(missing.len(), 1);
        assert!(missing[0].contains("nope.toml"), "{missing:?}");
        std::fs::write(dir.path().join("c.toml"), "unknown_key = 1\n").unwrap();
        let unknown = check_file(Path::new("c.toml"), dir.path(), dir.path());
        assert!(unknown[0].contains("unknown_key"), "{unknown:?}");
    }
}
