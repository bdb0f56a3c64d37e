//! Callback subscriptions as the history writer sees them: which terminal records owe a
//! delivery, and the flag that lets the writer skip the query while none can exist.

use std::sync::atomic::Ordering;
use std::time::Duration;

use rusqlite::Connection;

use super::{lazy, rec};
use crate::callbacks::outbox::{self, Subscription};
use crate::execution::State;
use crate::history::History;

fn subscription(id: &str) -> Subscription {
    Subscription {
        id: id.into(),
        url: "unix:/run/engine.sock/all".into(),
        script: None,
        states: None,
        created_at: "2025-01-01T00:00:00.000Z".into(),
        created_uid: Some(0),
        secret: None,
    }
}

fn deliveries(conn: &Connection) -> i64 {
    conn.query_row("SELECT COUNT(*) FROM deliveries", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn with_a_subscription_every_terminal_record_is_committed_at_once() {
    let dir = tempfile::tempdir().unwrap();
    {
        let h = History::open(dir.path(), lazy()).unwrap();
        h.side_connection()
            .unwrap()
            .execute(
                "INSERT INTO subscriptions (id, url, secret, created_at)
                 VALUES ('sub-1', 'unix:/run/engine.sock/all', 'a secret of sixteen', 't')",
                [],
            )
            .unwrap();
        h.close().await.unwrap();
    }
    // A daemon started over it knows there is one without being told.
    let h = History::open(dir.path(), lazy()).unwrap();
    let owed = h.deliveries_owed();
    h.record(rec("a", "s", State::Completed));
    tokio::time::timeout(Duration::from_secs(10), owed.notified())
        .await
        .expect("a record the subscription matches waited for its batch");
    assert_eq!(h.count().await.unwrap(), 1);
    h.close().await.unwrap();
}

#[tokio::test]
async fn a_subscription_made_through_the_history_is_owed_the_next_record_and_none_after_it_goes() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(dir.path(), lazy()).unwrap();
    let conn = h.side_connection().unwrap();
    h.record(rec("before", "s", State::Completed));
    h.flush().await.unwrap();
    assert_eq!(deliveries(&conn), 0, "no subscription, no delivery");

    h.change_subscriptions(&conn, |c| {
        outbox::insert_subscription(c, &subscription("sub-1"), "a secret of sixteen")
    })
    .unwrap();
    h.record(rec("during", "s", State::Completed));
    h.flush().await.unwrap();
    assert_eq!(
        deliveries(&conn),
        1,
        "the new subscription is owed the record"
    );

    let deleted = h
        .change_subscriptions(&conn, |c| outbox::delete_subscription(c, "sub-1"))
        .unwrap();
    assert!(deleted);
    assert!(!h.inner.signals.subscriptions.load(Ordering::SeqCst));
    h.record(rec("after", "s", State::Completed));
    h.flush().await.unwrap();
    assert_eq!(
        deliveries(&conn),
        1,
        "a removed subscription is owed nothing new"
    );
    h.close().await.unwrap();
}

#[tokio::test]
async fn while_no_subscription_can_exist_the_writer_does_not_look_for_one() {
    // A subscription written behind the history's back (not through `change_subscriptions`)
    // is not seen until the next start: the skip is real, and the API never writes one so.
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(dir.path(), lazy()).unwrap();
    let conn = h.side_connection().unwrap();
    outbox::insert_subscription(&conn, &subscription("sub-1"), "a secret of sixteen").unwrap();
    h.record(rec("a", "s", State::Completed));
    h.flush().await.unwrap();
    assert_eq!(deliveries(&conn), 0);
    h.close().await.unwrap();

    let h = History::open(dir.path(), lazy()).unwrap();
    h.record(rec("b", "s", State::Completed));
    h.flush().await.unwrap();
    assert_eq!(
        deliveries(&conn),
        1,
        "a start counts the subscriptions there are"
    );
    h.close().await.unwrap();
}

#[tokio::test]
async fn changes_from_many_threads_leave_the_flag_saying_what_the_table_holds() {
    let dir = tempfile::tempdir().unwrap();
    let h = History::open(dir.path(), lazy()).unwrap();
    // Eight threads each add a subscription and remove it again, many times over: whatever
    // the interleaving, while one exists the flag is up.
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let h = h.clone();
            let conn = h.side_connection().unwrap();
            std::thread::spawn(move || {
                for i in 0..40 {
                    let id = format!("sub-{t}-{i}");
                    h.change_subscriptions(&conn, |c| {
                        outbox::insert_subscription(c, &subscription(&id), "a secret of sixteen")
                    })
                    .unwrap();
                    assert!(h.inner.signals.subscriptions.load(Ordering::SeqCst));
                    h.change_subscriptions(&conn, |c| outbox::delete_subscription(c, &id))
                        .unwrap();
                }
                // The last one stays.
                h.change_subscriptions(&conn, |c| {
                    outbox::insert_subscription(
                        c,
                        &subscription(&format!("kept-{t}")),
                        "a secret of sixteen",
                    )
                })
                .unwrap();
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(h.inner.signals.subscriptions.load(Ordering::SeqCst));
    let conn = h.side_connection().unwrap();
    for t in 0..8 {
        h.change_subscriptions(&conn, |c| {
            outbox::delete_subscription(c, &format!("kept-{t}"))
        })
        .unwrap();
    }
    assert!(!h.inner.signals.subscriptions.load(Ordering::SeqCst));
    h.close().await.unwrap();
}
