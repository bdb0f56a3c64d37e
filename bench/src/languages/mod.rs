//! One tiny handler per language for the per-runtime section ([`crate::runtimes`]): what it
//! answers (`{"greeting": "hello " + name}`), the files of its bundle, the small real
//! dependency its first registration installs where the language has one cheaply, and the
//! anchor: the same handler run outside runwarm as a fresh process per call.
//!
//! The handlers never use their dependency: it is there for the dependency step, and the warm,
//! cold and fresh-process figures then compare the same tiny program everywhere.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use base64::Engine as _;
use serde_json::{Value, json};

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

const PYTHON: &str = r#"def handler(event, context):
    return {"greeting": "hello " + event.get("name", "world")}
"#;

const NODE: &str = r#"export function handler(event) {
  return { greeting: "hello " + (event.name ?? "world") };
}
"#;

const TYPESCRIPT: &str = r#"interface Event {
  name?: string;
}

export function handler(event: Event): { greeting: string } {
  return { greeting: "hello " + (event.name ?? "world") };
}
"#;

const PACKAGE_JSON: &str = r#"{
  "name": "bench-hello",
  "version": "1.0.0",
  "private": true,
  "dependencies": {"is-number": "7.0.0"}
}
"#;

/// The handler itself, shared by the daemon's binary and the anchor's.
const GO_HANDLER: &str = r#"package main

type Event struct {
	Name string `json:"name"`
}

func handler(e Event) (map[string]string, error) {
	if e.Name == "" {
		e.Name = "world"
	}
	return map[string]string{"greeting": "hello " + e.Name}, nil
}
"#;

const GO_MAIN: &str = r#"package main

import "runwarm.dev/runwarm"

func main() { runwarm.Start(handler) }
"#;

const GO_ANCHOR_MAIN: &str = r#"package main

import (
	"encoding/json"
	"fmt"
	"os"
)

func main() {
	var e Event
	if err := json.Unmarshal([]byte(os.Args[1]), &e); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	r, err := handler(e)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	out, err := json.Marshal(r)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(string(out))
}
"#;

const GO_MOD: &str = "module example.com/benchhello

go 1.21

require github.com/google/uuid v1.6.0
";

/// What `go mod download` writes for that `go.mod`.
const GO_SUM: &str = "github.com/google/uuid v1.6.0 h1:NIvaJDMOsjHA8n1jAhLSgzrAzy1Hgr+hNrb57e+94F0=
github.com/google/uuid v1.6.0/go.mod h1:TIyPZe4MgqvfeYDBFedMoGGpEw/LqOeaOT+nhxU+yHo=
";

const JAVA: &str = r#"import java.util.Map;

public class Hello {
    public static Object handler(Map<String, Object> event) {
        return Map.of("greeting", "hello " + event.getOrDefault("name", "world"));
    }
}
"#;

/// The anchor's `main`: the shim's own JSON codec, without the protocol.
const JAVA_ANCHOR_MAIN: &str = r#"import java.util.Map;

public class Main {
    @SuppressWarnings("unchecked")
    public static void main(String[] args) {
        Map<String, Object> event = (Map<String, Object>) runwarm.Json.parse(args[0]);
        System.out.println(runwarm.Json.write(Hello.handler(event)));
    }
}
"#;

const JAVA_JSON: &str = include_str!("../../../executors/java/runwarm/Json.java");

const POM_XML: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>dev.runwarm.bench</groupId>
  <artifactId>bench-hello</artifactId>
  <version>1.0.0</version>
  <dependencies>
    <dependency>
      <groupId>com.google.code.gson</groupId>
      <artifactId>gson</artifactId>
      <version>2.11.0</version>
    </dependency>
  </dependencies>
</project>
"#;

const CSHARP: &str = r#"using System.Collections.Generic;

public static class Hello
{
    public static object handler(Dictionary<string, object> ev)
    {
        object name;
        if (!ev.TryGetValue("name", out name))
        {
            name = "world";
        }
        return new Dictionary<string, object> { { "greeting", "hello " + name } };
    }
}
"#;

/// The anchor's `Main`: the shim's own JSON reader and writer, without the protocol.
const CSHARP_ANCHOR_MAIN: &str = r#"using System;
using System.Collections.Generic;

public static class AnchorMain
{
    public static void Main(string[] args)
    {
        var ev = (Dictionary<string, object>)Runwarm.Json.Parse(args[0]);
        Console.WriteLine(Runwarm.Json.Serialize(Hello.handler(ev)));
    }
}
"#;

const CSHARP_JSON: &str = include_str!("../../../executors/csharp/RunwarmJson.cs");

