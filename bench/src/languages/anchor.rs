//! The anchor: the same handler built on the host and run as a fresh process per call, outside
//! runwarm, with the runtime's own launch and build flags so only runwarm is taken away.

use std::ffi::OsString;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use super::Spec;
use super::sources::*;

/// Loads the entry given as `argv[1]` and prints what its handler returns for the JSON in `argv[2]`.
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
pub(super) fn param_name(payload: &str) -> String {
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
