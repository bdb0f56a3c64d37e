//! Secrets: set from stdin through the CLI, given to the executor's environment only, redacted
//! from everything the script outputs, never shown by the API, in a command line or in the
//! log; a new value reaches the next executor; unknown names are refused; admins only.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use hyper::Method;
use runwarm_e2e::{Daemon, Need, bin_dir, require};
use serde_json::{Value, json};

const FIRST: &str = "correct-horse-battery-staple-1";
const SECOND: &str = "second-value-of-the-secret-2";

const SCRIPT: &str = concat!(
    "import os, sys\n",
    "def handler(event, context):\n",
    "    v = os.environ['DB_PASSWORD']\n",
    "    print('pw=' + v)\n",
    "    sys.stderr.write('err ' + v + '\\n')\n",
    "    return {'pw': v, 'len': len(v), 'head': v[:6]}\n",
);

/// Runs `runwarm` against `d` (optionally as another uid through setpriv) with `stdin`.
fn runwarm(d: &Daemon, as_uid: Option<u32>, args: &[&str], stdin: &str) -> (Option<i32>, String) {
    let mut cmd = match as_uid {
        Some(uid) => {
            let mut c = Command::new("setpriv");
            c.args([
                &format!("--reuid={uid}"),
                &format!("--regid={uid}"),
                "--clear-groups",
            ])
            .arg(bin_dir().join("runwarm"));
            c
        }
        None => Command::new(bin_dir().join("runwarm")),
    };
    let mut child = cmd
        .arg("--socket")
        .arg(d.socket())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code(), text)
}

/// The whole event stream of an ended execution, as text.
async fn events_text(d: &Daemon, id: &str) -> String {
    let mut stream = d
        .client()
        .stream(Method::GET, &format!("/v1/executions/{id}/events"))
        .await
        .unwrap();
    assert_eq!(stream.status, 200);
    let mut text = String::new();
    let until = Instant::now() + Duration::from_secs(30);
    while let Some(chunk) = tokio::time::timeout(Duration::from_secs(30), stream.chunk())
        .await
        .unwrap()
        .unwrap()
    {
        text.push_str(&String::from_utf8_lossy(&chunk));
        if text.contains("event: end") || Instant::now() > until {
            break;
        }
    }
    text
}

/// Every command line of the daemon, of its instance's processes (helpers, executors) and, to
/// catch a process that does not carry the instance id, of every other process on the host.
fn cmdlines(d: &Daemon) -> Vec<(i32, String)> {
    let mut pids = d.instance_processes();
    pids.push(i32::try_from(d.pid()).unwrap());
    assert!(pids.len() > 1, "no executor of the instance is alive");
    let all = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok());
    pids.extend(all);
    pids.into_iter()
        .map(|pid| {
            let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            (pid, String::from_utf8_lossy(&cmd).into_owned())
        })
        .collect()
}

async fn run_async(d: &Daemon) -> Value {
    let (status, accepted) = d
        .raw(
            Method::POST,
            "/v1/scripts/checkdb/invoke",
            &[("prefer", "respond-async")],
            Some(b"{}".to_vec()),
        )
        .await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_owned();
    d.wait_terminal(&id).await
}

