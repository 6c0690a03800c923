//! Operational safety on real clusters: bad input changes nothing and says why in one
//! sentence; Ctrl+C and SIGTERM finish the slots in flight and leave none open;
//! `kill -9` at any moment of a rebalance leaves a cluster that `fix` makes whole.

use std::time::{Duration, Instant};

use crate::support::{
    assert_healthy, fingerprint, run, run_env, signal, slots_of, spawn, wait_for_progress, Server,
    TestCluster,
};

on_both_servers!(bad_input_changes_nothing_and_says_why);
fn bad_input_changes_nothing_and_says_why(server: Server) {
    let tc = TestCluster::with(server, |s| {
        s.masters = 3;
        s.replicas = 0;
        s.empty = 1;
        s.keys = 500;
    });
    let seed = tc.seed();
    let empty = format!("127.0.0.1:{}", tc.ports()[3]);
    let before = fingerprint(&tc, None);
    let dir = tempfile::tempdir().unwrap();
    let throws = dir.path().join("throws.rhai");
    std::fs::write(
        &throws,
        "let n = nodes().len();\nthrow `refusing: ${n} nodes`;\n",
    )
    .unwrap();
    let forever = dir.path().join("forever.rhai");
    std::fs::write(&forever, "let i = 0;\nloop { i += 1; }\n").unwrap();
    let (throws, forever) = (throws.to_str().unwrap(), forever.to_str().unwrap());
    let table: Vec<(Vec<&str>, i32, &str)> = vec![
        (vec!["complete", "16384"], 2, "16384"),
        (vec!["complete", "-5"], 2, "-5"),
        (vec!["cancel", "5519", "-y"], 1, "slot 5519 is not open"),
        (
            vec![
                "complete",
                "5519",
                "--from",
                "127.0.0.1:1",
                "--to",
                "127.0.0.1:2",
                "-y",
            ],
            2,
            "--from 127.0.0.1:1: no node at 127.0.0.1:1",
        ),
        (
            vec![
                "reshard",
                "--from",
                "all",
                "--to",
                "0123456789",
                "--slots",
                "10",
                "-y",
            ],
            2,
            "no node with id 0123456789",
        ),
        (
            vec![
                "reshard", "--from", "all", "--to", "abc", "--slots", "10", "-y",
            ],
            2,
            "too short",
        ),
        (
            vec![
                "reshard",
                "--from",
                "all",
                "--to",
                "127.0.0.1:1",
                "--slots",
                "0",
                "-y",
            ],
            2,
            "--slots",
        ),
        (
            vec![
                "reshard",
                "--from",
                "all",
                "--to",
                "127.0.0.1:1",
                "--slots",
                "-3",
                "-y",
            ],
            2,
            "-3",
        ),
        (
            vec!["rebalance", "--weight", "127.0.0.1=2", "-y"],
            2,
            "127.0.0.1",
        ),
        (
            vec!["rebalance", "--weight", "x", "-y"],
            2,
            "'x' for '--weight <NODE=W>'",
        ),
        (
            vec!["rebalance", "--threshold", "-1", "-y"],
            2,
            "--threshold",
        ),
        (vec!["fix", "--pipeline", "0", "-y"], 2, "--pipeline"),
        (
            vec!["run", "/nonexistent/runbook.rhai"],
            2,
            "does not exist",
        ),
        (
            vec!["run", "no-such-runbook"],
            2,
            "no script named \"no-such-runbook\"",
        ),
        (vec!["run", throws], 1, "refusing: 4 nodes"),
        // A node named on the command line that is not in the cluster: usage, exit 2.
        (
            vec![
                "reshard",
                "--from",
                "all",
                "--to",
                "127.0.0.1:1",
                "--slots",
                "5",
                "-y",
            ],
            2,
            "--to 127.0.0.1:1: no node at 127.0.0.1:1",
        ),
        (
            vec![
                "reshard",
                "--from",
                "127.0.0.1:9",
                "--to",
                &empty,
                "--slots",
                "5",
                "-y",
            ],
            2,
            "--from 127.0.0.1:9: no node at 127.0.0.1:9",
        ),
        (
            vec!["rebalance", "--weight", "127.0.0.1:9=2", "-y"],
            2,
            "--weight 127.0.0.1:9: no node at 127.0.0.1:9",
        ),
        (
            vec!["--max-operations", "10000", "run", forever],
            1,
            "Too many operations",
        ),
    ];
    for (args, code, phrase) in &table {
        let mut v = vec!["-c", seed.as_str()];
        v.extend(args);
        let out = run(&v);
        assert_eq!(out.code, *code, "{args:?}: {out}");
        let first = out.stderr.lines().next().unwrap_or_default();
        // A usage error or a bundled command's refusal is one sentence: no script
        // location (a user's own script, `throws.rhai`, keeps it).
        if *code == 2 || !args.iter().any(|a| a.ends_with(".rhai")) {
            assert!(!out.stderr.contains(".rhai:"), "{args:?}: {out}");
        }
        assert!(
            first.contains(phrase),
            "{args:?}: expected \"{phrase}\" in the first line: {out}"
        );
        assert!(
            !out.stderr.contains("panicked") && !out.stderr.contains("RUST_BACKTRACE"),
            "{args:?}: {out}"
        );
    }
    // The wrong cluster address: exit 2, nothing else happens.
    let out = run(&["-c", "127.0.0.1:notaport", "fix", "-y"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("127.0.0.1:notaport"), "{out}");
    assert_eq!(
        fingerprint(&tc, None),
        before,
        "bad input changed the cluster"
    );

    // A runaway script is stopped by Ctrl+C.
    let mut child = spawn(&["-c", &seed, "run", forever]);
    std::thread::sleep(Duration::from_millis(500));
    signal(&child, libc::SIGINT);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_eq!(
        fingerprint(&tc, None),
        before,
        "bad input changed the cluster"
    );

    // Without a terminal and without --yes, nothing is written.
    let out = run_env(&["-c", &seed, "rebalance", "--use-empty-masters"], &[]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("--yes"), "{out}");
    assert_eq!(
        fingerprint(&tc, None),
        before,
        "a refused run changed the cluster"
    );
}

on_both_servers!(interrupted_or_killed_rebalances_leave_a_cluster_fix_makes_whole);
fn interrupted_or_killed_rebalances_leave_a_cluster_fix_makes_whole(server: Server) {
    let tc = TestCluster::with(server, |s| {
        s.masters = 3;
        s.replicas = 0;
        s.empty = 1;
        s.keys = 100_000;
    });
    let seed = tc.seed();
    let keys = tc.total_keys();
    let empty = *tc.ports().last().unwrap();
    let rebalance = [
        "-c",
        seed.as_str(),
        "rebalance",
        // The legacy protocol's slots in flight are what is interrupted here (the
        // atomic back-end's interruptions are tested in `atomic`).
        "--migration",
        "legacy",
        "--use-empty-masters",
        "--pipeline",
        "3",
        // Several batches per pair, so that the signals land with slots left to move.
        "--batch-slots",
        "256",
        "-y",
    ];
    // kill -9 is also tried with the batches slotsmith picks itself (one per pair
    // here): every slot a pair moves is open when it lands.
    let rebalance_default: Vec<&str> = rebalance
        .iter()
        .copied()
        .filter(|a| *a != "--batch-slots" && *a != "256")
        .collect();

    // SIGINT: the slots in flight finish, none is left open, exit 130.
    let mut child = spawn(&rebalance);
    assert!(
        wait_for_progress(&tc, empty, &mut child),
        "the rebalance never started moving"
    );
    signal(&child, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    // It says how to go on: the same command again.
    assert!(
        stderr.contains("to finish, run `")
            && stderr.contains("rebalance --migration legacy --use-empty-masters"),
        "{stderr}"
    );
    let moved = slots_of(&tc, empty);
    assert!(moved > 0 && moved < 4096, "interrupted after {moved} slots");
    assert_healthy(&tc, keys);

    // SIGTERM: the same, exit 143.
    let child = spawn(&rebalance);
    let start = slots_of(&tc, empty);
    let deadline = Instant::now() + Duration::from_secs(20);
    while slots_of(&tc, empty) == start && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    signal(&child, libc::SIGTERM);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(143),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_healthy(&tc, keys);

    // A second Ctrl+C stops at once and says which slots it leaves open, and how to
    // settle them. A reshard of 2000 slots between two loaded masters: several batches
    // per pair, so that the signals land while slots remain (what is left of the
    // rebalance above may be a single batch per pair, done before they land).
    let (a, b) = (tc.ports()[0], tc.ports()[1]);
    let (from, to) = (format!("127.0.0.1:{a}"), format!("127.0.0.1:{b}"));
    let reshard = [
        "-c",
        seed.as_str(),
        "reshard",
        "--from",
        from.as_str(),
        "--to",
        to.as_str(),
        "--slots",
        "2000",
        "--migration",
        "legacy",
        "--pipeline",
        "3",
        "--batch-slots",
        "256",
        "-y",
    ];
    let mut child = spawn(&reshard);
    assert!(
        wait_for_progress(&tc, b, &mut child),
        "the reshard never started moving"
    );
    signal(&child, libc::SIGINT);
    // Two signals at once would be one.
    std::thread::sleep(Duration::from_millis(10));
    signal(&child, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    // Unless the slots in flight were all finished before the second one came.
    assert!(
        (stderr.contains("stopped at once:")
            && stderr.contains("left open")
            && stderr.contains("run `slotsmith fix` to settle them"))
            || stderr.contains("no slot is left open"),
        "{stderr}"
    );
    let out = run(&["-c", &seed, "fix", "-y"]);
    assert_eq!(out.code, 0, "fix after a second Ctrl+C: {out}");
    assert_healthy(&tc, keys);

    // kill -9 at several moments: slots may be left open; fix makes the cluster whole.
    for (delay, args) in [
        (0u64, &rebalance_default[..]),
        (30, &rebalance[..]),
        (120, &rebalance_default[..]),
    ] {
        let mut child = spawn(args);
        let start = slots_of(&tc, empty);
        let deadline = Instant::now() + Duration::from_secs(20);
        while slots_of(&tc, empty) == start && Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        std::thread::sleep(Duration::from_millis(delay));
        signal(&child, libc::SIGKILL);
        let _ = child.wait();
        let out = run(&["-c", &seed, "fix", "-y"]);
        assert!(out.code == 0, "fix after kill -9 ({delay} ms): {out}");
        assert_healthy(&tc, keys);
    }

    // And the rebalance can be finished afterwards.
    let out = run(&rebalance);
    assert_eq!(out.code, 0, "{out}");
    assert_healthy(&tc, keys);
    for p in tc.ports() {
        let n = slots_of(&tc, p);
        assert!((4095..=4097).contains(&n), "{p} holds {n} slots");
    }
}
