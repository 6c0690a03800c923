//! The runbooks in `examples/`, run as a team runs them (`slotsmith run
//! examples/NAME.rhai ...`, or `slotsmith --scripts examples NAME ...` as a command),
//! through the command line each one declares, live and in a dry run, against lab
//! clusters; a user script importing a bundled module; and `api --definitions`.

use serde_json::Value;
use slotsmith::cluster::topology::parse_cluster_nodes;
use slotsmith::lab::{Fault, LabRole};

use crate::support::{fingerprint, own_line, port_of, run_env, Output, Server, TestCluster};

/// Every runbook in `examples/`; each one is run below.
const EXAMPLES: &[&str] = &[
    "drain-node",
    // Run live and in a dry run by owner_override.rs; as a command below.
    "fix-owner-override",
    "key-report",
    "move-hot-slot",
    "replica-audit",
    "wait-for-agreement",
];

fn example(name: &str) -> String {
    format!("{}/examples/{name}.rhai", env!("CARGO_MANIFEST_DIR"))
}

/// The directory of the examples, for `--scripts`: each one is a command there.
const EXAMPLES_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");

/// A usage error as the operator sees it: exit 2, one sentence on stderr that says
/// `words` and names `option`, no script file or line (the host refused the value
/// before any of the script ran), nothing on stdout.
fn usage_error(out: &Output, option: &str, words: &str) {
    assert_eq!(out.code, 2, "{out}");
    let first = out.stderr.lines().next().unwrap_or_default();
    assert!(first.contains(option), "does not name {option}: {out}");
    assert!(first.contains(words), "does not say {words:?}: {out}");
    assert!(!out.stderr.contains(".rhai"), "names a script file: {out}");
    assert!(out.stdout.is_empty(), "{out}");
}

/// `slotsmith` pointed at one lab cluster, with its own user and state directories
/// (no ejected script of the machine's user shadows a bundled one; journals stay here).
struct Slotsmith {
    flags: Vec<String>,
    home: tempfile::TempDir,
}

impl Slotsmith {
    fn new(tc: &TestCluster) -> Slotsmith {
        Slotsmith {
            flags: tc.flags(),
            home: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn run(&self, args: &[&str]) -> Output {
        let home = self.home.path().to_str().expect("utf-8 path");
        let mut all: Vec<&str> = self.flags.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        run_env(&all, &[("XDG_CONFIG_HOME", home), ("XDG_STATE_HOME", home)])
    }

    /// Run with `--json`, expecting `code`; the JSON document on stdout.
    fn json(&self, code: i32, args: &[&str]) -> Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        let out = self.run(&all);
        assert_eq!(out.code, code, "{out}");
        serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }

    /// A dry run with `--json`, expecting `code`: the `{dry_run, result, summary, commands}` document.
    fn dry(&self, code: i32, args: &[&str]) -> Value {
        let mut all = vec!["--dry-run"];
        all.extend_from_slice(args);
        let doc = self.json(code, &all);
        assert_eq!(doc["dry_run"], true, "{doc}");
        doc
    }
}

/// Slots held by each master, by address, from `check --json`.
fn slots_by_master(sm: &Slotsmith) -> std::collections::BTreeMap<String, u64> {
    let report = sm.json(0, &["check"]);
    report["masters"]
        .as_array()
        .expect("masters")
        .iter()
        .map(|m| {
            (
                m["addr"].as_str().expect("addr").to_string(),
                m["slots"].as_u64().expect("slots"),
            )
        })
        .collect()
}

fn addr(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

fn dbsize(tc: &TestCluster, port: u16) -> u64 {
    tc.redis_cli(port, &["DBSIZE"])
        .trim()
        .parse()
        .expect("DBSIZE is a number")
}

fn keys_in_slot(tc: &TestCluster, port: u16, slot: u16) -> u64 {
    tc.redis_cli(port, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()])
        .trim()
        .parse()
        .expect("COUNTKEYSINSLOT is a number")
}

#[test]
fn every_example_is_run_by_the_tests() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let mut found: Vec<String> = std::fs::read_dir(dir)
        .expect("examples/")
        .filter_map(|e| {
            let name = e.ok()?.file_name().to_string_lossy().to_string();
            Some(name.strip_suffix(".rhai")?.to_string())
        })
        .collect();
    found.sort();
    assert_eq!(found, EXAMPLES, "a runbook in examples/ has no test here");
}

