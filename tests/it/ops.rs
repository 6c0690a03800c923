//! The operator's everyday commands around repairs: `call` (one command on every node,
//! writes asked for first), `info` (per master keys, slots, memory, ops/s) and
//! `set-timeout` (cluster-node-timeout everywhere, read back), against real clusters.

use serde_json::Value;

use crate::support::{port_of, ss, Output, Server, TestCluster};

/// The addresses of the nodes that are masters now, and of all nodes.
fn masters_and_all(tc: &TestCluster) -> (Vec<String>, Vec<String>) {
    let states = tc.states();
    let masters = states
        .iter()
        .filter(|(_, s)| s.myself().is_some_and(|m| m.is_master()))
        .map(|(a, _)| a.clone())
        .collect();
    (masters, states.into_iter().map(|(a, _)| a).collect())
}

/// What `CONFIG GET name` says on each node, by address.
fn config_everywhere(tc: &TestCluster, all: &[String], name: &str) -> Vec<(String, String)> {
    all.iter()
        .map(|a| {
            let out = tc.redis_cli(port_of(a), &["CONFIG", "GET", name]);
            let value = out.lines().nth(1).unwrap_or_default().trim().to_string();
            (a.clone(), value)
        })
        .collect()
}

/// The rows of a table printed by `call` or `info` whose first column is a node of
/// `addrs`: the words of each (three or more: the plan `call` prints before a write
/// names each node with its role only).
fn table_rows<'a>(out: &'a Output, addrs: &[String]) -> Vec<Vec<&'a str>> {
    out.stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|w| w.len() >= 3 && addrs.iter().any(|x| x == w[0]))
        .collect()
}

