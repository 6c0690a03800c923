//! Live traffic during a rebalance and during a fix: a cluster-aware client (it
//! follows MOVED and ASK) writes its own keys and reads them back while slots move;
//! afterwards every acknowledged write is readable with its value.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use slotsmith::lab::Fault;

use crate::support::{run, verify_acked as verify, workload, Server, TestCluster};

on_both_servers!(writes_during_a_rebalance_and_a_fix_are_all_readable_afterwards);
fn writes_during_a_rebalance_and_a_fix_are_all_readable_afterwards(server: Server) {
    let tc = TestCluster::with(server, |s| {
        s.masters = 3;
        s.replicas = 1;
        s.empty = 1;
        s.keys = 20_000;
    });
    let seed = tc.seed();

    // During a rebalance: slot 0 moves to the empty master early.
    let stop = Arc::new(AtomicBool::new(false));
    let w = workload(seed.clone(), "rb".into(), 0, stop.clone());
    let out = run(&[
        "-c",
        &seed,
        "rebalance",
        "--use-empty-masters",
        "--pipeline",
        "5",
        "-y",
    ]);
    stop.store(true, Ordering::SeqCst);
    let (acked, wrong) = w.join().unwrap();
    assert_eq!(out.code, 0, "{out}");
    assert!(
        wrong.is_empty(),
        "read-back mismatches during the rebalance: {wrong:?}"
    );
    assert!(acked.len() >= 200, "the workload made no progress");
    verify(&seed, &acked);

    // During a fix of the classic stuck slot, writing into that very slot.
    tc.lab()
        .break_fault(Fault::StuckSlot { slot: 5519 }, tc.handle())
        .expect("break");
    let stop = Arc::new(AtomicBool::new(false));
    let w = workload(seed.clone(), "fx".into(), 5519, stop.clone());
    std::thread::sleep(std::time::Duration::from_millis(200));
    let out = run(&["-c", &seed, "fix", "-y"]);
    stop.store(true, Ordering::SeqCst);
    let (acked2, wrong) = w.join().unwrap();
    assert_eq!(out.code, 0, "{out}");
    assert!(
        wrong.is_empty(),
        "read-back mismatches during the fix: {wrong:?}"
    );
    verify(&seed, &acked);
    verify(&seed, &acked2);
    assert_eq!(run(&["-c", &seed, "check"]).code, 0);
}
