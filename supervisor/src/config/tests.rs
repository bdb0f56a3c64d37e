use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(
        text,
        Some("test.toml"),
        Path::new("/base"),
        Path::new("/bin"),
    )
}

#[test]
fn embedded_default_is_valid_and_rooted_at_base() {
    let c = Config::embedded_default(Path::new("/base"), Path::new("/opt/rw")).unwrap();
    assert_eq!(c.socket, Path::new("/base/.runwarm/runwarm.sock"));
    assert_eq!(c.state_dir, Path::new("/base/.runwarm"));
    assert_eq!(c.exec_command, Path::new("/opt/rw/runwarm-exec-command"));
    assert_eq!(c.max_workers, 32);
    assert!(c.load_samples);
}

#[test]
fn empty_file_equals_embedded_default() {
    let a = parse("").unwrap();
    let b = Config::embedded_default(Path::new("/base"), Path::new("/bin")).unwrap();
    assert_eq!(format!("{a:?}"), format!("{b:?}"));
}

#[test]
fn every_violation_is_reported_with_its_key() {
    let err = parse("[pools]\nmax_workers = 0\n[log]\nformat = 'xml'\n").unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains("pools.max_workers: must be at least 1, got 0"),
        "{text}"
    );
    assert!(text.contains("log.format"), "{text}");
    assert!(text.contains("test.toml"), "{text}");
}

#[test]
fn unknown_keys_are_refused() {
    let err = parse("[pools]\nmax_wrokers = 3\n").unwrap_err();
    assert!(err.to_string().contains("max_wrokers"), "{err}");
}

#[test]
fn readme_configuration_table_lists_every_key() {
    let readme = include_str!("../../../README.md");
    let section = readme.split("## Configuration").nth(1).unwrap();
    let section = section.split("\n## ").next().unwrap();
    let table: toml::Table = toml::from_str(DEFAULT_TOML).unwrap();
    let mut keys = Vec::new();
    for (k, v) in &table {
        match v.as_table() {
            Some(t) => keys.extend(t.keys().map(|leaf| (format!("{k}.{leaf}"), leaf.clone()))),
            None => keys.push((k.clone(), k.clone())),
        }
    }
    assert!(keys.len() > 15);
    for (full, leaf) in keys {
        assert!(
            section.contains(&format!("`{full}`")) || section.contains(&format!("`{leaf}`")),
            "README's configuration table does not list {full}"
        );
    }
}

#[test]
fn the_memory_budget_defaults_to_three_quarters_of_the_host_and_can_be_set() {
    let meminfo = "MemTotal:       24571508 kB\nMemFree:        1000 kB\n";
    assert_eq!(mem_total_kib(meminfo), Some(24_571_508));
    assert_eq!(mem_total_kib("MemFree: 1 kB\n"), None);
    let host_mb = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .as_deref()
        .and_then(mem_total_kib)
        .map(|kib| kib / 1024)
        .unwrap();
    for text in ["", "[pools]\nmax_memory_mb = 0\n"] {
        assert_eq!(
            parse(text).unwrap().max_memory_mb,
            host_mb * 3 / 4,
            "{text:?}"
        );
    }
    let set = parse("[pools]\nmax_memory_mb = 4096\n").unwrap();
    assert_eq!(set.max_memory_mb, 4096);
    let err = parse("[pools]\nmax_memory_mb = 8\n")
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("pools.max_memory_mb: must be at least 16, got 8"),
        "{err}"
    );
}
