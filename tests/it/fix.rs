//! `slotsmith fix` on real clusters, one case of "What fix must handle" at a time:
//! each broken state is built with raw redis-cli commands (SETSLOT, MIGRATE, ASKING +
//! SET, DELSLOTS, ADDSLOTS), every key and value is recorded first, and after the fix
//! we check what an operator checks: the exit code, what the screen names, that
//! `redis-cli --cluster check` is clean, that every key is there once with its old
//! value on the master that owns it, and that a second fix has nothing to do.
//!
//! Each case is a row of a table ([`Scenario`]: how the cluster is broken, the fix
//! flags, what the screen must say, the exit code and the state it must end in), and
//! [`run_table`] runs a table's rows in order on one cluster. Three clusters for the
//! whole module (the machine is small): one with replicas for the open-slot cases and
//! disagreements, one without for ownership, uncovered slots and conflicting keys,
//! and one whose empty master is stopped.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use slotsmith::cluster::slot::{key_in_slot, slot_of};
use slotsmith::cluster::NodeInfo;
use slotsmith::lab::Fault;

use crate::support::{port_of, ss, Output, Server, TestCluster};

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

/// `slotsmith fix -y EXTRA` on the cluster.
fn fix(tc: &TestCluster, extra: &[&str]) -> Output {
    ss(tc).args(["fix", "-y"]).args(extra).run()
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

/// `DELSLOTS` on every node: nobody owns `slots` any more.
fn delslots(tc: &TestCluster, slots: &[u16]) {
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
}

/// What a table's rows share: the cluster, every key it should hold, and what the
/// `{NAME}`s in the rows' words stand for.
struct Ctx<'a> {
    tc: &'a TestCluster,
    server: Server,
    /// Every key of the cluster and its value, as the rows wrote them.
    expected: Keys,
    /// `{A}`, `{B}`...: node addresses; the rest, what a row's `breaks` named.
    vars: BTreeMap<&'static str, String>,
    /// The keys the last `breaks` returned.
    keys: Vec<String>,
}

impl<'a> Ctx<'a> {
    /// `nodes`: the names the rows use for the nodes on these ports.
    fn new(tc: &'a TestCluster, server: Server, nodes: &[(&'static str, u16)]) -> Ctx<'a> {
        let expected = snapshot(tc);
        let vars = nodes.iter().map(|&(n, p)| (n, addr(p))).collect();
        Ctx {
            tc,
            server,
            expected,
            vars,
            keys: Vec::new(),
        }
    }

    fn set(&mut self, name: &'static str, value: impl ToString) {
        self.vars.insert(name, value.to_string());
    }

    fn var(&self, name: &str) -> &str {
        self.vars
            .get(name)
            .unwrap_or_else(|| panic!("{{{name}}} is not set"))
    }

    /// The port of the node `name` (`"A"`).
    fn port(&self, name: &str) -> u16 {
        port_of(self.var(name))
    }

    /// `text` with each `{NAME}` replaced (a name not set is a mistake in the table).
    fn fill(&self, text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(i) = rest.find('{') {
            out.push_str(&rest[..i]);
            let end = rest[i..].find('}').expect("a closing brace") + i;
            out.push_str(self.var(&rest[i + 1..end]));
            rest = &rest[end + 1..];
        }
        out.push_str(rest);
        out
    }

    /// `write_keys` on the node `name`.
    fn write(&mut self, name: &str, slot: u16, what: &str, n: usize) -> Vec<String> {
        let port = self.port(name);
        write_keys(self.tc, port, slot, what, n, &mut self.expected)
    }

    /// `n` keys of `slot` written on A, the slot opened from A to B and every key
    /// migrated to B: the markers are left, A holds none of the keys.
    fn all_moved_to_b(&mut self, slot: u16, what: &str, n: usize) -> Vec<String> {
        self.write("A", slot, what, n);
        let (a, b) = (self.port("A"), self.port("B"));
        open_slot(self.tc, slot, a, b);
        let keys = keys_in(self.tc, a, slot);
        migrate(self.tc, a, b, &keys);
        assert!(keys_in(self.tc, a, slot).is_empty());
        keys
    }

    /// `plant` of `n` new keys (`{tag}:what:i`, value `what-i`) of `slot` on `name`,
    /// recorded as expected.
    fn plant_new(&mut self, name: &str, slot: u16, what: &str, n: usize) -> Vec<String> {
        let tag = key_in_slot(slot, "fx");
        let pairs: Vec<(String, String)> = (1..=n)
            .map(|i| (format!("{{{tag}}}:{what}:{i}"), format!("{what}-{i}")))
            .collect();
        let refs: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        plant(self.tc, self.port(name), slot, &refs, self.port("A"));
        self.expected.extend(pairs.iter().cloned());
        pairs.into_iter().map(|(k, _)| k).collect()
    }
}

