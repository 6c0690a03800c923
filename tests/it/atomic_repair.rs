//! Repairs around atomic slot migration jobs on Valkey 9.1.2: a job started by hand
//! (`CLUSTER MIGRATESLOTS` through redis-cli) that stalls or fails is seen by `check`;
//! `fix` waits for it or cancels it, `cancel SLOT` cancels it, moves refuse to start
//! beside it; and the runbook primitives that start, list and cancel jobs.

use std::time::{Duration, Instant};

use crate::atomic::{jobs_in_flight, valkey_lab};
use slotsmith::lab::Fault;

use crate::support::{assert_check_clean, assert_lab_keys, run, TestCluster};

/// A file for a runbook, in a directory of its own.
fn runbook_file(name: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    (dir, path)
}

const KEYS: u64 = 20_000;

fn id_of(tc: &TestCluster, port: u16) -> String {
    tc.redis_cli(port, &["CLUSTER", "MYID"]).trim().to_string()
}

fn addr(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// Start one job by hand, as an operator would with redis-cli.
fn migrateslots(tc: &TestCluster, src: u16, range: (u16, u16), dst: u16) {
    let (a, b) = (range.0.to_string(), range.1.to_string());
    let out = tc.redis_cli(
        src,
        &[
            "CLUSTER",
            "MIGRATESLOTS",
            "SLOTSRANGE",
            &a,
            &b,
            "NODE",
            &id_of(tc, dst),
        ],
    );
    assert_eq!(out.trim(), "OK", "CLUSTER MIGRATESLOTS: {out}");
}

/// Make the source's snapshot of the slots slow (microseconds per key), so that a job
/// stays in flight while every node answers.
fn slow_snapshot(tc: &TestCluster, src: u16, micros: u32) {
    let out = tc.redis_cli(
        src,
        &["CONFIG", "SET", "rdb-key-save-delay", &micros.to_string()],
    );
    assert_eq!(out.trim(), "OK", "{out}");
}

/// Who owns `slot`, as the node on `port` sees it.
fn owner_port(tc: &TestCluster, port: u16, slot: u16) -> u16 {
    let text = tc.redis_cli(port, &["CLUSTER", "NODES"]);
    let nodes = slotsmith::cluster::topology::parse_cluster_nodes(&text).expect("parses");
    nodes
        .iter()
        .find(|n| n.is_master() && n.owns(slot))
        .map(|n| n.port)
        .expect("an owner")
}

#[test]
fn a_stalled_atomic_job_is_seen_by_check_waited_for_or_cancelled_by_fix_and_cancel() {
    let tc = valkey_lab(KEYS);
    let seed = tc.seed();
    let p = tc.ports();
    let (src, dst) = (p[0], p[6]);
    slow_snapshot(&tc, src, 100_000);
    migrateslots(&tc, src, (0, 999), dst);

    // check: the job, its nodes and states; not healthy while it is in flight.
    let out = run(&["-c", &seed, "check"]);
    assert_eq!(out.code, 1, "{out}");
    let flying = format!(
        "[WARNING] The atomic migration of slots 0-999 from {} to {} is in flight (",
        addr(src),
        addr(dst)
    );
    assert!(out.stdout.contains(&flying), "{out}");
    assert!(out.stdout.contains("slotsmith fix waits for it"), "{out}");
    let out = run(&["-c", &seed, "--json", "check"]);
    assert_eq!(out.code, 1, "{out}");
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("one JSON document");
    let m = &doc["migrations"][0];
    assert_eq!(m["in_flight"], true, "{out}");
    assert_eq!(
        m["source"].as_str(),
        Some(id_of(&tc, src).as_str()),
        "{out}"
    );
    assert_eq!(m["slots"][0], serde_json::json!([0, 999]), "{out}");

    // Nothing else moves beside it, and nothing is left behind by trying.
    let before = tc.cluster_check();
    let out = run(&["-c", &seed, "rebalance", "--use-empty-masters", "-y"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        // The words every move refuses with.
        out.stderr.contains(&format!(
            "cannot rebalance: {} is sending slots 0-999 to {} (atomic slot migration, ",
            addr(src),
            addr(dst)
        )) && out.stderr.contains("--cancel-migrations"),
        "{out}"
    );
    let (_dir, runbook) = runbook_file("move-one.rhai");
    std::fs::write(
        &runbook,
        format!("move_slot(2000, \"{}\", \"{}\");", addr(src), addr(p[1])),
    )
    .unwrap();
    let out = run(&["-c", &seed, "-y", "run", runbook.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains(&format!(
            "cannot move slots now: {} is sending slots 0-999",
            addr(src)
        )),
        "{out}"
    );
    assert_eq!(
        tc.cluster_check(),
        before,
        "a refused move changed the cluster"
    );

    let out = run(&["-c", &seed, "complete", "500", "-y"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .contains("the server completes it by itself; complete changed nothing"),
        "{out}"
    );

    // fix waits (here 1 s), then changes nothing.
    let out = run(&["-c", &seed, "fix", "--wait", "1", "-y"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .contains("is still in flight after 1 s; fix changed nothing"),
        "{out}"
    );

    // cancel SLOT of a slot in the job cancels the job: the slots stay with the source.
    // It waits for that job only, not for another one in flight elsewhere; --replace
    // does not apply, and it says so.
    let (other_src, other_dst) = (p[1], p[2]);
    slow_snapshot(&tc, other_src, 100_000);
    migrateslots(&tc, other_src, (5462, 6461), other_dst);
    let out = run(&["-c", &seed, "cancel", "500", "--replace", "-y"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("--replace does not apply"), "{out}");
    let left = jobs_in_flight(&tc);
    assert!(
        left.iter().any(|j| j.starts_with(&format!("{other_src}:")))
            && !left.iter().any(|j| j.starts_with(&format!("{src}:"))),
        "{left:?}"
    );
    tc.redis_cli(other_src, &["CLUSTER", "CANCELSLOTMIGRATIONS"]);
    slow_snapshot(&tc, other_src, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !jobs_in_flight(&tc).is_empty() {
        assert!(Instant::now() < deadline, "{:?}", jobs_in_flight(&tc));
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        out.stdout.contains(&format!(
            "[CANCELLED] the atomic migration of slots 0-999 from {} to {}: its slots stay with {}",
            addr(src),
            addr(dst),
            addr(src)
        )),
        "{out}"
    );
    assert!(jobs_in_flight(&tc).is_empty(), "{:?}", jobs_in_flight(&tc));
    assert_eq!(owner_port(&tc, src, 500), src);
    assert_check_clean(&tc);
    assert_lab_keys(&tc, KEYS, KEYS, 997);

    // fix --cancel-migrations: first as a dry run (nothing cancelled), then for real.
    migrateslots(&tc, src, (0, 999), dst);
    let out = run(&["-c", &seed, "--dry-run", "fix", "--cancel-migrations", "-y"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("CLUSTER CANCELSLOTMIGRATIONS"), "{out}");
    assert!(
        !jobs_in_flight(&tc).is_empty(),
        "the dry run cancelled the job"
    );
    let out = run(&["-c", &seed, "fix", "--cancel-migrations", "-y"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout
            .contains("[CANCELLED] the atomic migration of slots 0-999"),
        "{out}"
    );
    assert!(jobs_in_flight(&tc).is_empty(), "{:?}", jobs_in_flight(&tc));
    assert_eq!(run(&["-c", &seed, "check"]).code, 0);
    assert_check_clean(&tc);
    assert_lab_keys(&tc, KEYS, KEYS, 997);

    // fix (waiting 60 s by default) waits out a job that ends by itself.
    slow_snapshot(&tc, src, 2_000);
    migrateslots(&tc, src, (1000, 1999), dst);
    let out = run(&["-c", &seed, "fix", "-y"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout.contains("Waiting up to 60 s for it to end"),
        "{out}"
    );
    assert!(
        out.stdout.contains(&format!(
            "[OK] the atomic migration of slots 1000-1999 from {} to {} has ended: the slots are with {}",
            addr(src),
            addr(dst),
            addr(dst)
        )),
        "{out}"
    );
    assert_eq!(owner_port(&tc, src, 1500), dst);
    assert_check_clean(&tc);
    assert_lab_keys(&tc, KEYS, KEYS, 997);

    // Once nothing is in flight, the cluster moves atomically again.
    slow_snapshot(&tc, src, 0);
    let out = run(&["-c", &seed, "rebalance", "--use-empty-masters", "-y"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stderr.contains("atomic slot migration"), "{out}");
    assert_check_clean(&tc);
    assert_lab_keys(&tc, KEYS, KEYS, 997);
}

#[test]
fn a_failed_atomic_job_is_listed_by_check_and_fix_leaves_a_clean_cluster() {
    let tc = valkey_lab(KEYS);
    let seed = tc.seed();
    let p = tc.ports();
    let (src, dst) = (p[1], p[6]);
    for port in [src, dst] {
        tc.redis_cli(port, &["CONFIG", "SET", "repl-timeout", "2"]);
    }
    slow_snapshot(&tc, src, 10_000);
    migrateslots(&tc, src, (5462, 6461), dst);
    // The target stops answering past the source's repl-timeout: the job fails.
    let pid = tc.lab().node(dst).expect("lab node").pid as i32;
    // SAFETY: signalling a server process this test's lab started.
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !tc
        .redis_cli(src, &["CLUSTER", "GETSLOTMIGRATIONS"])
        .contains("failed")
    {
        assert!(Instant::now() < deadline, "the job did not fail");
        std::thread::sleep(Duration::from_millis(100));
    }
    // SAFETY: as above.
    unsafe { libc::kill(pid, libc::SIGCONT) };
    slow_snapshot(&tc, src, 0);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !jobs_in_flight(&tc).is_empty() {
        assert!(Instant::now() < deadline, "{:?}", jobs_in_flight(&tc));
        std::thread::sleep(Duration::from_millis(100));
    }

    // check lists the failure with what the nodes said, and who owns the slots.
    let out = run(&["-c", &seed, "check"]);
    let failed = format!(
        "[FAILED] The atomic migration of slots 5462-6461 from {} to {} failed ",
        addr(src),
        addr(dst)
    );
    assert!(out.stdout.contains(&failed), "{out}");
    assert!(
        out.stdout.contains(&format!(
            "Its slots are owned now: 5462-6461 by {}.",
            addr(src)
        )),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("[OK] No atomic slot migration in flight."),
        "{out}"
    );

    // A node that cannot list its jobs (here a user without GETSLOTMIGRATIONS) is
    // named in one sentence: a warning of check (not "none in flight"), and a move
    // beside it refuses with the same sentence.
    tc.redis_cli(
        dst,
        &["ACL", "SETUSER", "default", "-cluster|getslotmigrations"],
    );
    let unlisted = format!(
        "cannot list the atomic slot migrations of {}: NOPERM",
        addr(dst)
    );
    let out = run(&["-c", &seed, "check"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stdout.contains(&format!("[WARNING] {unlisted}")),
        "{out}"
    );
    assert!(
        !out.stdout.contains("No atomic slot migration in flight"),
        "{out}"
    );
    let (_move_dir, move_one) = runbook_file("move-one.rhai");
    std::fs::write(
        &move_one,
        format!("move_slot(5462, \"{}\", \"{}\");", addr(src), addr(dst)),
    )
    .unwrap();
    let before = tc.cluster_check();
    let out = run(&["-c", &seed, "-y", "run", move_one.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains(&unlisted), "{out}");
    assert_eq!(
        tc.cluster_check(),
        before,
        "a refused move changed the cluster"
    );
    tc.redis_cli(
        dst,
        &["ACL", "SETUSER", "default", "+cluster|getslotmigrations"],
    );

    // fix after the failure: nothing to settle, a clean cluster, every key.
    let out = run(&["-c", &seed, "fix", "-y"]);
    assert_eq!(out.code, 0, "{out}");
    assert_check_clean(&tc);
    assert_lab_keys(&tc, KEYS, KEYS, 997);

    // The runbook primitives: start a job, list it, cancel none; bad input is one
    // sentence naming the argument.
    let (_dir, runbook) = runbook_file("jobs.rhai");
    std::fs::write(
        &runbook,
        format!(
            r#"
let r = migrate_slots("{src}", [[5462, 5561, "{dst}"], [5562, 5571, "{other}"]]);
print(`moved ${{r.slots}} slots`);
let j = slot_migrations("{src}");
print(`newest: ${{j[0].operation}} ${{j[0].slots}} ${{j[0].state}} in_flight=${{j[0].in_flight}}`);
print(`cancelled: ${{cancel_slot_migrations("{src}")}}`);
"#,
            src = addr(src),
            dst = addr(dst),
            other = addr(p[0])
        ),
    )
    .unwrap();
    let out = run(&[
        "-c",
        &seed,
        "--dry-run",
        "-y",
        "run",
        runbook.to_str().unwrap(),
    ]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout.contains(&format!(
            "CLUSTER MIGRATESLOTS SLOTSRANGE 5462 5561 NODE {} SLOTSRANGE 5562 5571 NODE {}",
            id_of(&tc, dst),
            id_of(&tc, p[0])
        )),
        "{out}"
    );
    assert_eq!(owner_port(&tc, src, 5500), src, "the dry run moved a slot");
    let out = run(&["-c", &seed, "-y", "run", runbook.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("moved 110 slots"), "{out}");
    assert!(out.stdout.contains("cancelled: false"), "{out}");
    assert_eq!(owner_port(&tc, src, 5500), dst);
    assert_eq!(owner_port(&tc, src, 5570), p[0]);
    assert_check_clean(&tc);
    assert_lab_keys(&tc, KEYS, KEYS, 997);
    // A stuck legacy migration blocks atomic moves (the server refuses MIGRATESLOTS
    // while a slot has a marker): fix settles it, then the cluster moves atomically.
    tc.lab()
        .break_fault(Fault::StuckSlot { slot: 5519 }, tc.handle())
        .expect("break stuck-slot");
    // It writes a few keys of its own into the slot.
    let total = tc.total_keys();
    let out = run(&["-c", &seed, "rebalance", "--use-empty-masters", "-y"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("run slotsmith fix first"), "{out}");
    let out = run(&["-c", &seed, "fix", "-y"]);
    assert_eq!(out.code, 0, "{out}");
    assert_check_clean(&tc);
    let out = run(&[
        "-c",
        &seed,
        "rebalance",
        "--use-empty-masters",
        "--migration",
        "atomic",
        "-y",
    ]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stderr.contains("atomic slot migration"), "{out}");
    assert_check_clean(&tc);
    assert_lab_keys(&tc, total, KEYS, 997);

    for (range, said) in [
        (
            "[[10, 5, \"127.0.0.1:1\"]]",
            "range 1 ([10, 5, \"127.0.0.1:1\"]): start 10 is after end 5",
        ),
        (
            "[[0, 16384, \"127.0.0.1:1\"]]",
            "end: slot 16384 is out of range",
        ),
        (
            &format!("[[0, 1, \"{}\"]]", "127.0.0.1:1"),
            "dst: no node at 127.0.0.1:1 in this cluster",
        ),
    ] {
        std::fs::write(
            &runbook,
            format!("migrate_slots(\"{}\", {range});", addr(src)),
        )
        .unwrap();
        let out = run(&["-c", &seed, "-y", "run", runbook.to_str().unwrap()]);
        assert_eq!(out.code, 1, "{out}");
        assert!(out.stderr.contains(said), "{out}");
        assert!(!out.stderr.contains("panicked"), "{out}");
    }
}
