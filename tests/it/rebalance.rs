//! `rebalance` and `reshard` on real clusters: exact shares (no slot lost to
//! rounding), weights by id, prefix or address, draining with weight 0, `--simulate`
//! changing nothing, reshard moving exactly N slots, one-sentence refusals that leave
//! the cluster as it was, and every key still there with its value afterwards.

use std::collections::BTreeMap;

use serde_json::Value;
use slotsmith::cluster::topology::parse_cluster_nodes;

use crate::support::{assert_check_clean, assert_lab_keys, run, Output, Server, TestCluster};

/// Slots each node holds in its own view (0 for a replica), by port.
fn slot_counts(tc: &TestCluster) -> BTreeMap<u16, usize> {
    tc.ports()
        .into_iter()
        .map(|p| {
            let text = tc.redis_cli(p, &["CLUSTER", "NODES"]);
            let nodes = parse_cluster_nodes(&text).expect("CLUSTER NODES parses");
            let me = nodes.iter().find(|n| n.is_myself()).expect("myself line");
            (p, if me.is_master() { me.slot_count() } else { 0 })
        })
        .collect()
}

fn counts_of(tc: &TestCluster, ports: &[u16]) -> Vec<usize> {
    let c = slot_counts(tc);
    ports.iter().map(|p| c[p]).collect()
}

fn id(tc: &TestCluster, port: u16) -> String {
    tc.redis_cli(port, &["CLUSTER", "MYID"]).trim().to_string()
}