/// How the cluster must be after a row's fix run.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum End {
    /// Nothing changed: every node's view and every master's keys are as before.
    Unchanged,
    /// The owner rule and `[OK] The cluster is healthy` printed, and [`End::Settled`].
    Fixed,
    /// `redis-cli --cluster check` is clean, every key is there once with its old value
    /// on the master that owns it, and a second fix has nothing to do.
    Settled,
    /// Every key is there once with its old value (the cluster is not healthy).
    KeysKept,
}

/// One broken state and one `fix -y` run on it: a row of a table run by [`run_table`].
struct Scenario {
    /// The case of "What fix must handle" (its number in DESIGN.md) and its variant.
    name: &'static str,
    /// Breaks the cluster with raw commands, records every key it writes in
    /// `expected`, sets what the row's words name, and returns keys that must end on
    /// the owner of their slot and read back through the cluster ([`as_left`]: the
    /// state the previous row left, and its keys).
    breaks: fn(&mut Ctx) -> Vec<String>,
    /// After `fix -y`.
    flags: &'static [&'static str],
    code: i32,
    /// On stdout, `{NAME}`s filled in ([`Ctx::fill`]).
    says: &'static [&'static str],
    /// Not on stdout.
    not_says: &'static [&'static str],
    end: End,
    /// Slots and their owner after the run (`"*"`: one master, which fix names in
    /// `[OK] slot S owned by`), `{NAME}`s filled in; every reachable node names it.
    owners: &'static [(&'static str, &'static str)],
    /// What else the row checks.
    also: Option<fn(&Ctx, &Output)>,
}

/// What most rows share: fixed, exit 0.
const ROW: Scenario = Scenario {
    name: "",
    breaks: as_left,
    flags: &[],
    code: 0,
    says: &[],
    not_says: &[],
    end: End::Fixed,
    owners: &[],
    also: None,
};

/// Breaks nothing: the cluster as the previous row left it, with its keys.
fn as_left(x: &mut Ctx) -> Vec<String> {
    x.keys.clone()
}

