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
