//! Plans kept for later: `apply` of a plan saved with `--dry-run --json` carries it out
//! only on the cluster it was made on, and names what changed otherwise; `resume`
//! finishes the plan a killed rebalance wrote to the journal.

use std::time::Duration;

use slotsmith::cluster::topology::parse_cluster_nodes;

use crate::support::{
    assert_check_clean, assert_lab_keys, fingerprint, run, signal, slots_of, ss_bare,
    wait_for_progress, Server, TestCluster,
};

fn addr(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

on_both_servers!(apply_refuses_a_changed_cluster_and_carries_out_an_unchanged_one);
fn apply_refuses_a_changed_cluster_and_carries_out_an_unchanged_one(server: Server) {
    let tc = TestCluster::start(server, 2000);
    let seed = tc.seed();
    let ports = tc.ports();
    let (m0, m1, empty) = (ports[0], ports[1], ports[6]);
    let dir = tempfile::tempdir().unwrap();
    let save = |name: &str| {
        let out = run(&[
            "-c",
            &seed,
            "--dry-run",
            "--json",
            "reshard",
            "--from",
            "all",
            "--to",
            &addr(empty),
            "--slots",
            "30",
            "-y",
        ]);
        assert_eq!(out.code, 0, "{out}");
        let file = dir.path().join(name);
        std::fs::write(&file, &out.stdout).unwrap();
        file.to_str().unwrap().to_string()
    };

    // A plan, then a manual reshard of three of its slots: the plan is refused, every
    // change named, nothing written.
    let plan = save("plan.json");
    let out = run(&[
        "-c",
        &seed,
        "-y",
        "reshard",
        "--from",
        &addr(m0),
        "--to",
        &addr(m1),
        "--slots",
        "3",
    ]);
    assert_eq!(out.code, 0, "{out}");
    let before = fingerprint(&tc, None);
    let out = run(&["-c", &seed, "-y", "apply", &plan]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stdout.contains("changed since the plan was made"),
        "{out}"
    );
    let line = format!("slots 0-2: owned by {} then, by {} now", addr(m0), addr(m1));
    assert!(out.stdout.contains(&line), "{out}");
    assert!(out.stdout.contains("Nothing was written"), "{out}");
    assert_eq!(fingerprint(&tc, None), before, "a refused apply wrote");
    assert_eq!(slots_of(&tc, empty), 0);

    // A plan of the cluster as it is now is carried out.
    let plan = save("again.json");
    let out = run(&["-c", &seed, "-y", "apply", &plan]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("[OK]"), "{out}");
    assert_eq!(slots_of(&tc, empty), 30);
    assert_check_clean(&tc);
    assert_lab_keys(&tc, 2000, 2000, 7);

    // A file that is not a saved plan: exit 2, one sentence.
    let out = run(&["-c", &seed, "-y", "apply", "/nonexistent/plan.json"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains("cannot read /nonexistent/plan.json"),
        "{out}"
    );
}

/// The owner id of every slot, as node `port` sees it.
fn owners(tc: &TestCluster, port: u16) -> std::collections::BTreeMap<u16, String> {
    let text = tc.redis_cli(port, &["CLUSTER", "NODES"]);
    let mut out = std::collections::BTreeMap::new();
    for n in parse_cluster_nodes(&text).unwrap() {
        for &(a, b) in &n.slots {
            for s in a..=b {
                out.insert(s, n.id.clone());
            }
        }
    }
    out
}

/// The number before `what` in `text` ("Already moved: 12 slot(s)" -> 12).
fn count_after(text: &str, what: &str) -> usize {
    let at = text
        .find(what)
        .unwrap_or_else(|| panic!("no {what:?} in {text}"))
        + what.len();
    text[at..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

on_both_servers!(resume_finishes_a_killed_rebalance_moving_only_what_is_left);
fn resume_finishes_a_killed_rebalance_moving_only_what_is_left(server: Server) {
    let tc = TestCluster::start(server, 200_000);
    let seed = tc.seed();
    let ports = tc.ports();
    let empty = ports[6];
    // One home for every run: resume reads the journal the rebalance wrote.
    let home = tempfile::tempdir().unwrap();
    let slotsmith = || ss_bare().home(home.path());
    let args = [
        "-c",
        &seed,
        "rebalance",
        "--use-empty-masters",
        "--migration",
        "legacy",
        // Several batches per pair, so that the kill lands with slots left to move.
        "--batch-slots",
        "256",
    ];

    // What the whole rebalance would do.
    let out = slotsmith().args(["--dry-run", "--json"]).args(args).run();
    assert_eq!(out.code, 0, "{out}");
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let planned: Vec<(u16, String)> = doc["result"]["moves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["slot"].as_u64().unwrap() as u16,
                m["dst"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(planned.len(), 4096);

    // kill -9 once it is under way.
    let mut child = slotsmith().args(args).arg("-y").spawn();
    assert!(
        wait_for_progress(&tc, empty, &mut child),
        "the rebalance never moved"
    );
    std::thread::sleep(Duration::from_millis(50));
    signal(&child, libc::SIGKILL);
    let _ = child.wait();

    let out = slotsmith().args(["-c", &seed, "resume", "-y"]).run();
    assert_eq!(out.code, 0, "{out}");
    let done = count_after(&out.stdout, "Already moved:");
    let left = count_after(&out.stdout, "left to move:");
    println!(
        "resume: {done} slot(s) already moved by the killed rebalance, {left} moved by resume"
    );
    assert_eq!(done + left, 4096, "{out}");
    assert!(done > 0 && left > 0, "{out}");
    assert!(
        out.stdout.contains(&format!("Moved {left} slot(s)")),
        "{out}"
    );

    // The distribution the uninterrupted rebalance would have made, every key there.
    let now = owners(&tc, ports[0]);
    for (slot, dst) in &planned {
        assert_eq!(now.get(slot), Some(dst), "slot {slot}");
    }
    for p in &ports[..3] {
        assert_eq!(slots_of(&tc, *p), 4096, "{p}");
    }
    assert_eq!(slots_of(&tc, empty), 4096);
    assert_check_clean(&tc);
    assert_lab_keys(&tc, 200_000, 200_000, 997);

    // Again: nothing left.
    let out = slotsmith().args(["-c", &seed, "resume", "-y"]).run();
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("Nothing to resume"), "{out}");

    // A drain stopped half-way with Ctrl+C (it finishes the slots in flight and exits
    // 130), then some of its slots moved by hand to a master the plan did not send
    // them to: resume names them and writes nothing.
    let drain = format!("127.0.0.1:{empty}=0");
    let mut child = slotsmith()
        .args([
            "-c",
            &seed,
            "rebalance",
            "--weight",
            &drain,
            "--migration",
            "legacy",
            "--batch-slots",
            "256",
            "-y",
        ])
        .spawn();
    assert!(
        wait_for_progress(&tc, empty, &mut child),
        "the drain never moved"
    );
    signal(&child, libc::SIGINT);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "the drain was not interrupted");
    // On a loaded machine a slot whose wait outlived the 3 s grace may be left open
    // (and named): fix settles it, and is a no-op otherwise.
    let out = slotsmith().args(["-c", &seed, "fix", "-y"]).run();
    assert_eq!(out.code, 0, "{out}");
    let third = format!("127.0.0.1:{}", ports[2]);
    let out = slotsmith()
        .args([
            "-c",
            &seed,
            "reshard",
            "--from",
            &format!("127.0.0.1:{empty}"),
            "--to",
            &third,
        ])
        .args(["--slots", "2", "--migration", "legacy", "-y"])
        .run();
    assert_eq!(out.code, 0, "{out}");
    // The reshard that ended well since is a plan of its own: what was stopped before
    // it is history to a plain resume, which says so ...
    let before = fingerprint(&tc, None);
    let out = slotsmith().args(["-c", &seed, "resume", "-y"]).run();
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("Nothing to resume"), "{out}");
    // ... and named by its journal file, the drain is refused, every slot said.
    let journal = home.path().join("slotsmith").join("journal");
    let mut drains: Vec<std::path::PathBuf> = std::fs::read_dir(&journal)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with("-rebalance.jsonl"))
        .collect();
    drains.sort();
    let drain_file = drains
        .last()
        .expect("the drain's journal")
        .to_str()
        .unwrap()
        .to_string();
    let out = slotsmith()
        .args(["-c", &seed, "resume", "--journal", &drain_file, "-y"])
        .run();
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stdout.contains("The cluster no longer fits the plan"),
        "{out}"
    );
    assert!(
        out.stdout.contains(&format!("but {third} owns it now")),
        "{out}"
    );
    assert_eq!(fingerprint(&tc, None), before, "a refused resume wrote");
}
