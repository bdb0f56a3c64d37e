use super::anchor::param_name;
use super::*;

#[test]
fn every_known_runtime_has_a_spec_and_the_other_way_round() {
    for runtime in KNOWN {
        assert!(Spec::find(runtime).is_some(), "{runtime}");
    }
    assert_eq!(SPECS.len(), KNOWN.len());
}

#[test]
fn a_code_only_change_changes_the_entry_and_keeps_the_dependency_files() {
    let spec = Spec::find("go").unwrap();
    let a = spec.files("a", None).unwrap();
    let b = spec.files("b", None).unwrap();
    assert_ne!(a["main.go"], b["main.go"]);
    assert_eq!(a["handler.go"], b["handler.go"]);
    assert_eq!(a["go.mod"], b["go.mod"]);
    assert_eq!(a["go.sum"], b["go.sum"]);
    let binary = Spec::find("binary").unwrap();
    assert!(binary.files("a", None).is_err());
    let files = binary.files("a", Some(b"\x7fELF")).unwrap();
    assert_eq!(files["hello"]["executable"], true);
}

#[test]
fn bash_sees_the_name_as_runwarm_exec_command_passes_it() {
    assert_eq!(param_name(r#"{"name": "bench"}"#), "bench");
    assert_eq!(param_name("[]"), "");
}