on_both_servers!(call_runs_on_every_node_and_asks_before_writing);
fn call_runs_on_every_node_and_asks_before_writing(server: Server) {
    let tc = TestCluster::start(server, 1000);
    let (masters, all) = masters_and_all(&tc);
    assert_eq!(masters.len(), 4, "3 masters with slots and an empty one");
    assert_eq!(tc.total_keys(), 1000);

    // DBSIZE on the masters, as data: one reply per master, adding up to every key.
    let out = ss(&tc)
        .args(["--json", "call", "--masters", "DBSIZE"])
        .run();
    assert_eq!(out.code, 0, "{out}");
    let v: Value = serde_json::from_str(&out.stdout).expect("call --json is one JSON document");
    let rows = v["nodes"].as_array().expect("nodes");
    let mut addrs: Vec<&str> = rows.iter().map(|r| r["addr"].as_str().unwrap()).collect();
    addrs.sort();
    let mut want: Vec<&str> = masters.iter().map(String::as_str).collect();
    want.sort();
    assert_eq!(addrs, want, "{out}");
    let total: u64 = rows.iter().map(|r| r["reply"].as_u64().unwrap()).sum();
    assert_eq!(total, 1000, "{out}");
    assert_eq!(v["sum"].as_u64(), Some(1000), "{out}");
    assert_eq!(v["read_only"], Value::Bool(true), "{out}");

    // The same as a table: a row per master whose replies add up to every key; no
    // replica is asked.
    let out = ss(&tc).args(["call", "--masters", "DBSIZE"]).run();
    assert_eq!(out.code, 0, "{out}");
    let rows = table_rows(&out, &all);
    assert_eq!(rows.len(), 4, "{out}");
    assert!(rows.iter().all(|w| w[1] == "master"), "{out}");
    let total: u64 = rows.iter().map(|w| w[2].parse::<u64>().unwrap()).sum();
    assert_eq!(total, 1000, "{out}");
    assert!(
        out.stdout
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["sum", "1000"]),
        "{out}"
    );

    // A read on every node needs no confirmation, even without a terminal; a reply of
    // several lines goes on under the reply column.
    let out = ss(&tc)
        .args(["call", "CONFIG", "GET", "maxmemory-policy"])
        .run();
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(table_rows(&out, &all).len(), all.len(), "{out}");
    assert_eq!(
        out.stdout.matches("2) noeviction").count(),
        all.len(),
        "{out}"
    );

    // A write without --yes and without a terminal: refused, named, nothing sent.
    let before = config_everywhere(&tc, &all, "maxmemory-policy");
    assert!(before.iter().all(|(_, v)| v == "noeviction"), "{before:?}");
    let out = ss(&tc)
        .args(["call", "CONFIG", "SET", "maxmemory-policy", "allkeys-lru"])
        .run();
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("--yes"), "{out}");
    assert!(
        out.stdout
            .contains("CONFIG SET maxmemory-policy allkeys-lru will be sent to 7 nodes"),
        "the write is shown before it is refused: {out}"
    );
    assert_eq!(config_everywhere(&tc, &all, "maxmemory-policy"), before);

    // The words as an operator types them parse (no `--` needed), and a dry run only plans.
    let out = ss(&tc)
        .args(["--dry-run", "-y", "call", "CONFIG", "SET", "maxmemory", "0"])
        .run();
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout
            .contains("CONFIG SET maxmemory 0 will be sent to 7 nodes"),
        "{out}"
    );
    assert!(out.stdout.contains("[PLAN] Nothing was sent"), "{out}");
    let out = ss(&tc)
        .args([
            "--dry-run",
            "-y",
            "call",
            "CONFIG",
            "SET",
            "maxmemory-policy",
            "allkeys-lru",
        ])
        .run();
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(config_everywhere(&tc, &all, "maxmemory-policy"), before);

    // With --yes it is sent to every node.
    let out = ss(&tc)
        .args([
            "-y",
            "call",
            "CONFIG",
            "SET",
            "maxmemory-policy",
            "allkeys-lru",
        ])
        .run();
    assert_eq!(out.code, 0, "{out}");
    let rows = table_rows(&out, &all);
    assert_eq!(rows.len(), all.len(), "{out}");
    assert!(rows.iter().all(|w| w[2] == "OK"), "{out}");
    let after = config_everywhere(&tc, &all, "maxmemory-policy");
    assert!(after.iter().all(|(_, v)| v == "allkeys-lru"), "{after:?}");

    // Arguments starting with `-` go after `--`; only the replicas with --replicas.
    let out = ss(&tc)
        .args(["call", "--replicas", "--", "ECHO", "-x"])
        .run();
    assert_eq!(out.code, 0, "{out}");
    let rows = table_rows(&out, &all);
    assert_eq!(rows.len(), 3, "{out}");
    assert!(
        rows.iter().all(|w| w[1] == "replica" && w[2] == "-x"),
        "{out}"
    );

    // An error reply is shown in its row and makes the exit 1.
    let out = ss(&tc)
        .args(["--json", "-y", "call", "--masters", "NOSUCHCOMMAND"])
        .run();
    assert_eq!(out.code, 1, "{out}");
    let v: Value = serde_json::from_str(&out.stdout).expect("one JSON document");
    for r in v["nodes"].as_array().expect("nodes") {
        let e = r["error"].as_str().unwrap_or_default();
        assert!(e.contains("unknown command"), "{out}");
    }

    // A command that never returns a reply is refused in one sentence.
    let out = ss(&tc).args(["call", "MONITOR"]).run();
    assert_eq!(out.code, 2, "{out}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out}");
    assert!(out.stderr.contains("MONITOR"), "{out}");
}