#[tokio::test]
async fn a_secret_reaches_the_script_and_nothing_else() {
    if !require(&[Need::Program("python3")]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    let (code, out) = runwarm(
        &d,
        None,
        &["secret", "set", "DB_PASSWORD"],
        &format!("{FIRST}\n"),
    );
    assert_eq!(code, Some(0), "{out}");
    let store = d.dir().join("state").join("secrets.json");
    let store = if store.exists() {
        store
    } else {
        // The harness's state directory name is its own business: find the file.
        walk(d.dir(), "secrets.json").expect("secrets.json under the daemon's directory")
    };
    assert_eq!(
        std::fs::metadata(&store).unwrap().permissions().mode() & 0o777,
        0o600
    );

    let manifest = json!({"runtime": "python3", "entry": "main.py", "secrets": ["DB_PASSWORD"]});
    let version = d
        .register("checkdb", manifest, json!({ "main.py": SCRIPT }))
        .await;
    let rec = run_async(&d).await;
    assert_eq!(rec["state"], "completed", "{rec:#}\n{}", d.report());
    assert_eq!(rec["result"]["len"], FIRST.len(), "{rec:#}");
    assert_eq!(rec["result"]["head"], &FIRST[..6], "{rec:#}");
    assert_eq!(rec["result"]["pw"], "***", "{rec:#}");
    assert!(
        rec["stdout"].as_str().unwrap().contains("pw=***"),
        "{rec:#}"
    );
    assert!(
        rec["stderr"].as_str().unwrap().contains("err ***"),
        "{rec:#}"
    );
    let id = rec["id"].as_str().unwrap().to_owned();

    // While its executor is alive (idle in the pool), no command line shows the value.
    for (pid, cmd) in cmdlines(&d) {
        assert!(!cmd.contains(FIRST), "/proc/{pid}/cmdline: {cmd}");
    }
    let events = events_text(&d, &id).await;
    assert!(events.contains("pw=***"), "{events}");
    let mut shown = vec![events];
    for path in [
        format!("/v1/executions/{id}"),
        "/v1/executions".to_owned(),
        format!("/v1/scripts/checkdb/versions/{version}"),
        "/v1/scripts/checkdb/versions".to_owned(),
        "/v1/info".to_owned(),
        "/v1/secrets".to_owned(),
        "/v1/pools".to_owned(),
        "/v1/audit".to_owned(),
    ] {
        let (status, body) = d.call(Method::GET, &path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        shown.push(body.to_string());
    }
    let audit = shown.last().unwrap();
    assert!(
        audit.contains("secret.set") && audit.contains("DB_PASSWORD"),
        "{audit}"
    );
    let (_, listed) = runwarm(&d, None, &["secret", "ls"], "");
    assert!(
        listed.contains("DB_PASSWORD") && listed.contains("checkdb"),
        "{listed}"
    );
    shown.push(listed);
    for text in &shown {
        assert!(!text.contains(FIRST), "the value leaked: {text}");
    }

    // A new value reaches the next executor without a re-registration.
    let (code, out) = runwarm(&d, None, &["secret", "set", "DB_PASSWORD"], SECOND);
    assert_eq!(code, Some(0), "{out}");
    let rec2 = run_async(&d).await;
    assert_eq!(rec2["state"], "completed", "{rec2:#}");
    assert_eq!(rec2["result"]["head"], &SECOND[..6], "{rec2:#}");
    assert_eq!(rec2["result"]["pw"], "***", "{rec2:#}");
    assert_ne!(rec2["executor"]["pid"], rec["executor"]["pid"], "{rec2:#}");
    for (pid, cmd) in cmdlines(&d) {
        assert!(
            !cmd.contains(FIRST) && !cmd.contains(SECOND),
            "/proc/{pid}/cmdline: {cmd}"
        );
    }
    let log = d.log();
    assert!(
        !log.contains(FIRST) && !log.contains(SECOND),
        "the daemon's log shows a value"
    );
}

fn walk(dir: &std::path::Path, name: &str) -> Option<std::path::PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if p.file_name().is_some_and(|n| n == name) {
            return Some(p);
        }
        if p.is_dir()
            && let Some(found) = walk(&p, name)
        {
            return Some(found);
        }
    }
    None
}

#[tokio::test]
async fn a_version_naming_an_unknown_secret_is_refused_with_its_name() {
    let d = Daemon::builder().without_samples().start().await;
    let (status, body) = d
        .call(
            Method::POST,
            "/v1/scripts",
            Some(json!({
                "name": "needs",
                "manifest": {"runtime": "bash", "entry": "a.sh", "secrets": ["NO_SUCH_SECRET"]},
                "files": {"a.sh": "echo 1"},
            })),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("NO_SUCH_SECRET"),
        "{body}"
    );
    let (status, _) = d.call(Method::GET, "/v1/scripts/needs", None).await;
    assert_eq!(status, 404, "a refused registration created the script");
}

