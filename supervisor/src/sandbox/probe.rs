//! Measuring the confinement layers: run the sandbox helper once with a tiny shell script that
//! prints its namespaces, uid and `/proc/self/status` security fields, and compare with the
//! daemon's own.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use runwarm_sandbox::{Layers, SandboxSpec, StepFailure};
use serde::Serialize;

use super::SandboxSettings;
use super::cgroup::Cgroups;

const NAMESPACES: [&str; 6] = ["user", "mnt", "pid", "net", "ipc", "uts"];

const SCRIPT: &str = "for n in user mnt pid net ipc uts; do echo \"ns $n $(readlink /proc/self/ns/$n)\"; done; \
grep -E '^(Uid|CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status; \
test -e /etc/shadow && echo shadow visible; echo done";

/// Which layers are really active, as measured.
#[derive(Debug, Clone, Serialize, Default, utoipa::ToSchema)]
pub struct LayerReport {
    /// Namespace → whether the executor is in its own.
    pub namespaces: BTreeMap<String, bool>,
    /// Executors run as an unprivileged uid.
    pub unprivileged_uid: bool,
    /// No capability left (effective and bounding set).
    pub capabilities_dropped: bool,
    /// `no_new_privs` set.
    pub no_new_privs: bool,
    /// A seccomp filter installed.
    pub seccomp: bool,
    /// The host's `/etc/shadow` is not visible.
    pub minimal_root: bool,
    /// cgroup layout (`unified`, `hybrid`, `legacy`), when cgroups work.
    pub cgroup_layout: Option<String>,
    /// cgroup controllers that work.
    pub cgroup_controllers: Vec<String>,
    /// Why a layer is missing.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub problems: Vec<String>,
}

impl LayerReport {
    /// The report of `sandbox = "off"`.
    pub fn off() -> Self {
        Self {
            namespaces: NAMESPACES
                .iter()
                .map(|n| ((*n).to_owned(), false))
                .collect(),
            problems: vec!["sandbox = \"off\": executors run unconfined".into()],
            ..Self::default()
        }
    }

    pub(super) fn set_cgroups(&mut self, cgroups: Option<&Cgroups>, error: Option<String>) {
        if let Some(c) = cgroups {
            self.cgroup_layout = Some(c.layout().as_str().to_owned());
            self.cgroup_controllers = c.active_controllers();
            for needed in ["memory", "pids", "cpu"] {
                if !self.cgroup_controllers.iter().any(|c| c == needed) {
                    self.problems
                        .push(format!("cgroup controller {needed} is not usable"));
                }
            }
        }
        if let Some(e) = error {
            self.problems.push(format!("cgroups: {e}"));
        }
    }

    /// Names of the layers that are not active.
    pub fn missing(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .namespaces
            .iter()
            .filter(|(_, on)| !**on)
            .map(|(n, _)| format!("{n} namespace"))
            .collect();
        for (on, name) in [
            (self.unprivileged_uid, "unprivileged uid"),
            (self.capabilities_dropped, "capability drop"),
            (self.no_new_privs, "no_new_privs"),
            (self.seccomp, "seccomp"),
            (self.minimal_root, "minimal root"),
        ] {
            if !on {
                out.push(name.to_owned());
            }
        }
        for needed in ["memory", "pids", "cpu"] {
            if !self.cgroup_controllers.iter().any(|c| c == needed) {
                out.push(format!("cgroup {needed}"));
            }
        }
        out
    }

    /// Whether the helper itself works (it confined the probe at all).
    pub fn namespaces_work(&self) -> bool {
        self.namespaces.values().any(|on| *on) && self.capabilities_dropped
    }

    /// The problems, joined.
    pub fn detail(&self) -> String {
        self.problems.join("; ")
    }
}

fn own_namespaces() -> BTreeMap<String, String> {
    NAMESPACES
        .iter()
        .filter_map(|n| {
            let link = std::fs::read_link(format!("/proc/self/ns/{n}")).ok()?;
            Some(((*n).to_owned(), link.to_string_lossy().into_owned()))
        })
        .collect()
}

/// Runs the probe through the helper with `layers` and reads what it saw; a step the helper
/// reported failing comes back too, so best-effort mode can retry without that layer.
pub(super) async fn run(
    settings: &SandboxSettings,
    scratch: &Path,
    layers: Layers,
) -> (LayerReport, Option<StepFailure>) {
    let mut report = LayerReport::default();
    for n in NAMESPACES {
        report.namespaces.insert(n.to_owned(), false);
    }
    match probe_output(settings, scratch, layers).await {
        Ok(text) => {
            parse(&text, &own_namespaces(), &mut report);
            (report, None)
        }
        Err((problem, failed)) => {
            report.problems.push(problem);
            (report, failed)
        }
    }
}

