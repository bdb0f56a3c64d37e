//! Pure parsers for the cgroup control files the daemon reads back (v1 and v2 formats).

/// The value of `key` in a flat-keyed file (`key value` per line): `memory.events`, `cpu.stat`,
/// v1 `memory.oom_control`, `cpuacct.stat`.
pub(crate) fn keyed_value(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let mut parts = line.split_whitespace();
        (parts.next() == Some(key))
            .then(|| parts.next()?.parse().ok())
            .flatten()
    })
}

/// A single-number file (`memory.peak`, `memory.max_usage_in_bytes`, `cpuacct.usage_user`).
pub(crate) fn single_value(text: &str) -> Option<u64> {
    text.trim().parse().ok()
}

/// A limit file that may say `max` (v2) or a huge number (v1's "unlimited" is near `i64::MAX`).
pub(crate) fn limit_value(text: &str) -> Option<u64> {
    const V1_UNLIMITED_FLOOR: u64 = 1 << 62;
    single_value(text).filter(|&v| v < V1_UNLIMITED_FLOOR)
}

/// The controllers listed in `cgroup.controllers` or `cgroup.subtree_control`.
pub(crate) fn controller_list(text: &str) -> Vec<String> {
    text.split_whitespace().map(str::to_owned).collect()
}

/// One process's cgroup membership, parsed from `/proc/<pid>/cgroup`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct SelfCgroup {
    /// The path in the unified hierarchy (the `0::` line).
    pub unified: Option<String>,
    /// v1 controller name → path in that controller's hierarchy.
    pub legacy: Vec<(String, String)>,
}

impl SelfCgroup {
    pub(crate) fn parse(text: &str) -> SelfCgroup {
        let mut out = SelfCgroup::default();
        for line in text.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_id), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if controllers.is_empty() {
                out.unified = Some(path.to_owned());
            } else {
                for c in controllers.split(',') {
                    out.legacy.push((c.to_owned(), path.to_owned()));
                }
            }
        }
        out
    }

    pub(crate) fn legacy_path(&self, controller: &str) -> Option<&str> {
        self.legacy
            .iter()
            .find(|(c, _)| c == controller)
            .map(|(_, p)| p.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMORY_EVENTS: &str = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n";
    const CPU_STAT: &str = "usage_usec 73512\nuser_usec 51000\nsystem_usec 22512\n\
                            nr_periods 3\nnr_throttled 1\nthrottled_usec 900\n";
    const OOM_CONTROL: &str = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";

    #[test]
    fn keyed_values_from_v2_and_v1_files() {
        assert_eq!(keyed_value(MEMORY_EVENTS, "oom_kill"), Some(1));
        assert_eq!(keyed_value(MEMORY_EVENTS, "oom"), Some(1));
        assert_eq!(keyed_value(CPU_STAT, "user_usec"), Some(51000));
        assert_eq!(keyed_value(CPU_STAT, "system_usec"), Some(22512));
        assert_eq!(keyed_value(OOM_CONTROL, "oom_kill"), Some(2));
        // Old v1 kernels have no oom_kill line; a prefix of another key must not match.
        assert_eq!(
            keyed_value("oom_kill_disable 0\nunder_oom 0\n", "oom_kill"),
            None
        );
        assert_eq!(keyed_value("oom_kill notanumber\n", "oom_kill"), None);
        assert_eq!(keyed_value("", "oom_kill"), None);
    }

    #[test]
    fn limits_treat_max_and_v1_unlimited_as_none() {
        assert_eq!(limit_value("33554432\n"), Some(33_554_432));
        assert_eq!(limit_value("max\n"), None);
        assert_eq!(limit_value("9223372036854771712\n"), None);
        assert_eq!(single_value(" 42 \n"), Some(42));
    }

    #[test]
    fn controller_lists_split_on_whitespace() {
        assert_eq!(
            controller_list("cpuset cpu io memory pids\n"),
            ["cpuset", "cpu", "io", "memory", "pids"]
        );
        assert!(controller_list("\n").is_empty());
    }

    #[test]
    fn self_cgroup_parses_hybrid_hosts() {
        let text = "9:name=systemd:/\n4:memory:/process_api/7fed\n2:cpu,cpuacct:/a/b\n0::/\n";
        let parsed = SelfCgroup::parse(text);
        assert_eq!(parsed.unified.as_deref(), Some("/"));
        assert_eq!(parsed.legacy_path("memory"), Some("/process_api/7fed"));
        assert_eq!(parsed.legacy_path("cpu"), Some("/a/b"));
        assert_eq!(parsed.legacy_path("cpuacct"), Some("/a/b"));
        assert_eq!(parsed.legacy_path("pids"), None);
    }

    #[test]
    fn self_cgroup_parses_pure_v2_and_ignores_garbage() {
        let parsed = SelfCgroup::parse("0::/system.slice/runwarmd.service\ngarbage\n");
        assert_eq!(
            parsed.unified.as_deref(),
            Some("/system.slice/runwarmd.service")
        );
        assert!(parsed.legacy.is_empty());
    }
}
