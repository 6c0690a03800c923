//! `fix` at scale, through the engine: hundreds of open slots in both directions, some
//! with keys on both sides, settled with every key and value; its dry run prints the
//! same plan; Ctrl+C in the middle leaves no slot half-done.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use slotsmith::cluster::topology::parse_cluster_nodes;

use crate::support::{assert_check_clean, lab_value, run, signal, spawn, Server, TestCluster};

/// Every node's own markers: port -> (migrating slots, importing slots).
fn markers(tc: &TestCluster) -> BTreeMap<u16, (Vec<u16>, Vec<u16>)> {
    tc.ports()
        .into_iter()
        .map(|p| {
            let nodes = parse_cluster_nodes(&tc.redis_cli(p, &["CLUSTER", "NODES"])).unwrap();
            let me = nodes.into_iter().find(|n| n.is_myself()).unwrap();
            (
                p,
                (
                    me.migrating.keys().copied().collect(),
                    me.importing.keys().copied().collect(),
                ),
            )
        })
        .collect()
}

/// Open `slots` from the master on port `a` (their owner) to the one on port `b`.
fn open_slots(tc: &TestCluster, a: u16, b: u16, slots: &[u16]) {
    let id = |p: u16| tc.redis_cli(p, &["CLUSTER", "MYID"]).trim().to_string();
    let (ida, idb) = (id(a), id(b));
    let client = |p: u16| {
        redis::Client::open(format!("redis://127.0.0.1:{p}"))
            .unwrap()
            .get_connection()
            .unwrap()
    };
    let (mut ca, mut cb) = (client(a), client(b));
    for s in slots {
        let _: () = redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(s)
            .arg("IMPORTING")
            .arg(&ida)
            .query(&mut cb)
            .unwrap();
        let _: () = redis::cmd("CLUSTER")
            .arg("SETSLOT")
            .arg(s)
            .arg("MIGRATING")
            .arg(&idb)
            .query(&mut ca)
            .unwrap();
    }
}

/// Move half of the keys of each slot from `a` to `b` (an interrupted move that got
/// part-way).
fn move_half(tc: &TestCluster, a: u16, b: u16, slots: &[u16]) -> usize {
    let mut con = redis::Client::open(format!("redis://127.0.0.1:{a}"))
        .unwrap()
        .get_connection()
        .unwrap();
    let mut moved = 0;
    for s in slots {
        let keys: Vec<String> = redis::cmd("CLUSTER")
            .arg("GETKEYSINSLOT")
            .arg(s)
            .arg(100)
            .query(&mut con)
            .unwrap();
        let half: Vec<&String> = keys.iter().take(keys.len() / 2).collect();
        if half.is_empty() {
            continue;
        }
        let mut cmd = redis::cmd("MIGRATE");
        cmd.arg("127.0.0.1")
            .arg(b)
            .arg("")
            .arg(0)
            .arg(5000)
            .arg("KEYS");
        for k in &half {
            cmd.arg(k.as_str());
        }
        let _: () = cmd.query(&mut con).unwrap();
        moved += half.len();
    }
    let _ = tc;
    moved
}

/// Every key the lab loaded reads back with its value, through a cluster client.
fn assert_every_key(seed: &str, keys: u64) {
    let client = redis::cluster::ClusterClient::new(vec![format!("redis://{seed}")]).unwrap();
    let mut con = client.get_connection().unwrap();
    for chunk in (0..keys).collect::<Vec<u64>>().chunks(500) {
        let names: Vec<String> = chunk.iter().map(|i| format!("key:{i:06}")).collect();
        for (i, name) in chunk.iter().zip(&names) {
            let got: Option<String> = redis::cmd("GET").arg(name).query(&mut con).unwrap();
            assert_eq!(got.as_deref(), Some(lab_value(*i).as_str()), "{name}");
        }
    }
}

/// The row of fix's table of moves for a source and a target, as its columns (FROM,
/// TO, SLOTS, KEYS TO MOVE, ON TARGET, RANGES).
fn table_row(stdout: &str, src: u16, dst: u16) -> Option<Vec<String>> {
    let (src, dst) = (format!("127.0.0.1:{src}"), format!("127.0.0.1:{dst}"));
    stdout.lines().find_map(|l| {
        let words: Vec<String> = l.split_whitespace().map(str::to_string).collect();
        (l.starts_with("    ") && words.len() == 6 && words[0] == src && words[1] == dst)
            .then_some(words)
    })
}