/// Each row in order: break, fix, then check the exit code, the words, the end state,
/// the owners and where the row's keys are.
fn run_table(x: &mut Ctx, table: &[Scenario]) {
    for row in table {
        eprintln!("scenario: {}", row.name);
        x.keys = (row.breaks)(x);
        let before = (row.end == End::Unchanged).then(|| (views(x.tc), key_sets(x.tc)));
        let out = fix(x.tc, row.flags);
        let name = row.name;
        assert_eq!(out.code, row.code, "{name}: exit code\n{out}");
        for w in row.says.iter().map(|w| x.fill(w)) {
            assert!(
                out.stdout.contains(&w),
                "{name}: {w:?} not on screen\n{out}"
            );
        }
        for w in row.not_says.iter().map(|w| x.fill(w)) {
            assert!(!out.stdout.contains(&w), "{name}: {w:?} on screen\n{out}");
        }
        match row.end {
            End::Unchanged => {
                let (views_before, keys_before) = before.expect("taken before the run");
                assert_eq!(views(x.tc), views_before, "{name}: slot state changed");
                assert_eq!(key_sets(x.tc), keys_before, "{name}: keys moved");
            }
            End::Fixed => {
                assert!(out.stdout.contains(RULE), "{name}: the owner rule\n{out}");
                assert!(
                    out.stdout.contains("[OK] The cluster is healthy"),
                    "{name}\n{out}"
                );
                assert_settled(x.tc, &x.expected);
            }
            End::Settled => assert_settled(x.tc, &x.expected),
            End::KeysKept => assert_same_keys(&x.expected, &snapshot(x.tc)),
        }
        for (slot, who) in row.owners {
            let slot: u16 = x.fill(slot).parse().expect("a slot number");
            let owner = owner_port(x.tc, slot);
            if *who == "*" {
                let named = format!("[OK] slot {slot} owned by {}", addr(owner));
                assert!(out.stdout.contains(&named), "{name}: {named:?}\n{out}");
            } else {
                assert_eq!(addr(owner), x.fill(who), "{name}: owner of {slot}");
            }
            // Every node, replicas included, names the same owner.
            let owner_id = node_id(x.tc, owner);
            for (a, state) in x.tc.states() {
                let seen: Vec<&str> = state
                    .nodes
                    .iter()
                    .filter(|n| n.owns(slot))
                    .map(|n| n.id.as_str())
                    .collect();
                assert_eq!(
                    seen,
                    vec![owner_id.as_str()],
                    "{name}: owner of {slot} seen by {a}"
                );
            }
        }
        if row.end != End::Unchanged {
            let mut by_owner: BTreeMap<u16, Vec<String>> = BTreeMap::new();
            for k in &x.keys {
                let owner = owner_port(x.tc, slot_of(k.as_bytes()));
                by_owner.entry(owner).or_default().push(k.clone());
            }
            for (port, keys) in &by_owner {
                assert_on(x.tc, *port, keys);
            }
            assert_reads(x.tc, &x.keys, &x.expected);
        }
        if let Some(also) = row.also {
            also(x, &out);
        }
    }
}

