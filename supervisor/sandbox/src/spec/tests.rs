use super::*;

fn good() -> SandboxSpec {
    SandboxSpec {
        program: "/bin/sh".into(),
        task_dir: "/srv/task".into(),
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        cgroups: vec![CgroupJoin {
            dir: "/sys/fs/cgroup/pids/runwarm/x".into(),
            version: CgroupVersion::V1,
        }],
        ro_binds: vec![("/usr".into(), "/usr".into())],
        ..SandboxSpec::default()
    }
}

#[test]
fn a_plain_spec_is_valid_and_round_trips_through_json() {
    let spec = good();
    assert_eq!(spec.validate(), Ok(()));
    let json = serde_json::to_string(&spec).unwrap();
    assert_eq!(serde_json::from_str::<SandboxSpec>(&json).unwrap(), spec);
    // Omitted fields take the defaults, so the daemon can send only what differs.
    let minimal: SandboxSpec = serde_json::from_str(r#"{"program":"/x"}"#).unwrap();
    assert_eq!(minimal.uid, 65534);
    assert!(minimal.layers.seccomp);
}

#[test]
fn validation_rejects_each_bad_field() {
    type Mutation = fn(&mut SandboxSpec);
    let cases: Vec<(Mutation, &str)> = vec![
        (|s| s.program = "sh".into(), "program"),
        (|s| s.cwd = "/var/task/../etc".into(), "cwd"),
        (|s| s.task_dir = "".into(), "task_dir"),
        (
            |s| s.ro_binds.push(("/etc".into(), "/proc/x".into())),
            "reserved",
        ),
        (|s| s.ro_binds.push(("/etc".into(), "/".into())), "reserved"),
        (
            |s| s.rw_binds.push(("/srv/out".into(), "/var/task/x".into())),
            "reserved",
        ),
        (
            |s| s.rw_binds.push(("out".into(), "/opt/out".into())),
            "rw_binds",
        ),
        (
            |s| {
                s.cgroups.push(CgroupJoin {
                    dir: "sys/fs/cgroup/x".into(),
                    version: CgroupVersion::V1,
                })
            },
            "cgroups dir",
        ),
        (
            |s| {
                for dir in ["/sys/fs/cgroup/a", "/sys/fs/cgroup/b"] {
                    s.cgroups.push(CgroupJoin {
                        dir: dir.into(),
                        version: CgroupVersion::V2,
                    });
                }
            },
            "more than one v2 cgroup",
        ),
        (|s| s.env.push(("A=B".into(), "c".into())), "environment"),
        (|s| s.args.push("a\0b".into()), "NUL"),
        (|s| s.hostname = "a b".into(), "hostname"),
        (|s| s.uid = u32::MAX, "uid"),
        (|s| s.tmp_size_bytes = 0, "tmp_size_bytes"),
    ];
    for (mutate, needle) in cases {
        let mut spec = good();
        mutate(&mut spec);
        let err = spec.validate().expect_err(needle).to_string();
        assert!(err.contains(needle), "{err:?} should mention {needle}");
    }
    let mut spec = good();
    spec.ro_binds.push(("/opt/x".into(), "/opt/x".into()));
    assert_eq!(
        spec.validate(),
        Ok(()),
        "a bind below / that is not reserved is fine"
    );
}

#[test]
fn best_effort_gives_up_the_layer_a_step_belongs_to() {
    let all = Layers::default();
    let off = |step| all.without_cause_of(step).unwrap();
    assert!(!off(Step::Seccomp).seccomp && off(Step::Seccomp).capabilities);
    assert!(!off(Step::NewRoot).mount_ns && off(Step::NewRoot).pid_ns);
    assert!(!off(Step::PivotRoot).mount_ns);
    assert!(!off(Step::IdMaps).user_ns);
    assert!(!off(Step::Loopback).net_ns);
    assert!(!off(Step::Hostname).ipc_uts_ns);
    assert!(!off(Step::Capabilities).capabilities);
    assert!(!off(Step::NoNewPrivs).no_new_privs);
    // A failure no layer causes is not "fixed" by dropping one.
    assert_eq!(all.without_cause_of(Step::Exec), None);
    assert_eq!(all.without_cause_of(Step::Chdir), None);
    // Nor is one whose layer is already off.
    let no_seccomp = off(Step::Seccomp);
    assert_eq!(no_seccomp.without_cause_of(Step::Seccomp), None);
}

#[test]
fn a_refused_clone_gives_up_namespaces_one_by_one_user_last() {
    let mut layers = Layers::default();
    let mut order = Vec::new();
    while let Some(next) = layers.without_cause_of(Step::CloneNamespaces) {
        let dropped = [
            ("net", layers.net_ns && !next.net_ns),
            ("ipc_uts", layers.ipc_uts_ns && !next.ipc_uts_ns),
            ("pid", layers.pid_ns && !next.pid_ns),
            ("mount", layers.mount_ns && !next.mount_ns),
            ("user", layers.user_ns && !next.user_ns),
        ];
        let names: Vec<_> = dropped.iter().filter(|d| d.1).map(|d| d.0).collect();
        assert_eq!(names.len(), 1, "one namespace per step: {names:?}");
        order.push(names[0]);
        layers = next;
    }
    assert_eq!(order, ["net", "ipc_uts", "pid", "mount", "user"]);
    assert!(
        layers.capabilities && layers.seccomp,
        "non-namespace layers stay"
    );
}

#[test]
fn default_binds_never_include_secrets() {
    let binds = SandboxSpec::default_ro_binds();
    assert!(binds.iter().any(|(_, inside)| inside == Path::new("/usr")));
    assert!(
        !binds
            .iter()
            .any(|(h, i)| h.starts_with("/etc/shadow") || i == Path::new("/etc"))
    );
}