const RUBY: &str = r#"def handler(event, context)
  { "greeting" => "hello #{event.fetch("name", "world")}" }
end
"#;

const PHP: &str = r#"<?php
function handler(array $event, $context): array
{
    return ['greeting' => 'hello ' . ($event['name'] ?? 'world')];
}
"#;

/// Command mode: the payload's top-level `name` arrives as `PARAM_NAME`.
const BASH: &str = r#"printf '{"greeting": "hello %s"}\n' "${PARAM_NAME:-world}"
"#;

/// Command mode: the payload JSON on stdin, the result as the last stdout line.
const C: &str = r#"#include <stdio.h>
#include <string.h>

int main(void) {
    char in[4096], name[256] = "world";
    size_t n = fread(in, 1, sizeof in - 1, stdin);
    in[n] = 0;
    const char *at = strstr(in, "\"name\"");
    if (at && (at = strchr(at + 6, '"'))) {
        const char *end = strchr(++at, '"');
        if (end && (size_t)(end - at) < sizeof name) {
            memcpy(name, at, (size_t)(end - at));
            name[end - at] = 0;
        }
    }
    printf("{\"greeting\": \"hello %s\"}\n", name);
    return 0;
}
"#;

const CPP: &str = r#"#include <iostream>
#include <iterator>
#include <string>