/// The probe script's output, or what went wrong and the step the helper reported failing.
async fn probe_output(
    settings: &SandboxSettings,
    scratch: &Path,
    layers: Layers,
) -> Result<String, (String, Option<StepFailure>)> {
    fs_err::create_dir_all(scratch)
        .map_err(|e| (format!("cannot create the probe directory: {e}"), None))?;
    let spec = SandboxSpec {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), SCRIPT.into()],
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        cwd: if layers.mount_ns {
            "/var/task".into()
        } else {
            scratch.to_owned()
        },
        uid: settings.uid,
        gid: settings.gid,
        ro_binds: SandboxSpec::default_ro_binds(),
        task_dir: scratch.to_owned(),
        tmp_size_bytes: settings.tmp_size_bytes,
        layers,
        ..SandboxSpec::default()
    };
    let json = serde_json::to_string(&spec)
        .map_err(|e| (format!("cannot encode the probe spec: {e}"), None))?;
    let mut cmd = tokio::process::Command::new(&settings.binary);
    cmd.args(["--spec", &json]).env_clear().kill_on_drop(true);
    let out = match tokio::time::timeout(Duration::from_secs(10), cmd.output()).await {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => {
            let problem = format!(
                "cannot run the sandbox helper {}: {e}",
                settings.binary.display()
            );
            return Err((problem, None));
        }
        Err(_) => {
            let problem = "the sandbox helper did not finish its probe in 10 s".to_owned();
            return Err((problem, None));
        }
    };
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    if !out.status.success() || !text.contains("done") {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let problem = format!(
            "the sandbox helper failed its probe ({}): {}",
            out.status,
            stderr.trim()
        );
        return Err((problem, StepFailure::find_in_stderr(&stderr)));
    }
    Ok(text)
}

fn parse(text: &str, host: &BTreeMap<String, String>, report: &mut LayerReport) {
    report.minimal_root = true;
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next()) {
            (Some("ns"), Some(name), Some(link)) => {
                let own = host.get(name).is_some_and(|h| h != link);
                report.namespaces.insert(name.to_owned(), own);
            }
            (Some("Uid:"), Some(real), Some(eff)) => {
                report.unprivileged_uid = real != "0" && eff != "0";
            }
            (Some("CapEff:"), Some(v), _) => {
                report.capabilities_dropped = v.trim_start_matches('0').is_empty();
            }
            (Some("CapBnd:"), Some(v), _) => {
                report.capabilities_dropped &= v.trim_start_matches('0').is_empty();
            }
            (Some("NoNewPrivs:"), Some(v), _) => report.no_new_privs = v == "1",
            (Some("Seccomp:"), Some(v), _) => report.seccomp = v == "2",
            (Some("shadow"), Some("visible"), _) => report.minimal_root = false,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_confined_probe_reports_every_layer() {
        let host: BTreeMap<String, String> = NAMESPACES
            .iter()
            .map(|n| ((*n).to_owned(), format!("{n}:[1]")))
            .collect();
        let text = "ns user user:[2]\nns mnt mnt:[2]\nns pid pid:[2]\nns net net:[2]\nns ipc ipc:[2]\nns uts uts:[2]\nUid:\t1000\t1000\t1000\t1000\nCapEff:\t0000000000000000\nCapBnd:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\ndone\n";
        let mut r = LayerReport::default();
        parse(text, &host, &mut r);
        r.cgroup_controllers = vec!["memory".into(), "pids".into(), "cpu".into()];
        assert!(r.missing().is_empty(), "{:?}", r.missing());
        assert!(r.namespaces_work());
    }

    #[test]
    fn a_shared_namespace_and_capabilities_are_missing_layers() {
        let host: BTreeMap<String, String> = NAMESPACES
            .iter()
            .map(|n| ((*n).to_owned(), format!("{n}:[1]")))
            .collect();
        let text = "ns net net:[1]\nns user user:[2]\nUid:\t0\t0\t0\t0\nCapEff:\t000001ffffffffff\nNoNewPrivs:\t0\nSeccomp:\t0\nshadow visible\ndone\n";
        let mut r = LayerReport::default();
        parse(text, &host, &mut r);
        let missing = r.missing();
        for layer in [
            "net namespace",
            "unprivileged uid",
            "capability drop",
            "no_new_privs",
            "seccomp",
            "minimal root",
            "cgroup memory",
        ] {
            assert!(
                missing.iter().any(|m| m == layer),
                "{layer} not reported in {missing:?}"
            );
        }
    }
}
