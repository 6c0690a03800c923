//! `slotsmith fix` on real clusters, one case of "What fix must handle" at a time:
//! each broken state is built with raw redis-cli commands (SETSLOT, MIGRATE, ASKING +
//! SET, DELSLOTS, ADDSLOTS), every key and value is recorded first, and after the fix
//! we check what an operator checks: the exit code, what the screen names, that
//! `redis-cli --cluster check` is clean, that every key is there once with its old
//! value on the master that owns it, and that a second fix has nothing to do.
//!
//! Three clusters for the whole module (the machine is small): one with replicas for
//! the open-slot cases and disagreements, one without for ownership, uncovered slots
//! and conflicting keys, and one whose empty master is stopped.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use slotsmith::cluster::slot::{key_in_slot, slot_of};
use slotsmith::cluster::NodeInfo;
use slotsmith::lab::Fault;

use crate::support::{port_of, run, Output, Server, TestCluster};

/// Every key of the cluster and its value.
type Keys = BTreeMap<String, String>;

/// The line fix prints before acting (the start of `rule_short()` in stdlib/fix.rhai, and of
/// `rule()`, the whole rule, which it prints with -v).
const RULE: &str =
    "Owner rule: an interrupted migration is finished toward the node it was moving to";

fn addr(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// Commands sent to one node over one connection (`redis-cli` reading stdin), one
/// reply line per command. Arguments must not hold quotes or newlines.
fn pipe(port: u16, commands: &[Vec<String>]) -> Vec<String> {
    let mut child = Command::new("redis-cli")
        .args(["-h", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("redis-cli runs");
    let mut input = String::new();
    for c in commands {
        let words: Vec<String> = c.iter().map(|w| format!("\"{w}\"")).collect();
        input.push_str(&words.join(" "));
        input.push('\n');
    }
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    let out = child.wait_with_output().expect("redis-cli output");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    assert_eq!(
        lines.len(),
        commands.len(),
        "one reply per command from {port}: {text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    lines
}

fn cmd(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

/// Each reachable node's own description of itself.
fn myselves(tc: &TestCluster) -> Vec<NodeInfo> {
    tc.states()
        .into_iter()
        .filter_map(|(_, s)| s.myself().cloned())
        .collect()
}

fn myself(tc: &TestCluster, port: u16) -> NodeInfo {
    myselves(tc)
        .into_iter()
        .find(|n| n.port == port)
        .unwrap_or_else(|| panic!("node {port} does not answer"))
}

/// Ports of the nodes that are masters in their own view.
fn master_ports(tc: &TestCluster) -> Vec<u16> {
    myselves(tc)
        .into_iter()
        .filter(|n| n.is_master())
        .map(|n| n.port)
        .collect()
}

/// The master that owns `slot` in its own view (exactly one).
fn owner_port(tc: &TestCluster, slot: u16) -> u16 {
    let owners: Vec<u16> = myselves(tc)
        .into_iter()
        .filter(|n| n.is_master() && n.owns(slot))
        .map(|n| n.port)
        .collect();
    assert_eq!(owners.len(), 1, "owners of slot {slot}: {owners:?}");
    owners[0]
}

fn node_id(tc: &TestCluster, port: u16) -> String {
    tc.redis_cli(port, &["CLUSTER", "MYID"]).trim().to_string()
}

/// What every node says about every node: its own slots and markers included. Two
/// equal `views` mean nothing about slot ownership changed.
fn views(tc: &TestCluster) -> BTreeMap<u16, Vec<String>> {
    tc.states()
        .into_iter()
        .map(|(a, s)| {
            let mut lines: Vec<String> = s
                .nodes
                .iter()
                .map(|n| {
                    format!(
                        "{} {} {:?} {:?} {:?}",
                        n.id,
                        n.role(),
                        n.slots,
                        n.migrating,
                        n.importing
                    )
                })
                .collect();
            lines.sort();
            (port_of(&a), lines)
        })
        .collect()
}

/// Every key each master holds, by port.
fn key_sets(tc: &TestCluster) -> BTreeMap<u16, BTreeSet<String>> {
    master_ports(tc)
        .into_iter()
        .map(|p| {
            let keys = tc
                .redis_cli(p, &["KEYS", "*"])
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_string)
                .collect();
            (p, keys)
        })
        .collect()
}

/// Every key of the cluster with its value, read with a plain GET on the master that
/// holds it: a key on a master that does not own its slot, or on two masters, fails.
fn snapshot(tc: &TestCluster) -> Keys {
    let mut all = Keys::new();
    for (port, keys) in key_sets(tc) {
        if keys.is_empty() {
            continue;
        }
        let gets: Vec<Vec<String>> = keys.iter().map(|k| cmd(&["GET", k])).collect();
        for (k, v) in keys.iter().zip(pipe(port, &gets)) {
            for err in ["MOVED", "ASK", "ERR", "CLUSTERDOWN", "TRYAGAIN"] {
                assert!(
                    !v.starts_with(err),
                    "key {k} (slot {}) on {port} cannot be read there: {v}",
                    slot_of(k.as_bytes())
                );
            }
            if let Some(other) = all.insert(k.clone(), v.clone()) {
                panic!("key {k} is on two masters (values {other:?} and {v:?})");
            }
        }
    }
    all
}

/// `a` and `b` hold the same keys and values; names the differences.
fn assert_same_keys(want: &Keys, got: &Keys) {
    let missing: Vec<&String> = want.keys().filter(|k| !got.contains_key(*k)).collect();
    let extra: Vec<&String> = got.keys().filter(|k| !want.contains_key(*k)).collect();
    let changed: Vec<String> = want
        .iter()
        .filter_map(|(k, v)| {
            got.get(k)
                .filter(|g| *g != v)
                .map(|g| format!("{k}: {v:?} -> {g:?}"))
        })
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty() && changed.is_empty(),
        "keys differ: missing {missing:?}, extra {extra:?}, changed {changed:?}"
    );
}

/// What `redis-cli --cluster check` says once the cluster is healthy: both OK lines,
/// no warning, no error, no open slot.
fn clean(report: &str) -> bool {
    report.contains("[OK] All nodes agree about slots configuration.")
        && report.contains("[OK] All 16384 slots covered.")
        && !report.contains("[WARNING]")
        && !report.contains("[ERR]")
        && !report
            .lines()
            .any(|l| l.contains("open") && !l.contains(">>> Check for open slots"))
}

/// `redis-cli --cluster check` is clean (fix already waited for the replicas to
/// agree; a short grace for redis-cli's own view).
fn assert_healthy(tc: &TestCluster) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let report = tc.cluster_check();
        if clean(&report) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "redis-cli --cluster check is not clean:\n{report}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Reads through the cluster, as a client does (`redis-cli -c` follows redirects).
fn assert_reads(tc: &TestCluster, keys: &[String], expected: &Keys) {
    let entry = tc.ports()[0];
    for k in keys {
        let got = tc.redis_cli(entry, &["-c", "GET", k]);
        assert_eq!(got.trim(), expected[k], "redis-cli -c GET {k}");
    }
}

fn fix(tc: &TestCluster, extra: &[&str]) -> Output {
    let seed = tc.seed();
    let mut args = vec!["-c", seed.as_str(), "fix", "-y"];
    args.extend_from_slice(extra);
    run(&args)
}

fn assert_says(out: &Output, words: &[String]) {
    for w in words {
        assert!(
            out.stdout.contains(w.as_str()),
            "{w:?} not on screen:\n{out}"
        );
    }
}

/// After a fix: the cluster is clean, every key is there once with its old value, the
/// total is the same, and a second fix has nothing to do.
fn assert_settled(tc: &TestCluster, expected: &Keys) {
    assert_healthy(tc);
    assert_eq!(tc.total_keys(), expected.len() as u64, "total keys");
    assert_same_keys(expected, &snapshot(tc));
    let again = fix(tc, &[]);
    assert_eq!(again.code, 0, "second fix: {again}");
    assert!(
        again.stdout.contains("Nothing to fix"),
        "second fix: {again}"
    );
}

/// Run `fix -y`, which must succeed naming `words`, and check the result.
fn fix_ok(tc: &TestCluster, expected: &Keys, words: &[String]) -> Output {
    let out = fix(tc, &[]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout.contains(RULE),
        "the owner rule is printed: {out}"
    );
    assert!(out.stdout.contains("[OK] The cluster is healthy"), "{out}");
    assert_says(&out, words);
    assert_settled(tc, expected);
    out
}

fn assert_ok(reply: String, what: &str) {
    assert_eq!(reply.trim(), "OK", "{what}");
}

fn setslot(tc: &TestCluster, port: u16, slot: u16, how: &[&str]) {
    let s = slot.to_string();
    let mut args = vec!["CLUSTER", "SETSLOT", s.as_str()];
    args.extend_from_slice(how);
    assert_ok(tc.redis_cli(port, &args), &format!("{args:?} on {port}"));
}

/// Write `n` keys of `slot` on `port` (which must serve the slot) and record them.
fn write_keys(
    tc: &TestCluster,
    port: u16,
    slot: u16,
    name: &str,
    n: usize,
    expected: &mut Keys,
) -> Vec<String> {
    let tag = key_in_slot(slot, "fx");
    (1..=n)
        .map(|i| {
            let key = format!("{{{tag}}}:{name}:{i}");
            let value = format!("{name}-value-{i}");
            assert_ok(
                tc.redis_cli(port, &["SET", &key, &value]),
                &format!("SET {key} on {port}"),
            );
            assert_eq!(slot_of(key.as_bytes()), slot);
            expected.insert(key.clone(), value);
            key
        })
        .collect()
}

/// SET keys on a master that does not serve their slot, as a half-done import leaves
/// them: IMPORTING, then ASKING + SET on one connection, then STABLE again (unless
/// the node was already importing the slot).
fn plant(tc: &TestCluster, port: u16, slot: u16, pairs: &[(&str, &str)], from_port: u16) {
    let was_importing = myself(tc, port).importing.contains_key(&slot);
    if !was_importing {
        let from = node_id(tc, from_port);
        setslot(tc, port, slot, &["IMPORTING", &from]);
    }
    let mut cmds = Vec::new();
    for (k, v) in pairs {
        assert_eq!(slot_of(k.as_bytes()), slot);
        cmds.push(cmd(&["ASKING"]));
        cmds.push(cmd(&["SET", k, v]));
    }
    let replies = pipe(port, &cmds);
    assert!(
        replies.iter().all(|r| r == "OK"),
        "ASKING + SET on {port}: {replies:?}"
    );
    if !was_importing {
        setslot(tc, port, slot, &["STABLE"]);
    }
}

/// Keys of `slot` that `port` holds.
fn keys_in(tc: &TestCluster, port: u16, slot: u16) -> Vec<String> {
    tc.redis_cli(
        port,
        &["CLUSTER", "GETKEYSINSLOT", &slot.to_string(), "1000"],
    )
    .lines()
    .filter(|l| !l.is_empty())
    .map(str::to_string)
    .collect()
}

fn migrate(tc: &TestCluster, from: u16, to: u16, keys: &[String]) {
    let to = to.to_string();
    let mut args = vec!["MIGRATE", "127.0.0.1", to.as_str(), "", "0", "5000", "KEYS"];
    args.extend(keys.iter().map(String::as_str));
    assert_ok(
        tc.redis_cli(from, &args),
        &format!("MIGRATE {keys:?} {from} -> {to}"),
    );
}

/// `slot` open between `a` (MIGRATING) and `b` (IMPORTING), as a reshard does it.
fn open_slot(tc: &TestCluster, slot: u16, a: u16, b: u16) {
    let (ida, idb) = (node_id(tc, a), node_id(tc, b));
    setslot(tc, b, slot, &["IMPORTING", &ida]);
    setslot(tc, a, slot, &["MIGRATING", &idb]);
}

/// The first slot from `from` on whose owner no key lives.
fn empty_slot(tc: &TestCluster, from: u16) -> u16 {
    (from..16384)
        .find(|&s| {
            let o = owner_port(tc, s);
            tc.redis_cli(o, &["CLUSTER", "COUNTKEYSINSLOT", &s.to_string()])
                .trim()
                == "0"
        })
        .expect("an empty slot")
}

/// Keys that are on `port` now.
fn assert_on(tc: &TestCluster, port: u16, keys: &[String]) {
    let here = &key_sets(tc)[&port];
    for k in keys {
        assert!(here.contains(k), "{k} is not on {port}");
    }
}

on_both_servers!(fix_closes_open_slots_on_a_cluster_with_replicas);
fn fix_closes_open_slots_on_a_cluster_with_replicas(server: Server) {
    let tc = TestCluster::start(server, 200);
    let ports = tc.ports();
    let (a, b, c, e) = (ports[0], ports[1], ports[2], ports[6]);
    let mut expected = snapshot(&tc);
    assert_eq!(expected.len(), 200);

    // 11. A healthy cluster: nothing to fix, nothing changed.
    let before = views(&tc);
    let out = fix(&tc, &[]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("Nothing to fix"), "{out}");
    assert!(!out.stdout.contains("Owner rule"), "{out}");
    assert_eq!(views(&tc), before, "a healthy cluster is left as it was");
    assert_same_keys(&expected, &snapshot(&tc));

    // 10. The seed scenario: 5519 MIGRATING on its owner, IMPORTING on the empty
    // master, one key left behind.
    let src = owner_port(&tc, 5519);
    tc.lab()
        .break_fault(Fault::StuckSlot { slot: 5519 }, tc.handle())
        .expect("break stuck-slot");
    let seed_key = "user:loadtest_user_33:reservations".to_string();
    let tag = key_in_slot(5519, "lab");
    for key in
        std::iter::once(seed_key.clone()).chain((1..=3).map(|i| format!("{{{tag}}}:item:{i}")))
    {
        let value = format!("written by lab break stuck-slot ({key})");
        expected.insert(key, value);
    }
    assert_eq!(keys_in(&tc, src, 5519), vec![seed_key.clone()]);
    assert_eq!(tc.total_keys(), expected.len() as u64);
    fix_ok(
        &tc,
        &expected,
        &[
            "Slot 5519 (open)".into(),
            format!("MIGRATING on {} -> {}", addr(src), addr(e)),
            format!("IMPORTING on {} <- {}", addr(e), addr(src)),
            format!("new owner: {}", addr(e)),
            format!("[OK] slot 5519 owned by {}", addr(e)),
        ],
    );
    assert_eq!(owner_port(&tc, 5519), e);
    assert_on(&tc, e, std::slice::from_ref(&seed_key));
    assert_reads(&tc, &[seed_key], &expected);

    // 1. Migrating on A, importing on B.
    // Keys only on A.
    let keys = write_keys(&tc, a, 100, "only-a", 3, &mut expected);
    open_slot(&tc, 100, a, b);
    fix_ok(
        &tc,
        &expected,
        &[
            "Slot 100 (open)".into(),
            format!("MIGRATING on {} -> {}", addr(a), addr(b)),
            format!("IMPORTING on {} <- {}", addr(b), addr(a)),
            format!("new owner: {}, because finish the migration", addr(b)),
        ],
    );
    assert_eq!(owner_port(&tc, 100), b);
    assert_on(&tc, b, &keys);
    assert_reads(&tc, &keys, &expected);

    // Keys only on B: all moved, markers left.
    write_keys(&tc, a, 101, "only-b", 3, &mut expected);
    open_slot(&tc, 101, a, b);
    let keys = keys_in(&tc, a, 101);
    migrate(&tc, a, b, &keys);
    assert!(keys_in(&tc, a, 101).is_empty());
    fix_ok(
        &tc,
        &expected,
        &[
            "Slot 101 (open)".into(),
            format!("keys: {}: {}", addr(b), keys.len()),
            format!("new owner: {}", addr(b)),
        ],
    );
    assert_eq!(owner_port(&tc, 101), b);
    assert_on(&tc, b, &keys);

    // Keys on both sides.
    let keys = write_keys(&tc, a, 102, "split", 4, &mut expected);
    open_slot(&tc, 102, a, b);
    migrate(&tc, a, b, &keys[..2]);
    fix_ok(
        &tc,
        &expected,
        &[
            "Slot 102 (open)".into(),
            format!("new owner: {}", addr(b)),
            format!("[OK] slot 102 owned by {}", addr(b)),
        ],
    );
    assert_eq!(owner_port(&tc, 102), b);
    assert_on(&tc, b, &keys);
    assert_reads(&tc, &keys, &expected);

    // 2. Importing with no migrating: the owner keeps the slot.
    let keys = write_keys(&tc, a, 200, "imp", 3, &mut expected);
    setslot(&tc, c, 200, &["IMPORTING", &node_id(&tc, a)]);
    fix_ok(
        &tc,
        &expected,
        &[
            "Slot 200 (open)".into(),
            format!("IMPORTING on {} <- {}", addr(c), addr(a)),
            format!("new owner: {}", addr(a)),
            format!("CLUSTER SETSLOT 200 STABLE on {}", addr(c)),
        ],
    );
    assert_eq!(owner_port(&tc, 200), a);
    assert_on(&tc, a, &keys);

    // ... with some keys already on the importing node: they come back to the owner.
    let keys = write_keys(&tc, a, 201, "imp-moved", 4, &mut expected);
    open_slot(&tc, 201, a, c);
    migrate(&tc, a, c, &keys[..2]);
    setslot(&tc, a, 201, &["STABLE"]);
    fix_ok(
        &tc,
        &expected,
        &[
            "Slot 201 (open)".into(),
            format!("{}: 2", addr(c)),
            format!("new owner: {}", addr(a)),
            format!(
                "MIGRATE every key of slot 201 from {} to {}",
                addr(c),
                addr(a)
            ),
        ],
    );
    assert_eq!(owner_port(&tc, 201), a);
    assert_on(&tc, a, &keys);
    assert_reads(&tc, &keys, &expected);

    // 3. Migrating with no importing, no key moved: rolled back to A.
    let keys = write_keys(&tc, a, 300, "mig", 3, &mut expected);
    setslot(&tc, a, 300, &["MIGRATING", &node_id(&tc, b)]);
    fix_ok(
        &tc,
        &expected,
        &[
            "Slot 300 (open)".into(),
            format!("MIGRATING on {} -> {}", addr(a), addr(b)),
            format!("roll back to {}", addr(a)),
            format!("CLUSTER SETSLOT 300 STABLE on {}", addr(a)),
        ],
    );
    assert_eq!(owner_port(&tc, 300), a);
    assert_on(&tc, a, &keys);

    // ... and when B already holds some keys: finished to B.
    let keys = write_keys(&tc, a, 301, "mig-moved", 3, &mut expected);
    open_slot(&tc, 301, a, b);
    migrate(&tc, a, b, &keys[..1]);
    setslot(&tc, b, 301, &["STABLE"]);
    fix_ok(
        &tc,
        &expected,
        &[
            "Slot 301 (open, keys on a master that does not own it)".into(),
            format!("{} already holds keys of the slot", addr(b)),
            format!("new owner: {}", addr(b)),
        ],
    );
    assert_eq!(owner_port(&tc, 301), b);
    assert_on(&tc, b, &keys);
    assert_reads(&tc, &keys, &expected);

    // 4. One slot importing on several nodes, keys on all three.
    let keys = write_keys(&tc, a, 400, "multi", 6, &mut expected);
    open_slot(&tc, 400, a, b);
    setslot(&tc, c, 400, &["IMPORTING", &node_id(&tc, a)]);
    migrate(&tc, a, b, &keys[..2]);
    migrate(&tc, a, c, &keys[2..4]);
    fix_ok(
        &tc,
        &expected,
        &[
            "Slot 400 (open)".into(),
            format!("IMPORTING on {} <- {}", addr(b), addr(a)),
            format!("IMPORTING on {} <- {}", addr(c), addr(a)),
            format!("new owner: {}", addr(b)),
            format!(
                "MIGRATE every key of slot 400 from {} to {}",
                addr(c),
                addr(b)
            ),
            format!("CLUSTER SETSLOT 400 STABLE on {}", addr(c)),
        ],
    );
    assert_eq!(owner_port(&tc, 400), b);
    assert_on(&tc, b, &keys);
    assert_reads(&tc, &keys, &expected);

    // 9. Nodes that disagree about the owner.
    // A hands an empty slot to B in its own view only: A says B, everyone else says A.
    let s = empty_slot(&tc, 500);
    assert_eq!(owner_port(&tc, s), a);
    setslot(&tc, a, s, &["NODE", &node_id(&tc, b)]);
    // Valkey replicates SETSLOT to the master's replica (the lab's 4th node is A's).
    let a_says = if server.atomic() {
        format!("{}, {} say {} owns it", addr(a), addr(ports[3]), addr(b))
    } else {
        format!("{} says {} owns it", addr(a), addr(b))
    };
    let out = fix_ok(
        &tc,
        &expected,
        &[
            format!("Slot {s} (uncovered, disagreement)"),
            a_says,
            format!("say {} owns it", addr(a)),
        ],
    );
    let new_owner = owner_port(&tc, s);
    assert!(
        out.stdout
            .contains(&format!("[OK] slot {s} owned by {}", addr(new_owner))),
        "{out}"
    );
    // Every node, replicas included, names the same owner.
    let owner_id = node_id(&tc, new_owner);
    for (port, view) in tc.states().iter().map(|(a, s)| (port_of(a), &s.nodes)) {
        let seen: Vec<&str> = view
            .iter()
            .filter(|n| n.owns(s))
            .map(|n| n.id.as_str())
            .collect();
        assert_eq!(seen, vec![owner_id.as_str()], "owner of {s} seen by {port}");
    }

    // DELSLOTS on the owner, DELSLOTS + ADDSLOTS on another master: its claim has a
    // lower epoch than the old owner's, so some nodes keep the old owner.
    let s = 16000;
    assert_eq!(owner_port(&tc, s), c);
    let keys = write_keys(&tc, c, s, "claimed", 4, &mut expected);
    let sl = s.to_string();
    assert_ok(
        tc.redis_cli(c, &["CLUSTER", "DELSLOTS", &sl]),
        "DELSLOTS on C",
    );
    assert_ok(
        tc.redis_cli(a, &["CLUSTER", "DELSLOTS", &sl]),
        "DELSLOTS on A",
    );
    assert_ok(
        tc.redis_cli(a, &["CLUSTER", "ADDSLOTS", &sl]),
        "ADDSLOTS on A",
    );
    let out = fix_ok(
        &tc,
        &expected,
        &[format!("Slot {s} ("), format!("keys: {}: ", addr(c))],
    );
    let new_owner = owner_port(&tc, s);
    assert!(
        out.stdout
            .contains(&format!("[OK] slot {s} owned by {}", addr(new_owner))),
        "{out}"
    );
    assert_on(&tc, new_owner, &keys);
    assert_reads(&tc, &keys, &expected);
}

on_both_servers!(fix_settles_keys_elsewhere_uncovered_slots_and_conflicts);
fn fix_settles_keys_elsewhere_uncovered_slots_and_conflicts(server: Server) {
    let tc = TestCluster::with(server, |s| {
        s.masters = 3;
        s.replicas = 0;
        s.empty = 1;
        s.keys = 200;
    });
    let ports = tc.ports();
    let (a, b, e) = (ports[0], ports[1], ports[3]);
    let mut expected = snapshot(&tc);
    assert_eq!(expected.len(), 200);

    // 5. Keys of a slot on a master that does not own it (no markers anywhere).
    let tag = key_in_slot(600, "fx");
    let stray: Vec<String> = (1..=3).map(|i| format!("{{{tag}}}:stray:{i}")).collect();
    let pairs: Vec<(String, String)> = stray
        .iter()
        .map(|k| (k.clone(), format!("stray value of {k}")))
        .collect();
    plant(
        &tc,
        b,
        600,
        &pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
        a,
    );
    expected.extend(pairs.iter().cloned());
    let mine = write_keys(&tc, a, 600, "owned", 2, &mut expected);
    let out = fix_ok(
        &tc,
        &expected,
        &[
            "Slot 600 (keys on a master that does not own it)".into(),
            format!("{}: 3", addr(b)),
            format!("new owner: {}", addr(a)),
            format!(
                "MIGRATE every key of slot 600 from {} to {}",
                addr(b),
                addr(a)
            ),
        ],
    );
    assert!(out.stdout.contains("3 key(s) moved"), "{out}");
    assert_eq!(owner_port(&tc, 600), a);
    assert_on(&tc, a, &stray);
    assert_on(&tc, a, &mine);
    assert_reads(&tc, &stray, &expected);

    // 6. A slot nobody owns: DELSLOTS on every node.
    let delslots = |slots: &[u16]| {
        let words: Vec<String> = slots.iter().map(u16::to_string).collect();
        for &p in &tc.ports() {
            let mut args = vec!["CLUSTER", "DELSLOTS"];
            args.extend(words.iter().map(String::as_str));
            let reply = tc.redis_cli(p, &args);
            // A node that already sees no owner says so; that is fine.
            assert!(
                reply.trim() == "OK" || reply.contains("already unassigned"),
                "DELSLOTS {slots:?} on {p}: {reply}"
            );
        }
    };
    // Keys on one node.
    let keys = write_keys(&tc, a, 700, "nobody", 4, &mut expected);
    delslots(&[700]);
    fix_ok(
        &tc,
        &expected,
        &[
            "Slot 700 (uncovered".into(),
            "owner: none".into(),
            format!("new owner: {}, because owned by no master", addr(a)),
            format!("make {} the owner of slot 700", addr(a)),
        ],
    );
    assert_eq!(owner_port(&tc, 700), a);
    assert_on(&tc, a, &keys);
    assert_reads(&tc, &keys, &expected);

    // Keys on several nodes: the one with most keys gets the slot and the others'.
    let keys = write_keys(&tc, a, 701, "nobody-a", 4, &mut expected);
    let tag = key_in_slot(701, "fx");
    let on_b: Vec<(String, String)> = (1..=2)
        .map(|i| (format!("{{{tag}}}:nobody-b:{i}"), format!("b-value-{i}")))
        .collect();
    plant(
        &tc,
        b,
        701,
        &on_b
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
        a,
    );
    expected.extend(on_b.iter().cloned());
    delslots(&[701]);
    fix_ok(
        &tc,
        &expected,
        &[
            "Slot 701 (uncovered".into(),
            format!("holds most of its keys ({})", keys_in(&tc, a, 701).len()),
            format!(
                "MIGRATE every key of slot 701 from {} to {}",
                addr(b),
                addr(a)
            ),
        ],
    );
    assert_eq!(owner_port(&tc, 701), a);
    let all: Vec<String> = keys
        .iter()
        .cloned()
        .chain(on_b.iter().map(|(k, _)| k.clone()))
        .collect();
    assert_on(&tc, a, &all);
    assert_reads(&tc, &all, &expected);

    // No keys anywhere: the master with the fewest slots gets it.
    let s = empty_slot(&tc, 702);
    delslots(&[s]);
    fix_ok(
        &tc,
        &expected,
        &[
            format!("Slot {s} (uncovered)"),
            "keys: none".into(),
            format!("new owner: {}", addr(e)),
            "has the fewest slots (0)".into(),
        ],
    );
    assert_eq!(owner_port(&tc, s), e);

    // Several slots uncovered at once (the whole cluster is down until each is
    // covered): keys on A, keys only on B (a non-owner), and none.
    let keys_a = write_keys(&tc, a, 710, "down-a", 3, &mut expected);
    let tag = key_in_slot(711, "fx");
    let keys_b: Vec<(String, String)> = (1..=3)
        .map(|i| (format!("{{{tag}}}:down-b:{i}"), format!("down-b-{i}")))
        .collect();
    plant(
        &tc,
        b,
        711,
        &keys_b
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect::<Vec<_>>(),
        a,
    );
    expected.extend(keys_b.iter().cloned());
    let s3 = empty_slot(&tc, 712);
    assert!(keys_in(&tc, a, 711).is_empty(), "711 has keys on B only");
    delslots(&[710, 711, s3]);
    fix_ok(
        &tc,
        &expected,
        &[
            ">>> 3 slot(s) to fix.".into(),
            format!("[OK] slot 710 owned by {}", addr(a)),
            format!("[OK] slot 711 owned by {}", addr(b)),
            format!("[OK] slot {s3} owned by "),
        ],
    );
    assert_on(&tc, a, &keys_a);
    let kb: Vec<String> = keys_b.iter().map(|(k, _)| k.clone()).collect();
    assert_on(&tc, b, &kb);
    assert_reads(&tc, &kb, &expected);

    // 7. The same key on both sides of a migration with equal values (a MIGRATE that
    // timed out after the target restored the key leaves this): settled silently.
    let keys = write_keys(&tc, a, 800, "same", 3, &mut expected);
    open_slot(&tc, 800, a, b);
    let same = expected[&keys[0]].clone();
    plant(&tc, b, 800, &[(keys[0].as_str(), same.as_str())], a);
    assert_eq!(tc.total_keys(), expected.len() as u64 + 1);
    let out = fix_ok(
        &tc,
        &expected,
        &[
            "Slot 800 (open)".into(),
            format!("[OK] slot 800 owned by {}", addr(b)),
        ],
    );
    assert!(!out.stdout.contains("different values"), "{out}");
    assert_on(&tc, b, &keys);
    assert_reads(&tc, &keys, &expected);

    // Different values: fix stops, names the key and both nodes, changes nothing.
    let keys = write_keys(&tc, a, 801, "differ", 3, &mut expected);
    open_slot(&tc, 801, a, b);
    let same = expected[&keys[0]].clone();
    plant(
        &tc,
        b,
        801,
        &[
            (keys[0].as_str(), same.as_str()),
            (keys[1].as_str(), "the copy on B"),
        ],
        a,
    );
    let (views_before, keys_before) = (views(&tc), key_sets(&tc));
    let out = fix(&tc, &[]);
    assert_eq!(out.code, 1, "{out}");
    assert_says(
        &out,
        &[
            "[ERR] 1 key(s) exist on both sides of a move with different values".into(),
            format!("{}: on {} and on {}", keys[1], addr(a), addr(b)),
            "Nothing was changed".into(),
            "--replace".into(),
        ],
    );
    assert!(!out.stdout.contains(&format!("{}: on", keys[0])), "{out}");
    assert_eq!(views(&tc), views_before, "slot state unchanged");
    assert_eq!(key_sets(&tc), keys_before, "keys unchanged");
    assert_eq!(
        pipe(b, &[cmd(&["ASKING"]), cmd(&["GET", &keys[1]])])[1],
        "the copy on B"
    );

    // --replace: the copy from the node the key moves from (A) wins, and is named.
    let out = fix(&tc, &["--replace"]);
    assert_eq!(out.code, 0, "{out}");
    assert_says(
        &out,
        &[
            RULE.into(),
            format!("overwritten on {}: {}", addr(b), keys[1]),
            format!("[OK] slot 801 owned by {}", addr(b)),
        ],
    );
    assert!(
        !out.stdout
            .contains(&format!("overwritten on {}: {}", addr(b), keys[0])),
        "{out}"
    );
    assert_settled(&tc, &expected);
    assert_on(&tc, b, &keys);
    assert_reads(&tc, &keys, &expected);
    assert_eq!(expected[&keys[1]], "differ-value-2");
}

on_both_servers!(fix_refuses_with_a_master_down_unless_forced);
fn fix_refuses_with_a_master_down_unless_forced(server: Server) {
    let tc = TestCluster::with(server, |s| {
        s.masters = 3;
        s.replicas = 0;
        s.empty = 1;
        s.keys = 200;
    });
    let ports = tc.ports();
    let (a, e) = (ports[0], ports[3]);
    let mut expected = snapshot(&tc);
    let e_id = node_id(&tc, e);

    // 8. Two slots open toward the empty master, which then stops.
    let k1 = write_keys(&tc, a, 900, "down", 3, &mut expected);
    let k2 = write_keys(&tc, a, 901, "down", 2, &mut expected);
    open_slot(&tc, 900, a, e);
    open_slot(&tc, 901, a, e);
    tc.stop_node(e);
    let live = |tc: &TestCluster| {
        let mut v = views(tc);
        v.remove(&e);
        v
    };
    let (views_before, keys_before) = (live(&tc), key_sets(&tc));

    let out = fix(&tc, &[]);
    assert_eq!(out.code, 1, "{out}");
    assert_says(
        &out,
        &[
            RULE.into(),
            "Slot 900 (open)".into(),
            "Slot 901 (open)".into(),
            format!("unreachable or failing: {}", addr(e)),
            format!(
                "[REFUSED] slot 900 involves {}, which is unreachable or failing",
                addr(e)
            ),
            "--force".into(),
            "Nothing was changed".into(),
        ],
    );
    assert_eq!(live(&tc), views_before, "nothing changed");
    assert_eq!(key_sets(&tc), keys_before, "no key moved");
    assert_eq!(myself(&tc, a).migrating.get(&900), Some(&e_id));

    // --force at once, before the others even mark it failing: settled with the
    // reachable masters (A keeps both slots), the stopped node left out.
    let out = fix(&tc, &["--force"]);
    assert_says(
        &out,
        &[
            format!("[OK] slot 900 owned by {}", addr(a)),
            format!("[OK] slot 901 owned by {}", addr(a)),
            format!("on every reachable master, owner first (not {})", addr(e)),
        ],
    );
    // The cluster still has a master down: not healthy, so exit 1.
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stdout.contains("still not healthy"), "{out}");
    let me = myself(&tc, a);
    assert!(me.migrating.is_empty(), "{me:?}");
    assert!(me.owns(900) && me.owns(901));
    assert_same_keys(&expected, &snapshot(&tc));
    assert_on(&tc, a, &k1);
    assert_on(&tc, a, &k2);

    // Once the others mark it failed, a slot opened toward it is refused the same way.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !myself_view_flags(&tc, a, &e_id).contains(&"fail".to_string()) {
        assert!(Instant::now() < deadline, "{e} never marked failed");
        std::thread::sleep(Duration::from_millis(250));
    }
    let k3 = write_keys(&tc, a, 902, "failed", 2, &mut expected);
    setslot(&tc, a, 902, &["MIGRATING", &e_id]);
    let out = fix(&tc, &[]);
    assert_eq!(out.code, 1, "{out}");
    assert_says(
        &out,
        &[
            format!("[REFUSED] slot 902 involves {}", addr(e)),
            "Nothing was changed".into(),
        ],
    );
    assert_eq!(myself(&tc, a).migrating.get(&902), Some(&e_id));
    let out = fix(&tc, &["--force"]);
    assert_says(&out, &[format!("[OK] slot 902 owned by {}", addr(a))]);
    assert!(myself(&tc, a).migrating.is_empty());
    assert_on(&tc, a, &k3);

    // Nothing is open any more; fix says the rest is not its business...
    let out = fix(&tc, &[]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stdout.contains("fix does not repair failed nodes"),
        "{out}"
    );
    // ... and once the operator forgets the dead master, the cluster is clean.
    for &p in &ports[..3] {
        assert_ok(tc.redis_cli(p, &["CLUSTER", "FORGET", &e_id]), "FORGET");
    }
    assert_settled(&tc, &expected);
}

/// The flags `port` gives node `id` in its CLUSTER NODES.
fn myself_view_flags(tc: &TestCluster, port: u16, id: &str) -> Vec<String> {
    tc.states()
        .into_iter()
        .find(|(a, _)| port_of(a) == port)
        .and_then(|(_, s)| s.nodes.into_iter().find(|n| n.id == id))
        .map(|n| n.flags)
        .unwrap_or_default()
}
