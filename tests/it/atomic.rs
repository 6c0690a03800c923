//! Atomic slot migration (`CLUSTER MIGRATESLOTS`): on Valkey 9.1.2, `rebalance` and
//! `reshard` move through the server's own migration by default and keep every key;
//! on Redis 7.0.15, which has none, `--migration atomic` is refused before anything is
//! written and `auto` says it uses the legacy protocol.

use std::time::{Duration, Instant};

use crate::support::{
    assert_check_clean, assert_lab_keys, run, signal, spawn, Server, TestCluster,
};

/// Jobs still in flight on any node (`CLUSTER GETSLOTMIGRATIONS` states that are not
/// terminal).
pub(crate) fn jobs_in_flight(tc: &TestCluster) -> Vec<String> {
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

/// Wait (at most 30 s) until the node on `port` lists an export job, the run `child`
/// still going.
fn wait_for_export(tc: &TestCluster, port: u16, child: &mut std::process::Child) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !tc
        .redis_cli(port, &["CLUSTER", "GETSLOTMIGRATIONS"])
        .contains("EXPORT")
    {
        assert!(Instant::now() < deadline, "no atomic job started");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the rebalance ended early"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The run's exit code and stderr once it has ended (at most `secs` seconds).
fn finish(mut child: crate::support::Spawned, secs: u64) -> (Option<i32>, String) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the rebalance did not end");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

/// A seed-like Valkey 9.1.2 lab: 3 masters with a replica each, 1 empty master.
pub(crate) fn valkey_lab(keys: u64) -> TestCluster {
    TestCluster::with(Server::Valkey, |s| {
        s.masters = 3;
        s.replicas = 1;
        s.empty = 1;
        s.keys = keys;
    })
}

#[test]
fn valkey_rebalance_and_reshard_move_atomically_and_keep_every_key() {
    const KEYS: u64 = 20_000;
    let tc = valkey_lab(KEYS);
    let seed = tc.seed();
    // The dry run prints one CLUSTER MIGRATESLOTS per source and writes nothing.
    let before = tc.cluster_check();
    let out = run(&["-c", &seed, "--dry-run", "rebalance", "--use-empty-masters"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(
        out.stdout
            .matches("CLUSTER MIGRATESLOTS SLOTSRANGE")
            .count(),
        3,
        "{out}"
    );
    // Each exactly as it would be sent (the first master gives its lowest 1366 slots).
    assert!(
        out.stdout
            .contains("CLUSTER MIGRATESLOTS SLOTSRANGE 0 1365 NODE "),
        "{out}"
    );
    assert!(out.stdout.contains("4096 slots change owner"), "{out}");
    assert!(!out.stdout.contains("MIGRATE to"), "{out}");
    assert_eq!(tc.cluster_check(), before, "the dry run wrote");

    let out = run(&["-c", &seed, "rebalance", "--use-empty-masters", "-y"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stderr.contains("atomic slot migration"), "{out}");
    assert!(out.stdout.contains("[OK] The cluster is healthy"), "{out}");
    assert!(jobs_in_flight(&tc).is_empty(), "{:?}", jobs_in_flight(&tc));
    assert_check_clean(&tc);
    assert_lab_keys(&tc, KEYS, KEYS, 997);
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
    assert_lab_keys(&tc, KEYS, KEYS, 997);
}

#[test]
fn redis_refuses_atomic_before_writing_and_auto_says_legacy() {
    let tc = TestCluster::with(Server::Redis, |s| {
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
    // The primitive says it in its own words (it has no --migration).
    let dir = tempfile::tempdir().expect("temp dir");
    let runbook = dir.path().join("atomic.rhai");
    let ports = tc.ports();
    std::fs::write(
        &runbook,
        format!(
            "migrate_slots(\"127.0.0.1:{}\", [[0, 10, \"127.0.0.1:{}\"]]);",
            ports[0], ports[3]
        ),
    )
    .unwrap();
    let out = run(&["-c", &seed, "-y", "run", runbook.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains("cannot move slots atomically")
            && out.stderr.contains("move them with move_slots")
            && !out.stderr.contains("--migration"),
        "{out}"
    );
    assert_eq!(
        tc.cluster_check(),
        before,
        "the refused migrate_slots changed the cluster"
    );

    let out = run(&["-c", &seed, "rebalance", "--use-empty-masters", "-y"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stderr.contains("legacy protocol"), "{out}");
    assert_check_clean(&tc);
    assert_lab_keys(&tc, 1000, 1000, 7);
}

#[test]
fn ctrl_c_during_an_atomic_rebalance_cancels_the_jobs_and_loses_nothing() {
    const KEYS: u64 = 100_000;
    let tc = valkey_lab(KEYS);
    let ports = tc.ports();
    let target = ports[6];
    let target_pid = tc.lab().node(target).expect("lab node").pid as i32;
    let mut child = spawn(&["-c", &tc.seed(), "rebalance", "--use-empty-masters", "-y"]);
    // Once a job is under way, the target stops answering (the jobs stall), and the
    // operator presses Ctrl+C.
    wait_for_export(&tc, ports[0], &mut child);
    // SAFETY: signalling a server process this test's lab started.
    unsafe { libc::kill(target_pid, libc::SIGSTOP) };
    std::thread::sleep(Duration::from_millis(300));
    signal(&child, libc::SIGINT);
    std::thread::sleep(Duration::from_millis(1500));
    // SAFETY: as above.
    unsafe { libc::kill(target_pid, libc::SIGCONT) };
    let (code, stderr) = finish(child, 60);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    // Which ranges moved and which stay with their source.
    assert!(stderr.contains("(still with 127.0.0.1:"), "{stderr}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !jobs_in_flight(&tc).is_empty() {
        assert!(Instant::now() < deadline, "{:?}", jobs_in_flight(&tc));
        std::thread::sleep(Duration::from_millis(100));
    }
    // Every slot owned by exactly one master, every key there.
    assert_check_clean(&tc);
    assert_lab_keys(&tc, KEYS, KEYS, 997);
}

/// A source master stops (SIGSTOP) while its atomic job is in flight, and its replica
/// takes over: the rebalance says so (a failover, the slots stay with that shard) and
/// ends; once the old source is back as a replica, fix leaves a clean cluster with
/// every key.
#[test]
fn a_failover_of_a_source_during_an_atomic_rebalance_is_said_and_fix_settles_it() {
    const KEYS: u64 = 60_000;
    let tc = valkey_lab(KEYS);
    let ports = tc.ports();
    // Masters on the first three ports, their replicas on the next three.
    let (source, replica) = (ports[1], ports[4]);
    // The target gives up on a silent source quickly; the source's job is slow enough
    // to be caught in flight.
    for p in &ports {
        tc.redis_cli(*p, &["CONFIG", "SET", "repl-timeout", "3"]);
    }
    tc.redis_cli(source, &["CONFIG", "SET", "rdb-key-save-delay", "200"]);
    let mut child = spawn(&["-c", &tc.seed(), "rebalance", "--use-empty-masters", "-y"]);
    wait_for_export(&tc, source, &mut child);
    let pid = tc.lab().node(source).expect("lab node").pid as i32;
    // SAFETY: signalling a server process this test's lab started.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = tc.redis_cli(replica, &["CLUSTER", "NODES"]);
        let nodes = slotsmith::cluster::topology::parse_cluster_nodes(&text).unwrap_or_default();
        if nodes.iter().any(|n| n.is_myself() && n.is_master()) {
            break;
        }
        assert!(Instant::now() < deadline, "the replica never took over");
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    let (code, stderr) = finish(child, 90);
    assert_ne!(code, Some(0), "{stderr}");
    assert!(
        stderr.contains(&format!("127.0.0.1:{source} is "))
            && stderr.contains("(a failover happened)"),
        "{stderr}"
    );
    assert!(!stderr.contains(".rhai:"), "{stderr}");
    // fix (waiting out what is still in flight) leaves a clean cluster, every key there.
    let deadline = Instant::now() + Duration::from_secs(60);
    let fix = loop {
        let fix = run(&["-c", &tc.seed(), "fix", "-y"]);
        if fix.code == 0 || Instant::now() > deadline {
            break fix;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(fix.code, 0, "{fix}");
    assert_check_clean(&tc);
    assert_lab_keys(&tc, KEYS, KEYS, 997);
}

/// Keys a target holds in a slot it does not own would be deleted by the server if
/// an atomic import of that slot failed or was cancelled: the move refuses before
/// starting, naming the node and the slot; fix then settles the stray key.
#[test]
fn an_atomic_move_onto_a_target_with_stray_keys_is_refused_and_nothing_is_lost() {
    let tc = valkey_lab(2000);
    let ports = tc.ports();
    let (src, empty) = (ports[0], ports[6]);
    // A stray key on the empty master in slot 100, which the first master owns.
    let key = format!(
        "{{{}}}:stray",
        slotsmith::cluster::slot::key_in_slot(100, "s")
    );
    tc.plant_stray(empty, src, &key, "kept");

    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("move.rhai");
    std::fs::write(
        &book,
        format!("migrate_slots(\"127.0.0.1:{src}\", [[100, 100, \"127.0.0.1:{empty}\"]]);"),
    )
    .unwrap();
    let out = run(&["-c", &tc.seed(), "-y", "run", book.to_str().unwrap()]);
    assert_ne!(out.code, 0, "{out}");
    assert!(
        out.stderr.contains(&format!(
            "127.0.0.1:{empty} holds 1 key(s) of slot 100, which it does not own"
        )),
        "{out}"
    );
    assert!(jobs_in_flight(&tc).is_empty());
    // The stray key is still there (clients are redirected away from it).
    assert_eq!(
        tc.redis_cli(empty, &["CLUSTER", "COUNTKEYSINSLOT", "100"])
            .trim(),
        "1"
    );
    // fix settles the stray key; it reads back through the cluster.
    let out = run(&["-c", &tc.seed(), "fix", "-y"]);
    assert_eq!(out.code, 0, "{out}");
    assert_check_clean(&tc);
    assert_eq!(tc.redis_cli(src, &["-c", "GET", &key]).trim(), "kept");
    assert_eq!(tc.total_keys(), 2001);
}

/// `kill -9` of an atomic rebalance: the server's jobs go on without it; fix waits for
/// them and leaves a clean cluster, and the rebalance then finishes, every key there.
#[test]
fn kill_9_of_an_atomic_rebalance_leaves_jobs_fix_waits_for() {
    const KEYS: u64 = 60_000;
    let tc = valkey_lab(KEYS);
    let ports = tc.ports();
    // One source's job is slow enough to be caught in flight.
    tc.redis_cli(ports[1], &["CONFIG", "SET", "rdb-key-save-delay", "100"]);
    let rebalance = ["-c", &tc.seed(), "rebalance", "--use-empty-masters", "-y"].map(String::from);
    let args: Vec<&str> = rebalance.iter().map(String::as_str).collect();
    let mut child = spawn(&args);
    let deadline = Instant::now() + Duration::from_secs(30);
    while jobs_in_flight(&tc).is_empty() {
        assert!(Instant::now() < deadline, "no atomic job started");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the rebalance ended early"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(&child, libc::SIGKILL);
    let _ = child.wait();
    let fix = run(&["-c", &tc.seed(), "fix", "-y"]);
    assert_eq!(fix.code, 0, "{fix}");
    assert!(jobs_in_flight(&tc).is_empty(), "{:?}", jobs_in_flight(&tc));
    assert_check_clean(&tc);
    tc.redis_cli(ports[1], &["CONFIG", "SET", "rdb-key-save-delay", "0"]);
    let out = run(&args);
    assert_eq!(out.code, 0, "{out}");
    assert_check_clean(&tc);
    assert_lab_keys(&tc, KEYS, KEYS, 997);
}
