//! runwarm under a real systemd as PID 1: the README's install steps as printed, then socket
//! activation, readiness, confinement, IPv4 and IPv6 for `network = "host"`, reload (and a
//! refused reload), journal priorities, restart after SIGKILL with accepted async work resumed,
//! the watchdog, and a drain that leaves no executor and no cgroup.
//!
//! The host's PID 1 is not systemd and there is no container engine, so the test builds its
//! own container (`container.rs`): `unshare` (new pid, mount, uts, ipc, net and cgroup
//! namespaces) runs `BOOT_SCRIPT`, which mounts `/proc`, sysfs, a small `/dev` and the host's
//! cgroup hierarchies read-write over an overlay of a cached Debian root, `pivot_root`s into it
//! and execs `/lib/systemd/systemd`. `nsenter` runs commands inside. The root
//! (`debootstrap --variant=minbase`, ~250 MB, ~1.5 min) is kept in `CACHE` between runs and
//! rebuilt when its stamp differs from `ROOT_STAMP`; each run writes only to its own overlay
//! layer, so every run starts from the same pristine root.
//!
//! systemd as PID 1 raises the host's `fs.file-max` (and may raise `fs.nr_open`): both are
//! restored afterwards, as are the cgroups the container used.

use std::io::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

use runwarm_e2e::{Need, require};
use serde_json::{Value, json};

mod container;
mod host;
mod root;

use container::{Container, SOCKET, cannot_run};
use host::SysctlGuard;
use root::cached_root;

/// The README's "Install as a systemd service" commands, continuation lines joined, without
/// the build (the test uses the binaries `cargo test` built) and without `sudo` (it is root).
fn readme_install_steps() -> Vec<String> {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    let section = readme
        .split_once("### Install as a systemd service")
        .map(|(_, rest)| rest)
        .expect("README has no \"Install as a systemd service\" section");
    let block = section
        .split_once("```sh\n")
        .and_then(|(_, rest)| rest.split_once("```"))
        .map(|(block, _)| block)
        .expect("the install section has no sh block");
    let joined = block.replace("\\\n", " ");
    let steps: Vec<String> = joined
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with("cargo build"))
        .map(|l| l.replace("sudo ", ""))
        .collect();
    assert!(
        steps
            .iter()
            .any(|s| s.contains("systemctl enable --now runwarm.socket")),
        "{steps:?}"
    );
    steps
}

/// A Python script with the host's network: binds TCP on 127.0.0.1 and ::1.
fn dual_stack_script() -> Value {
    json!({
        "name": "dual-stack",
        "manifest": {"runtime": "python3", "entry": "main.py", "network": "host"},
        "files": {"main.py": "import socket\n\ndef handler(event, context):\n    out = {}\n    for family, addr in ((socket.AF_INET, '127.0.0.1'), (socket.AF_INET6, '::1')):\n        s = socket.socket(family, socket.SOCK_STREAM)\n        s.bind((addr, 0))\n        s.listen(1)\n        out[addr] = s.getsockname()[1]\n        s.close()\n    return out\n"}
    })
}

