//! A cluster from nothing: `create` of six empty nodes (three masters, three replicas),
//! `add-node` of a seventh, and a rebalance onto it right after; bad input (a node in
//! a cluster, an unreachable address, too many replicas) refused with nothing written.

use crate::support::{ss_bare, Output, Server, TestCluster};

fn addr(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// The lines of node `port`'s `CLUSTER NODES`.
fn nodes_of(tc: &TestCluster, port: u16) -> Vec<String> {
    tc.redis_cli(port, &["CLUSTER", "NODES"])
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect()
}

/// `slotsmith -c SEED -y ARGS...`.
fn run(seed: u16, args: &[&str]) -> Output {
    let seed = addr(seed);
    let mut all = vec!["-c", &seed, "-y"];
    all.extend_from_slice(args);
    ss_bare().args(all).run()
}

/// A refusal: exit 2, one line on stderr naming `what`, nothing on stdout.
fn assert_refused(out: &Output, what: &str) {
    assert_eq!(out.code, 2, "{out}");
    let lines: Vec<&str> = out.stderr.lines().filter(|l| !l.is_empty()).collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(
        lines[0].starts_with("slotsmith: ") && lines[0].contains(what),
        "{out}"
    );
    assert!(out.stdout.is_empty(), "{out}");
}

/// `redis-cli --cluster check` through node `port` is clean.
fn assert_clean(tc: &TestCluster, port: u16) {
    let text = tc.redis_cli(port, &["--cluster", "check", &addr(port)]);
    assert!(
        text.contains("[OK] All nodes agree about slots configuration.")
            && text.contains("[OK] All 16384 slots covered.")
            && !text.contains("[WARNING]")
            && !text.contains("[ERR]"),
        "redis-cli --cluster check:\n{text}"
    );
}

on_both_servers!(seven_empty_nodes_become_a_cluster_that_a_rebalance_fills);
fn seven_empty_nodes_become_a_cluster_that_a_rebalance_fills(server: Server) {
    // One node in a cluster of its own, and eight empty nodes outside any cluster (the
    // eighth joins last, as a replica).
    let tc = TestCluster::with(server, |s| {
        s.masters = 1;
        s.replicas = 0;
        s.empty = 0;
        s.spare = 8;
    });
    let other = tc.ports()[0];
    let spares: Vec<u16> = tc.ports()[1..].to_vec();
    assert_eq!(spares.len(), 8);
    let six: Vec<String> = spares[..6].iter().map(|p| addr(*p)).collect();
    let six: Vec<&str> = six.iter().map(String::as_str).collect();
    let first = spares[0];
    let create = |seed: u16, extra: &[&str]| {
        let mut args = vec!["create"];
        args.extend_from_slice(&six);
        args.extend_from_slice(extra);
        run(seed, &args)
    };
    let untouched = |ports: &[u16]| {
        for &p in ports {
            let lines = nodes_of(&tc, p);
            assert_eq!(lines.len(), 1, "{p}: {lines:?}");
            assert!(lines[0].trim_end().ends_with("connected"), "{p}: {lines:?}");
        }
    };

    // Bad input: nothing is written.
    assert_refused(&create(first, &["--replicas", "5"]), "--replicas 5");
    let out = run(first, &["create", six[0], six[1], six[2], "127.0.0.1:1"]);
    assert_refused(&out, "127.0.0.1:1 cannot be reached");
    let lab = addr(other);
    let out = run(first, &["create", six[0], six[1], &lab]);
    assert_refused(&out, &format!("{lab} already holds 16384 slot(s)"));
    assert_refused(
        &create(other, &["--replicas", "1"]),
        "-c must name one of the nodes",
    );
    untouched(&spares);

    // The plan only; without -c, as redis-cli is typed: the first node is the way in.
    let out = ss_bare()
        .args(["--dry-run", "create"])
        .args(six.iter().copied())
        .args(["--replicas", "1"])
        .run();
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout.contains("3 masters, 3 replicas")
            && out.stdout.contains("slots 0-5461 (5462)")
            && out.stdout.contains("CLUSTER REPLICATE"),
        "{out}"
    );
    untouched(&spares);

    let out = create(first, &["--replicas", "1"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("[OK] A cluster of 6 nodes"), "{out}");
    assert!(out.stderr.contains("on one host"), "{out}");
    assert_clean(&tc, first);
    for &p in &spares[..6] {
        assert_eq!(nodes_of(&tc, p).len(), 6, "{p}");
    }
    let masters: Vec<String> = nodes_of(&tc, first)
        .into_iter()
        .filter(|l| l.contains("master"))
        .collect();
    assert_eq!(masters.len(), 3, "{masters:?}");

    // A node of a cluster cannot be added again, nor form another one.
    let seventh = spares[6];
    let out = run(first, &["add-node", six[1]]);
    assert_refused(
        &out,
        &format!("{} is already a node of this cluster", six[1]),
    );
    // One sentence per offending node.
    let out = run(seventh, &["create", &addr(seventh), six[1], six[2]]);
    assert_eq!(out.code, 2, "{out}");
    for bad in &six[1..3] {
        let sentence = format!("{bad} already knows 5 other node(s)");
        assert_eq!(out.stderr.matches(&sentence).count(), 1, "{out}");
    }
    assert!(!out.stderr.contains(&addr(seventh)), "{out}");
    let out = run(first, &["add-node", &lab]);
    assert_refused(&out, &lab);
    untouched(&spares[6..]);

    let out = run(first, &["add-node", &addr(seventh)]);
    assert_eq!(out.code, 0, "{out}");
    for &p in &spares[..7] {
        assert_eq!(nodes_of(&tc, p).len(), 7, "{p}");
    }
    assert_clean(&tc, first);

    // At once: every node already knows the new one.
    let out = run(first, &["rebalance", "--use-empty-masters"]);
    assert_eq!(out.code, 0, "{out}");
    let own = nodes_of(&tc, seventh)
        .into_iter()
        .find(|l| l.contains("myself"))
        .unwrap();
    assert!(
        own.contains("master") && own.split_whitespace().count() > 8,
        "{own}"
    );
    assert_clean(&tc, first);

    // The eighth becomes the seventh's replica; a replica is refused as its master.
    let eighth = spares[7];
    let replica = nodes_of(&tc, first)
        .into_iter()
        .find(|l| l.contains("slave"))
        .and_then(|l| {
            l.split_whitespace()
                .nth(1)
                .map(|a| a.split('@').next().unwrap().to_string())
        })
        .unwrap();
    let out = run(
        first,
        &["add-node", &addr(eighth), "--replica-of", &replica],
    );
    assert_refused(&out, &format!("--replica-of {replica}: it is a replica"));
    untouched(&[eighth]);
    let out = run(
        first,
        &["add-node", &addr(eighth), "--replica-of", &addr(seventh)],
    );
    assert_eq!(out.code, 0, "{out}");
    let seventh_id = tc
        .redis_cli(seventh, &["CLUSTER", "MYID"])
        .trim()
        .to_string();
    for &p in &spares {
        let lines = nodes_of(&tc, p);
        assert_eq!(lines.len(), 8, "{p}");
        let line = lines.iter().find(|l| l.contains(&addr(eighth))).unwrap();
        assert!(line.contains(&format!("slave {seventh_id}")), "{p}: {line}");
    }
    assert_clean(&tc, first);
}