on_both_servers!(info_shows_every_master_and_set_timeout_sets_every_node);
fn info_shows_every_master_and_set_timeout_sets_every_node(server: Server) {
    let tc = TestCluster::start(server, 1500);
    let (masters, all) = masters_and_all(&tc);
    let dbsize = |addr: &str| -> u64 {
        tc.redis_cli(port_of(addr), &["DBSIZE"])
            .trim()
            .parse()
            .expect("DBSIZE")
    };

    // info: a row per master with the keys its DBSIZE counts, then the totals.
    let out = ss(&tc).args(["info"]).run();
    assert_eq!(out.code, 0, "{out}");
    let rows = table_rows(&out, &all);
    assert_eq!(rows.len(), masters.len(), "only masters: {out}");
    for m in &masters {
        let row = rows
            .iter()
            .find(|w| w[0] == m)
            .unwrap_or_else(|| panic!("no {m}: {out}"));
        assert_eq!(
            row[1].parse::<u64>().unwrap(),
            dbsize(m),
            "keys of {m}: {out}"
        );
    }
    assert!(
        out.stdout
            .contains("[OK] 1500 keys in 4 masters, 3 replicas, 16384 slots assigned."),
        "{out}"
    );
    let total = out
        .stdout
        .lines()
        .find(|l| l.starts_with("total"))
        .unwrap_or_else(|| panic!("no totals: {out}"));
    assert_eq!(total.split_whitespace().nth(1), Some("1500"), "{out}");

    let out = ss(&tc).args(["--json", "info"]).run();
    assert_eq!(out.code, 0, "{out}");
    let v: Value = serde_json::from_str(&out.stdout).expect("info --json is one JSON document");
    let ms = v["masters"].as_array().expect("masters");
    assert_eq!(ms.len(), masters.len(), "{out}");
    for m in ms {
        let addr = m["addr"].as_str().unwrap();
        assert_eq!(m["keys"].as_u64(), Some(dbsize(addr)), "{out}");
        assert!(m["used_memory"].as_u64().unwrap() > 0, "{out}");
        assert!(
            m["used_memory_human"].as_str().unwrap().ends_with('M'),
            "{out}"
        );
    }
    assert_eq!(v["total"]["keys"].as_u64(), Some(1500), "{out}");
    assert_eq!(v["total"]["slots"].as_u64(), Some(16384), "{out}");
    assert_eq!(v["total"]["replicas"].as_u64(), Some(3), "{out}");

    // set-timeout: without --yes and a terminal nothing changes; with it every node
    // has the new value, as redis-cli reads it.
    let before = config_everywhere(&tc, &all, "cluster-node-timeout");
    assert!(before.iter().all(|(_, v)| v != "6000"), "{before:?}");
    let out = ss(&tc).args(["set-timeout", "6000"]).run();
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("--yes"), "{out}");
    assert_eq!(config_everywhere(&tc, &all, "cluster-node-timeout"), before);
    let out = ss(&tc).args(["--dry-run", "set-timeout", "6000"]).run();
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(config_everywhere(&tc, &all, "cluster-node-timeout"), before);

    let out = ss(&tc).args(["-y", "set-timeout", "6000"]).run();
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout
            .contains("[OK] All 7 nodes have cluster-node-timeout 6000."),
        "{out}"
    );
    let after = config_everywhere(&tc, &all, "cluster-node-timeout");
    assert_eq!(after.len(), 7);
    assert!(after.iter().all(|(_, v)| v == "6000"), "{after:?}");
    // Again: nothing to do, nothing asked.
    let out = ss(&tc).args(["set-timeout", "6000"]).run();
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout
            .contains("already have cluster-node-timeout 6000"),
        "{out}"
    );

    // Bad input: exit 2, one sentence naming MS, nothing changed.
    for bad in ["abc", "0", "-5"] {
        let out = ss(&tc).args(["-y", "set-timeout", bad]).run();
        assert_eq!(out.code, 2, "{bad}: {out}");
        let first = out.stderr.lines().next().unwrap_or_default();
        assert!(
            first.contains("<MS>") && first.contains(bad),
            "{bad}: {out}"
        );
        assert!(!out.stderr.contains(".rhai"), "{bad}: {out}");
        assert!(out.stdout.is_empty(), "{bad}: {out}");
    }
    assert_eq!(config_everywhere(&tc, &all, "cluster-node-timeout"), after);
}