/// The cases on a cluster with replicas: the open-slot cases and disagreements.
const WITH_REPLICAS: &[Scenario] = &[
    Scenario {
        name: "11. a healthy cluster: nothing to fix, nothing changed",
        says: &["Nothing to fix"],
        not_says: &["Owner rule"],
        end: End::Unchanged,
        also: Some(|x, _| assert_same_keys(&x.expected, &snapshot(x.tc))),
        ..ROW
    },
    Scenario {
        name: "10. the seed scenario: 5519 MIGRATING on its owner, IMPORTING on the \
               empty master, one key left behind",
        breaks: |x| {
            let src = owner_port(x.tc, 5519);
            x.set("src", addr(src));
            x.tc.lab()
                .break_fault(Fault::StuckSlot { slot: 5519 }, x.tc.handle())
                .expect("break stuck-slot");
            let seed_key = "user:loadtest_user_33:reservations".to_string();
            let tag = key_in_slot(5519, "lab");
            let keys: Vec<String> = std::iter::once(seed_key.clone())
                .chain((1..=3).map(|i| format!("{{{tag}}}:item:{i}")))
                .collect();
            for key in &keys {
                let value = format!("written by lab break stuck-slot ({key})");
                x.expected.insert(key.clone(), value);
            }
            assert_eq!(keys_in(x.tc, src, 5519), vec![seed_key]);
            assert_eq!(x.tc.total_keys(), x.expected.len() as u64);
            keys
        },
        says: &[
            "Slot 5519 (open)",
            "MIGRATING on {src} -> {E}",
            "IMPORTING on {E} <- {src}",
            "new owner: {E}",
            "[OK] slot 5519 owned by {E}",
        ],
        owners: &[("5519", "{E}")],
        ..ROW
    },
    Scenario {
        name: "1. migrating on A, importing on B: keys only on A",
        breaks: |x| {
            let keys = x.write("A", 100, "only-a", 3);
            open_slot(x.tc, 100, x.port("A"), x.port("B"));
            keys
        },
        says: &[
            "Slot 100 (open)",
            "MIGRATING on {A} -> {B}",
            "IMPORTING on {B} <- {A}",
            "new owner: {B}, because finish the migration",
        ],
        owners: &[("100", "{B}")],
        ..ROW
    },
    Scenario {
        name: "1. migrating on A, importing on B: keys only on B (all moved, markers left)",
        breaks: |x| {
            let keys = x.all_moved_to_b(101, "only-b", 3);
            x.set("n", keys.len());
            keys
        },
        says: &["Slot 101 (open)", "keys: {B}: {n}", "new owner: {B}"],
        owners: &[("101", "{B}")],
        ..ROW
    },
    Scenario {
        name: "1. a move stopped between the two claims: B owns the slot and every key, \
               A still MIGRATING to it (Redis keeps the marker, Valkey drops it)",
        breaks: |x| {
            let keys = x.all_moved_to_b(103, "claimed", 3);
            let (a, b) = (x.port("A"), x.port("B"));
            setslot(x.tc, b, 103, &["NODE", &node_id(x.tc, b)]);
            // A learns B's claim by gossip.
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while myself(x.tc, a).owns(103) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "A never learnt B's claim"
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            keys
        },
        end: End::Settled,
        owners: &[("103", "{B}")],
        also: Some(|x, out| {
            if x.server == Server::Redis {
                for w in [
                    "MIGRATING on {A} -> {B}",
                    "finish the move of slot 103 from {A} to {B}, which holds all its keys",
                    "[OK] slot 103 owned by {B}",
                ] {
                    let w = x.fill(w);
                    assert!(out.stdout.contains(&w), "{w:?} not on screen\n{out}");
                }
            } else {
                assert!(out.stdout.contains("Nothing to fix"), "{out}");
            }
        }),
        ..ROW
    },
    Scenario {
        name: "1. migrating on A, importing on B: keys on both sides",
        breaks: |x| {
            let keys = x.write("A", 102, "split", 4);
            let (a, b) = (x.port("A"), x.port("B"));
            open_slot(x.tc, 102, a, b);
            migrate(x.tc, a, b, &keys[..2]);
            keys
        },
        says: &[
            "Slot 102 (open)",
            "new owner: {B}",
            "[OK] slot 102 owned by {B}",
        ],
        owners: &[("102", "{B}")],
        ..ROW
    },
    Scenario {
        name: "2. importing with no migrating: the owner keeps the slot",
        breaks: |x| {
            let keys = x.write("A", 200, "imp", 3);
            let a_id = node_id(x.tc, x.port("A"));
            setslot(x.tc, x.port("C"), 200, &["IMPORTING", &a_id]);
            keys
        },
        says: &[
            "Slot 200 (open)",
            "IMPORTING on {C} <- {A}",
            "new owner: {A}",
            "CLUSTER SETSLOT 200 STABLE on {C}",
        ],
        owners: &[("200", "{A}")],
        ..ROW
    },
    Scenario {
        name: "2. importing with no migrating, some keys already on the importing node: \
               they come back to the owner",
        breaks: |x| {
            let keys = x.write("A", 201, "imp-moved", 4);
            let (a, c) = (x.port("A"), x.port("C"));
            open_slot(x.tc, 201, a, c);
            migrate(x.tc, a, c, &keys[..2]);
            setslot(x.tc, a, 201, &["STABLE"]);
            keys
        },
        says: &[
            "Slot 201 (open)",
            "{C}: 2",
            "new owner: {A}",
            "MIGRATE every key of slot 201 from {C} to {A}",
        ],
        owners: &[("201", "{A}")],
        ..ROW
    },
    Scenario {
        name: "3. migrating with no importing, no key moved: rolled back to A",
        breaks: |x| {
            let keys = x.write("A", 300, "mig", 3);
            let b_id = node_id(x.tc, x.port("B"));
            setslot(x.tc, x.port("A"), 300, &["MIGRATING", &b_id]);
            keys
        },
        says: &[
            "Slot 300 (open)",
            "MIGRATING on {A} -> {B}",
            "roll back to {A}",
            "CLUSTER SETSLOT 300 STABLE on {A}",
        ],
        owners: &[("300", "{A}")],
        ..ROW
    },
    Scenario {
        name: "3. migrating with no importing, B already holds some keys: finished to B",
        breaks: |x| {
            let keys = x.write("A", 301, "mig-moved", 3);
            let (a, b) = (x.port("A"), x.port("B"));
            open_slot(x.tc, 301, a, b);
            migrate(x.tc, a, b, &keys[..1]);
            setslot(x.tc, b, 301, &["STABLE"]);
            keys
        },
        says: &[
            "Slot 301 (open, keys on a master that does not own it)",
            "{B} already holds keys of the slot",
            "new owner: {B}",
        ],
        owners: &[("301", "{B}")],
        ..ROW
    },
    Scenario {
        name: "4. one slot importing on several nodes, keys on all three",
        breaks: |x| {
            let keys = x.write("A", 400, "multi", 6);
            let (a, b, c) = (x.port("A"), x.port("B"), x.port("C"));
            open_slot(x.tc, 400, a, b);
            setslot(x.tc, c, 400, &["IMPORTING", &node_id(x.tc, a)]);
            migrate(x.tc, a, b, &keys[..2]);
            migrate(x.tc, a, c, &keys[2..4]);
            keys
        },
        says: &[
            "Slot 400 (open)",
            "IMPORTING on {B} <- {A}",
            "IMPORTING on {C} <- {A}",
            "new owner: {B}",
            "MIGRATE every key of slot 400 from {C} to {B}",
            "CLUSTER SETSLOT 400 STABLE on {C}",
        ],
        owners: &[("400", "{B}")],
        ..ROW
    },
    Scenario {
        name: "9. nodes that disagree about the owner: A hands an empty slot to B in its \
               own view only (A says B, everyone else says A)",
        breaks: |x| {
            let (a, b) = (x.port("A"), x.port("B"));
            let s = empty_slot(x.tc, 500);
            assert_eq!(owner_port(x.tc, s), a);
            setslot(x.tc, a, s, &["NODE", &node_id(x.tc, b)]);
            x.set("s", s);
            // Valkey replicates SETSLOT to the master's replica (R).
            let a_says = if x.server.atomic() {
                "{A}, {R} say {B} owns it"
            } else {
                "{A} says {B} owns it"
            };
            x.set("a_says", x.fill(a_says));
            Vec::new()
        },
        says: &[
            "Slot {s} (uncovered, disagreement)",
            "{a_says}",
            "say {A} owns it",
        ],
        owners: &[("{s}", "*")],
        ..ROW
    },
    Scenario {
        name: "9. nodes that disagree about the owner: DELSLOTS on the owner, DELSLOTS + \
               ADDSLOTS on another master whose claim has a lower epoch than the old \
               owner's, so some nodes keep the old owner",
        breaks: |x| {
            let (a, c) = (x.port("A"), x.port("C"));
            let s = 16000;
            assert_eq!(owner_port(x.tc, s), c);
            x.set("s", s);
            let keys = x.write("C", s, "claimed", 4);
            let sl = s.to_string();
            assert_ok(
                x.tc.redis_cli(c, &["CLUSTER", "DELSLOTS", &sl]),
                "DELSLOTS on C",
            );
            assert_ok(
                x.tc.redis_cli(a, &["CLUSTER", "DELSLOTS", &sl]),
                "DELSLOTS on A",
            );
            assert_ok(
                x.tc.redis_cli(a, &["CLUSTER", "ADDSLOTS", &sl]),
                "ADDSLOTS on A",
            );
            keys
        },
        says: &["Slot {s} (", "keys: {C}: "],
        owners: &[("{s}", "*")],
        ..ROW
    },
];