#[tokio::test]
async fn a_non_admin_can_neither_set_nor_list_secrets() {
    if !require(&[Need::Program("setpriv")]) {
        return;
    }
    if !nix::unistd::geteuid().is_root() {
        let _ = writeln!(
            std::io::stderr(),
            "*** SKIPPED secret access test: needs root to act as another uid ***"
        );
        return;
    }
    let d = Daemon::builder()
        .without_samples()
        .config("[access]\nadmin_uids = [0]\nsocket_mode = 0o666\n")
        .start()
        .await;
    // The temp dir must be reachable for uid 65534.
    std::fs::set_permissions(d.dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, out) = runwarm(&d, None, &["secret", "set", "TOKEN"], "root-set-value");
    assert_eq!(code, Some(0), "{out}");
    let (code, out) = runwarm(&d, Some(65534), &["secret", "ls"], "");
    assert_eq!(code, Some(4), "{out}");
    assert!(out.contains("403") || out.contains("forbidden"), "{out}");
    assert!(!out.contains("TOKEN"), "{out}");
    let (code, out) = runwarm(
        &d,
        Some(65534),
        &["secret", "set", "TOKEN"],
        "nobody-set-value",
    );
    assert_eq!(code, Some(4), "{out}");
    let (code, out) = runwarm(&d, Some(65534), &["secret", "rm", "TOKEN"], "");
    assert_eq!(code, Some(4), "{out}");
    // The value root set is still the one in force.
    let (code, out) = runwarm(&d, None, &["--json", "secret", "ls"], "");
    assert_eq!(code, Some(0), "{out}");
    let list: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(list[0]["set_by"]["uid"], 0, "{list}");
}

