//! One tiny handler per language for the per-runtime section ([`crate::runtimes`]): what it
//! answers (`{"greeting": "hello " + name}`), the files of its bundle, the small real
//! dependency its first registration installs where the language has one cheaply, and the
//! anchor: the same handler run outside runwarm as a fresh process per call.
//!
//! The handlers never use their dependency: it is there for the dependency step, and the warm,
//! cold and fresh-process figures then compare the same tiny program everywhere.

mod anchor;
mod sources;

use anyhow::{Context, Result};
use base64::Engine as _;
use serde_json::{Value, json};

pub use anchor::{Anchor, Tools, build_anchor};
use sources::*;

/// Every runtime the bench has a handler for, in the table's order.
pub const KNOWN: &[&str] = &[
    "python3",
    "node",
    "typescript",
    "go",
    "java",
    "csharp",
    "ruby",
    "php",
    "c",
    "cpp",
    "bash",
    "binary",
];

/// One language's handler and how to run it.
#[derive(Debug, Clone, Copy)]
pub struct Spec {
    pub runtime: &'static str,
    /// `handler` or `command` (the runtime's default, which the bench uses).
    pub mode: &'static str,
    pub entry: &'static str,
    /// The bundle's source files (the entry among them), for the daemon.
    sources: &'static [(&'static str, &'static str)],
    /// How a line comment starts, to make a code-only change.
    comment: &'static str,
    /// The dependency of the first registration, e.g. `six==1.16.0`, and its files.
    pub dependency: Option<&'static str>,
    dependency_files: &'static [(&'static str, &'static str)],
}

impl Spec {
    pub fn find(runtime: &str) -> Option<Spec> {
        SPECS.iter().copied().find(|s| s.runtime == runtime)
    }

    /// The bundle's `files`: the sources with `variant` as a trailing comment of the entry (a
    /// code-only change is another variant), plus the dependency files. The `binary` runtime
    /// takes the host-built executable instead, with `variant` appended after its end (the
    /// loader ignores bytes past the ELF's last section).
    pub fn files(&self, variant: &str, binary: Option<&[u8]>) -> Result<Value> {
        let mut files = serde_json::Map::new();
        if self.runtime == "binary" {
            let bytes = binary.context("the binary runtime needs the host-built executable")?;
            let mut bytes = bytes.to_vec();
            bytes.extend_from_slice(format!("\n{variant}\n").as_bytes());
            files.insert(
                self.entry.into(),
                json!({
                    "base64": base64::engine::general_purpose::STANDARD.encode(&bytes),
                    "executable": true,
                }),
            );
        }
        for (path, text) in self.sources {
            let text = if *path == self.entry {
                format!("{text}{} {variant}\n", self.comment)
            } else {
                (*text).to_owned()
            };
            files.insert((*path).into(), Value::String(text));
        }
        for (path, text) in self.dependency_files {
            files.insert((*path).into(), Value::String((*text).to_owned()));
        }
        Ok(Value::Object(files))
    }
}

const SPECS: &[Spec] = &[
    Spec {
        runtime: "python3",
        mode: "handler",
        entry: "main.py",
        sources: &[("main.py", PYTHON)],
        comment: "#",
        dependency: Some("six==1.16.0"),
        dependency_files: &[("requirements.txt", "six==1.16.0\n")],
    },
    Spec {
        runtime: "node",
        mode: "handler",
        entry: "main.mjs",
        sources: &[("main.mjs", NODE)],
        comment: "//",
        dependency: Some("is-number 7.0.0"),
        dependency_files: &[("package.json", PACKAGE_JSON)],
    },
    Spec {
        runtime: "typescript",
        mode: "handler",
        entry: "main.ts",
        sources: &[("main.ts", TYPESCRIPT)],
        comment: "//",
        dependency: Some("is-number 7.0.0"),
        dependency_files: &[("package.json", PACKAGE_JSON)],
    },
    Spec {
        runtime: "go",
        mode: "handler",
        entry: "main.go",
        sources: &[("main.go", GO_MAIN), ("handler.go", GO_HANDLER)],
        comment: "//",
        dependency: Some("google/uuid v1.6.0"),
        dependency_files: &[("go.mod", GO_MOD), ("go.sum", GO_SUM)],
    },
    Spec {
        runtime: "java",
        mode: "handler",
        entry: "Hello.java",
        sources: &[("Hello.java", JAVA)],
        comment: "//",
        dependency: Some("gson 2.11.0"),
        dependency_files: &[("pom.xml", POM_XML)],
    },
    Spec {
        runtime: "csharp",
        mode: "handler",
        entry: "Hello.cs",
        sources: &[("Hello.cs", CSHARP)],
        comment: "//",
        dependency: None,
        dependency_files: &[],
    },
    Spec {
        runtime: "ruby",
        mode: "handler",
        entry: "main.rb",
        sources: &[("main.rb", RUBY)],
        comment: "#",
        dependency: None,
        dependency_files: &[],
    },
    Spec {
        runtime: "php",
        mode: "handler",
        entry: "main.php",
        sources: &[("main.php", PHP)],
        comment: "//",
        dependency: None,
        dependency_files: &[],
    },
    Spec {
        runtime: "c",
        mode: "command",
        entry: "main.c",
        sources: &[("main.c", C)],
        comment: "//",
        dependency: None,
        dependency_files: &[],
    },
    Spec {
        runtime: "cpp",
        mode: "command",
        entry: "main.cpp",
        sources: &[("main.cpp", CPP)],
        comment: "//",
        dependency: None,
        dependency_files: &[],
    },
    Spec {
        runtime: "bash",
        mode: "command",
        entry: "main.sh",
        sources: &[("main.sh", BASH)],
        comment: "#",
        dependency: None,
        dependency_files: &[],
    },
    Spec {
        runtime: "binary",
        mode: "command",
        entry: "hello",
        sources: &[],
        comment: "",
        dependency: None,
        dependency_files: &[],
    },
];

#[cfg(test)]
mod tests;