on_both_servers!(fix_closes_open_slots_on_a_cluster_with_replicas);
fn fix_closes_open_slots_on_a_cluster_with_replicas(server: Server) {
    let tc = TestCluster::start(server, 200);
    let p = tc.ports();
    // Masters A, B, C; R is A's replica; E the empty master.
    let nodes = [
        ("A", p[0]),
        ("B", p[1]),
        ("C", p[2]),
        ("R", p[3]),
        ("E", p[6]),
    ];
    let mut x = Ctx::new(&tc, server, &nodes);
    assert_eq!(x.expected.len(), 200);
    run_table(&mut x, WITH_REPLICAS);
}

/// The cases on a cluster without replicas: ownership, uncovered slots, conflicting keys.
const NO_REPLICAS: &[Scenario] = &[
    Scenario {
        name: "5. keys of a slot on a master that does not own it (no markers anywhere)",
        breaks: |x| {
            let mut keys = x.plant_new("B", 600, "stray", 3);
            keys.extend(x.write("A", 600, "owned", 2));
            keys
        },
        says: &[
            "Slot 600 (keys on a master that does not own it)",
            "{B}: 3",
            "new owner: {A}",
            "MIGRATE every key of slot 600 from {B} to {A}",
            "3 key(s) moved",
        ],
        owners: &[("600", "{A}")],
        ..ROW
    },
    Scenario {
        name: "6. a slot nobody owns (DELSLOTS on every node), keys on one node",
        breaks: |x| {
            let keys = x.write("A", 700, "nobody", 4);
            delslots(x.tc, &[700]);
            keys
        },
        says: &[
            "Slot 700 (uncovered",
            "owner: none",
            "new owner: {A}, because owned by no master",
            "make {A} the owner of slot 700",
        ],
        owners: &[("700", "{A}")],
        ..ROW
    },
    Scenario {
        name: "6. a slot nobody owns, keys on several nodes: the one with most keys gets \
               the slot and the others'",
        breaks: |x| {
            let mut keys = x.write("A", 701, "nobody-a", 4);
            keys.extend(x.plant_new("B", 701, "nobody-b", 2));
            delslots(x.tc, &[701]);
            x.set("n", keys_in(x.tc, x.port("A"), 701).len());
            keys
        },
        says: &[
            "Slot 701 (uncovered",
            "holds most of its keys ({n})",
            "MIGRATE every key of slot 701 from {B} to {A}",
        ],
        owners: &[("701", "{A}")],
        ..ROW
    },
    Scenario {
        name: "6. a slot nobody owns, no keys anywhere: the master with the fewest slots \
               gets it",
        breaks: |x| {
            let s = empty_slot(x.tc, 702);
            delslots(x.tc, &[s]);
            x.set("s", s);
            Vec::new()
        },
        says: &[
            "Slot {s} (uncovered)",
            "keys: none",
            "new owner: {E}",
            "has the fewest slots (0)",
        ],
        owners: &[("{s}", "{E}")],
        ..ROW
    },
    Scenario {
        name: "6. several slots uncovered at once (the whole cluster is down until each \
               is covered): keys on A, keys only on B (a non-owner), and none",
        breaks: |x| {
            let mut keys = x.write("A", 710, "down-a", 3);
            keys.extend(x.plant_new("B", 711, "down-b", 3));
            let s3 = empty_slot(x.tc, 712);
            x.set("s3", s3);
            assert!(
                keys_in(x.tc, x.port("A"), 711).is_empty(),
                "711 has keys on B only"
            );
            delslots(x.tc, &[710, 711, s3]);
            keys
        },
        says: &[
            ">>> 3 slot(s) to fix.",
            "[OK] slot 710 owned by {A}",
            "[OK] slot 711 owned by {B}",
            "[OK] slot {s3} owned by ",
        ],
        owners: &[("710", "{A}"), ("711", "{B}"), ("{s3}", "*")],
        ..ROW
    },
    Scenario {
        name: "7. the same key on both sides of a migration with equal values (a MIGRATE \
               that timed out after the target restored the key): settled silently",
        breaks: |x| {
            let keys = x.write("A", 800, "same", 3);
            let (a, b) = (x.port("A"), x.port("B"));
            open_slot(x.tc, 800, a, b);
            let same = x.expected[&keys[0]].clone();
            plant(x.tc, b, 800, &[(keys[0].as_str(), same.as_str())], a);
            assert_eq!(x.tc.total_keys(), x.expected.len() as u64 + 1);
            keys
        },
        says: &["Slot 800 (open)", "[OK] slot 800 owned by {B}"],
        not_says: &["different values"],
        owners: &[("800", "{B}")],
        ..ROW
    },
    Scenario {
        name: "7. the same key on both sides with different values: fix stops, names the \
               key and both nodes, changes nothing",
        breaks: |x| {
            let keys = x.write("A", 801, "differ", 3);
            let (a, b) = (x.port("A"), x.port("B"));
            open_slot(x.tc, 801, a, b);
            let same = x.expected[&keys[0]].clone();
            plant(
                x.tc,
                b,
                801,
                &[
                    (keys[0].as_str(), same.as_str()),
                    (keys[1].as_str(), "the copy on B"),
                ],
                a,
            );
            x.set("k0", &keys[0]);
            x.set("k1", &keys[1]);
            keys
        },
        code: 1,
        says: &[
            "[ERR] 1 key(s) exist on both sides of a move with different values",
            "{k1}: on {A} and on {B}",
            "Nothing was changed",
            "--replace",
        ],
        not_says: &["{k0}: on"],
        end: End::Unchanged,
        also: Some(|x, _| {
            let k1 = x.var("k1");
            assert_eq!(
                pipe(x.port("B"), &[cmd(&["ASKING"]), cmd(&["GET", k1])])[1],
                "the copy on B"
            );
        }),
        ..ROW
    },
    Scenario {
        name: "7. different values, --replace: the copy from the node the key moves from \
               (A) wins, and is named",
        flags: &["--replace"],
        says: &[
            RULE,
            "overwritten on {B}: {k1}",
            "[OK] slot 801 owned by {B}",
        ],
        not_says: &["overwritten on {B}: {k0}"],
        end: End::Settled,
        owners: &[("801", "{B}")],
        also: Some(|x, _| assert_eq!(x.expected[x.var("k1")], "differ-value-2")),
        ..ROW
    },
];

