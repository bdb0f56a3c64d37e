use serde_json::json;

use super::*;

fn caller(uid: u32) -> Caller {
    Caller {
        uid,
        gid: uid + 1,
        pid: 4242,
    }
}

#[test]
fn a_row_records_who_what_and_before_after_and_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path()).unwrap();
    let e = Event::new("tag")
        .script("greet")
        .target("prod")
        .before(json!({"version": "sha256:old"}))
        .after(json!({"version": "sha256:new"}));
    let written = log.record(&caller(1000), Via::Socket, &e).unwrap();
    assert_eq!(written.uid, 1000);
    assert_eq!(written.gid, 1001);
    assert_eq!(written.pid, 4242);
    drop(log);
    let log = AuditLog::open(dir.path()).unwrap();
    let rows = log.list(&AuditFilter::default()).unwrap();
    assert_eq!(rows, vec![written]);
    assert_eq!(rows[0].before, Some(json!({"version": "sha256:old"})));
    assert_eq!(rows[0].via, "socket");
}

#[test]
fn queries_filter_by_script_and_action_and_page_newest_first() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(dir.path()).unwrap();
    for (action, script) in [
        ("register", "a"),
        ("register", "b"),
        ("disable", "a"),
        ("enable", "a"),
    ] {
        log.record(&caller(0), Via::Socket, &Event::new(action).script(script))
            .unwrap();
    }
    log.record_signal(&Event::new("reload")).unwrap();
    let all = log.list(&AuditFilter::default()).unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[0].action, "reload");
    assert_eq!(all[0].via, "signal");
    assert_eq!((all[0].uid, all[0].pid), (0, 0));
    assert!(all.windows(2).all(|w| w[0].id > w[1].id));
    let of_a = log
        .list(&AuditFilter {
            script: Some("a".into()),
            ..AuditFilter::default()
        })
        .unwrap();
    let actions: Vec<&str> = of_a.iter().map(|r| r.action.as_str()).collect();
    assert_eq!(actions, ["enable", "disable", "register"]);
    let registers = log
        .list(&AuditFilter {
            action: Some("register".into()),
            ..AuditFilter::default()
        })
        .unwrap();
    assert_eq!(registers.len(), 2);
    let page = log
        .list(&AuditFilter {
            before: Some(all[1].id),
            limit: Some(2),
            ..AuditFilter::default()
        })
        .unwrap();
    assert_eq!(page, all[2..4].to_vec());
    assert_eq!(log.last().unwrap(), Some(all[0].clone()));
}

#[test]
fn a_newer_schema_is_refused_and_an_unwritable_store_reports_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("audit.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
    }
    assert!(matches!(
        AuditLog::open_file(&path),
        Err(AuditError::Open(crate::sqlite::OpenError::SchemaTooNew {
            found: 99,
            ..
        }))
    ));
    let other = dir.path().join("b.db");
    let log = AuditLog::open_file(&other).unwrap();
    log.lock().execute_batch("DROP TABLE audit").unwrap();
    let err = log
        .record(&caller(1), Via::Socket, &Event::new("register"))
        .unwrap_err();
    assert!(err.to_string().contains("write an audit row"), "{err}");
}