/// The lines of a fix's output that state its plan and what it did, in the words of
/// a live run (a dry run says "would"), without a dry run's list of commands.
fn plan_and_results(stdout: &str) -> Vec<String> {
    stdout
        .lines()
        .take_while(|l| !l.starts_with("Dry run: nothing was written."))
        .filter(|l| {
            l.starts_with(">>> ")
                || l.starts_with("    ")
                || l.starts_with("[PLAN] slot")
                || l.starts_with("[OK] slot")
                || l.contains(" slot(s) ")
        })
        .filter(|l| !l.contains("The cluster"))
        .map(|l| {
            l.replace("[PLAN]", "[OK]")
                .replace("would be owned", "owned")
                .replace("would move", "moved")
        })
        .collect()
}

on_both_servers!(hundreds_of_open_slots_in_both_directions_through_the_engine);
fn hundreds_of_open_slots_in_both_directions_through_the_engine(server: Server) {
    let tc = TestCluster::with(server, |s| {
        s.masters = 4;
        s.replicas = 0;
        s.empty = 0;
        s.keys = 20_000;
    });
    let seed = tc.seed();
    let ports = tc.ports();
    let (a, b) = (ports[0], ports[1]);
    // a owns 0-4095, b 4096-8191: 150 slots each way, 30 of a's with keys on both sides.
    let a_to_b: Vec<u16> = (0..150).collect();
    let b_to_a: Vec<u16> = (4096..4246).collect();
    open_slots(&tc, a, b, &a_to_b);
    open_slots(&tc, b, a, &b_to_a);
    let split = move_half(&tc, a, b, &a_to_b[..30]);
    assert!(split > 0);
    let before = markers(&tc);
    assert_eq!(before[&a].0.len(), 150, "{before:?}");

    let dry = run(&["-c", &seed, "--dry-run", "fix"]);
    assert_eq!(dry.code, 0, "{dry}");
    assert_eq!(markers(&tc), before, "the dry run changed the cluster");
    let live = run(&["-c", &seed, "fix", "-y"]);
    assert_eq!(live.code, 0, "{live}");
    // Hundreds of slots: a row per pair, not a block per slot, in the plan; a line
    // per pair in the result. The keys already moved show on the target.
    assert!(
        live.stdout.contains(">>> 300 open slot(s) to move"),
        "{live}"
    );
    let ab = table_row(&live.stdout, a, b).unwrap_or_else(|| panic!("no row {a} -> {b}: {live}"));
    assert_eq!(
        (ab[2].as_str(), ab[4].as_str(), ab[5].as_str()),
        ("150", split.to_string().as_str(), "0-149"),
        "{live}"
    );
    let ba = table_row(&live.stdout, b, a).unwrap_or_else(|| panic!("no row {b} -> {a}: {live}"));
    assert_eq!(
        (ba[2].as_str(), ba[4].as_str(), ba[5].as_str()),
        ("150", "0", "4096-4245"),
        "{live}"
    );
    assert!(!live.stdout.contains(">>> Slot "), "{live}");
    assert!(
        live.stdout
            .lines()
            .filter(|l| l.starts_with("[OK] 150 slot(s)"))
            .count()
            == 2,
        "{live}"
    );
    assert_eq!(
        plan_and_results(&dry.stdout),
        plan_and_results(&live.stdout),
        "dry run:\n{dry}\nlive:\n{live}"
    );
    for (p, (m, i)) in markers(&tc) {
        assert!(m.is_empty() && i.is_empty(), "{p} still has open slots");
    }
    assert_check_clean(&tc);
    assert_every_key(&seed, 20_000);
}