int main() {
    std::string in((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    std::string name = "world";
    auto key = in.find("\"name\"");
    if (key != std::string::npos) {
        auto open = in.find('"', key + 6);
        auto close = open == std::string::npos ? open : in.find('"', open + 1);
        if (close != std::string::npos) {
            name = in.substr(open + 1, close - open - 1);
        }
    }
    std::cout << "{\"greeting\": \"hello " << name << "\"}" << std::endl;
    return 0;
}
"#;

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

/// Loads the entry given as argv[1] and prints what its handler returns for the JSON in argv[2].
const PYTHON_RUNNER: &str = "import importlib.util, json, sys
spec = importlib.util.spec_from_file_location('main', sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
print(json.dumps(module.handler(json.loads(sys.argv[2]), None)))";
const NODE_RUNNER: &str = "const m = await import(process.argv[1]); \
console.log(JSON.stringify(await m.handler(JSON.parse(process.argv[2]))));";
const RUBY_RUNNER: &str = "load ARGV[0]; puts JSON.generate(handler(JSON.parse(ARGV[1]), nil))";
const PHP_RUNNER: &str =
    "require $argv[1]; echo json_encode(handler(json_decode($argv[2], true), null)), \"\\n\";";

/// The same handler as a fresh process per call, outside runwarm.
#[derive(Debug, Clone)]
pub struct Anchor {
    /// What runs, for the report (`go binary`, `java -cp classes Main`, …).
    pub label: String,
    program: PathBuf,
    args: Vec<OsString>,
    /// Command-mode programs read the payload on stdin (and bash `PARAM_NAME`), as in runwarm.
    stdin: bool,
    env: Vec<(String, String)>,
}

/// The host's tools for one runtime, as the daemon's `GET /v1/runtimes` resolved them.
#[derive(Debug, Clone, Default)]
pub struct Tools {
    /// The runtime's `interpreter`: the real Python, node, go, java, mono, gcc, g++, ruby, php,
    /// bash.
    pub interpreter: Option<PathBuf>,
}

/// What [`build_anchor`] leaves for the registration too: the `binary` runtime registers the
/// executable the host compiled.
pub struct Built {
    pub anchor: Anchor,
    pub binary: Option<Vec<u8>>,
}

/// Writes the anchor's files into `dir` and compiles what needs compiling (untimed); the
/// interpreter flags are the runtime's own launch flags, so only runwarm is taken away.
pub fn build_anchor(spec: &Spec, tools: &Tools, dir: &Path, payload: &Value) -> Result<Built> {
    fs_err::create_dir_all(dir)?;
    let interpreter = || {
        tools
            .interpreter
            .clone()
            .with_context(|| format!("the daemon reports no interpreter for {}", spec.runtime))
    };
    let payload = payload.to_string();
    let write = |name: &str, text: &str| -> Result<PathBuf> {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            fs_err::create_dir_all(parent)?;
        }
        fs_err::write(&path, text)?;
        Ok(path)
    };
    let mut binary = None;
    let anchor = match spec.runtime {
        "python3" => {
            let main = write("main.py", PYTHON)?;
            Anchor::new(
                "python3 -c <runner> main.py (the real interpreter, no shim)",
                interpreter()?,
                [
                    "-c".into(),
                    PYTHON_RUNNER.into(),
                    main.into(),
                    payload.into(),
                ],
            )
        }
        "node" => {
            let main = write("main.mjs", NODE)?;
            Anchor::new(
                "node -e <import main.mjs>",
                interpreter()?,
                [
                    "--input-type=module".into(),
                    "-e".into(),
                    NODE_RUNNER.into(),
                    main.into(),
                    payload.into(),
                ],
            )
        }
        "typescript" => {
            let source = write("main.ts", TYPESCRIPT)?;
            let out = dir.join("js").join("main.mjs");
            // The runtime's own build step, on the host.
            run_tool(
                Command::new("esbuild")
                    .arg(&source)
                    .args([
                        "--bundle",
                        "--platform=node",
                        "--format=esm",
                        "--target=node18",
                        "--packages=external",
                        "--sourcemap",
                        "--log-level=warning",
                    ])
                    .arg(format!("--outfile={}", out.display())),
                "esbuild",
            )?;
            Anchor::new(
                "node -e <import the esbuild output>",
                interpreter()?,
                [
                    "--enable-source-maps".into(),
                    "--input-type=module".into(),
                    "-e".into(),
                    NODE_RUNNER.into(),
                    out.into(),
                    payload.into(),
                ],
            )
        }
        "go" => {
            write("go.mod", "module anchor\n\ngo 1.21\n")?;
            write("handler.go", GO_HANDLER)?;
            write("main.go", GO_ANCHOR_MAIN)?;
            let exe = dir.join("hello");
            // The runtime's build flags, with the host's own build cache.
            run_tool(
                Command::new(interpreter()?)
                    .args(["build", "-trimpath", "-ldflags=-s", "-o"])
                    .arg(&exe)
                    .arg(".")
                    .current_dir(dir)
                    .env("CGO_ENABLED", "0")
                    .env("GOTOOLCHAIN", "local")
                    .env("GOFLAGS", "-mod=mod -buildvcs=false"),
                "go build",
            )?;
            Anchor::new("the go build binary", exe, [payload.into()])
        }
        "java" => {
            let java = interpreter()?;
            let sources = [
                write("Hello.java", JAVA)?,
                write("Main.java", JAVA_ANCHOR_MAIN)?,
                write("runwarm/Json.java", JAVA_JSON)?,
            ];
            let classes = dir.join("classes");
            // javac next to the java the daemon runs, else from PATH.
            let javac = java
                .parent()
                .map(|bin| bin.join("javac"))
                .filter(|p| p.is_file())
                .unwrap_or_else(|| PathBuf::from("javac"));
            run_tool(
                Command::new(javac)
                    .args(["-encoding", "UTF-8", "-g", "-nowarn", "-d"])
                    .arg(&classes)
                    .args(&sources),
                "javac",
            )?;
            let mut args: Vec<OsString> = [
                "-XX:+UseSerialGC",
                "-XX:TieredStopAtLevel=1",
                "-Xshare:auto",
                "-XX:-UsePerfData",
                "-cp",
            ]
            .map(OsString::from)
            .into();
            args.extend([classes.into(), "Main".into(), payload.into()]);
            Anchor::new(
                "java -cp classes Main (the runtime's JVM flags)",
                java,
                args,
            )
        }
        "csharp" => {
            let sources = [
                write("Hello.cs", CSHARP)?,
                write("AnchorMain.cs", CSHARP_ANCHOR_MAIN)?,
                write("RunwarmJson.cs", CSHARP_JSON)?,
            ];
            let exe = dir.join("hello.exe");
            run_tool(
                Command::new("mcs")
                    .args(["-debug", "-nologo"])
                    .arg(format!("-out:{}", exe.display()))
                    .args(&sources),
                "mcs",
            )?;
            Anchor::new(
                "mono hello.exe (mcs)",
                interpreter()?,
                [
                    "--debug".into(),
                    "-O=-branch,-inline".into(),
                    exe.into(),
                    payload.into(),
                ],
            )
        }
        "ruby" => {
            let main = write("main.rb", RUBY)?;
            Anchor::new(
                "ruby -e <load main.rb>",
                interpreter()?,
                [
                    "-rjson".into(),
                    "-e".into(),
                    RUBY_RUNNER.into(),
                    main.into(),
                    payload.into(),
                ],
            )
        }
        "php" => {
            let main = write("main.php", PHP)?;
            Anchor::new(
                "php -r <require main.php>",
                interpreter()?,
                ["-r".into(), PHP_RUNNER.into(), main.into(), payload.into()],
            )
        }
        "c" | "cpp" | "binary" => {
            let (source, compiler, standard) = match spec.runtime {
                "cpp" => (write("main.cpp", CPP)?, interpreter()?, "-std=gnu++17"),
                // The binary runtime probes no compiler: the host's `cc` builds its executable.
                "binary" => (write("main.c", C)?, PathBuf::from("cc"), "-std=gnu17"),
                _ => (write("main.c", C)?, interpreter()?, "-std=gnu17"),
            };
            let exe = dir.join("hello");
            // The runtime's own flags.
            run_tool(
                Command::new(&compiler)
                    .args([standard, "-O2", "-Wall", "-o"])
                    .arg(&exe)
                    .arg(&source),
                &compiler.display().to_string(),
            )?;
            if spec.runtime == "binary" {
                binary = Some(fs_err::read(&exe)?);
            }
            let label = match spec.runtime {
                "binary" => "the executable itself (cc -O2)",
                "cpp" => "the g++ -O2 binary",
                _ => "the gcc -O2 binary",
            };
            let mut anchor = Anchor::new(label, exe, std::iter::empty::<OsString>());
            anchor.stdin = true;
            anchor
        }
        "bash" => {
            let main = write("main.sh", BASH)?;
            let mut anchor = Anchor::new("bash main.sh", interpreter()?, [main.into()]);
            anchor.stdin = true;
            anchor.env.push(("PARAM_NAME".into(), param_name(&payload)));
            anchor
        }
        other => bail!("no anchor for runtime {other}"),
    };
    Ok(Built { anchor, binary })
}

/// What runwarm-exec-command puts in `PARAM_NAME` for this payload.
fn param_name(payload: &str) -> String {
    serde_json::from_str::<Value>(payload)
        .ok()
        .and_then(|v| v.get("name").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_default()
}

/// Runs a build tool to completion; its output tail is the error when it fails.
fn run_tool(command: &mut Command, what: &str) -> Result<()> {
    let out = command
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("starting {what}"))?;
    if !out.status.success() {
        let mut text = String::from_utf8_lossy(&out.stderr).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stdout));
        let tail: Vec<&str> = text.lines().rev().take(8).collect();
        bail!(
            "{what} failed ({}): {}",
            out.status,
            tail.into_iter().rev().collect::<Vec<_>>().join(" | ")
        );
    }
    Ok(())
}

