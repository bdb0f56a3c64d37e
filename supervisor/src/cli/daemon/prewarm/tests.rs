use super::*;

#[test]
fn prewarm_bodies_carry_selectors_and_counts() {
    let targets = vec!["a".to_owned(), "b@sha256:1".to_owned(), "c:prod".to_owned()];
    assert_eq!(
        prewarm_body(&targets, Some(2)).unwrap(),
        json!({"scripts": [
            {"name": "a", "count": 2},
            {"name": "b", "version": "sha256:1", "count": 2},
            {"name": "c", "tag": "prod", "count": 2},
        ]})
    );
    assert_eq!(
        prewarm_body(&["a".to_owned()], None).unwrap(),
        json!({"scripts": [{"name": "a"}]})
    );
    assert!(prewarm_body(&["Bad Name".to_owned()], None).is_err());
}

#[test]
fn prewarm_waits_for_its_own_pools_and_counts_new_failures() {
    let answer = json!({"scripts": [
        {"name": "a", "version": "sha256:1", "requested": 2, "started": 2},
        {"name": "b", "version": "sha256:2", "requested": 1, "started": 1},
    ]});
    let before = json!([
        {"script": "b", "version": "sha256:2", "idle": 0, "busy": 0, "starting": 0,
         "start_failures": 3},
    ]);
    let during = json!([
        {"script": "a", "version": "sha256:1", "idle": 1, "busy": 0, "starting": 1,
         "start_failures": 0},
        {"script": "b", "version": "sha256:2", "idle": 0, "busy": 0, "starting": 1,
         "start_failures": 3},
        {"script": "other", "version": "sha256:9", "idle": 0, "busy": 0, "starting": 5},
    ]);
    let standing = prewarm_standing(&answer, &before, &during);
    assert_eq!(
        (
            standing.starting,
            standing.up,
            standing.asked,
            standing.failed
        ),
        (2, 1, 3, 0)
    );
    let after = json!([
        {"script": "a", "version": "sha256:1", "idle": 1, "busy": 1, "starting": 0,
         "start_failures": 0},
        {"script": "b", "version": "sha256:2", "idle": 0, "busy": 0, "starting": 0,
         "start_failures": 4},
    ]);
    let standing = prewarm_standing(&answer, &before, &after);
    assert_eq!((standing.starting, standing.up, standing.failed), (0, 2, 1));
    assert_eq!(standing.answer["scripts"][0]["warm"], 2);
    assert_eq!(standing.answer["scripts"][1]["failed"], 1);
    // A pool that is gone (never created) counts as nothing starting.
    let standing = prewarm_standing(&answer, &Value::Null, &json!([]));
    assert_eq!((standing.starting, standing.up), (0, 0));
}