/// On the script path, the examples are commands: listed under their own heading in
/// `--help` with the summary each declares, each with its own `--help` and checks.
#[test]
fn the_examples_are_commands_with_their_own_help() {
    let home = tempfile::tempdir().unwrap();
    let home = home.path().to_str().unwrap();
    let env = [("XDG_CONFIG_HOME", home), ("XDG_STATE_HOME", home)];
    let out = run_env(&["--scripts", EXAMPLES_DIR, "--help"], &env);
    assert_eq!(out.code, 0, "{out}");
    let (_, runbooks) = out
        .stdout
        .split_once("Runbooks")
        .unwrap_or_else(|| panic!("no Runbooks heading: {out}"));
    for (name, summary) in [
        (
            "drain-node",
            "Move every slot of a master to the other masters",
        ),
        ("fix-owner-override", "open slots given back to the master"),
        ("key-report", "Keys per master"),
        ("move-hot-slot", "Move one slot with its keys"),
        ("replica-audit", "survives losing any one machine"),
        ("wait-for-agreement", "Wait until every node agrees"),
    ] {
        let line = runbooks
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} is not listed under Runbooks: {out}"));
        assert!(line.contains(summary), "{line}");
    }
    let plain = run_env(&["--help"], &env);
    assert!(!plain.stdout.contains("drain-node"), "{plain}");

    let help = run_env(&["--scripts", EXAMPLES_DIR, "drain-node", "--help"], &env);
    assert_eq!(help.code, 0, "{help}");
    for want in [
        "Usage: slotsmith drain-node [OPTIONS] <NODE>",
        "--to <NODE[,NODE...]>",
        "--replicate-to <MASTER>",
        "--pipeline <N>",
        "--migrate-timeout <MS>",
        "The master to drain",
    ] {
        assert!(help.stdout.contains(want), "no {want:?}: {help}");
    }
    // Its own options come before the global ones.
    let own = help.stdout.find("--replicate-to").unwrap();
    let global = help.stdout.find("Global options").expect("global options");
    assert!(own < global, "{help}");
    let help = run_env(&["--scripts", EXAMPLES_DIR, "move-hot-slot", "-h"], &env);
    assert_eq!(help.code, 0, "{help}");
    assert!(
        help.stdout
            .contains("Usage: slotsmith move-hot-slot [OPTIONS] [SLOT]"),
        "{help}"
    );
    let help = run_env(
        &["--scripts", EXAMPLES_DIR, "wait-for-agreement", "-h"],
        &env,
    );
    assert!(help.stdout.contains("--max-wait <MS>"), "{help}");

    // Values the declaration refuses, without a cluster: nothing runs, nothing connects.
    for (args, option, words) in [
        (vec!["key-report", "--top", "0"], "--top", "1 or more"),
        (
            vec!["key-report", "--top", "none"],
            "--top",
            "not a whole number",
        ),
        (
            vec!["replica-audit", "--min-replicas", "0"],
            "--min-replicas",
            "1 or more",
        ),
        (
            vec!["wait-for-agreement", "--max-wait", "0"],
            "--max-wait",
            "1 or more",
        ),
        (
            vec!["move-hot-slot", "16384"],
            "SLOT",
            "slot 16384 is out of range",
        ),
        (vec!["move-hot-slot", "hot"], "SLOT", "not a slot number"),
        (
            vec!["drain-node", "--pipeline", "0", "127.0.0.1:1"],
            "--pipeline",
            "1 or more",
        ),
        (vec!["fix-owner-override", "--replace=yes"], "--replace", ""),
    ] {
        let mut all = vec!["-c", "127.0.0.1:1", "--scripts", EXAMPLES_DIR];
        all.extend_from_slice(&args);
        usage_error(&run_env(&all, &env), option, words);
    }
    let out = run_env(&["--scripts", EXAMPLES_DIR, "drain-node"], &env);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains("required arguments were not provided")
            && out.stderr.contains("<NODE>"),
        "{out}"
    );
    let out = run_env(
        &[
            "-c",
            "127.0.0.1:1",
            "run",
            &example("key-report"),
            "--top",
            "0",
        ],
        &env,
    );
    usage_error(&out, "--top", "1 or more");
}

