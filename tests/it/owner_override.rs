//! Replacing one step of a bundled operation: `examples/fix-owner-override.rhai`
//! imports the bundled `fix` module and hands `fix::plan` its own owner rule (give an
//! open slot back to the node that was migrating it), keeping everything else. On a
//! real cluster with the classic stuck slot, plain `fix` would complete the migration;
//! the runbook rolls it back instead, and no key is lost.

use crate::support::{port_of, run_env, Output, Server, TestCluster};
use slotsmith::lab::Fault;

const SLOT: u16 = 5519;

fn example() -> String {
    format!(
        "{}/examples/fix-owner-override.rhai",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// `slotsmith` on the cluster with a user directory of its own (no ejected `fix`).
fn run(tc: &TestCluster, home: &std::path::Path, args: &[&str]) -> Output {
    let mut all: Vec<String> = tc.flags();
    all.extend(args.iter().map(|a| a.to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    run_env(&all, &[("XDG_CONFIG_HOME", home.to_str().unwrap())])
}

/// The owner of SLOT as the node on `port` sees it, by address.
fn owner_seen_by(tc: &TestCluster, port: u16) -> String {
    let text = tc.redis_cli(port, &["CLUSTER", "NODES"]);
    let nodes = slotsmith::cluster::topology::parse_cluster_nodes(&text).expect("CLUSTER NODES");
    nodes
        .iter()
        .find(|n| n.slots.iter().any(|(a, b)| (*a..=*b).contains(&SLOT)))
        .map(|n| n.addr())
        .unwrap_or_default()
}

fn keys_on(tc: &TestCluster, port: u16) -> u64 {
    tc.redis_cli(port, &["CLUSTER", "COUNTKEYSINSLOT", &SLOT.to_string()])
        .trim()
        .parse()
        .expect("a number")
}

on_both_servers!(an_owner_rule_of_ones_own_changes_what_fix_does);
fn an_owner_rule_of_ones_own_changes_what_fix_does(server: Server) {
    let tc = TestCluster::with(server, |s| {
        s.replicas = 0;
        s.keys = 200;
    });
    let home = tempfile::tempdir().expect("temp dir");
    let ports = tc.ports();
    let src = port_of(&owner_seen_by(&tc, ports[0]));
    tc.lab()
        .break_fault(Fault::StuckSlot { slot: SLOT }, tc.handle())
        .expect("break stuck-slot");
    let dst = *ports
        .iter()
        .find(|p| keys_on(&tc, **p) > 0 && **p != src)
        .expect("the importing node holds keys of the slot");
    let (on_src, on_dst) = (keys_on(&tc, src), keys_on(&tc, dst));
    assert!(
        on_src > 0 && on_dst > 0,
        "keys on both sides: {on_src}, {on_dst}"
    );
    let total = tc.total_keys();
    let addr = |p: u16| format!("127.0.0.1:{p}");

    // Plain fix (a dry run) would finish the migration toward the importing node.
    let plain = run(&tc, home.path(), &["--dry-run", "fix"]);
    assert_eq!(plain.code, 0, "{plain}");
    assert!(
        plain.stdout.contains(&format!(
            "new owner: {}, because finish the migration",
            addr(dst)
        )),
        "{plain}"
    );
    // The runbook's rule gives the slot back, with fix's own steps.
    let dry = run(&tc, home.path(), &["--dry-run", "run", &example()]);
    assert_eq!(dry.code, 0, "{dry}");
    assert!(
        dry.stdout.contains(&format!(
            "new owner: {}, because give the slot back to {}",
            addr(src),
            addr(src)
        )) && dry.stdout.contains(&format!(
            "MIGRATE every key of slot {SLOT} from {} to {}",
            addr(dst),
            addr(src)
        )),
        "{dry}"
    );
    assert_eq!(keys_on(&tc, dst), on_dst, "a dry run changes nothing");

    // For real.
    let out = run(&tc, home.path(), &["run", &example(), "-y"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout.contains(&format!(
            "[OK] slot {SLOT} owned by {}; {on_dst} key(s) moved",
            addr(src)
        )) && out.stdout.contains("[OK] The cluster is healthy"),
        "{out}"
    );
    for p in &ports {
        assert_eq!(
            owner_seen_by(&tc, *p),
            addr(src),
            "slot {SLOT} as 127.0.0.1:{p} sees it"
        );
        let want = if *p == src { on_src + on_dst } else { 0 };
        assert_eq!(
            keys_on(&tc, *p),
            want,
            "keys of slot {SLOT} on 127.0.0.1:{p}"
        );
    }
    assert_eq!(tc.total_keys(), total, "no key was lost");
    crate::support::assert_check_clean(&tc);
    // Nothing left to do, for the runbook or for plain fix.
    let again = run(&tc, home.path(), &["run", &example()]);
    assert_eq!(again.code, 0, "{again}");
    assert!(again.stdout.contains("Nothing to fix"), "{again}");
}
