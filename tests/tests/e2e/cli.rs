//! The `runwarm` client against a real daemon: documented exit codes, and `register` waiting
//! for the prepare.

use std::process::Command;

use runwarm_e2e::{Daemon, Need, bin_dir, require};
use serde_json::Value;

fn runwarm(d: &Daemon, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(bin_dir().join("runwarm"))
        .arg("--socket")
        .arg(d.socket())
        .args(args)
        .output()
        .expect("run runwarm");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn invoke_exit_codes_follow_the_outcome() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = Daemon::start().await;
    let src = "import time\ndef handler(e, c):\n    if e.get('fail'):\n        raise RuntimeError('asked to fail')\n    if e.get('sleep'):\n        time.sleep(e['sleep'])\n    return {'ok': True}\n";
    // Through the CLI, which returns once the version is prepared: the 500 ms limit would
    // otherwise also have to cover the prepare of the first invocation.
    let dir = d.dir().join("codes");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("runwarm.toml"),
        "runtime = \"python3\"\nentry = \"main.py\"\n\n[limits]\ntimeout_ms = 500\n",
    )
    .unwrap();
    std::fs::write(dir.join("main.py"), src).unwrap();
    let (code, out, err) = runwarm(&d, &["register", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}\n{}", d.report());

    let (code, out, err) = runwarm(&d, &["invoke", "codes", "-d", "{}"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("\"ok\""), "{out}");
    let (code, _, err) = runwarm(&d, &["invoke", "codes", "-d", "{\"fail\": true}"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("asked to fail"), "{err}");
    let (code, _, err) = runwarm(&d, &["invoke", "codes", "-d", "{\"sleep\": 5}"]);
    assert_eq!(code, 3, "{err}");
    let (code, _, err) = runwarm(&d, &["invoke", "no-such-script"]);
    assert_eq!(code, 4, "{err}");
    let (code, _, err) = runwarm(&d, &["invoke", "transform-python", "-d", "{\"items\": 3}"]);
    assert_eq!(code, 4, "{err}");
    assert!(err.contains("/items"), "violations are printed: {err}");
    let (code, _, _) = runwarm(&d, &["invoke", "codes", "-d", "{not json"]);
    assert_eq!(code, 2);
    let (code, out, _) = runwarm(
        &d,
        &[
            "--json",
            "invoke",
            "hello-python",
            "-d",
            "{\"name\":\"cli\"}",
        ],
    );
    assert_eq!(code, 0);
    let rec: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(rec["result"]["greeting"], "hello cli");
}

#[tokio::test]
async fn register_ls_tag_and_api_work_from_the_cli() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    let dir = d.dir().join("cli-script");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("runwarm.toml"),
        "name = \"from-cli\"\nruntime = \"python3\"\nentry = \"main.py\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("main.py"), "def handler(e, c):\n    return 'v1'\n").unwrap();
    let (code, out, err) = runwarm(&d, &["register", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("from-cli"), "{out}");
    let (code, out, _) = runwarm(&d, &["ls"]);
    assert_eq!(code, 0);
    assert!(out.contains("from-cli"), "{out}");
    let (code, out, _) = runwarm(&d, &["api", "GET", "/v1/scripts/from-cli"]);
    assert_eq!(code, 0);
    let detail: serde_json::Value = serde_json::from_str(&out).unwrap();
    let v1 = detail["latest"].as_str().unwrap().to_owned();
    let (code, _, err) = runwarm(&d, &["tag", "from-cli", "prod", &v1]);
    assert_eq!(code, 0, "{err}");
    let (code, out, _) = runwarm(&d, &["invoke", "from-cli:prod"]);
    assert_eq!((code, out.trim()), (0, "\"v1\""));
    let (code, _, _) = runwarm(&d, &["api", "GET", "/v1/scripts/none-such"]);
    assert_eq!(code, 4);
}

#[tokio::test]
async fn a_single_py_file_registers_as_python3_once_prepared() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    let file = d.dir().join("single.py");
    std::fs::write(&file, "def handler(e, c):\n    return 'single'\n").unwrap();
    let (code, out, err) = runwarm(&d, &["register", file.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}\n{}", d.report());
    assert!(out.starts_with("registered single sha256:"), "{out}");
    assert!(out.contains("(new), prepared"), "{out}");

    let (code, out, _) = runwarm(&d, &["--json", "show", "single"]);
    assert_eq!(code, 0, "{out}");
    let script: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(script["runtime"], "python3", "{script}");
    // `register` returned only once the prepare was over: the version says so.
    let version = script["latest"].as_str().unwrap();
    let path = format!(
        "/v1/scripts/single/versions/{}",
        runwarm_supervisor::client::escape(version)
    );
    let (code, out, _) = runwarm(&d, &["api", "GET", &path]);
    assert_eq!(code, 0, "{out}");
    let detail: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(detail["prepare"]["state"], "ready", "{detail}");

    let (code, out, err) = runwarm(&d, &["invoke", "single"]);
    assert_eq!((code, out.trim()), (0, "\"single\""), "{err}");
}

#[tokio::test]
async fn a_requirement_that_does_not_exist_fails_the_registration() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    let dir = d.dir().join("broken-deps");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("runwarm.toml"),
        "name = \"broken-deps\"\nruntime = \"python3\"\nentry = \"main.py\"\n",
    )
    .unwrap();
    std::fs::write(dir.join("main.py"), "def handler(e, c):\n    return 1\n").unwrap();
    std::fs::write(dir.join("requirements.txt"), "no-such-package-xyz==1\n").unwrap();
    let (code, out, err) = runwarm(&d, &["register", dir.to_str().unwrap()]);
    // 1: the script failed (its invocations would answer E001).
    assert_eq!(code, 1, "{out}{err}\n{}", d.report());
    assert!(
        err.contains("preparing it failed") && err.contains("no-such-package-xyz"),
        "the resolver's message reaches stderr: {err}"
    );
}
