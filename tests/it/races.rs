//! A cluster that changes under a move: a `fix` or a second rebalance started while a
//! rebalance moves slots (with a client writing and reading back its keys), a plan
//! applied after the cluster changed, a master that stops answering, a failover in
//! the middle of a rebalance, a node that has only just joined. No acknowledged write
//! is lost, no run fights another, and every run that stops says what it left.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use slotsmith::cluster::topology::parse_cluster_nodes;

use crate::support::{
    assert_check_clean, assert_healthy, run, signal, slots_of, spawn, verify_acked,
    wait_for_progress, workload, Output, Server, TestCluster,
};

/// Wait for a run that was started with [`spawn`], at most `limit`.
fn finish(mut child: crate::support::Spawned, limit: Duration) -> Output {
    let deadline = Instant::now() + limit;
    while child.try_wait().ok().flatten().is_none() {
        assert!(
            Instant::now() < deadline,
            "the run did not end within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    Output {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).to_string(),
        stderr: String::from_utf8_lossy(&out.stderr).to_string(),
    }
}

/// Send a signal to a node of the lab.
fn signal_node(tc: &TestCluster, port: u16, sig: i32) {
    let pid = tc.lab().node(port).expect("lab node").pid;
    // SAFETY: signalling a redis-server process this test's lab started.
    unsafe {
        libc::kill(pid as i32, sig);
    }
}

/// `cluster_state` as the node on `port` reports it.
fn cluster_state(tc: &TestCluster, port: u16) -> String {
    tc.redis_cli(port, &["CLUSTER", "INFO"])
        .lines()
        .find_map(|l| l.trim().strip_prefix("cluster_state:").map(str::to_string))
        .unwrap_or_default()
}

/// Wait until `cond` holds, at most `secs` seconds.
fn wait_for(secs: u64, what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {secs} s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every node but `skip` (a stopped node would not answer): its own view of owners
/// and markers, and its key count.
fn views_except(tc: &TestCluster, skip: u16) -> Vec<String> {
    tc.ports()
        .into_iter()
        .filter(|p| *p != skip)
        .map(|p| {
            let nodes = parse_cluster_nodes(&tc.redis_cli(p, &["CLUSTER", "NODES"])).unwrap();
            let me = nodes.iter().find(|n| n.is_myself()).unwrap().clone();
            format!(
                "{p} {:?} {:?} {:?} {}",
                me.slots,
                me.migrating,
                me.importing,
                tc.redis_cli(p, &["DBSIZE"]).trim()
            )
        })
        .collect()
}

/// No master has a slot in migrating or importing state.
fn assert_no_open_slot(tc: &TestCluster) {
    for p in tc.ports() {
        let nodes = parse_cluster_nodes(&tc.redis_cli(p, &["CLUSTER", "NODES"])).unwrap();
        let me = nodes.iter().find(|n| n.is_myself()).unwrap();
        assert!(
            me.migrating.is_empty() && me.importing.is_empty(),
            "{p} has open slots: {:?} {:?}",
            me.migrating,
            me.importing
        );
    }
}

on_both_servers!(a_fix_or_a_second_rebalance_during_a_rebalance_stops_and_loses_nothing);
fn a_fix_or_a_second_rebalance_during_a_rebalance_stops_and_loses_nothing(server: Server) {
    let tc = TestCluster::with(server, |s| {
        s.masters = 3;
        s.replicas = 1;
        s.empty = 1;
        s.keys = 200_000;
    });
    let seed = tc.seed();
    let empty = *tc.ports().last().unwrap();
    let empty_addr = format!("127.0.0.1:{empty}");
    let weight2 = format!("{empty_addr}=2");
    let weight_half = format!("{empty_addr}=0.5");
    let keys = tc.total_keys();
    let mut written = 0u64;
    let rounds: [Vec<&str>; 3] = [
        vec!["--use-empty-masters"],
        vec!["--weight", &weight2],
        vec!["--weight", &weight_half],
    ];
    // Three times: a fix during a rebalance, while a client writes and reads back.
    for (i, round) in rounds.iter().enumerate() {
        let stop = Arc::new(AtomicBool::new(false));
        let w = workload(
            seed.clone(),
            format!("fix{i}"),
            (i * 5000) as u16,
            stop.clone(),
        );
        // The legacy protocol on both servers: its slots in flight are what is raced here
        // (the atomic back-end's interruptions are tested in `atomic`).
        let mut args = vec![
            "-c",
            seed.as_str(),
            "rebalance",
            "--migration",
            "legacy",
            "--pipeline",
            "10",
            "--batch-slots",
            "256",
            "-y",
        ];
        args.extend(round.iter().copied());
        let mut rebalance = spawn(&args);
        // Once the move is under way (planning a 200k-key rebalance takes a moment
        // first), and well before it ends: the whole move takes about a second.
        assert!(
            wait_for_progress(&tc, empty, &mut rebalance),
            "round {i}: the rebalance never started moving"
        );
        std::thread::sleep(Duration::from_millis(100));
        let fix = run(&["-c", &seed, "fix", "-y"]);
        let rb = finish(rebalance, Duration::from_secs(120));
        stop.store(true, Ordering::SeqCst);
        let (acked, wrong) = w.join().unwrap();
        assert_eq!(rb.code, 0, "round {i}: the rebalance: {rb}");
        // The fix saw the rebalance and stayed out of its way, saying who and why.
        assert_eq!(fix.code, 1, "round {i}: the fix: {fix}");
        let said = format!("{}{}", fix.stdout, fix.stderr);
        assert!(
            said.contains("another run is changing slots on this cluster")
                && said.contains("slotsmith rebalance (pid"),
            "round {i}: the fix does not say what it left alone and why: {fix}"
        );
        assert!(
            said.contains("changed nothing")
                || said.contains("nothing was written")
                || said.contains("fix settled 0 of"),
            "round {i}: {fix}"
        );
        assert!(
            wrong.is_empty(),
            "round {i}: read-back mismatches: {wrong:?}"
        );
        assert!(
            acked.len() >= 200,
            "round {i}: the workload made no progress"
        );
        verify_acked(&seed, &acked);
        written += acked.len() as u64;
        assert_check_clean(&tc);
        assert_healthy(&tc, keys + written);
    }

    // Two rebalances at once: the second sees the first and changes nothing.
    let stop = Arc::new(AtomicBool::new(false));
    let w = workload(seed.clone(), "two".into(), 12000, stop.clone());
    let args = [
        "-c",
        seed.as_str(),
        "rebalance",
        "--migration",
        "legacy",
        "--use-empty-masters",
        "--pipeline",
        "10",
        "--batch-slots",
        "256",
        "-y",
    ];
    let mut first = spawn(&args);
    assert!(
        wait_for_progress(&tc, empty, &mut first),
        "the first rebalance never started moving"
    );
    std::thread::sleep(Duration::from_millis(100));
    let second = run(&args);
    let first = finish(first, Duration::from_secs(120));
    stop.store(true, Ordering::SeqCst);
    let (acked, wrong) = w.join().unwrap();
    assert_eq!(first.code, 0, "the first rebalance: {first}");
    assert!(first.stdout.contains("Moved"), "{first}");
    assert_eq!(second.code, 1, "the second rebalance: {second}");
    assert!(
        second
            .stderr
            .contains("another run is changing slots on this cluster: slotsmith rebalance (pid"),
        "{second}"
    );
    assert!(!second.stdout.contains("Moved"), "{second}");
    assert!(wrong.is_empty(), "read-back mismatches: {wrong:?}");
    verify_acked(&seed, &acked);
    written += acked.len() as u64;
    assert_check_clean(&tc);
    assert_healthy(&tc, keys + written);
    for p in tc.ports().iter().filter(|p| slots_of(&tc, **p) > 0) {
        let n = slots_of(&tc, *p);
        assert!((4095..=4097).contains(&n), "{p} holds {n} slots");
    }
}

on_both_servers!(plans_made_before_the_cluster_changed_are_not_applied);
fn plans_made_before_the_cluster_changed_are_not_applied(server: Server) {
    let tc = TestCluster::with(server, |s| {
        s.masters = 3;
        s.replicas = 0;
        s.empty = 1;
        s.keys = 3000;
    });
    let seed = tc.seed();
    let keys = tc.total_keys();
    let ports = tc.ports();
    let (a, e) = (ports[0], ports[3]);
    let id = |p: u16| tc.redis_cli(p, &["CLUSTER", "MYID"]).trim().to_string();
    let (a_id, e_id) = (id(a), id(e));
    // Two interrupted migrations from A to E.
    for slot in ["100", "101"] {
        tc.redis_cli(e, &["CLUSTER", "SETSLOT", slot, "IMPORTING", &a_id]);
        tc.redis_cli(a, &["CLUSTER", "SETSLOT", slot, "MIGRATING", &e_id]);
    }
    // fix plans both; then, before it applies them, someone else finishes slot 100.
    // The plan for 100 no longer fits and is left alone, named; 101 is settled.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("late.rhai");
    std::fs::write(
        &script,
        format!(
            r#"import "fix" as fix;
let plans = fix::problems().map(|p| fix::plan(p));
move_slot(100, "127.0.0.1:{a}", "127.0.0.1:{e}");
let r = fix::apply_all(plans, #{{replace: false}});
print(`skipped ${{r.skipped.map(|x| x.slot)}} fixed ${{r.fixed.map(|x| x.slot)}}`);
"#
        ),
    )
    .unwrap();
    let out = run(&["-c", &seed, "-y", "run", script.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout
            .contains("[SKIPPED] slot 100: changed since fix planned it (now owner:")
            && out.stdout.contains("left alone"),
        "{out}"
    );
    assert!(out.stdout.contains("skipped [100] fixed [101]"), "{out}");
    assert_no_open_slot(&tc);
    assert_healthy(&tc, keys);

    // A slot that opens after fix planned means another run is moving slots: fix stops.
    for slot in ["200", "201"] {
        tc.redis_cli(e, &["CLUSTER", "SETSLOT", slot, "IMPORTING", &a_id]);
        tc.redis_cli(a, &["CLUSTER", "SETSLOT", slot, "MIGRATING", &e_id]);
    }
    std::fs::write(
        &script,
        format!(
            r#"import "fix" as fix;
let plans = fix::problems().map(|p| fix::plan(p));
setslot("127.0.0.1:{e}", 300, "importing", "127.0.0.1:{a}");
let r = fix::apply_all(plans, #{{replace: false}});
print(`stopped: ${{r.stopped}}; fixed ${{r.fixed.len()}}`);
"#
        ),
    )
    .unwrap();
    let out = run(&["-c", &seed, "-y", "run", script.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout.contains("[STOPPED] another run is changing slots on this cluster: slot 300 became open after fix planned")
            && out.stdout.contains("fixed 0"),
        "{out}"
    );
    // Nothing was touched: both planned slots are still open as they were.
    let me = |p: u16| {
        parse_cluster_nodes(&tc.redis_cli(p, &["CLUSTER", "NODES"]))
            .unwrap()
            .into_iter()
            .find(|n| n.is_myself())
            .unwrap()
    };
    assert_eq!(
        me(a).migrating.keys().copied().collect::<Vec<_>>(),
        [200, 201]
    );
    tc.redis_cli(e, &["CLUSTER", "SETSLOT", "300", "STABLE"]);
    let out = run(&["-c", &seed, "fix", "-y"]);
    assert_eq!(out.code, 0, "{out}");
    assert_no_open_slot(&tc);
    assert_healthy(&tc, keys);

    // A claim is never made while another master serves the slot with keys.
    let slot = (0..5461u16)
        .find(|s| {
            tc.redis_cli(a, &["CLUSTER", "COUNTKEYSINSLOT", &s.to_string()])
                .trim()
                != "0"
        })
        .unwrap();
    let before = views_except(&tc, 0);
    std::fs::write(&script, format!("claim_slot(\"127.0.0.1:{e}\", {slot});\n")).unwrap();
    let out = run(&["-c", &seed, "-y", "run", script.to_str().unwrap()]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .contains(&format!("slot {slot}: 127.0.0.1:{a} serves it and holds"))
            && out.stderr.contains("would make 127.0.0.1:"),
        "{out}"
    );
    assert_eq!(
        views_except(&tc, 0),
        before,
        "the refused claim changed the cluster"
    );
}

on_both_servers!(a_master_that_stops_answering_stops_the_move_cleanly);
fn a_master_that_stops_answering_stops_the_move_cleanly(server: Server) {
    let tc = TestCluster::with(server, |s| {
        s.masters = 3;
        s.replicas = 0;
        s.empty = 1;
        s.keys = 60_000;
    });
    let seed = tc.seed();
    let keys = tc.total_keys();
    let ports = tc.ports();
    let (stopped, empty) = (ports[1], ports[3]);
    let stopped_addr = format!("127.0.0.1:{stopped}");

    // Stopped and marked failing before the rebalance: refused at once, nothing written.
    signal_node(&tc, stopped, libc::SIGSTOP);
    wait_for(30, "cluster_state:fail", || {
        cluster_state(&tc, ports[0]) == "fail"
    });
    let before = views_except(&tc, stopped);
    let started = Instant::now();
    let out = run(&["-c", &seed, "rebalance", "--use-empty-masters", "-y"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "not at once: {out}"
    );
    assert!(
        out.stderr.contains("cluster_state:fail") && out.stderr.contains(&stopped_addr),
        "{out}"
    );
    assert!(!out.stderr.contains(".rhai:"), "{out}");
    assert_eq!(
        views_except(&tc, stopped),
        before,
        "the refused rebalance wrote"
    );
    signal_node(&tc, stopped, libc::SIGCONT);
    wait_for(30, "the cluster serving again", || {
        ports.iter().all(|p| cluster_state(&tc, *p) == "ok")
    });

    // Stopped after the rebalance began: SIGTERM ends the run within 5 s, naming the
    // slots it leaves open and the command that settles them.
    let mut child = spawn(&[
        "-c",
        &seed,
        "rebalance",
        "--migration",
        "legacy",
        "--use-empty-masters",
        "--pipeline",
        "5",
        "--batch-slots",
        "256",
        "-y",
    ]);
    assert!(
        wait_for_progress(&tc, empty, &mut child),
        "the rebalance never started moving"
    );
    signal_node(&tc, stopped, libc::SIGSTOP);
    std::thread::sleep(Duration::from_millis(1000));
    signal(&child, libc::SIGTERM);
    let sent = Instant::now();
    let out = finish(child, Duration::from_secs(30));
    let took = sent.elapsed();
    signal_node(&tc, stopped, libc::SIGCONT);
    assert_eq!(out.code, 143, "{out}");
    assert!(
        took <= Duration::from_secs(5),
        "SIGTERM took {took:?}: {out}"
    );
    // Either the stopped source had a batch in flight (named, with fix to settle it),
    // or it was between batches and nothing is open (the run says how to finish).
    let none_open = out.stderr.contains("no slot is left open");
    assert!(
        (out.stderr.contains("left open") && out.stderr.contains("slotsmith fix"))
            || (none_open && out.stderr.contains("rebalance --use-empty-masters")),
        "{out}"
    );
    wait_for(30, "the cluster serving again", || {
        ports.iter().all(|p| cluster_state(&tc, *p) == "ok")
    });
    if none_open {
        assert_no_open_slot(&tc);
    }
    let out = run(&["-c", &seed, "fix", "-y"]);
    assert_eq!(out.code, 0, "{out}");
    assert_no_open_slot(&tc);
    assert_check_clean(&tc);
    assert_healthy(&tc, keys);
}

on_both_servers!(a_failover_in_the_middle_of_a_rebalance_is_settled_by_fix_without_force);
fn a_failover_in_the_middle_of_a_rebalance_is_settled_by_fix_without_force(server: Server) {
    let tc = TestCluster::with(server, |s| {
        s.masters = 3;
        s.replicas = 1;
        s.empty = 1;
        s.keys = 100_000;
    });
    let seed = tc.seed();
    let keys = tc.total_keys();
    let ports = tc.ports();
    // Masters on the first three ports, their replicas on the next three.
    let (source, replica, empty) = (ports[1], ports[4], ports[6]);
    let mut child = spawn(&[
        "-c",
        &seed,
        "rebalance",
        "--migration",
        "legacy",
        "--use-empty-masters",
        "--pipeline",
        "5",
        "--batch-slots",
        "256",
        "-y",
    ]);
    assert!(
        wait_for_progress(&tc, empty, &mut child),
        "the rebalance never started moving"
    );
    // The source stops long enough for its replica to take over, then comes back
    // (as a replica of its former replica).
    signal_node(&tc, source, libc::SIGSTOP);
    wait_for(40, "the replica taking over", || {
        parse_cluster_nodes(&tc.redis_cli(replica, &["CLUSTER", "NODES"]))
            .unwrap_or_default()
            .iter()
            .any(|n| n.is_myself() && n.is_master())
    });
    signal_node(&tc, source, libc::SIGCONT);
    let rb = finish(child, Duration::from_secs(180));
    assert!(
        rb.code == 0 || rb.stderr.contains("failover") || rb.stderr.contains("replica"),
        "the rebalance neither finished nor said why: {rb}"
    );
    wait_for(40, "the old source turning replica", || {
        parse_cluster_nodes(&tc.redis_cli(source, &["CLUSTER", "NODES"]))
            .unwrap_or_default()
            .iter()
            .any(|n| n.is_myself() && n.is_replica())
    });
    // fix, without --force, settles what the failover left.
    let deadline = Instant::now() + Duration::from_secs(30);
    let out = loop {
        let out = run(&["-c", &seed, "fix", "-y"]);
        if out.code == 0 || Instant::now() > deadline {
            break out;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(out.code, 0, "fix after the failover: {rb}\n{out}");
    assert!(!out.stdout.contains("[REFUSED]"), "{out}");
    assert_no_open_slot(&tc);
    assert_check_clean(&tc);
    assert_healthy(&tc, keys);
}

on_both_servers!(a_reshard_right_after_a_node_joins_succeeds_or_refuses_before_writing);
fn a_reshard_right_after_a_node_joins_succeeds_or_refuses_before_writing(server: Server) {
    let tc = TestCluster::with(server, |s| {
        s.masters = 3;
        s.replicas = 0;
        s.empty = 0;
        s.spare = 1;
        s.keys = 10_000;
    });
    let seed = tc.seed();
    let keys = tc.total_keys();
    let ports = tc.ports();
    let new = ports[3];
    let new_addr = format!("127.0.0.1:{new}");
    tc.redis_cli(
        ports[0],
        &["CLUSTER", "MEET", "127.0.0.1", &new.to_string()],
    );
    let out = run(&[
        "-c", &seed, "reshard", "--from", "all", "--to", &new_addr, "--slots", "50", "-y",
    ]);
    assert_no_open_slot(&tc);
    if out.code == 0 {
        assert_eq!(slots_of(&tc, new), 50, "{out}");
    } else {
        assert!(out.stderr.contains(&new_addr), "{out}");
        assert_eq!(slots_of(&tc, new), 0, "{out}");
    }
    assert_check_clean(&tc);
    assert_healthy(&tc, keys);
}