#[test]
fn runwarm_runs_under_a_real_systemd() {
    if !require(&[
        Need::Root,
        Need::Program("unshare"),
        Need::Program("nsenter"),
        Need::Program("debootstrap"),
    ]) {
        return;
    }
    let started = Instant::now();
    let root = match cached_root() {
        Ok(r) => r,
        Err(reason) => {
            cannot_run(&format!("no Debian root for the container: {reason}"));
            return;
        }
    };
    let root_ready = started.elapsed();
    // Dropped last: the container is gone before the host's values come back.
    let _sysctls = SysctlGuard::save();
    let c = Container::boot(&root);
    // systemctl needs systemd's private socket, which appears a moment after the exec.
    c.wait_for("systemd's control socket", Duration::from_secs(30), |c| {
        Path::new(&format!("/proc/{}/root/run/systemd/private", c.pid1)).exists()
    });
    let state = c.ok("systemctl is-system-running --wait || true");
    assert!(
        state.trim() == "running",
        "systemd in the container is {state:?}:\n{}",
        c.ok("systemctl --failed --no-pager --plain")
    );
    let booted = started.elapsed();

    // The README's steps as printed; the last one (a client call) is the first connection.
    let steps = readme_install_steps();
    let (client_call, install) = steps.split_last().unwrap();
    assert!(client_call.starts_with("runwarm "), "{client_call}");
    for step in install {
        let (ok, out) = c.sh(&format!("cd /root/src && {step}"));
        assert!(ok, "README step `{step}` failed:\n{out}\n{}", c.journal());
    }
    assert_eq!(c.ok("systemctl is-active runwarm.socket").trim(), "active");
    assert_eq!(
        c.show("ActiveState"),
        "inactive",
        "the service must wait for its first connection"
    );
    let info_text = c.ok(&format!("cd /root/src && {client_call}"));
    assert!(info_text.contains("runwarmd"), "{info_text}");
    // Type=notify: active/running only after READY=1.
    assert_eq!(c.show("ActiveState"), "active", "{}", c.journal());
    assert_eq!(c.show("SubState"), "running");
    assert_eq!(c.show("Type"), "notify");
    let installed = started.elapsed();

    // Confined: every layer measured active.
    let (status, info) = c.api("GET", "/v1/info", &[], None);
    assert_eq!(status, 200, "{info}");
    let sandbox = &info["sandbox"];
    assert_eq!(sandbox["mode"], "required", "{sandbox:#}");
    for (ns, on) in sandbox["namespaces"].as_object().unwrap() {
        assert_eq!(on, true, "namespace {ns}: {sandbox:#}");
    }
    for layer in [
        "unprivileged_uid",
        "capabilities_dropped",
        "no_new_privs",
        "seccomp",
        "minimal_root",
    ] {
        assert_eq!(sandbox[layer], true, "{layer}: {sandbox:#}");
    }
    let controllers = sandbox["cgroup_controllers"].to_string();
    for c in ["memory", "pids", "cpu"] {
        assert!(controllers.contains(c), "{c}: {sandbox:#}");
    }
    assert!(sandbox.get("problems").is_none(), "{sandbox:#}");

    // An invocation through the socket, and a script with the host's network on both families.
    let (status, rec) = c.api(
        "POST",
        "/v1/scripts/hello-python/invoke",
        &[],
        Some(&json!({"name": "systemd"})),
    );
    assert_eq!(status, 200, "{rec}");
    assert_eq!(rec["state"], "completed", "{rec:#}");
    assert_eq!(rec["result"]["greeting"], "hello systemd", "{rec:#}");
    let (status, reg) = c.api("POST", "/v1/scripts", &[], Some(&dual_stack_script()));
    assert!(status == 200 || status == 201, "{reg}");
    let (status, rec) = c.api(
        "POST",
        "/v1/scripts/dual-stack/invoke",
        &[],
        Some(&json!({})),
    );
    assert_eq!(status, 200, "{rec}");
    assert_eq!(rec["state"], "completed", "{rec:#}");
    assert!(
        rec["result"]["127.0.0.1"].as_u64().is_some_and(|p| p > 0),
        "{rec:#}"
    );
    assert!(
        rec["result"]["::1"].as_u64().is_some_and(|p| p > 0),
        "{rec:#}"
    );

    // The start-up line keeps the layers as fields of the JSON line.
    let measured = c.ok(
        "journalctl -u runwarm.service -o cat --no-pager | grep 'confinement measured' | tail -n 1",
    );
    let measured: Value = serde_json::from_str(measured.trim())
        .unwrap_or_else(|e| panic!("not one JSON object ({e}): {measured}"));
    assert_eq!(measured["seccomp"], true, "{measured}");
    assert_eq!(measured["minimal_root"], true, "{measured}");
    assert!(measured.get("layers").is_none(), "{measured}");

    // Reload applies a changed configuration: a new runtimes directory.
    let pid_before = c.show("MainPID");
    c.ok(r#"mkdir -p /etc/runwarm/runtimes && cat > /etc/runwarm/runtimes/greet.toml <<'EOF'
name = "greet"
language = "bash"
extensions = ["sh"]
modes = ["command"]
default_mode = "command"
probe = ["bash", "-c", "command -v bash; echo ${BASH_VERSION}"]
command = ["{exec_command}", "--", "{interpreter}", "{entry}"]
[env]
GREETING = "reloaded"
EOF
cp /etc/runwarm/runwarmd.toml /root/runwarmd.toml.orig
{ echo 'runtimes_dirs = ["/etc/runwarm/runtimes"]'; cat /root/runwarmd.toml.orig; } > /etc/runwarm/runwarmd.toml"#);
    let (status, runtimes) = c.api("GET", "/v1/runtimes", &[], None);
    assert_eq!(status, 200);
    assert!(!runtimes.to_string().contains("\"greet\""), "{runtimes}");
    c.ok("systemctl reload runwarm.service");
    // ExecReload returns once SIGHUP is sent (systemd 252 has no Type=notify-reload); the
    // daemon applies the file a moment later.
    c.wait_for("the reloaded runtimes", Duration::from_secs(20), |c| {
        let (_, runtimes) = c.api("GET", "/v1/runtimes", &[], None);
        runtimes.to_string().contains("\"greet\"")
    });
    assert_eq!(c.show("MainPID"), pid_before, "a reload must not restart");

    // A broken file fails the reload (ExecReload's --check-config) and changes nothing; a
    // SIGHUP that bypasses the check is refused by the daemon with an error in the journal.
    c.ok("printf '\\n[pools]\\nmax_workers = 0\\n' >> /etc/runwarm/runwarmd.toml");
    let (ok, out) = c.sh("systemctl reload runwarm.service");
    assert!(!ok, "a broken configuration reloaded: {out}");
    let (ok, out) = c.sh("runwarmd --check-config /etc/runwarm/runwarmd.toml");
    assert!(!ok && out.contains("pools.max_workers"), "{out}");
    c.ok(r#"kill -HUP "$(systemctl show -p MainPID --value runwarm.service)""#);
    c.wait_for(
        "the daemon refusing the SIGHUP",
        Duration::from_secs(20),
        |c| {
            c.sh("journalctl -u runwarm.service -o cat --no-pager | grep -q 'reload refused'")
                .0
        },
    );
    // The daemon tells systemd it is ready again after the refusal's audit row is written,
    // which can come after the journal line.
    c.wait_for(
        "the unit active again after the refused reload",
        Duration::from_secs(20),
        |c| c.show("ActiveState") == "active",
    );
    assert_eq!(c.show("MainPID"), pid_before);
    c.ok("cp /root/runwarmd.toml.orig /etc/runwarm/runwarmd.toml && runwarmd --check-config /etc/runwarm/runwarmd.toml | grep -q 'configuration ok'");

    // `journalctl -p err` shows errors only: runwarmd's lines carry their priority.
    let errors = c.ok("journalctl -u runwarm.service -p err -o json --no-pager");
    let mut daemon_errors = 0;
    for line in errors.lines().filter(|l| !l.trim().is_empty()) {
        let entry: Value = serde_json::from_str(line).unwrap();
        if entry["SYSLOG_IDENTIFIER"] != "runwarmd" {
            continue;
        }
        let message = entry["MESSAGE"].as_str().unwrap_or_default();
        assert!(
            !message.starts_with('<'),
            "priority prefix not stripped: {message}"
        );
        if let Ok(fields) = serde_json::from_str::<Value>(message) {
            assert_eq!(fields["level"], "ERROR", "a non-error at -p err: {message}");
            daemon_errors += 1;
        } else {
            // --check-config's own report, one violation per line.
            assert!(message.contains("runwarmd.toml"), "{message}");
        }
    }
    assert!(
        daemon_errors > 0,
        "no error of runwarmd at -p err:\n{errors}"
    );
    let warnings = c.ok("journalctl -u runwarm.service -p warning -o cat --no-pager | grep -c '\"level\":\"WARN\"' || true");
    assert!(
        warnings.trim().parse::<u32>().is_ok_and(|n| n > 0),
        "warnings are not at warning priority: {warnings}"
    );
    let info_lines = c.ok("journalctl -u runwarm.service -p err -o cat --no-pager | grep -c '\"level\":\"INFO\"' || true");
    assert_eq!(info_lines.trim(), "0");

    // SIGKILL: systemd restarts the daemon, which runs the async work it had accepted.
    let slow = json!({
        "name": "slow",
        "manifest": {"runtime": "bash", "entry": "main.sh", "pool": {"max": 1},
                     "limits": {"timeout_ms": 30000}},
        "files": {"main.sh": "sleep \"${PARAM_SECS:-1}\"\necho '{\"slept\": true}'\n"}
    });
    let (status, reg) = c.api("POST", "/v1/scripts", &[], Some(&slow));
    assert!(status == 200 || status == 201, "{reg}");
    let mut accepted = Vec::new();
    for _ in 0..3 {
        let (status, body) = c.api(
            "POST",
            "/v1/scripts/slow/invoke",
            &["Prefer: respond-async"],
            Some(&json!({"secs": 2})),
        );
        assert_eq!(status, 202, "{body}");
        accepted.push(body["id"].as_str().unwrap().to_owned());
    }
    std::thread::sleep(Duration::from_millis(500));
    let restarts_before: u32 = c.show("NRestarts").parse().unwrap();
    let killed = c.show("MainPID");
    c.ok(&format!("kill -KILL {killed}"));
    // systemd notices the death a moment later: until then the old state is still shown.
    c.wait_for("a restart after SIGKILL", Duration::from_secs(30), |c| {
        c.show("NRestarts")
            .parse::<u32>()
            .is_ok_and(|n| n > restarts_before)
            && c.show("ActiveState") == "active"
            && !["0", killed.as_str()].contains(&c.show("MainPID").as_str())
    });
    let mut completed = 0;
    for id in &accepted {
        let mut last = Value::Null;
        c.wait_for(
            &format!("execution {id} to end"),
            Duration::from_secs(60),
            |c| {
                let (status, rec) = c.api("GET", &format!("/v1/executions/{id}"), &[], None);
                last = rec;
                status == 200 && !matches!(last["state"].as_str(), Some("queued" | "running"))
            },
        );
        match last["state"].as_str() {
            Some("completed") => completed += 1,
            // The one that ran when the daemon died is recorded as failed by the next one.
            Some("failed") => assert_eq!(last["error"]["code"], "E005", "{last:#}"),
            _ => panic!("{last:#}"),
        }
    }
    assert!(
        completed >= 2,
        "accepted work was not resumed: {completed} of 3 completed"
    );

    // The watchdog: a daemon that stops answering (SIGSTOP) is killed and started again.
    c.ok(r"mkdir -p /etc/systemd/system/runwarm.service.d && printf '[Service]\nWatchdogSec=3s\nTimeoutAbortSec=3s\n' > /etc/systemd/system/runwarm.service.d/test-watchdog.conf && systemctl daemon-reload && systemctl restart runwarm.service");
    assert_eq!(c.show("WatchdogUSec"), "3s");
    std::thread::sleep(Duration::from_secs(2));
    let frozen = c.show("MainPID");
    c.ok(&format!("kill -STOP {frozen}"));
    c.wait_for("the watchdog's restart", Duration::from_secs(40), |c| {
        c.show("ActiveState") == "active"
            && !["0", frozen.as_str()].contains(&c.show("MainPID").as_str())
    });
    let (ok, _) =
        c.sh("journalctl -u runwarm.service -o cat --no-pager | grep -q 'Watchdog timeout'");
    assert!(ok, "no watchdog timeout in the journal:\n{}", c.journal());
    let (status, _) = c.api("GET", "/healthz", &[], None);
    assert_eq!(status, 200);

    // Stop drains: no executor, no cgroup left; the socket stays with systemd.
    let (status, rec) = c.api(
        "POST",
        "/v1/scripts/hello-python/invoke",
        &[],
        Some(&json!({})),
    );
    assert_eq!(
        (status, rec["state"].as_str()),
        (200, Some("completed")),
        "{rec}"
    );
    assert!(!c.runwarm_cgroups().is_empty());
    c.ok("systemctl stop runwarm.service");
    assert_eq!(c.show("ActiveState"), "inactive");
    assert_eq!(c.show("Result"), "success", "{}", c.journal());
    let sandboxed = c.ok(r"grep -l '^Uid:.*\b65534\b' /proc/[0-9]*/status 2>/dev/null || true");
    assert!(
        sandboxed.trim().is_empty(),
        "executors left after stop: {sandboxed}"
    );
    let left = c.runwarm_cgroups();
    assert!(left.is_empty(), "cgroups left after stop: {left:?}");
    c.ok(&format!("test -S {SOCKET}"));
    // /healthz: a connection queued before the start may be answered before READY=1, when
    // /readyz still says "starting".
    let (status, _) = c.api("GET", "/healthz", &[], None);
    assert_eq!(status, 200, "the socket did not start the service again");
    c.wait_for("the service active again", Duration::from_secs(20), |c| {
        c.show("ActiveState") == "active"
    });
    c.ok("systemctl stop runwarm.service runwarm.socket");

    // The unit's exposure as systemd-analyze rates it (docs/systemd.md has the table).
    let security = c.ok("systemd-analyze security --no-pager runwarm.service | tail -n 1");
    let exposure = security
        .split_once("runwarm.service:")
        .and_then(|(_, r)| r.split_whitespace().next()?.parse::<f32>().ok())
        .unwrap_or_else(|| panic!("{security}"));
    assert!(
        exposure <= 4.5,
        "the unit's hardening regressed: {security}"
    );

    drop(c);
    let _ = writeln!(
        std::io::stderr(),
        "systemd_real: root {:.1?}, boot {:.1?}, install {:.1?}, all {:.1?}; exposure {exposure}",
        root_ready,
        booted - root_ready,
        installed - booted,
        started.elapsed()
    );
}