#[tokio::test]
async fn a_systemd_credential_is_used_in_place_listed_and_read_only() {
    if !require(&[Need::Program("bash")]) {
        return;
    }
    let creds = tempfile::tempdir().unwrap();
    std::fs::write(creds.path().join("API_TOKEN"), "token-from-systemd-42").unwrap();
    // Only the daemon reads it (as systemd's LoadCredential= directory is the service's own):
    // the executor gets the value through its environment.
    std::fs::set_permissions(creds.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let d = Daemon::builder()
        .without_samples()
        .env("CREDENTIALS_DIRECTORY", creds.path().to_str().unwrap())
        .start()
        .await;
    d.register(
        "token",
        json!({"runtime": "bash", "entry": "main.sh", "secrets": ["API_TOKEN"]}),
        json!({"main.sh": "echo \"token=$API_TOKEN\"\necho \"{\\\"len\\\": ${#API_TOKEN}}\"\n"}),
    )
    .await;
    let (status, rec) = d.invoke("token", "", json!({})).await;
    assert_eq!(status, 200, "{rec}");
    assert_eq!(rec["state"], "completed", "{rec:#}\n{}", d.report());
    assert_eq!(rec["result"]["len"], 21, "{rec:#}");
    assert!(
        rec["stdout"].as_str().unwrap().contains("token=***"),
        "{rec:#}"
    );
    let (status, list) = d.call(Method::GET, "/v1/secrets", None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list[0]["name"], "API_TOKEN", "{list}");
    assert_eq!(list[0]["source"], "systemd", "{list}");
    assert_eq!(list[0]["used_by"], json!(["token"]), "{list}");
    assert!(!list.to_string().contains("token-from-systemd"), "{list}");
    let (status, p) = d
        .call(
            Method::PUT,
            "/v1/secrets/API_TOKEN",
            Some(json!({"value": "other-value"})),
        )
        .await;
    assert_eq!(status, 409, "{p}");
    assert!(!p.to_string().contains("token-from-systemd"), "{p}");
}

/// `{ name, as = "file" }`: the value is the file `/run/secrets/NAME`, readable by the executor
/// only, on a read-only tmpfs, and in neither its environment nor anywhere on the host's disks.
#[tokio::test]
async fn a_secret_as_a_file_is_on_a_private_read_only_tmpfs() {
    if !require(&[Need::Root, Need::Program("bash")]) {
        return;
    }
    let d = Daemon::builder().without_samples().start().await;
    let (code, out) = runwarm(
        &d,
        None,
        &["secret", "set", "TLS_KEY"],
        "file-secret-value-42\n",
    );
    assert_eq!(code, Some(0), "{out}");
    let script = r#"f=/run/secrets/TLS_KEY
value=$(cat "$f")
perm=$(stat -c '%a %u' "$f")
if touch /run/secrets/other 2>/dev/null; then writable=yes; else writable=no; fi
fstype=$(awk '$2 == "/run/secrets" {print $3 "," $4}' /proc/self/mounts)
inenv=$(env | grep -c file-secret-value || true)
printf '{"len": %d, "perm": "%s", "writable": "%s", "mount": "%s", "in_env": %d}\n' \
  "${#value}" "$perm" "$writable" "$fstype" "$inenv"
"#;
    let manifest = json!({"runtime": "bash", "entry": "main.sh",
        "secrets": [{"name": "TLS_KEY", "as": "file"}]});
    let v = d
        .register("tls", manifest, json!({ "main.sh": script }))
        .await;
    let (status, rec) = d.invoke("tls", "", json!({})).await;
    assert_eq!(status, 200, "{rec}");
    assert_eq!(rec["state"], "completed", "{rec:#}\n{}", d.report());
    let r = &rec["result"];
    assert_eq!(r["len"], "file-secret-value-42".len(), "{rec:#}");
    assert_eq!(
        r["perm"], "400 1000",
        "owner-read only, the executor's uid: {rec:#}"
    );
    assert_eq!(r["writable"], "no", "{rec:#}");
    let mount = r["mount"].as_str().unwrap();
    assert!(mount.starts_with("tmpfs,ro"), "a read-only tmpfs: {mount}");
    assert_eq!(r["in_env"], 0, "not in the environment: {rec:#}");
    // The version shows only the name and how it is delivered.
    let (_, shown) = d
        .call(Method::GET, &format!("/v1/scripts/tls/versions/{v}"), None)
        .await;
    assert_eq!(
        shown["manifest"]["secrets"],
        json!([{"name": "TLS_KEY", "as": "file"}])
    );
    assert!(!shown.to_string().contains("file-secret-value-42"));
    for (pid, cmd) in cmdlines(&d) {
        assert!(
            !cmd.contains("file-secret-value-42"),
            "/proc/{pid}/cmdline: {cmd}"
        );
    }
}

#[tokio::test]
async fn a_file_secret_without_the_sandbox_fails_with_a_reason() {
    if !require(&[Need::Program("bash")]) {
        return;
    }
    let d = Daemon::builder()
        .without_samples()
        .config("[sandbox]\nmode = \"off\"\n")
        .start()
        .await;
    let (code, out) = runwarm(&d, None, &["secret", "set", "TLS_KEY"], "v-123456\n");
    assert_eq!(code, Some(0), "{out}");
    let manifest = json!({"runtime": "bash", "entry": "main.sh",
        "secrets": [{"name": "TLS_KEY", "as": "file"}]});
    d.register("tls", manifest, json!({ "main.sh": "echo '{}'\n" }))
        .await;
    let (status, rec) = d.invoke("tls", "", json!({})).await;
    assert_eq!(status, 200, "{rec}");
    assert_eq!(rec["state"], "failed", "{rec:#}");
    let message = rec["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("/run/secrets") && message.contains("minimal root"),
        "{message}"
    );
    assert!(!rec.to_string().contains("v-123456"));
}
