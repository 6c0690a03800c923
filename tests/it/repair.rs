//! `complete` and `cancel` on a real cluster: every key of the slot ends on the
//! chosen node, every master names it owner, no marker is left; also when only one
//! side's marker survived, and the refusal when the slot is not open.

use slotsmith::cluster::slot::{key_in_slot, slot_of};
use slotsmith::cluster::topology::parse_cluster_nodes;

use crate::support::{run, Server, TestCluster};

/// `n` keys of `slot` written through the owner, with distinct values.
fn fill(tc: &TestCluster, owner: u16, slot: u16, n: usize) -> Vec<(String, String)> {
    let tag = key_in_slot(slot, "r");
    let keys: Vec<(String, String)> = (0..n)
        .map(|i| (format!("{{{tag}}}:k{i}"), format!("value-{slot}-{i}")))
        .collect();
    for (k, v) in &keys {
        assert_eq!(slot_of(k.as_bytes()), slot);
        assert_eq!(tc.redis_cli(owner, &["SET", k, v]).trim(), "OK");
    }
    keys
}

fn id(tc: &TestCluster, port: u16) -> String {
    tc.redis_cli(port, &["CLUSTER", "MYID"]).trim().to_string()
}

/// Open `slot` from `a` to `b` as an interrupted migration leaves it, `moved` keys already on `b`.
fn open(tc: &TestCluster, slot: u16, a: u16, b: u16, keys: &[(String, String)], moved: usize) {
    let s = slot.to_string();
    assert_eq!(
        tc.redis_cli(b, &["CLUSTER", "SETSLOT", &s, "IMPORTING", &id(tc, a)])
            .trim(),
        "OK"
    );
    assert_eq!(
        tc.redis_cli(a, &["CLUSTER", "SETSLOT", &s, "MIGRATING", &id(tc, b)])
            .trim(),
        "OK"
    );
    if moved > 0 {
        let mut args: Vec<String> = vec![
            "MIGRATE".into(),
            "127.0.0.1".into(),
            b.to_string(),
            String::new(),
            "0".into(),
            "5000".into(),
            "KEYS".into(),
        ];
        args.extend(keys[..moved].iter().map(|(k, _)| k.clone()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_eq!(tc.redis_cli(a, &args).trim(), "OK");
    }
}

/// Every key of the slot is on `port`, with its value; every master names `port` owner; no marker.
fn assert_settled(
    tc: &TestCluster,
    slot: u16,
    port: u16,
    keys: &[(String, String)],
    masters: &[u16],
) {
    let s = slot.to_string();
    assert_eq!(
        tc.redis_cli(port, &["CLUSTER", "COUNTKEYSINSLOT", &s])
            .trim(),
        keys.len().to_string()
    );
    for (k, v) in keys {
        let got = tc.redis_cli(port, &["GET", k]);
        assert_eq!(got.trim(), v, "{k} on {port}");
    }
    let owner = id(tc, port);
    for m in masters {
        if *m != port {
            assert_eq!(
                tc.redis_cli(*m, &["CLUSTER", "COUNTKEYSINSLOT", &s]).trim(),
                "0",
                "keys of {slot} left on {m}"
            );
        }
        let text = tc.redis_cli(*m, &["CLUSTER", "NODES"]);
        let nodes = parse_cluster_nodes(&text).expect("CLUSTER NODES parses");
        let claimed: Vec<&str> = nodes
            .iter()
            .filter(|n| n.owns(slot))
            .map(|n| n.id.as_str())
            .collect();
        assert_eq!(
            claimed,
            vec![owner.as_str()],
            "owner of {slot} in the view of {m}"
        );
        let me = nodes.iter().find(|n| n.is_myself()).unwrap();
        assert!(
            !me.migrating.contains_key(&slot) && !me.importing.contains_key(&slot),
            "marker left on {m}: {text}"
        );
    }
}

on_both_servers!(complete_and_cancel_settle_a_slot_on_the_chosen_node);
fn complete_and_cancel_settle_a_slot_on_the_chosen_node(server: Server) {
    let tc = TestCluster::with(server, |s| {
        s.masters = 3;
        s.replicas = 0;
        s.empty = 1;
        s.keys = 300;
    });
    let seed = tc.seed();
    let p = tc.ports();
    let (a, b, c, e) = (p[0], p[1], p[2], p[3]);
    let masters = [a, b, c, e];
    let before = tc.total_keys();

    // complete: both markers, keys split.
    let keys = fill(&tc, a, 100, 5);
    open(&tc, 100, a, e, &keys, 2);
    let out = run(&["-c", &seed, "complete", "100", "-y"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout.contains(&format!(
            "[OK] slot 100 now belongs to 127.0.0.1:{e}; 3 key(s) moved"
        )),
        "{out}"
    );
    assert_settled(&tc, 100, e, &keys, &masters);

    // cancel: both markers, keys split.
    let keys = fill(&tc, b, 6000, 6);
    open(&tc, 6000, b, e, &keys, 4);
    let out = run(&["-c", &seed, "cancel", "6000", "-y"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout.contains(&format!(
            "[OK] slot 6000 stays with 127.0.0.1:{b}; 4 key(s) moved back"
        )),
        "{out}"
    );
    assert_settled(&tc, 6000, b, &keys, &masters);

    // complete when only the importing marker survived.
    let keys = fill(&tc, c, 12000, 4);
    open(&tc, 12000, c, e, &keys, 1);
    assert_eq!(
        tc.redis_cli(c, &["CLUSTER", "SETSLOT", "12000", "STABLE"])
            .trim(),
        "OK"
    );
    let out = run(&["-c", &seed, "complete", "12000", "-y"]);
    assert_eq!(out.code, 0, "{out}");
    assert_settled(&tc, 12000, e, &keys, &masters);

    // cancel when only the migrating marker survived (the target holds keys it does not own or import).
    let keys = fill(&tc, a, 200, 4);
    open(&tc, 200, a, b, &keys, 3);
    assert_eq!(
        tc.redis_cli(b, &["CLUSTER", "SETSLOT", "200", "STABLE"])
            .trim(),
        "OK"
    );
    let out = run(&["-c", &seed, "cancel", "200", "-y"]);
    assert_eq!(out.code, 0, "{out}");
    assert_settled(&tc, 200, a, &keys, &masters);

    // A slot that is not open: refused with the way out, nothing changed.
    let out = run(&["-c", &seed, "complete", "300", "-y"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains("slot 300 is not open") && out.stderr.contains("--from NODE --to NODE"),
        "{out}"
    );
    let out = run(&["-c", &seed, "cancel", "300", "-y"]);
    assert_eq!(out.code, 1, "{out}");
    // ... unless both ends are named.
    let keys = fill(&tc, a, 300, 3);
    let to = format!("127.0.0.1:{c}");
    let from = id(&tc, a)[..10].to_string();
    let out = run(&[
        "-c", &seed, "complete", "300", "--from", &from, "--to", &to, "-y",
    ]);
    assert_eq!(out.code, 0, "{out}");
    assert_settled(&tc, 300, c, &keys, &masters);

    // Bad input: one sentence, the right exit code, nothing changed.
    let out = run(&["-c", &seed, "complete", "16384"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("16384"), "{out}");
    let out = run(&[
        "-c",
        &seed,
        "complete",
        "301",
        "--from",
        "127.0.0.1:1",
        "--to",
        &to,
        "-y",
    ]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("no node at 127.0.0.1:1"), "{out}");
    // Without a terminal and without --yes nothing is written.
    let keys = fill(&tc, b, 7000, 2);
    open(&tc, 7000, b, e, &keys, 1);
    let out = run(&["-c", &seed, "complete", "7000"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("--yes"), "{out}");
    assert!(
        tc.redis_cli(b, &["CLUSTER", "NODES"]).contains("[7000->-"),
        "untouched"
    );
    let out = run(&["-c", &seed, "cancel", "7000", "-y"]);
    assert_eq!(out.code, 0, "{out}");
    assert_settled(&tc, 7000, b, &keys, &masters);

    let out = run(&["-c", &seed, "check"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(tc.total_keys(), before + 5 + 6 + 4 + 4 + 3 + 2);
}
