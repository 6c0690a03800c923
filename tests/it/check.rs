//! `slotsmith check` against a real cluster: the healthy report, an open slot, the
//! JSON report, and the errors an operator meets before a cluster answers.

use std::net::TcpListener;

use serde_json::Value;
use slotsmith::lab::Fault;

use crate::support::{port_of, run, Server, TestCluster};

on_both_servers!(check_reports_health_then_the_open_slot);
fn check_reports_health_then_the_open_slot(server: Server) {
    let tc = TestCluster::start(server, 2000);
    let seed = tc.seed();

    let out = run(&["-c", &seed, "check"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout
            .contains("[OK] All nodes agree about slots configuration."),
        "{out}"
    );
    assert!(
        out.stdout.contains("[OK] All 16384 slots covered."),
        "{out}"
    );
    assert!(out.stdout.contains("[OK] 2000 keys in 4 masters."), "{out}");
    assert!(
        out.stdout
            .contains(&format!(">>> Performing Cluster Check (using node {seed})")),
        "{out}"
    );

    // --json: per-master key counts are what each master's DBSIZE says.
    let out = run(&["-c", &seed, "--json", "check"]);
    assert_eq!(out.code, 0, "{out}");
    let report: Value =
        serde_json::from_str(&out.stdout).expect("check --json is one JSON document");
    assert_eq!(report["ok"], Value::Bool(true));
    assert_eq!(report["open_slots"].as_array().map(Vec::len), Some(0));
    let masters = report["masters"].as_array().expect("masters");
    assert_eq!(masters.len(), 4);
    for m in masters {
        let port: u16 = port_of(m["addr"].as_str().unwrap());
        let dbsize = tc.redis_cli(port, &["DBSIZE"]);
        assert_eq!(
            m["keys"].as_u64().unwrap().to_string(),
            dbsize.trim(),
            "keys of {}",
            m["addr"]
        );
    }

    // The classic stuck slot: exit 1, the slot and both nodes named.
    tc.lab()
        .break_fault(Fault::StuckSlot { slot: 5519 }, tc.handle())
        .expect("break");
    let src = masters
        .iter()
        .find(|m| {
            m["ranges"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r[0].as_u64() <= Some(5519) && r[1].as_u64() >= Some(5519))
        })
        .expect("owner of 5519");
    let src_addr = src["addr"].as_str().unwrap();
    let out = run(&["-c", &seed, "check"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stdout.contains(&format!(
            "[WARNING] Node {src_addr} has slots in migrating state 5519."
        )),
        "{out}"
    );
    let dst_addr = format!("127.0.0.1:{}", tc.ports().last().unwrap());
    assert!(
        out.stdout.contains(&format!(
            "[WARNING] Node {dst_addr} has slots in importing state 5519."
        )),
        "{out}"
    );
    assert!(
        out.stdout
            .contains("[WARNING] The following slots are open: 5519."),
        "{out}"
    );

    let out = run(&["-c", &seed, "check", "--json"]);
    assert_eq!(out.code, 1, "{out}");
    let report: Value = serde_json::from_str(&out.stdout).expect("JSON");
    assert_eq!(report["ok"], Value::Bool(false));
    let open = report["open_slots"].as_array().expect("open_slots");
    assert_eq!(open.len(), 1, "{report}");
    assert_eq!(open[0]["slot"], 5519);
    assert_eq!(open[0]["migrating"][0], src["id"]);
    let dst_id = tc.redis_cli(tc.ports()[tc.ports().len() - 1], &["CLUSTER", "MYID"]);
    assert_eq!(open[0]["importing"][0].as_str(), Some(dst_id.trim()));
    // Keys are counted where they are: still 2000 plus the ones the fault wrote.
    let total: u64 = report["masters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["keys"].as_u64().unwrap())
        .sum();
    assert_eq!(total, tc.total_keys());
}

on_both_servers!(unreachable_seed_refused_connection_and_wrong_password_exit_2);
fn unreachable_seed_refused_connection_and_wrong_password_exit_2(server: Server) {
    // Nothing listens: refused.
    let free = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = free.local_addr().unwrap().port();
    drop(free);
    let addr = format!("127.0.0.1:{port}");
    let out = run(&["-c", &addr, "check"]);
    assert_eq!(out.code, 2, "{out}");
    assert_eq!(
        out.stderr.trim(),
        format!("slotsmith: cannot connect to {addr}: connection refused")
    );

    // Something accepts but never answers: unreachable within the timeout.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap().to_string();
    let out = run(&["-c", &addr, "--timeout", "300", "check"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains(&addr), "{out}");
    assert_eq!(out.stderr.lines().count(), 1, "one sentence: {out}");
    assert!(!out.stderr.contains("panicked"), "{out}");

    // Not an address at all.
    let out = run(&["-c", "localhost", "check"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("localhost"), "{out}");

    // A cluster with a password: the wrong one is refused, the right one works.
    let tc = TestCluster::with(server, |s| {
        s.masters = 3;
        s.replicas = 0;
        s.empty = 0;
        s.password = Some("s3cret-pw".into());
    });
    let seed = tc.seed();
    let out = run(&["-c", &seed, "-a", "not-it", "check"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr
            .contains(&format!("cannot connect to {seed}: authentication failed")),
        "{out}"
    );
    assert!(
        !out.stderr.contains("not-it") && !out.stdout.contains("not-it"),
        "password echoed: {out}"
    );
    let out = run(&["-c", &seed, "-a", "s3cret-pw", "check"]);
    assert_eq!(out.code, 0, "{out}");
    let out = crate::support::run_env(&["-c", &seed, "check"], &[("REDISCLI_AUTH", "s3cret-pw")]);
    assert_eq!(out.code, 0, "REDISCLI_AUTH: {out}");
}