impl Anchor {
    fn new(label: &str, program: PathBuf, args: impl IntoIterator<Item = OsString>) -> Anchor {
        Anchor {
            label: label.to_owned(),
            program,
            args: args.into_iter().collect(),
            stdin: false,
            env: Vec::new(),
        }
    }

    /// One fresh process, timed from spawn to exit, its output read; the last non-empty stdout
    /// line must be `expected`.
    pub fn run_once(&self, payload: &Value, expected: &Value) -> Result<Duration> {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(if self.stdin {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let input = format!("{payload}\n");
        let started = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", self.program.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A program that exits without reading its input closes the pipe: not an error.
            let _ = stdin.write_all(input.as_bytes());
        }
        let out = child
            .wait_with_output()
            .with_context(|| format!("waiting for {}", self.program.display()))?;
        let took = started.elapsed();
        ensure!(
            out.status.success(),
            "{} ended with {}: {}",
            self.label,
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let last = stdout
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or_default();
        let printed: Value = serde_json::from_str(last)
            .with_context(|| format!("{} printed {last:?}, not JSON", self.label))?;
        ensure!(
            &printed == expected,
            "{} returned {printed}, expected {expected}",
            self.label
        );
        Ok(took)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_known_runtime_has_a_spec_and_the_other_way_round() {
        for runtime in KNOWN {
            assert!(Spec::find(runtime).is_some(), "{runtime}");
        }
        assert_eq!(SPECS.len(), KNOWN.len());
    }

    #[test]
    fn a_code_only_change_changes_the_entry_and_keeps_the_dependency_files() {
        let spec = Spec::find("go").unwrap();
        let a = spec.files("a", None).unwrap();
        let b = spec.files("b", None).unwrap();
        assert_ne!(a["main.go"], b["main.go"]);
        assert_eq!(a["handler.go"], b["handler.go"]);
        assert_eq!(a["go.mod"], b["go.mod"]);
        assert_eq!(a["go.sum"], b["go.sum"]);
        let binary = Spec::find("binary").unwrap();
        assert!(binary.files("a", None).is_err());
        let files = binary.files("a", Some(b"\x7fELF")).unwrap();
        assert_eq!(files["hello"]["executable"], true);
    }

    #[test]
    fn bash_sees_the_name_as_runwarm_exec_command_passes_it() {
        assert_eq!(param_name(r#"{"name": "bench"}"#), "bench");
        assert_eq!(param_name("[]"), "");
    }
}