on_both_servers!(fix_settles_keys_elsewhere_uncovered_slots_and_conflicts);
fn fix_settles_keys_elsewhere_uncovered_slots_and_conflicts(server: Server) {
    let tc = TestCluster::with(server, |s| {
        s.masters = 3;
        s.replicas = 0;
        s.empty = 1;
        s.keys = 200;
    });
    let p = tc.ports();
    let nodes = [("A", p[0]), ("B", p[1]), ("C", p[2]), ("E", p[3])];
    let mut x = Ctx::new(&tc, server, &nodes);
    assert_eq!(x.expected.len(), 200);
    run_table(&mut x, NO_REPLICAS);
}

/// The node (id) that A, in its own view, is migrating `slot` to.
fn migrating(x: &Ctx, slot: u16) -> Option<String> {
    myself(x.tc, x.port("A")).migrating.get(&slot).cloned()
}

/// The cases with a master down (E, the empty master, stopped).
const MASTER_DOWN: &[Scenario] = &[
    Scenario {
        name: "8. two slots open toward the empty master, which then stops: refused",
        breaks: |x| {
            let mut keys = x.write("A", 900, "down", 3);
            keys.extend(x.write("A", 901, "down", 2));
            let (a, e) = (x.port("A"), x.port("E"));
            open_slot(x.tc, 900, a, e);
            open_slot(x.tc, 901, a, e);
            x.tc.stop_node(e);
            keys
        },
        code: 1,
        says: &[
            RULE,
            "Slot 900 (open)",
            "Slot 901 (open)",
            "unreachable or failing: {E}",
            "[REFUSED] slot 900 involves {E}, which is unreachable or failing",
            "--force",
            "Nothing was changed",
        ],
        end: End::Unchanged,
        also: Some(|x, _| assert_eq!(migrating(x, 900).as_deref(), Some(x.var("e_id")))),
        ..ROW
    },
    Scenario {
        name: "8. --force at once, before the others even mark it failing: settled with \
               the reachable masters (A keeps both slots), the stopped node left out; \
               a master is still down, so exit 1",
        flags: &["--force"],
        code: 1,
        says: &[
            "[OK] slot 900 owned by {A}",
            "[OK] slot 901 owned by {A}",
            "on every reachable master, owner first (not {E})",
            "still not healthy",
        ],
        end: End::KeysKept,
        owners: &[("900", "{A}"), ("901", "{A}")],
        also: Some(|x, _| {
            let me = myself(x.tc, x.port("A"));
            assert!(me.migrating.is_empty(), "{me:?}");
        }),
        ..ROW
    },
    Scenario {
        name: "8. once the others mark it failed, a slot opened toward it is refused the \
               same way",
        breaks: |x| {
            let (a, e) = (x.port("A"), x.port("E"));
            let e_id = x.var("e_id").to_string();
            let deadline = Instant::now() + Duration::from_secs(30);
            while !myself_view_flags(x.tc, a, &e_id).contains(&"fail".to_string()) {
                assert!(Instant::now() < deadline, "{e} never marked failed");
                std::thread::sleep(Duration::from_millis(250));
            }
            let keys = x.write("A", 902, "failed", 2);
            setslot(x.tc, a, 902, &["MIGRATING", &e_id]);
            keys
        },
        code: 1,
        says: &["[REFUSED] slot 902 involves {E}", "Nothing was changed"],
        end: End::Unchanged,
        also: Some(|x, _| assert_eq!(migrating(x, 902).as_deref(), Some(x.var("e_id")))),
        ..ROW
    },
    Scenario {
        name: "8. ... and settled with --force",
        flags: &["--force"],
        code: 1,
        says: &["[OK] slot 902 owned by {A}"],
        end: End::KeysKept,
        owners: &[("902", "{A}")],
        also: Some(|x, _| assert!(myself(x.tc, x.port("A")).migrating.is_empty())),
        ..ROW
    },
    Scenario {
        name: "8. nothing is open any more: fix says the rest is not its business",
        code: 1,
        says: &["fix does not repair failed nodes"],
        end: End::KeysKept,
        ..ROW
    },
    Scenario {
        name: "8. once the operator forgets the dead master, the cluster is clean",
        breaks: |x| {
            let e_id = x.var("e_id").to_string();
            for m in ["A", "B", "C"] {
                let reply = x.tc.redis_cli(x.port(m), &["CLUSTER", "FORGET", &e_id]);
                assert_ok(reply, "FORGET");
            }
            x.keys.clone()
        },
        says: &["Nothing to fix"],
        end: End::Settled,
        ..ROW
    },
];

on_both_servers!(fix_refuses_with_a_master_down_unless_forced);
fn fix_refuses_with_a_master_down_unless_forced(server: Server) {
    let tc = TestCluster::with(server, |s| {
        s.masters = 3;
        s.replicas = 0;
        s.empty = 1;
        s.keys = 200;
    });
    let p = tc.ports();
    let nodes = [("A", p[0]), ("B", p[1]), ("C", p[2]), ("E", p[3])];
    let mut x = Ctx::new(&tc, server, &nodes);
    let e_id = node_id(&tc, p[3]);
    x.set("e_id", e_id);
    run_table(&mut x, MASTER_DOWN);
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
