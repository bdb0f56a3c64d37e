//! Issue 13 §4: reading back what runs. One file raw with its content type, a version pulled as
//! a folder that registers back to the same id, the diff of two versions, and the file route
//! refusing traversal and callers who may not invoke the script.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;

use hyper::Method;
use runwarm_e2e::{Daemon, Need, require};
use serde_json::{Value, json};

const BINARY: &[u8] = &[0, 159, 146, 150, 255, 10, 13];

fn manifest() -> Value {
    json!({"runtime": "python3", "entry": "main.py", "label": "1.0.0", "author": "Ada",
           "description": "read back", "env": {"GREETING": "hi"},
           "limits": {"timeout_ms": 4000, "cpu": 0.5},
           "params": {"type": "object", "properties": {"n": {"type": "integer", "minimum": 1.5}}},
           "pool": {"max": 2}})
}

fn files(main: &str) -> Value {
    json!({
        "main.py": main,
        "lib/util.py": {"text": "#!/usr/bin/env python3\nX = 1\n", "executable": true},
        "data.bin": {"base64": "AJ+Slv8KDQ=="},
    })
}

const MAIN_V1: &str = "import os\ndef handler(e, c):\n    return os.environ['GREETING']\n";
const MAIN_V2: &str =
    "import os\ndef handler(e, c):\n    # louder\n    return os.environ['GREETING'].upper()\n";

#[tokio::test]
async fn files_read_back_raw_and_a_pulled_folder_registers_as_the_same_version() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    let v1 = d.register("rb", manifest(), files(MAIN_V1)).await;
    let base = format!("/v1/scripts/rb/versions/{v1}/files");

    let main = d
        .client()
        .request(Method::GET, &format!("{base}/main.py"), &[], None)
        .await
        .unwrap();
    assert_eq!(main.status, 200);
    assert_eq!(&main.body[..], MAIN_V1.as_bytes());
    assert_eq!(main.headers["content-type"], "text/x-python; charset=utf-8");
    assert_eq!(main.headers["runwarm-executable"], "false");
    // A path with its `/` as sent and as `%2F`, and by label instead of id.
    for path in [
        format!("{base}/lib/util.py"),
        format!("{base}/lib%2Futil.py"),
        "/v1/scripts/rb/versions/1.0.0/files/lib/util.py".to_owned(),
    ] {
        let util = d
            .client()
            .request(Method::GET, &path, &[], None)
            .await
            .unwrap();
        assert_eq!(util.status, 200, "{path}");
        assert_eq!(util.headers["runwarm-executable"], "true", "{path}");
        assert!(util.headers["etag"].to_str().unwrap().len() == 66, "{path}");
    }
    let bin = d
        .client()
        .request(Method::GET, &format!("{base}/data.bin"), &[], None)
        .await
        .unwrap();
    assert_eq!((bin.status, &bin.body[..]), (200, BINARY));
    assert_eq!(bin.headers["content-type"], "application/octet-stream");

    // Traversal is refused as such; a path that is simply not there is a 404.
    for bad in [
        "..%2F..%2Fregistry.db",
        "lib%2F..%2Fmain.py",
        "lib%2F%2Futil.py",
        "%2Fetc%2Fpasswd",
    ] {
        let (status, problem) = d.call(Method::GET, &format!("{base}/{bad}"), None).await;
        assert_eq!(status, 400, "{bad}: {problem}");
    }
    let (status, problem) = d.call(Method::GET, &format!("{base}/nope.py"), None).await;
    assert_eq!(status, 404, "{problem}");
    assert!(
        problem["type"].as_str().unwrap().ends_with("/unknown-file"),
        "{problem}"
    );

    // Pull by label, then by tag, and register the folders back: the same version id.
    let dir = d.dir().join("pulled");
    let (code, out, err) = d.cli(&["pull", "rb@1.0.0", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(&v1), "{out}");
    assert_eq!(std::fs::read(dir.join("data.bin")).unwrap(), BINARY);
    let mode = std::fs::metadata(dir.join("lib/util.py"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o111, 0o111, "executable bit kept");
    let (code, out, err) = d.cli(&["--json", "register", dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    let answer: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(answer["version"], v1.as_str(), "{out}");
    assert_eq!(
        answer["created"], false,
        "the same version, not a new one: {out}"
    );
    // Pulling never overwrites.
    let (code, _, err) = d.cli(&["pull", "rb", dir.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("not empty"), "{err}");

    // A second version, and the diff between them: manifest keys, files, changed lines.
    let mut m2 = manifest();
    m2["label"] = json!("1.1.0");
    m2["limits"]["timeout_ms"] = json!(9000);
    let mut f2 = files(MAIN_V2);
    f2["extra.txt"] = json!("new\n");
    let v2 = d.register("rb", m2, f2).await;
    let dir2 = d.dir().join("pulled2");
    let (code, _, err) = d.cli(&["pull", "rb:latest", dir2.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    let (code, out, err) = d.cli(&["--json", "register", dir2.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains(&v2), "{out}");

    let (code, out, err) = d.cli(&["diff", "rb", "1.0.0", "latest"]);
    assert_eq!(code, 0, "{err}");
    for expected in [
        "label: \"1.0.0\" -> \"1.1.0\"",
        "limits.timeout_ms: 4000 -> 9000",
        "added      extra.txt",
        "modified   main.py",
        "+    # louder",
        "-    return os.environ['GREETING']",
    ] {
        assert!(out.contains(expected), "{expected:?} missing from\n{out}");
    }
    assert!(
        !out.contains("data.bin"),
        "unchanged files are not listed:\n{out}"
    );
    let (code, out, _) = d.cli(&["--json", "diff", "rb", &v1[..20], &v2]);
    assert_eq!(code, 0);
    let diff: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(diff["files"].as_array().unwrap().len(), 2, "{diff}");
}

/// The file route needs the right to invoke the script, like the version's manifest.
#[tokio::test]
async fn reading_a_file_needs_the_right_to_invoke_the_script() {
    if !require(&[
        Need::Program("python3"),
        Need::Program("setpriv"),
        Need::Program("curl"),
    ]) {
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        use std::io::Write as _;
        let _ = writeln!(
            std::io::stderr(),
            "*** SKIPPED readback access test: needs root ***"
        );
        return;
    }
    let d = Daemon::builder()
        .without_samples()
        .config("[access]\nsocket_mode = 0o666\n[access.scripts.closed]\nuids = [0]\n")
        .start()
        .await;
    std::fs::set_permissions(d.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    for name in ["open", "closed"] {
        d.register(name, manifest(), files(MAIN_V1)).await;
    }
    let status_as_nobody = |path: &str| {
        let out = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .args([
                "curl",
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--unix-socket",
            ])
            .arg(d.socket())
            .arg(format!("http://localhost{path}"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(
        status_as_nobody("/v1/scripts/open/versions/1.0.0/files/main.py"),
        "200"
    );
    assert_eq!(
        status_as_nobody("/v1/scripts/closed/versions/1.0.0/files/main.py"),
        "403"
    );
    assert_eq!(
        status_as_nobody("/v1/scripts/closed/versions/1.0.0/files/lib/util.py"),
        "403"
    );
}
