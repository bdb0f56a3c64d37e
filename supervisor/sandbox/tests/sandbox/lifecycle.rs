//! How a sandbox starts and ends: the host's view of it, signals, cgroups joined before
//! anything runs, children that die with it, a step that fails.

use super::*;

/// Pids of the processes whose parent is `parent`.
fn children_of(parent: u32) -> Vec<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(status) = std::fs::read_to_string(entry.path().join("status")) else {
            continue;
        };
        if status.lines().any(|l| {
            l.strip_prefix("PPid:")
                .is_some_and(|p| p.trim() == parent.to_string())
        }) {
            found.push(pid);
        }
    }
    found
}

#[test]
fn host_sees_the_outside_uid_and_sigterm_is_forwarded() {
    if !privileged() {
        return;
    }
    let task = task_dir();
    let mut started = start(&spec(task.path(), "echo ready; exec sleep 30"));
    let mut out = BufReader::new(started.child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, "ready\n");
    let helper = started.child.id();
    let init = children_of(helper);
    assert_eq!(init.len(), 1, "one init under the helper");
    let executor = children_of(init[0]);
    assert_eq!(executor.len(), 1, "one executor under the init");
    let status = std::fs::read_to_string(format!("/proc/{}/status", executor[0])).unwrap();
    assert!(
        status.contains("Uid:\t65534\t65534\t65534\t65534"),
        "{status}"
    );
    assert!(
        status.contains("Gid:\t65534\t65534\t65534\t65534"),
        "{status}"
    );

    let t0 = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(helper).unwrap()),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let done = finish(started);
    assert_eq!(
        done.code,
        Some(128 + 15),
        "killed by the forwarded SIGTERM: {}",
        done.stderr
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[test]
fn grandchildren_die_with_the_executor() {
    if !privileged() {
        return;
    }
    let task = task_dir();
    let t0 = Instant::now();
    // The background sleep keeps stdout open: only the pid namespace's teardown ends it.
    let done = run(&spec(task.path(), "sleep 60 & echo started"));
    assert_eq!(done.code, Some(0));
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "a grandchild outlived the executor"
    );
}

#[test]
fn a_failing_step_comes_back_typed() {
    if !privileged() {
        return;
    }
    let task = task_dir();
    let mut s = spec(task.path(), "");
    s.program = PathBuf::from("/no/such/program");
    let done = finish(start(&s));
    assert_eq!(done.code, Some(125));
    let failure =
        StepFailure::parse_line(&done.report).unwrap_or_else(|| panic!("{:?}", done.report));
    assert_eq!(failure.step, Step::Exec);
    assert_eq!(failure.errno, libc_enoent());
    assert!(done.stderr.contains("\"step\":\"exec\""), "{}", done.stderr);

    s.task_dir = PathBuf::from("/no/such/task");
    let failure = StepFailure::parse_line(&finish(start(&s)).report).unwrap();
    assert_eq!(failure.step, Step::NewRoot);
}

/// The host's cgroup2 mount: `/sys/fs/cgroup` on a unified host, `/sys/fs/cgroup/unified` on a
/// hybrid one (this build host), none on a legacy one.
fn cgroup2_mount() -> Option<PathBuf> {
    ["/sys/fs/cgroup", "/sys/fs/cgroup/unified"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| {
            nix::sys::statfs::statfs(p)
                .is_ok_and(|s| s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC)
        })
}

#[test]
fn the_helper_joins_its_cgroups_before_anything_starts() {
    if !privileged() {
        return;
    }
    let name = format!("runwarm-sandbox-test-{}", std::process::id());
    // Every kind of join this host offers: a v1 hierarchy (through `tasks`) and the cgroup2 mount
    // (through clone3 CLONE_INTO_CGROUP), which this hybrid host has without controllers.
    let mut joins = Vec::new();
    if Path::new("/sys/fs/cgroup/pids/tasks").exists() {
        joins.push(CgroupJoin {
            dir: Path::new("/sys/fs/cgroup/pids").join(&name),
            version: CgroupVersion::V1,
        });
    }
    if let Some(v2) = cgroup2_mount() {
        joins.push(CgroupJoin {
            dir: v2.join(&name),
            version: CgroupVersion::V2,
        });
    }
    assert!(
        !joins.is_empty(),
        "this host has no cgroup hierarchy to join"
    );
    for join in &joins {
        std::fs::create_dir(&join.dir).unwrap();
    }
    let task = task_dir();
    let mut s = spec(task.path(), "cat /proc/self/cgroup; sleep 0.2");
    s.cgroups = joins.clone();
    let started = start(&s);
    // While it runs, the cgroups list the sandbox's processes (init and executor at least).
    std::thread::sleep(Duration::from_millis(100));
    let members: Vec<usize> = joins
        .iter()
        .map(|j| {
            std::fs::read_to_string(j.dir.join("cgroup.procs"))
                .unwrap()
                .lines()
                .count()
        })
        .collect();
    let done = finish(started);
    for join in &joins {
        std::fs::remove_dir(&join.dir).unwrap();
    }
    // The sandbox has no cgroup namespace, so /proc/self/cgroup names the full paths.
    for (join, members) in joins.iter().zip(&members) {
        let line = match join.version {
            CgroupVersion::V1 => format!(":pids:/{name}"),
            CgroupVersion::V2 => format!("0::/{name}"),
        };
        assert!(
            done.stdout.contains(&line),
            "executor not in {}: {}",
            join.dir.display(),
            done.stdout
        );
        assert!(
            *members >= 2,
            "{} held {members} processes",
            join.dir.display()
        );
    }
}

#[test]
fn sigkill_of_the_helper_takes_the_whole_sandbox_down() {
    if !privileged() {
        return;
    }
    let task = task_dir();
    let mut started = start(&spec(task.path(), "sleep 60 & echo ready; exec sleep 60"));
    let mut out = BufReader::new(started.child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let init = children_of(started.child.id());
    assert_eq!(init.len(), 1);
    let mut inside: Vec<u32> = children_of(init[0]);
    assert_eq!(inside.len(), 1, "one executor");
    inside.extend(children_of(inside[0]));
    assert_eq!(inside.len(), 2, "the executor's background child");
    // What the daemon's kill_on_drop does: SIGKILL to the helper only.
    started.child.kill().unwrap();
    // Only the helper is waited for: reading its pipes would wait for the survivors themselves.
    started.child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    let alive = |pid: &u32| {
        Path::new(&format!("/proc/{pid}/status")).exists()
            && !std::fs::read_to_string(format!("/proc/{pid}/status"))
                .unwrap_or_default()
                .contains("State:\tZ")
    };
    while init.iter().chain(&inside).any(alive) {
        assert!(
            Instant::now() < deadline,
            "sandbox processes outlived the helper"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}
