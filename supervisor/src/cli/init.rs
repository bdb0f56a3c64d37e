//! `runwarm init --runtime R NAME`: a new script folder with a manifest and a working handler
//! for any shipped runtime, the way `faas-cli new` starts a function. Every template greets by
//! name, logs one structured record, and is registered and invoked by the end-to-end tests, so
//! what `init` writes is known to run.
//!
//! The templates live in `templates/` beside this file as real source files (so they can be read
//! and linted as such) and are compiled into the binary: `init` needs no daemon and no network.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use clap::Args;
use serde_json::json;

use crate::client::is_valid_name;

use super::error::{CliError, UsageError};
use super::outcome::Outcome;
use super::output::{print_json, print_text};

/// One runtime's template: its entry file and how the manifest calls it.
#[derive(Debug, Clone, Copy)]
struct Template {
    runtime: &'static str,
    /// The entry file's name in the new folder.
    entry: &'static str,
    /// The entry file's contents.
    source: &'static str,
    /// `handler` or `command`, written into the manifest so it reads without the runtime file.
    mode: &'static str,
    /// What the template shows of the runtime in its description.
    shape: &'static str,
}

/// Every runtime `init` can start a script for (all shipped ones but `binary`, whose script
/// is a prebuilt executable: `runwarm register FILE --runtime binary` takes it as it is).
const TEMPLATES: [Template; 11] = [
    Template {
        runtime: "python3",
        entry: "main.py",
        source: include_str!("templates/main.py"),
        mode: "handler",
        shape: "a Python handler",
    },
    Template {
        runtime: "node",
        entry: "index.mjs",
        source: include_str!("templates/index.mjs"),
        mode: "handler",
        shape: "a Node ES module handler",
    },
    Template {
        runtime: "typescript",
        entry: "main.ts",
        source: include_str!("templates/main.ts"),
        mode: "handler",
        shape: "a TypeScript handler",
    },
    Template {
        runtime: "java",
        entry: "Main.java",
        source: include_str!("templates/Main.java"),
        mode: "handler",
        shape: "a Java class with a static handler",
    },
    Template {
        runtime: "go",
        entry: "main.go",
        source: include_str!("templates/main.go"),
        mode: "handler",
        shape: "a Go program calling runwarm.Start",
    },
    Template {
        runtime: "csharp",
        entry: "Handler.cs",
        source: include_str!("templates/Handler.cs"),
        mode: "handler",
        shape: "a C# static handler",
    },
    Template {
        runtime: "c",
        entry: "main.c",
        source: include_str!("templates/main.c"),
        mode: "command",
        shape: "a C program run per request",
    },
    Template {
        runtime: "cpp",
        entry: "main.cpp",
        source: include_str!("templates/main.cpp"),
        mode: "command",
        shape: "a C++ program run per request",
    },
    Template {
        runtime: "ruby",
        entry: "main.rb",
        source: include_str!("templates/main.rb"),
        mode: "handler",
        shape: "a Ruby handler",
    },
    Template {
        runtime: "php",
        entry: "main.php",
        source: include_str!("templates/main.php"),
        mode: "handler",
        shape: "a PHP handler",
    },
    Template {
        runtime: "bash",
        entry: "main.sh",
        source: include_str!("templates/main.sh"),
        mode: "command",
        shape: "a Bash script run per request",
    },
];

/// The runtimes `init` knows, for `--runtime`'s possible values.
fn runtime_names() -> [&'static str; TEMPLATES.len()] {
    TEMPLATES.map(|t| t.runtime)
}

#[derive(Debug, Args)]
pub(super) struct InitArgs {
    /// Script name (also the folder's, unless --dir says otherwise).
    name: String,
    /// Runtime of the new script.
    #[arg(long, short = 'r', value_parser = clap::builder::PossibleValuesParser::new(runtime_names()))]
    runtime: String,
    /// Folder to create [default: ./NAME]; it may exist only if it is empty.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
}

/// The manifest of a new script.
fn manifest(name: &str, template: &Template) -> String {
    let handler = if template.mode == "handler" {
        "handler = \"handler\"            # the function runwarm calls\n"
    } else {
        ""
    };
    format!(
        "# What runwarm needs to run this script; `runwarm register DIR` sends the folder.\n\
         name = \"{name}\"\n\
         runtime = \"{runtime}\"\n\
         entry = \"{entry}\"\n\
         mode = \"{mode}\"\n\
         {handler}\
         description = \"Greets by name: {shape} made by runwarm init\"\n\
         \n\
         # The payload must match this JSON Schema; one that does not is refused before anything\n\
         # runs, with every violation listed.\n\
         [params]\n\
         type = \"object\"\n\
         additionalProperties = false\n\
         properties = {{ name = {{ type = \"string\", maxLength = 100 }} }}\n\
         \n\
         # Per invocation and per executor; unset ones take the runtime's defaults\n\
         # (`runwarm show {name}` shows them all).\n\
         [limits]\n\
         timeout_ms = 10000\n\
         \n\
         # Warm executors of one version: at most `max`, retired after `idle_ttl_s` idle.\n\
         [pool]\n\
         max = 2\n\
         idle_ttl_s = 600\n",
        runtime = template.runtime,
        entry = template.entry,
        mode = template.mode,
        shape = template.shape,
    )
}