fn addr(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// A refusal: the expected exit code and one sentence (then at most where it was raised).
fn assert_refused(out: &Output, code: i32, phrase: &str) {
    assert_eq!(out.code, code, "{out}");
    assert!(!out.stderr.contains("panicked"), "{out}");
    let first = out.stderr.lines().next().unwrap_or_default();
    assert!(first.contains(phrase), "expected \"{phrase}\" in: {out}");
}

on_both_servers!(rebalance_and_reshard_move_exact_shares_and_keep_every_key);
fn rebalance_and_reshard_move_exact_shares_and_keep_every_key(server: Server) {
    const KEYS: u64 = 20_000;
    let tc = TestCluster::with(server, |s| {
        s.masters = 3;
        s.replicas = 0;
        s.empty = 1;
        s.keys = KEYS;
    });
    let seed = tc.seed();
    let p = tc.ports();
    let (a, b, c, e) = (p[0], p[1], p[2], p[3]);
    let all = [a, b, c, e];
    let cl = |args: &[&str]| {
        let mut v = vec!["-c", seed.as_str()];
        v.extend_from_slice(args);
        run(&v)
    };
    let start = counts_of(&tc, &all);
    assert_eq!(start, vec![5462, 5461, 5461, 0]);

    // Bad input: one sentence, nothing changed.
    let (aa, ea) = (addr(a), addr(e));
    let bad: Vec<(Vec<String>, i32, String)> = vec![
        (
            vec!["rebalance".into(), "--weight".into(), "abc".into()],
            2,
            "\"abc\" is not NODE=NUMBER".into(),
        ),
        (
            vec!["rebalance".into(), "--weight".into(), format!("{aa}=-1")],
            2,
            "must be 0 or more".into(),
        ),
        (
            vec!["rebalance".into(), "--weight".into(), format!("{aa}=abc")],
            2,
            "\"abc\" is not a number".into(),
        ),
        (
            vec![
                "rebalance".into(),
                "--weight".into(),
                "127.0.0.1:1=2".into(),
            ],
            2,
            "no node at 127.0.0.1:1".into(),
        ),
        (
            ["reshard", "--from", "all", "--to", &ea, "--slots", "0"]
                .map(String::from)
                .to_vec(),
            2,
            "--slots".into(),
        ),
        (
            ["reshard", "--from", &aa, "--to", &ea, "--slots", "6000"]
                .map(String::from)
                .to_vec(),
            1,
            "the sources hold only 5462".into(),
        ),
        (
            [
                "reshard",
                "--from",
                &format!("{aa},{ea}"),
                "--to",
                &ea,
                "--slots",
                "10",
            ]
            .map(String::from)
            .to_vec(),
            1,
            "is also among --from".into(),
        ),
        (
            [
                "reshard",
                "--from",
                "127.0.0.1:1",
                "--to",
                &ea,
                "--slots",
                "10",
            ]
            .map(String::from)
            .to_vec(),
            2,
            "--from 127.0.0.1:1: no node at 127.0.0.1:1".into(),
        ),
    ];
    for (args, code, phrase) in &bad {
        let mut v: Vec<&str> = args.iter().map(String::as_str).collect();
        v.push("-y");
        assert_refused(&cl(&v), *code, phrase);
    }
    assert_eq!(
        counts_of(&tc, &all),
        start,
        "a refused command changed slots"
    );

    // A stray key on the master that would take slots: refused in one sentence naming
    // it and the slot, nothing moved; fix settles the key with its owner.
    let stray = format!(
        "{{{}}}:stray",
        slotsmith::cluster::slot::key_in_slot(100, "s")
    );
    tc.plant_stray(e, a, &stray, "kept");
    assert_refused(
        &cl(&["rebalance", "--use-empty-masters", "-y"]),
        1,
        &format!("cannot rebalance: {ea} holds 1 key(s) of slot 100, which it does not own; run slotsmith fix first"),
    );
    assert_refused(
        &cl(&["reshard", "--from", &aa, "--to", &ea, "--slots", "10", "-y"]),
        1,
        &format!("cannot reshard: {ea} holds 1 key(s) of slot 100, which it does not own"),
    );
    assert_eq!(counts_of(&tc, &all), start, "a refused move changed slots");
    let out = cl(&["fix", "-y"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(tc.redis_cli(a, &["GET", &stray]).trim(), "kept");
    assert_eq!(tc.redis_cli(a, &["DEL", &stray]).trim(), "1");

    // --simulate shows the plan and changes nothing (and asks nothing: no terminal here).
    let out = cl(&["rebalance", "--use-empty-masters", "--simulate"]);
    assert_eq!(out.code, 0, "{out}");
    for (src, n) in [(a, 1366), (b, 1365), (c, 1365)] {
        let line = format!("{} -> {}: {n} slots", addr(src), ea);
        assert!(out.stdout.contains(&line), "no \"{line}\" in {out}");
    }
    let out = cl(&[
        "reshard",
        "--from",
        "all",
        "--to",
        &ea,
        "--slots",
        "100",
        "--simulate",
    ]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("100 slot(s) to move"), "{out}");
    assert_eq!(counts_of(&tc, &all), start, "--simulate changed slots");

    // The steps as modules: importing does not run the command; plans are plain data.
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("plans.rhai");
    std::fs::write(
        &script,
        format!(
            r#"
            import "rebalance" as rb;
            import "reshard" as reshard;
            let p = rb::plan(#{{weights: #{{"{ea}": 3}}, use_empty_masters: true}});
            let r = reshard::plan(#{{from: "all", to: "{ea}", slots: 7}});
            #{{needed: p.needed, moves: p.moves.len(), first: p.moves[0], pairs: p.summary.len(),
               expected: p.expected.values(), reshard: r.moves.len()}}
            "#
        ),
    )
    .unwrap();
    let out = cl(&["--json", "run", script.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out}");
    let v: Value = serde_json::from_str(&out.stdout).expect("one JSON document");
    // 16384 * 3/6 = 8192 for the empty master, 2730.67 for the others (+1 to two of them).
    assert_eq!(v["needed"], Value::Bool(true), "{out}");
    assert_eq!(v["moves"].as_u64(), Some(8192), "{out}");
    assert_eq!(v["first"]["slot"].as_u64(), Some(0), "{out}");
    assert_eq!(v["pairs"].as_u64(), Some(3), "{out}");
    let mut expected: Vec<u64> = v["expected"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap())
        .collect();
    expected.sort();
    assert_eq!(expected, vec![2730, 2731, 2731, 8192], "{out}");
    assert_eq!(v["reshard"].as_u64(), Some(7), "{out}");
    assert_eq!(counts_of(&tc, &all), start, "planning changed slots");

    // The empty master gets its exact share: 16384 / 4 = 4096 each.
    let out = cl(&["rebalance", "--use-empty-masters", "-y"]);
    assert_eq!(out.code, 0, "{out}");
    let summary = out
        .stdout
        .find(&format!("{aa} -> {ea}: 1366 slots"))
        .expect("summary");
    let moved = out
        .stdout
        .find(">>> Moved 4096 slot(s)")
        .expect("result line");
    assert!(summary < moved, "{out}");
    assert!(out.stdout.contains("[OK] The cluster is healthy"), "{out}");
    assert_eq!(counts_of(&tc, &all), vec![4096; 4]);
    assert_lab_keys(&tc, KEYS, KEYS, 997);
    assert_check_clean(&tc);

    let out = cl(&["rebalance", "--use-empty-masters", "-y"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("No rebalancing needed"), "{out}");
    assert_eq!(counts_of(&tc, &all), vec![4096; 4]);

    // Weight 2 by id prefix: 2/5 of the slots; the rounding leftovers go to the largest
    // fractions (16384/5 = 3276.8 beats 6553.6's .6), so 3277 x 3 + 6553 = 16384.
    let e_prefix = id(&tc, e)[..12].to_string();
    let weight = format!("{e_prefix}=2");
    let out = cl(&["--json", "rebalance", "--weight", &weight, "-y"]);
    assert_eq!(out.code, 0, "{out}");
    let v: Value = serde_json::from_str(&out.stdout).expect("one JSON document");
    assert_eq!(v["needed"], Value::Bool(true), "{out}");
    assert_eq!(v["moves"].as_array().map(Vec::len), Some(2457), "{out}");
    assert_eq!(v["result"]["slots"].as_u64(), Some(2457), "{out}");
    assert_eq!(v["expected"][id(&tc, e)].as_u64(), Some(6553), "{out}");
    assert_eq!(v["current"][id(&tc, e)].as_u64(), Some(4096), "{out}");
    assert_eq!(v["ok"], Value::Bool(true), "{out}");
    assert_eq!(counts_of(&tc, &all), vec![3277, 3277, 3277, 6553]);

    // reshard --from all: exactly 1000, in proportion (3277 each: 333.33 + the
    // leftover to the lowest address).
    let out = cl(&[
        "reshard", "--from", "all", "--to", &ea, "--slots", "1000", "-y",
    ]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(counts_of(&tc, &all), vec![2943, 2944, 2944, 7553]);

    // reshard --from A,B to C: exactly 500 more on C, all of them from A and B.
    let from = format!("{},{}", addr(a), addr(b));
    let out = cl(&[
        "reshard",
        "--from",
        &from,
        "--to",
        &addr(c),
        "--slots",
        "500",
        "-y",
    ]);
    assert_eq!(out.code, 0, "{out}");
    let now = counts_of(&tc, &all);
    assert_eq!(now[2], 2944 + 500, "{out}");
    assert_eq!(now[0] + now[1], 2943 + 2944 - 500, "{out}");
    assert_eq!(now[3], 7553);
    assert_lab_keys(&tc, KEYS, KEYS, 997);

    // reshard --slots 11 moves exactly 11 (redis-cli's rounding may plan fewer).
    let out = cl(&[
        "reshard", "--from", "all", "--to", &ea, "--slots", "11", "-y",
    ]);
    assert_eq!(out.code, 0, "{out}");
    let after = counts_of(&tc, &all);
    assert_eq!(after[3], 7553 + 11, "{out}");
    assert_eq!(
        after[0] + after[1] + after[2],
        now[0] + now[1] + now[2] - 11,
        "{out}"
    );
    assert_lab_keys(&tc, KEYS, KEYS, 997);

    // Weight 0 drains A completely (it may then turn into a replica); the rest share
    // 16384 three ways: 5461.33, the leftover slot to the lowest address.
    let out = cl(&["rebalance", "--weight", &format!("{aa}=0"), "-y"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(counts_of(&tc, &all), vec![0, 5462, 5461, 5461]);
    // ... and of keys: a drained master that is still a master holds none (one that
    // turned replica holds its new master's copy, counted there).
    let me = parse_cluster_nodes(&tc.redis_cli(a, &["CLUSTER", "NODES"])).expect("parses");
    if me.iter().any(|n| n.is_myself() && n.is_master()) {
        assert_eq!(
            tc.redis_cli(a, &["DBSIZE"]).trim(),
            "0",
            "keys left on the drained master"
        );
    }
    assert_lab_keys(&tc, KEYS, KEYS, 997);
    assert_check_clean(&tc);
}

on_both_servers!(draining_a_master_with_a_replica_leaves_a_healthy_cluster);
fn draining_a_master_with_a_replica_leaves_a_healthy_cluster(server: Server) {
    const KEYS: u64 = 5_000;
    let tc = TestCluster::with(server, |s| {
        s.masters = 3;
        s.replicas = 1;
        s.empty = 1;
        s.keys = KEYS;
    });
    let seed = tc.seed();
    let p = tc.ports();
    // Masters, then their replicas, then the empty master.
    let (a, b, c, e) = (p[0], p[1], p[2], p[6]);
    let weight = format!("{}=0", addr(a));
    let out = run(&[
        "-c",
        &seed,
        "rebalance",
        "--use-empty-masters",
        "--weight",
        &weight,
        "-y",
    ]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout
            .contains(&format!("{} -> {}: ", addr(a), addr(b))),
        "{out}"
    );
    assert!(out.stdout.contains("[OK] The cluster is healthy"), "{out}");
    assert_eq!(counts_of(&tc, &[a, b, c, e]), vec![0, 5462, 5461, 5461]);
    assert_lab_keys(&tc, KEYS, KEYS, 997);
    assert_check_clean(&tc);
}

/// Keys each master holds (DBSIZE), masters in port order.
fn keys_per_master(tc: &TestCluster, masters: &[u16]) -> Vec<u64> {
    masters
        .iter()
        .map(|p| tc.redis_cli(*p, &["DBSIZE"]).trim().parse().unwrap())
        .collect()
}

on_both_servers!(rebalance_by_keys_evens_out_a_hash_tag_skew);
fn rebalance_by_keys_evens_out_a_hash_tag_skew(server: Server) {
    let tc = TestCluster::with(server, |s| {
        s.keys = 30_000;
        s.empty = 0;
    });
    let masters: Vec<u16> = tc.ports()[..3].to_vec();
    // 20,000 more keys under 400 hash tags, all in the first master's slots (0-5461):
    // it holds 3x the keys of each other master, at equal slot counts.
    let client = redis::Client::open(format!("redis://127.0.0.1:{}", masters[0])).unwrap();
    let mut con = client.get_connection().unwrap();
    let mut pipe = redis::pipe();
    let tags = (0..)
        .map(|i| format!("hot{i}"))
        .filter(|t| slotsmith::cluster::slot::slot_of(t.as_bytes()) <= 5461)
        .take(400);
    for tag in tags {
        for j in 0..50 {
            pipe.cmd("SET")
                .arg(format!("{{{tag}}}:{j}"))
                .arg(format!("{tag}-{j}"))
                .ignore();
        }
    }
    pipe.query::<()>(&mut con).unwrap();
    let before = keys_per_master(&tc, &masters);
    assert!(
        before[0] > 2 * before[1] && before[0] > 2 * before[2],
        "{before:?}"
    );
    let slots_before = counts_of(&tc, &masters);

    // The plan names each master's keys now, its share and after, and with --map draws
    // the slots before and after side by side within 80 columns; nothing is written.
    let out = run(&[
        "-c",
        &tc.seed(),
        "--dry-run",
        "rebalance",
        "--by",
        "keys",
        "--map",
    ]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout.contains("by keys") && out.stdout.contains("share"),
        "{out}"
    );
    let map: Vec<&str> = out
        .stdout
        .lines()
        .skip_while(|l| !l.starts_with(">>> before, then after"))
        .take(1 + 32 + 3)
        .collect();
    assert!(
        map[35].contains("slots") && map[35].contains("keys"),
        "{out}"
    );
    assert!(map.iter().all(|l| l.chars().count() <= 80), "{out}");
    assert_eq!(keys_per_master(&tc, &masters), before);
    assert_eq!(counts_of(&tc, &masters), slots_before);

    let out = run(&["-c", &tc.seed(), "-y", "rebalance", "--by", "keys"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout.contains("Measured after the move") && out.stdout.contains("[OK]"),
        "{out}"
    );
    let after = keys_per_master(&tc, &masters);
    let share = 50_000.0 / 3.0;
    for (p, k) in masters.iter().zip(&after) {
        let gap = (*k as f64 - share).abs() / share;
        assert!(
            gap <= 0.05,
            "{p} holds {k} keys, {:.1}% off its share: {after:?}",
            gap * 100.0
        );
    }
    assert_eq!(after.iter().sum::<u64>(), 50_000);
    assert_check_clean(&tc);
    assert_lab_keys(&tc, 50_000, 30_000, 97);

    // Balanced by keys already: nothing to do.
    let out = run(&["-c", &tc.seed(), "-y", "rebalance", "--by", "keys"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("No rebalancing needed"), "{out}");
}
