//! What a test sends a daemon: HTTP calls, registrations, invocations, CLI runs.

use std::process::Command;
use std::time::{Duration, Instant};

use hyper::Method;
use runwarm_supervisor::client::InvokeOptions;
use serde_json::{Value, json};

use super::Daemon;
use crate::{PREPARE_BOUND, bin_dir};

impl Daemon {
    /// One API call as `uid` with supplementary `groups`, through curl under `setpriv` (the
    /// daemon sees that uid in `SO_PEERCRED`): (status, JSON body or the text). The socket
    /// must be open to that uid (`[access] socket_mode`). Status 0 when nothing answered (the
    /// connection was refused or reset).
    pub fn call_as(
        &self,
        uid: u32,
        groups: &[u32],
        method: &str,
        path: &str,
        body: Option<&str>,
        headers: &[&str],
    ) -> (u16, Value) {
        let mut cmd = Command::new("setpriv");
        cmd.arg(format!("--reuid={uid}"))
            .arg(format!("--regid={uid}"));
        if groups.is_empty() {
            cmd.arg("--clear-groups");
        } else {
            let list: Vec<String> = groups.iter().map(u32::to_string).collect();
            cmd.arg(format!("--groups={}", list.join(",")));
        }
        cmd.args(["curl", "-sS", "--max-time", "60", "-w", "\n%{http_code}"])
            .arg("--unix-socket")
            .arg(self.socket())
            .args(["-X", method])
            .arg(format!("http://localhost{path}"));
        for h in headers {
            cmd.args(["-H", h]);
        }
        if let Some(b) = body {
            cmd.args(["-H", "content-type: application/json", "--data-binary", b]);
        }
        let out = cmd.output().expect("run curl under setpriv");
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let (body, status) = text.rsplit_once('\n').unwrap_or(("", &text));
        let status: u16 = status.trim().parse().unwrap_or_else(|_| {
            panic!(
                "curl as uid {uid}: {text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        let v = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.to_owned()));
        (status, v)
    }

    /// The execution's record once it is terminal (completed, failed, timeout or cancelled);
    /// fails the test after 60 s.
    pub async fn wait_terminal(&self, id: &str) -> Value {
        self.wait_terminal_within(id, Duration::from_secs(60)).await
    }

    /// [`Daemon::wait_terminal`] with another bound (a first call that prepares a toolchain).
    pub async fn wait_terminal_within(&self, id: &str, bound: Duration) -> Value {
        let until = Instant::now() + bound;
        loop {
            let (status, rec) = self
                .call(Method::GET, &format!("/v1/executions/{id}"), None)
                .await;
            if status == 200
                && ["completed", "failed", "timeout", "cancelled"]
                    .contains(&rec["state"].as_str().unwrap_or(""))
            {
                return rec;
            }
            assert!(
                Instant::now() < until,
                "{id} not terminal: {status} {rec}\n{}",
                self.report()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Runs the `runwarm` client against this daemon's socket: (exit code, stdout, stderr).
    pub fn cli(&self, args: &[&str]) -> (i32, String, String) {
        let out = Command::new(bin_dir().join("runwarm"))
            .arg("--socket")
            .arg(self.socket())
            .args(args)
            .output()
            .expect("run runwarm");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    /// Sends a request; returns (status, JSON body or the raw text as a JSON string).
    pub async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let body = body.map(|b| serde_json::to_vec(&b).unwrap());
        self.raw(method, path, &[], body).await
    }

    /// Sends raw bytes.
    pub async fn raw(
        &self,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> (u16, Value) {
        let r = self
            .client
            .request(method.clone(), path, headers, body)
            .await
            .unwrap_or_else(|e| panic!("{method} {path} failed: {e}\n{}", self.report()));
        let v = serde_json::from_slice(&r.body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&r.body).into_owned()));
        (r.status, v)
    }

    /// Registers a bundle and waits until its prepare has settled (ready or failed), as
    /// `runwarm register` does; panics unless 200/201. Returns the version id. Tests of a
    /// version still preparing use [`Daemon::register_answer`].
    pub async fn register(&self, name: &str, manifest: Value, files: Value) -> String {
        let body = self.register_answer(name, manifest, files).await;
        let version = body["version"].as_str().unwrap().to_owned();
        if body.get("prepare").is_some() {
            self.wait_prepare(name, &version, &["ready", "failed"], PREPARE_BOUND)
                .await;
        }
        version
    }

    /// Registers a bundle; panics unless 200/201. Returns the whole answer (`version`,
    /// `created`, and `prepare` when the runtime prepares).
    pub async fn register_answer(&self, name: &str, manifest: Value, files: Value) -> Value {
        let (status, body) = self
            .call(
                Method::POST,
                "/v1/scripts",
                Some(json!({"name": name, "manifest": manifest, "files": files})),
            )
            .await;
        assert!(
            status == 200 || status == 201,
            "register {name}: {status} {body}\n{}",
            self.report()
        );
        body
    }

    /// A version's `prepare` as `GET /v1/scripts/{name}/versions/{version}` shows it (`null`
    /// for a runtime without a prepare section).
    pub async fn prepare_status(&self, name: &str, version: &str) -> Value {
        let path = format!("/v1/scripts/{name}/versions/{version}");
        let (status, body) = self.call(Method::GET, &path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        body["prepare"].clone()
    }

    /// Polls a version until its prepare state is one of `states`; panics with the last status
    /// after `bound`.
    pub async fn wait_prepare(
        &self,
        name: &str,
        version: &str,
        states: &[&str],
        bound: Duration,
    ) -> Value {
        let until = Instant::now() + bound;
        loop {
            let p = self.prepare_status(name, version).await;
            if states.iter().any(|s| p["state"] == *s) {
                return p;
            }
            assert!(
                Instant::now() < until,
                "{name} {version}: prepare not {states:?} within {bound:?}; last status: {p:#}\n{}",
                self.report()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Invokes and returns (status, body); `query` is appended as is (e.g. `?tag=prod`).
    pub async fn invoke(&self, name: &str, query: &str, payload: Value) -> (u16, Value) {
        self.call(
            Method::POST,
            &format!("/v1/scripts/{name}/invoke{query}"),
            Some(payload),
        )
        .await
    }

    /// Invokes and insists on a completed record; returns it.
    pub async fn invoke_ok(&self, name: &str, payload: Value) -> Value {
        let (status, rec) = self.invoke(name, "", payload).await;
        assert_eq!(status, 200, "{rec}\n{}", self.report());
        assert_eq!(rec["state"], "completed", "{rec:#}\n{}", self.report());
        rec
    }

    /// The client's invoke options type, re-exported for tests.
    pub fn invoke_options() -> InvokeOptions {
        InvokeOptions::default()
    }
}
