//! Atomic slot migration (`CLUSTER MIGRATESLOTS`): on Valkey 9.1.2, `rebalance` and
//! `reshard` move through the server's own migration by default and keep every key;
//! on Redis 7.0.15, which has none, `--migration atomic` is refused before anything is
//! written and `auto` says it uses the legacy protocol.

use crate::support::{assert_check_clean, assert_lab_keys, run, valkey_server, TestCluster};

/// Jobs still in flight on any node (`CLUSTER GETSLOTMIGRATIONS` states that are not
/// terminal).
fn jobs_in_flight(tc: &TestCluster) -> Vec<String> {
    let mut out = Vec::new();
    for p in tc.ports() {
        let text = tc.redis_cli(p, &["CLUSTER", "GETSLOTMIGRATIONS"]);
        let words: Vec<&str> = text.lines().collect();
        for w in words.windows(2) {
            if w[0] == "state" && !["success", "cancelled", "failed"].contains(&w[1]) {
                out.push(format!("{p}: {}", w[1]));
            }
        }
    }
    out
}

#[test]
fn valkey_rebalance_and_reshard_move_atomically_and_keep_every_key() {
    const KEYS: u64 = 20_000;
    let tc = TestCluster::with(|s| {
        s.server = valkey_server();
        s.masters = 3;
        s.replicas = 1;
        s.empty = 1;
        s.keys = KEYS;
    });
    let seed = tc.seed();
    let out = run(&["-c", &seed, "rebalance", "--use-empty-masters", "-y"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stderr.contains("atomic slot migration"), "{out}");
    assert!(out.stdout.contains("[OK] The cluster is healthy"), "{out}");
    assert!(jobs_in_flight(&tc).is_empty(), "{:?}", jobs_in_flight(&tc));
    assert_check_clean(&tc);
    assert_lab_keys(&tc, KEYS, KEYS, 97);
    // Each master holds its share: 4096 slots.
    let check = tc.cluster_check();
    assert_eq!(check.matches("| 4096 slots |").count(), 4, "{check}");

    // reshard 100 slots back with --migration atomic named.
    let p = tc.ports();
    let (first, empty) = (format!("127.0.0.1:{}", p[0]), format!("127.0.0.1:{}", p[6]));
    let out = run(&[
        "-c",
        &seed,
        "reshard",
        "--from",
        &empty,
        "--to",
        &first,
        "--slots",
        "100",
        "--migration",
        "atomic",
        "-y",
    ]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stderr.contains("atomic slot migration"), "{out}");
    assert_check_clean(&tc);
    assert_lab_keys(&tc, KEYS, KEYS, 97);
}

#[test]
fn redis_refuses_atomic_before_writing_and_auto_says_legacy() {
    let tc = TestCluster::with(|s| {
        s.masters = 3;
        s.replicas = 0;
        s.empty = 1;
        s.keys = 1000;
    });
    let seed = tc.seed();
    let before = tc.cluster_check();
    let out = run(&[
        "-c",
        &seed,
        "rebalance",
        "--use-empty-masters",
        "--migration",
        "atomic",
        "-y",
    ]);
    assert_eq!(out.code, 2, "{out}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out}");
    assert!(
        out.stderr.contains("cannot move slots atomically")
            && out.stderr.contains("use --migration legacy or auto"),
        "{out}"
    );
    assert_eq!(
        tc.cluster_check(),
        before,
        "the refused rebalance changed the cluster"
    );

    let out = run(&["-c", &seed, "rebalance", "--use-empty-masters", "-y"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stderr.contains("legacy protocol"), "{out}");
    assert_check_clean(&tc);
    assert_lab_keys(&tc, 1000, 1000, 7);
}