#[test]
fn api_definitions_writes_a_file_for_editors() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("editor/defs");
    let out = run_env(
        &["api", "--definitions", target.to_str().unwrap()],
        &[("XDG_CONFIG_HOME", dir.path().to_str().unwrap())],
    );
    assert_eq!(out.code, 0, "{out}");
    let file = target.join("slotsmith.d.rhai");
    assert_eq!(out.stdout.trim(), file.to_str().unwrap(), "{out}");
    let text = std::fs::read_to_string(&file).expect("the definitions file exists");
    for want in [
        "/// How many keys of a slot one node holds (CLUSTER COUNTKEYSINSLOT).",
        "fn countkeysinslot(node: Node, slot: int) -> int;",
        "fn move_slots(moves: array, opts: map) -> map;",
        "fn wait_until(",
        "fn confirm(",
        "const args: array;",
    ] {
        assert!(text.contains(want), "no {want:?} in {}", file.display());
    }
}

on_both_servers!(reports_audit_wait_and_move_a_hot_slot);
/// The read-only runbooks (key report, replica audit, wait for agreement), a user
/// script importing `fix`, and move-hot-slot, on one lab cluster.
fn reports_audit_wait_and_move_a_hot_slot(server: Server) {
    let tc = TestCluster::with(server, |s| {
        s.masters = 3;
        s.replicas = 1;
        s.empty = 1;
        s.keys = 2000;
    });
    let sm = Slotsmith::new(&tc);
    let nodes = tc.lab().nodes.clone();
    let masters: Vec<u16> = nodes
        .iter()
        .filter(|n| n.role != LabRole::Replica)
        .map(|n| n.port)
        .collect();

    // A hot slot: 100 keys under one hash tag, on top of ~700 per master.
    for i in 0..100 {
        let key = format!("{{hot}}:{i}");
        let out = tc.redis_cli(masters[0], &["-c", "SET", &key, &format!("v{i}")]);
        assert!(out.contains("OK"), "{out}");
    }
    let hot: u16 = tc
        .redis_cli(masters[0], &["CLUSTER", "KEYSLOT", "{hot}"])
        .trim()
        .parse()
        .unwrap();
    let before = fingerprint(&tc, Some(hot));

    // key-report: the totals are the masters' DBSIZE, the hot slot is first.
    let report = sm.json(0, &["run", &example("key-report"), "--top", "5"]);
    assert_eq!(report["total_keys"], tc.total_keys(), "{report}");
    assert_eq!(tc.total_keys(), 2100);
    for m in report["masters"].as_array().unwrap() {
        assert_eq!(
            m["keys"],
            dbsize(&tc, port_of(m["addr"].as_str().unwrap())),
            "{m}"
        );
    }
    let slots: u64 = report["masters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["slots"].as_u64().unwrap())
        .sum();
    assert_eq!(slots, 16384);
    let top = report["top"].as_array().unwrap();
    assert_eq!(top.len(), 5, "{report}");
    assert_eq!(top[0]["slot"], hot, "{report}");
    assert_eq!(top[0]["keys"], 100, "{report}");
    assert!(top
        .windows(2)
        .all(|w| w[0]["keys"].as_u64() >= w[1]["keys"].as_u64()));
    let text = sm.run(&["run", &example("key-report")]);
    assert_eq!(text.code, 0, "{text}");
    assert!(text.stdout.contains("Top 10 slot(s) by keys:"), "{text}");
    assert!(text.stdout.contains("2100"), "{text}");
    let dry = sm.dry(0, &["run", &example("key-report"), "--top", "5"]);
    assert_eq!(dry["result"], report, "the dry run counted differently");
    assert_eq!(dry["commands"].as_array().unwrap().len(), 0, "{dry}");
    let bad = sm.run(&["run", &example("key-report"), "--top", "none"]);
    usage_error(&bad, "--top", "is not a whole number");
    let bad = sm.run(&["run", &example("key-report"), "--top", "0"]);
    usage_error(&bad, "--top", "0 is out of range: it must be 1 or more");
    let bad = sm.run(&["run", &example("key-report"), "extra"]);
    usage_error(&bad, "extra", "unexpected argument");
    // As a command, the same report.
    let cmd = sm.json(0, &["--scripts", EXAMPLES_DIR, "key-report", "--top", "5"]);
    assert_eq!(cmd, report);

    // replica-audit: every replica of the lab shares its master's host (127.0.0.1).
    let audit = sm.json(1, &["run", &example("replica-audit")]);
    assert_eq!(audit["ok"], false);
    assert_eq!(audit["problems"].as_array().unwrap().len(), 3, "{audit}");
    let out = sm.run(&["run", &example("replica-audit")]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stdout.contains("on the same host (127.0.0.1)"), "{out}");
    let out = sm.run(&[
        "--scripts",
        EXAMPLES_DIR,
        "replica-audit",
        "--allow-same-host",
    ]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout
            .contains("[OK] Every master with slots has 1+ healthy replica(s)"),
        "{out}"
    );
    assert!(out.stdout.contains("(no slots: not audited)"), "{out}");
    let out = sm.run(&[
        "run",
        &example("replica-audit"),
        "--allow-same-host",
        "--min-replicas",
        "2",
    ]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stdout.contains("has 1 replica(s), fewer than 2"),
        "{out}"
    );
    // Announced hostnames say which machine each node is on.
    for n in &nodes {
        let out = tc.redis_cli(
            n.port,
            &[
                "CONFIG",
                "SET",
                "cluster-announce-hostname",
                &format!("box-{}", n.port),
            ],
        );
        assert!(out.contains("OK"), "{out}");
    }
    let out = sm.run(&["run", &example("replica-audit")]);
    assert_eq!(out.code, 0, "{out}");
    let replica = nodes.iter().find(|n| n.role == LabRole::Replica).unwrap();
    let master = replica.master.unwrap();
    tc.redis_cli(
        replica.port,
        &[
            "CONFIG",
            "SET",
            "cluster-announce-hostname",
            &format!("box-{master}"),
        ],
    );
    let out = sm.run(&["run", &example("replica-audit")]);
    assert_eq!(out.code, 1, "{out}");
    let want = format!(
        "{} replicates {} on the same host (box-{master})",
        addr(replica.port),
        addr(master)
    );
    assert!(out.stdout.contains(&want), "{out}");
    let dry = sm.dry(1, &["run", &example("replica-audit")]);
    assert_eq!(
        dry["result"]["problems"].as_array().unwrap().len(),
        1,
        "{dry}"
    );
    assert_eq!(dry["commands"].as_array().unwrap().len(), 0, "{dry}");
    for n in &nodes {
        tc.redis_cli(n.port, &["CONFIG", "SET", "cluster-announce-hostname", ""]);
    }

    // wait-for-agreement on a settled cluster, live and dry.
    let out = sm.run(&["run", &example("wait-for-agreement"), "--max-wait", "5000"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout
            .contains("[OK] All 7 nodes agree about the configuration"),
        "{out}"
    );
    let dry = sm.dry(0, &["run", &example("wait-for-agreement")]);
    assert_eq!(dry["result"]["ok"], true, "{dry}");
    assert_eq!(dry["commands"].as_array().unwrap().len(), 0, "{dry}");

    // A user script can import the bundled fix and call its steps.
    let dir = tempfile::tempdir().unwrap();
    let mine = dir.path().join("problems.rhai");
    std::fs::write(
        &mine,
        "import \"fix\" as fix;\nlet found = fix::problems();\n#{count: found.len(), slots: found.map(|p| p.slot)}\n",
    )
    .unwrap();
    let mine = mine.to_str().unwrap();
    let found = sm.json(0, &["run", mine]);
    assert_eq!(found["count"], 0, "{found}");
    assert_eq!(found["slots"], serde_json::json!([]), "{found}");
    // The examples are modules too, and run by name from a directory on the path.
    let examples = concat!(env!("CARGO_MANIFEST_DIR"), "/examples");
    let uses = dir.path().join("uses-report.rhai");
    std::fs::write(&uses, "import \"key-report\" as kr;\nkr::report(1)\n").unwrap();
    let via = sm.json(0, &["--scripts", examples, "run", uses.to_str().unwrap()]);
    assert_eq!(via["total_keys"], report["total_keys"], "{via}");
    assert_eq!(via["top"][0]["slot"], hot, "{via}");
    let by_name = sm.json(
        0,
        &["--scripts", examples, "run", "key-report", "--top", "5"],
    );
    assert_eq!(by_name, report);
    assert_eq!(
        fingerprint(&tc, Some(hot)),
        before,
        "a read-only runbook changed the cluster"
    );

    // An interrupted migration: the nodes still agree on owners, but the cluster is not
    // healthy until it is fixed; the user's script sees the slot.
    tc.lab()
        .break_fault(Fault::StuckSlot { slot: 5519 }, tc.handle())
        .expect("break");
    let found = sm.json(0, &["run", mine]);
    assert_eq!(found["slots"], serde_json::json!([5519]), "{found}");
    let out = sm.run(&["run", &example("wait-for-agreement"), "--max-wait", "2000"]);
    assert_eq!(out.code, 0, "{out}");
    let out = sm.run(&[
        "--scripts",
        EXAMPLES_DIR,
        "wait-for-agreement",
        "--healthy",
        "--max-wait",
        "1000",
    ]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stdout
            .contains("[ERR] After 1000 ms the cluster still does not pass check"),
        "{out}"
    );
    assert!(out.stdout.contains("5519"), "{out}");
    // fix-owner-override as a command, -y after its name: the slot goes back to the
    // master that was migrating it, every key with it.
    let keys = tc.total_keys();
    let fixed = sm.run(&["--scripts", EXAMPLES_DIR, "fix-owner-override", "-y"]);
    assert_eq!(fixed.code, 0, "{fixed}");
    assert!(
        fixed.stdout.contains(">>> Slot 5519 (open):")
            && fixed
                .stdout
                .contains("which was migrating it (the migration is rolled back)")
            && fixed.stdout.contains("[OK] The cluster is healthy"),
        "{fixed}"
    );
    assert_eq!(tc.total_keys(), keys, "keys were lost");
    let out = sm.run(&["run", &example("wait-for-agreement"), "--healthy"]);
    assert_eq!(out.code, 0, "{out}");
    let again = sm.run(&["--scripts", EXAMPLES_DIR, "fix-owner-override", "--replace"]);
    assert_eq!(again.code, 0, "{again}");
    assert!(
        again
            .stdout
            .contains("Nothing to fix: the cluster is healthy."),
        "{again}"
    );

    // move-hot-slot with the defaults: the hot slot goes to the master with the fewest keys.
    let src = masters
        .iter()
        .copied()
        .find(|p| keys_in_slot(&tc, *p, hot) == 100)
        .expect("a master holds the hot slot");
    let dst = masters
        .iter()
        .copied()
        .filter(|p| *p != src)
        .min_by_key(|p| (dbsize(&tc, *p), *p))
        .unwrap();
    let keys = tc.total_keys();
    let before = fingerprint(&tc, Some(hot));
    let no = sm.run(&["run", &example("move-hot-slot")]);
    assert_eq!(
        no.code, 1,
        "without --yes and no terminal it must refuse: {no}"
    );
    assert!(no.stderr.contains("pass --yes"), "{no}");
    let dry = sm.dry(0, &["run", &example("move-hot-slot")]);
    let planned = &dry["result"];
    assert_eq!(planned["slot"], hot, "{dry}");
    assert_eq!(planned["src_addr"], addr(src), "{dry}");
    assert_eq!(planned["dst_addr"], addr(dst), "{dry}");
    assert_eq!(planned["keys"], 100, "{dry}");
    assert_eq!(planned["ok"], true, "{dry}");
    assert_eq!(dry["summary"]["slots_moved"], 1, "{dry}");
    assert_eq!(
        dry["summary"]["keys_moved"][format!("{} -> {}", addr(src), addr(dst))],
        100,
        "{dry}"
    );
    assert_eq!(
        fingerprint(&tc, Some(hot)),
        before,
        "the dry run changed the cluster"
    );

    let live = sm.json(0, &["-y", "run", &example("move-hot-slot")]);
    for field in [
        "slot",
        "src",
        "dst",
        "keys",
        "owner",
        "keys_on_target",
        "ok",
    ] {
        assert_eq!(
            live[field], planned[field],
            "{field}: dry run {planned}, live {live}"
        );
    }
    assert_eq!(keys_in_slot(&tc, dst, hot), 100);
    assert_eq!(keys_in_slot(&tc, src, hot), 0);
    // Every node, replicas included, sees the new owner.
    for p in tc.ports() {
        let text = tc.redis_cli(p, &["CLUSTER", "NODES"]);
        let nodes = parse_cluster_nodes(&text).expect("CLUSTER NODES parses");
        let owners: Vec<u16> = nodes
            .iter()
            .filter(|n| n.owns(hot))
            .map(|n| n.port)
            .collect();
        assert_eq!(owners, [dst], "node {p}'s view of slot {hot}: {text}");
    }
    for i in [0, 42, 99] {
        let v = tc.redis_cli(dst, &["-c", "GET", &format!("{{hot}}:{i}")]);
        assert_eq!(v.trim(), format!("v{i}"));
    }
    assert_eq!(tc.total_keys(), keys, "keys were lost");
    assert_eq!(sm.run(&["check"]).code, 0);

    // Named slot and target: move it back.
    let back = sm.json(
        0,
        &[
            "-y",
            "run",
            &example("move-hot-slot"),
            &hot.to_string(),
            "--to",
            &addr(src),
        ],
    );
    assert_eq!(back["owner"], addr(src), "{back}");
    assert_eq!(back["ok"], true, "{back}");
    assert_eq!(back["keys_left_on_source"], 0, "{back}");
    // The master left without slots may have made itself a replica of the one that
    // took them (Redis 7+): its keys are then copies, not keys left behind.
    let me = own_line(&tc, dst);
    let fields: Vec<&str> = me.split_whitespace().collect();
    match back["source_role"].as_str() {
        Some("master") => assert!(fields[2].contains("master"), "{me}\n{back}"),
        Some("replica") => {
            let src_id = &nodes.iter().find(|n| n.port == src).unwrap().id;
            assert!(fields[2].contains("slave"), "{me}\n{back}");
            assert_eq!(fields[3], src_id, "{me}\n{back}");
        }
        other => panic!("source_role {other:?}: {back}"),
    }
    assert_eq!(keys_in_slot(&tc, src, hot), 100);
    let bad = sm.run(&["run", &example("move-hot-slot"), "--to", "nowhere:1"]);
    usage_error(&bad, "--to nowhere:1", "no node at nowhere:1");
    let bad = sm.run(&["run", &example("move-hot-slot"), "16384"]);
    usage_error(
        &bad,
        "SLOT",
        "slot 16384 is out of range: slots are 0 to 16383",
    );
    let replica = nodes.iter().find(|n| n.role == LabRole::Replica).unwrap();
    let bad = sm.run(&[
        "--scripts",
        EXAMPLES_DIR,
        "move-hot-slot",
        &hot.to_string(),
        "--to",
        &addr(replica.port),
    ]);
    usage_error(&bad, "--to", "is a replica or failing");
    let bad = sm.run(&[
        "run",
        &example("move-hot-slot"),
        &hot.to_string(),
        "--to",
        &addr(src),
    ]);
    usage_error(
        &bad,
        &hot.to_string(),
        &format!("is already on {}", addr(src)),
    );
    assert_eq!(tc.total_keys(), keys, "keys were lost");
}

on_both_servers!(drain_a_master_then_make_it_a_replica);
/// drain-node: dry run, then live with --replicate-to, on its own lab cluster.
fn drain_a_master_then_make_it_a_replica(server: Server) {
    let tc = TestCluster::with(server, |s| {
        s.masters = 3;
        s.replicas = 1;
        s.empty = 1;
        s.keys = 2000;
    });
    let sm = Slotsmith::new(&tc);
    let nodes = tc.lab().nodes.clone();
    let masters: Vec<u16> = nodes
        .iter()
        .filter(|n| n.role != LabRole::Replica)
        .map(|n| n.port)
        .collect();
    let (drain, keep) = (masters[2], masters[0]);
    let keep_id = nodes.iter().find(|n| n.port == keep).unwrap().id.clone();
    let slots_before = slots_by_master(&sm);
    let held = slots_before[&addr(drain)];
    assert!(held > 5000, "{slots_before:?}");
    let keys_before = tc.total_keys();
    let before = fingerprint(&tc, None);

    let dry = sm.dry(
        0,
        &[
            "run",
            &example("drain-node"),
            &addr(drain),
            "--replicate-to",
            &addr(keep),
        ],
    );
    assert_eq!(dry["result"]["moved"], held, "{}", dry["result"]);
    assert_eq!(dry["result"]["ok"], true, "{}", dry["result"]);
    assert_eq!(dry["summary"]["slots_moved"], held, "{}", dry["summary"]);
    let replicate = format!("CLUSTER REPLICATE {keep_id}");
    assert!(
        dry["commands"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["command"].as_str().unwrap().contains(&replicate)),
        "the plan does not make it a replica"
    );
    assert_eq!(
        fingerprint(&tc, None),
        before,
        "the dry run changed the cluster"
    );

    // Nodes the declaration resolves, and the runbook's own policy: exit 2, one
    // sentence naming the option, nothing changed.
    let replica = nodes.iter().find(|n| n.role == LabRole::Replica).unwrap();
    for (args, option, words) in [
        (
            vec!["127.0.0.1:9".to_string()],
            "NODE 127.0.0.1:9",
            "no node at 127.0.0.1:9".to_string(),
        ),
        (
            vec![addr(drain), "--to".into(), "nowhere:1".into()],
            "--to nowhere:1",
            "no node at nowhere:1".to_string(),
        ),
        (
            vec![addr(drain), "--to".into(), addr(replica.port)],
            "--to",
            format!("{} is a replica or failing", addr(replica.port)),
        ),
        (
            vec![
                addr(drain),
                "--to".into(),
                format!("{},{}", addr(keep), addr(drain)),
            ],
            "--to",
            format!("{} is the node being drained", addr(drain)),
        ),
        (
            vec![addr(drain), "--replicate-to".into(), addr(drain)],
            "--replicate-to",
            "a node cannot replicate itself".to_string(),
        ),
    ] {
        let mut all = vec!["-y", "--scripts", EXAMPLES_DIR, "drain-node"];
        all.extend(args.iter().map(String::as_str));
        usage_error(&sm.run(&all), option, &words);
    }
    assert_eq!(
        fingerprint(&tc, None),
        before,
        "a refused drain changed the cluster"
    );

    // Live, as a command, with -y after its name.
    let live = sm.json(
        0,
        &[
            "--scripts",
            EXAMPLES_DIR,
            "drain-node",
            &addr(drain),
            "--replicate-to",
            &addr(keep),
            "--pipeline",
            "50",
            "-y",
        ],
    );
    assert_eq!(live["moved"], held, "{live}");
    assert_eq!(live["slots_left"], 0, "{live}");
    assert_eq!(live["role"], "replica", "{live}");
    assert_eq!(live["master"], addr(keep), "{live}");
    // Its own view: a replica of `keep`, no slots.
    let me = own_line(&tc, drain);
    let fields: Vec<&str> = me.split_whitespace().collect();
    assert!(fields[2].contains("slave"), "{me}");
    assert_eq!(fields[3], keep_id, "{me}");
    assert_eq!(fields.len(), 8, "it still holds slots: {me}");
    // The others took the slots evenly (within one slot of each other), no key lost.
    let after = slots_by_master(&sm);
    assert!(!after.contains_key(&addr(drain)), "{after:?}");
    let gains: Vec<u64> = after
        .iter()
        .map(|(a, n)| n - slots_before.get(a).copied().unwrap_or(0))
        .collect();
    assert_eq!(gains.iter().sum::<u64>(), held, "{after:?}");
    assert!(
        gains.iter().max().unwrap() - gains.iter().min().unwrap() <= 1,
        "not even: {gains:?}"
    );
    assert_eq!(after.values().sum::<u64>(), 16384);
    assert_eq!(tc.total_keys(), keys_before);
    assert_eq!(sm.run(&["check"]).code, 0);
    // Its old replica follows the master that took its last slot, by gossip.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let audit = loop {
        let audit = sm.run(&["run", &example("replica-audit"), "--allow-same-host"]);
        if audit.code == 0 || std::time::Instant::now() > deadline {
            break audit;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
    };
    assert_eq!(audit.code, 0, "{audit}");

    // Draining it again: it is a replica now, nothing to drain.
    let again = sm.run(&["run", &example("drain-node"), &addr(drain)]);
    assert_eq!(again.code, 2, "{again}");
    assert!(again.stderr.contains("is a replica"), "{again}");
}