/// The files of a new script: path relative to its folder, contents, and whether executable.
fn files(name: &str, runtime: &str) -> Result<Vec<(&'static str, String, bool)>, UsageError> {
    let template = TEMPLATES
        .iter()
        .find(|t| t.runtime == runtime)
        .ok_or_else(|| {
            UsageError::Invalid(format!(
                "init has no template for runtime {runtime:?}; it has {}",
                runtime_names().join(", ")
            ))
        })?;
    Ok(vec![
        ("runwarm.toml", manifest(name, template), false),
        (
            template.entry,
            template.source.to_owned(),
            template.entry.ends_with(".sh"),
        ),
    ])
}

/// Creates `dir` (or accepts it empty) and writes the files, never over an existing one.
fn write_files(dir: &Path, files: &[(&str, String, bool)]) -> Result<(), UsageError> {
    let fail = |what: &str, path: &Path, e: std::io::Error| {
        UsageError::Invalid(format!("cannot {what} {}: {e}", path.display()))
    };
    if dir.exists() {
        let mut entries = std::fs::read_dir(dir).map_err(|e| fail("read", dir, e))?;
        if entries.next().is_some() {
            return Err(UsageError::Invalid(format!(
                "{} exists and is not empty; pick another NAME or --dir",
                dir.display()
            )));
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| fail("create", dir, e))?;
    for (name, contents, executable) in files {
        let path = dir.join(name);
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(if *executable { 0o755 } else { 0o644 })
            .open(&path)
            .map_err(|e| fail("create", &path, e))?;
        file.write_all(contents.as_bytes())
            .map_err(|e| fail("write", &path, e))?;
    }
    Ok(())
}

pub(super) fn init(json: bool, args: InitArgs) -> Result<Outcome, CliError> {
    if !is_valid_name(&args.name) {
        return Err(UsageError::Invalid(format!(
            "{:?} is not a script name: 1-64 characters of a-z, 0-9, `.`, `_`, `-`, starting \
             with a letter or digit",
            args.name
        ))
        .into());
    }
    let files = files(&args.name, &args.runtime)?;
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    write_files(&dir, &files)?;
    let names: Vec<&str> = files.iter().map(|(name, _, _)| *name).collect();
    if json {
        print_json(&json!({"name": args.name, "runtime": args.runtime,
            "dir": dir, "files": names}))?;
    } else {
        let shown = dir.display();
        print_text(&format!(
            "created {shown}/ ({}) for {}\nnext: runwarm register {shown} && runwarm invoke {} \
             -d '{{\"name\": \"Ada\"}}'\n",
            names.join(", "),
            args.runtime,
            args.name,
        ))?;
    }
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_runtime_but_binary_has_a_template() {
        let shipped: Vec<String> =
            std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../runtimes"))
                .unwrap()
                .filter_map(|e| {
                    let name = e.ok()?.file_name().into_string().ok()?;
                    name.strip_suffix(".toml").map(str::to_owned)
                })
                .filter(|name| name != "binary")
                .collect();
        let mut known: Vec<&str> = runtime_names().to_vec();
        known.sort_unstable();
        let mut shipped: Vec<&str> = shipped.iter().map(String::as_str).collect();
        shipped.sort_unstable();
        assert_eq!(known, shipped);
    }

    #[test]
    fn manifests_parse_and_name_the_entry() {
        for template in &TEMPLATES {
            let text = manifest("greet", template);
            let parsed: crate::registry::manifest::Manifest = toml::from_str::<toml::Table>(&text)
                .map_err(|e| e.to_string())
                .and_then(|mut table| {
                    // The name belongs to the registration, not to the manifest type.
                    table.remove("name");
                    toml::Value::Table(table)
                        .try_into()
                        .map_err(|e: toml::de::Error| e.to_string())
                })
                .unwrap_or_else(|e| panic!("{}: {e}\n{text}", template.runtime));
            assert_eq!(parsed.runtime, template.runtime);
            assert_eq!(parsed.entry, template.entry);
            assert!(parsed.params.is_some(), "{}", template.runtime);
            assert!(text.contains("name = \"greet\""));
        }
    }

    #[test]
    fn init_writes_a_folder_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("greet");
        let made = files("greet", "bash").unwrap();
        write_files(&target, &made).unwrap();
        let script = target.join("main.sh");
        assert!(
            std::fs::read_to_string(&script)
                .unwrap()
                .contains("PARAM_NAME")
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&script).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755);
        let again = write_files(&target, &made).unwrap_err().to_string();
        assert!(again.contains("exists and is not empty"), "{again}");
        // An empty folder is fine.
        let empty = dir.path().join("empty");
        std::fs::create_dir(&empty).unwrap();
        write_files(&empty, &files("greet", "python3").unwrap()).unwrap();
        assert!(empty.join("main.py").exists() && empty.join("runwarm.toml").exists());
        assert!(files("greet", "binary").is_err());
    }
}
