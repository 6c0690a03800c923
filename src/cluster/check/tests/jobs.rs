//! Atomic slot migrations (Valkey 9) in the report: jobs in flight, failures, ends.

use super::*;

fn job(
    name: &str,
    op: &str,
    slots: (u16, u16),
    state: &str,
    message: &str,
    time: u64,
) -> crate::cluster::jobs::SlotJob {
    crate::cluster::jobs::SlotJob {
        name: name.into(),
        operation: op.into(),
        slots: vec![slots],
        source: id('a'),
        target: id('b'),
        state: state.into(),
        message: message.into(),
        create_time: time,
        last_update_time: time,
    }
}

#[test]
fn atomic_jobs_in_flight_are_warnings_and_recent_failures_are_listed() {
    let topo = healthy();
    let views = all_views(&topo);
    let now = 1_800_000_000;
    let (a, b) = ("127.0.0.1:7001".to_string(), "127.0.0.1:7002".to_string());
    let jobs = vec![
        (
            a.clone(),
            vec![
                job("j4", "EXPORT", (100, 199), "snapshotting", "", now - 5),
                job(
                    "j3",
                    "EXPORT",
                    (0, 9),
                    "failed",
                    "Connection lost to target.",
                    now - 60,
                ),
                job("j2", "EXPORT", (10, 19), "cancelled", "", now - 60),
                job("j1", "EXPORT", (20, 29), "failed", "Timed out", now - 7200),
            ],
        ),
        (
            b.clone(),
            vec![
                job(
                    "j4",
                    "IMPORT",
                    (100, 199),
                    "receiving-snapshot",
                    "",
                    now - 5,
                ),
                job(
                    "j3",
                    "IMPORT",
                    (0, 9),
                    "failed",
                    "Timed out after too long with no interaction",
                    now - 60,
                ),
                job(
                    "j2",
                    "IMPORT",
                    (10, 19),
                    "failed",
                    "Connection lost to source.",
                    now - 60,
                ),
            ],
        ),
    ];
    let mut r = check("s", &views);
    assert!(r.ok);
    crate::cluster::check::migrations::add(&mut r, &views, &jobs, now);
    assert!(!r.ok, "a job in flight");
    // The cancelled job and the failure of two hours ago are not listed.
    let names: Vec<&str> = r.migrations.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, vec!["j4", "j3"]);
    let out = render(&r);
    let flying = "[WARNING] The atomic migration of slots 100-199 from 127.0.0.1:7001 to 127.0.0.1:7002 is in flight (snapshotting on 127.0.0.1:7001, receiving-snapshot on 127.0.0.1:7002; started 5 s ago)";
    assert!(out.contains(flying), "{out}");
    assert!(out.contains("[FAILED] The atomic migration of slots 0-9 from 127.0.0.1:7001 to 127.0.0.1:7002 failed 60 s ago: \"Connection lost to target.\" (127.0.0.1:7001); \"Timed out after too long with no interaction\" (127.0.0.1:7002). Its slots are owned now: 0-9 by 127.0.0.1:7001."), "{out}");
    assert_eq!(out.matches("in flight").count(), 1, "{out}");

    // Once it has ended, the report is ok again; a failure that may have moved the
    // slots with lost writes is a warning naming the owner.
    let unpaused =
        "Unpaused before migration completed (migration may have succeeded with lost writes)";
    let jobs = vec![(
        a,
        vec![job("j5", "EXPORT", (0, 9), "failed", unpaused, now - 5)],
    )];
    let mut r = check("s", &views);
    crate::cluster::check::migrations::add(&mut r, &views, &jobs, now);
    assert!(r.ok);
    assert!(
        r.warnings
            .iter()
            .any(|w| w.contains("may have moved anyway")
                && w.contains("They are owned now: 0-9 by 127.0.0.1:7001")),
        "{:?}",
        r.warnings
    );
    let _ = b;
}

#[test]
fn a_job_takes_its_ends_from_the_nodes_that_name_them_not_from_a_replica() {
    let topo = healthy();
    let views = all_views(&topo);
    let now = 1_800_000_000;
    let bare = |op: &str| crate::cluster::jobs::SlotJob {
        source: String::new(),
        target: String::new(),
        ..job("j1", op, (100, 199), "snapshotting", "", now - 5)
    };
    // A replica of the target is listed first, without source_node and target_node.
    let jobs = vec![
        ("127.0.0.1:7005".to_string(), vec![bare("IMPORT")]),
        (
            "127.0.0.1:7001".to_string(),
            vec![job("j1", "EXPORT", (100, 199), "snapshotting", "", now - 5)],
        ),
        (
            "127.0.0.1:7002".to_string(),
            vec![job(
                "j1",
                "IMPORT",
                (100, 199),
                "receiving-snapshot",
                "",
                now - 5,
            )],
        ),
    ];
    let mut r = check("s", &views);
    crate::cluster::check::migrations::add(&mut r, &views, &jobs, now);
    assert_eq!(r.migrations.len(), 1);
    assert_eq!(
        (
            r.migrations[0].source.as_str(),
            r.migrations[0].target.as_str()
        ),
        (id('a').as_str(), id('b').as_str())
    );
    let out = render(&r);
    assert!(
        out.contains("from 127.0.0.1:7001 to 127.0.0.1:7002 is in flight"),
        "{out}"
    );
}

#[test]
fn a_node_that_cannot_list_its_jobs_is_a_warning_not_none_in_flight() {
    let views = all_views(&healthy());
    let mut r = check("s", &views);
    assert!(r.ok);
    crate::cluster::check::migrations::add(&mut r, &views, &[], 1_800_000_000);
    let said = "cannot list the atomic slot migrations of 127.0.0.1:7002: NOPERM no permissions"
        .to_string();
    crate::cluster::check::migrations::add_unlisted(&mut r, vec![said.clone()]);
    assert!(!r.ok);
    let out = render(&r);
    assert_eq!(out.matches(&said).count(), 1, "{out}");
    assert!(out.contains(&format!("[WARNING] {said}")), "{out}");
    assert!(!out.contains("No atomic slot migration in flight"), "{out}");
}
