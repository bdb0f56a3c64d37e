use serde_json::json;

use super::follow::*;
use super::*;
use crate::client::SseEvent;

#[test]
fn growth_prints_only_what_is_new() {
    let printed = std::cell::RefCell::new(String::new());
    let print = |t: &str| {
        printed.borrow_mut().push_str(t);
        Ok(())
    };
    let n = print_growth(&json!({"stdout": "ab"}), "stdout", 0, print).unwrap();
    let n = print_growth(&json!({"stdout": "abcd"}), "stdout", n, print).unwrap();
    let n = print_growth(&json!({"stdout": "abcd"}), "stdout", n, print).unwrap();
    assert_eq!((n, printed.borrow().as_str()), (4, "abcd"));
    // A field that shrank (truncated) prints nothing and never moves backwards.
    assert_eq!(
        print_growth(&json!({"stdout": "x"}), "stdout", 4, print).unwrap(),
        4
    );
    assert_eq!(printed.borrow().as_str(), "abcd");
}

fn event(name: &str, data: &str) -> SseEvent {
    SseEvent {
        event: name.into(),
        data: data.into(),
        id: None,
    }
}

#[test]
fn events_become_output_or_the_end() {
    use EventAction::*;
    let rows = [
        (event("stdout", r#"{"line":"hi"}"#), Stdout("hi\n".into())),
        (event("stdout", r#"{"text":"a\n"}"#), Stdout("a\n".into())),
        (event("stderr", "raw text"), Stderr("raw text\n".into())),
        (
            event("log", r#"{"level":"info","message":"m"}"#),
            Stderr("[info] m".into()),
        ),
        (event("state", r#"{"state":"running"}"#), Continue),
        (event("state", r#"{"state":"failed"}"#), End),
        (event("state", "completed"), End),
        (event("end", "{}"), End),
        (event("message", "x"), Continue),
    ];
    for (e, want) in rows {
        assert_eq!(classify_event(&e), want, "{e:?}");
    }
}

#[test]
fn log_lines_show_level_message_and_fields() {
    assert_eq!(
        format_log(&json!({"level": "info", "message": "hi", "fields": {"n": 1}})),
        "[info] hi {\"n\":1}"
    );
    assert_eq!(
        format_log(&json!({"level": "warn", "message": "m"})),
        "[warn] m"
    );
}