on_both_servers!(a_dry_run_fix_of_300_open_slots_prints_a_table_per_pair_not_300_lines);
fn a_dry_run_fix_of_300_open_slots_prints_a_table_per_pair_not_300_lines(server: Server) {
    let tc = TestCluster::with(server, |s| {
        s.masters = 3;
        s.replicas = 0;
        s.empty = 0;
        s.keys = 3000;
    });
    let seed = tc.seed();
    let ports = tc.ports();
    let (a, b, c) = (ports[0], ports[1], ports[2]);
    // a owns 0-5460: 200 slots open toward b, 100 toward c; and slot 400 importing on
    // c with no migrating, an unusual slot that is shown in full.
    let to_b: Vec<u16> = (0..200).collect();
    let to_c: Vec<u16> = (200..300).collect();
    open_slots(&tc, a, b, &to_b);
    open_slots(&tc, a, c, &to_c);
    let a_id = tc.redis_cli(a, &["CLUSTER", "MYID"]).trim().to_string();
    tc.redis_cli(c, &["CLUSTER", "SETSLOT", "400", "IMPORTING", &a_id]);
    let before = markers(&tc);

    let out = run(&["-c", &seed, "--dry-run", "fix"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(markers(&tc), before, "the dry run changed the cluster");
    assert!(out.stdout.contains(">>> 301 slot(s) to fix."), "{out}");
    assert!(out.stdout.contains(">>> 300 open slot(s) to move"), "{out}");
    let ab = table_row(&out.stdout, a, b).unwrap_or_else(|| panic!("no row {a} -> {b}: {out}"));
    assert_eq!((ab[2].as_str(), ab[5].as_str()), ("200", "0-199"), "{out}");
    let keys: u64 = ab[3].parse().expect("a key count");
    assert!(keys > 0, "{out}");
    let ac = table_row(&out.stdout, a, c).unwrap_or_else(|| panic!("no row {a} -> {c}: {out}"));
    assert_eq!(
        (ac[2].as_str(), ac[5].as_str()),
        ("100", "200-299"),
        "{out}"
    );
    // The unusual slot in full; no other slot on its own.
    assert!(out.stdout.contains(">>> Slot 400 (open):"), "{out}");
    assert_eq!(out.stdout.matches(">>> Slot ").count(), 1, "{out}");
    assert!(
        out.stdout.contains(&format!(
            "[PLAN] 200 slot(s) 0-199 would be owned by 127.0.0.1:{b}"
        )),
        "{out}"
    );
    // The plan: in the order it would be sent, runs summarised, never a range where
    // a command takes one slot.
    let plan: Vec<&str> = out
        .stdout
        .lines()
        .skip_while(|l| {
            !l.starts_with("Dry run: nothing was written. The plan, in the order it would be sent")
        })
        .skip(1)
        .collect();
    assert!(!plan.is_empty(), "{out}");
    let mut next = 1;
    for l in &plan {
        let numbers = l.split_whitespace().next().unwrap_or_default();
        let numbers = numbers
            .strip_suffix('.')
            .unwrap_or_else(|| panic!("{l}: {out}"));
        let (first, last) = numbers.split_once('-').unwrap_or((numbers, numbers));
        assert_eq!(first.parse::<usize>().unwrap(), next, "{l}: {out}");
        next = last.parse::<usize>().unwrap() + 1;
    }
    assert!(
        plan.iter()
            .any(|l| l.contains(" x CLUSTER SETSLOT <slot> NODE ") && l.contains("(slots 0-199)")),
        "{out}"
    );
    assert!(!out.stdout.contains("SETSLOT 0-"), "{out}");
    assert!(
        out.stdout.lines().count() < 80,
        "300 slots, yet {} lines: {out}",
        out.stdout.lines().count()
    );
}

on_both_servers!(ctrl_c_in_the_middle_of_a_fix_of_500_slots_leaves_none_half_done);
fn ctrl_c_in_the_middle_of_a_fix_of_500_slots_leaves_none_half_done(server: Server) {
    let tc = TestCluster::with(server, |s| {
        s.masters = 3;
        s.replicas = 0;
        s.empty = 0;
        s.keys = 30_000;
    });
    let seed = tc.seed();
    let ports = tc.ports();
    let (a, b) = (ports[0], ports[1]);
    let slots: Vec<u16> = (0..500).collect();
    open_slots(&tc, a, b, &slots);
    let before = markers(&tc);

    let mut child = spawn(&["-c", &seed, "fix", "-y"]);
    // Interrupt as soon as the first slot has moved.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let now = markers(&tc);
        if now[&a].0.len() < 500 {
            break;
        }
        assert!(
            Instant::now() < deadline && child.try_wait().unwrap().is_none(),
            "the fix never started moving"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    signal(&child, libc::SIGINT);
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    // Every slot is either settled or exactly as it was before: none half-done.
    let after = markers(&tc);
    let (m_before, i_before) = (&before[&a].0, &before[&b].1);
    let (m_after, i_after) = (&after[&a].0, &after[&b].1);
    assert_eq!(
        m_after, i_after,
        "a slot migrating on one side only: {after:?}"
    );
    assert!(m_after.iter().all(|s| m_before.contains(s)), "{after:?}");
    assert!(i_before.len() == 500);
    assert!(
        m_after.len() < 500,
        "nothing settled before the interruption"
    );
    for (p, (m, i)) in &after {
        if *p != a && *p != b {
            assert!(m.is_empty() && i.is_empty(), "{p}: {after:?}");
        }
    }
    // The rest is still fix's to settle, with every key.
    let out = run(&["-c", &seed, "fix", "-y"]);
    assert_eq!(out.code, 0, "{out}");
    assert_check_clean(&tc);
    assert_every_key(&seed, 30_000);
}
