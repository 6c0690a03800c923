//! Membership and roles from scripts: a node met, joined, made a replica and failed
//! over; a stopped node forgotten everywhere; and the same writes in a dry run, which
//! prints them and sends none.

use serde_json::Value;

use crate::support::{
    assert_check_clean, fingerprint, own_line, run, ss_bare, Server, TestCluster,
};

/// Write `text` as a script in `dir` and give its path.
fn script(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

/// Every journal line the runs with this home wrote.
fn journal_of(home: &std::path::Path) -> String {
    let dir = home.join("slotsmith").join("journal");
    let mut text = String::new();
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        text.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    text
}

on_both_servers!(a_met_node_joins_replicates_and_takes_over_by_failover);
fn a_met_node_joins_replicates_and_takes_over_by_failover(server: Server) {
    let tc = TestCluster::with(server, |s| {
        s.spare = 1;
        s.keys = 300;
    });
    let seed = tc.seed();
    let spare = *tc.ports().last().unwrap();
    let master = tc.ports()[0];
    let dir = tempfile::tempdir().unwrap();
    let path = script(
        &dir,
        "grow.rhai",
        r#"
        let spare = args[0];
        let master = node(args[1]);
        meet(master, "127.0.0.1", parse_int(spare.split(":")[1]));
        if !wait_for_join(30000) { throw "the spare did not join"; }
        let known = nodes().len();
        replicate(spare, master);
        if !wait_until(|| command(spare, "INFO", "replication").contains("master_link_status:up"), 30000) {
            throw "the replica did not sync";
        }
        // The master must know its new replica before a failover it agrees to.
        if !wait_for_join(30000) { throw "the master did not learn its replica"; }
        let refused = "";
        try { failover(master, ""); } catch (e) { refused = `${e}`; }
        failover(spare, "");
        if !wait_until(|| node(spare).role == "master", 30000) { throw "no failover"; }
        if !wait_for_join(30000) { throw "the nodes did not agree after the failover"; }
        // A master now: the password for its masters is set, and shown nowhere.
        set_config(spare, "masterauth", "s3cret-for-masters");
        #{ known: known, refused: refused, role: node(spare).role, old: node(master).role }
        "#,
    );
    let spare_addr = format!("127.0.0.1:{spare}");
    let master_addr = format!("127.0.0.1:{master}");
    let home = tempfile::tempdir().unwrap();
    let out = ss_bare()
        .args([
            "-c",
            &seed,
            "--json",
            "run",
            &path,
            &spare_addr,
            &master_addr,
        ])
        .home(home.path())
        .run();
    assert_eq!(out.code, 0, "{out}");
    assert!(!out.to_string().contains("s3cret"), "{out}");
    let journal = journal_of(home.path());
    assert!(
        journal.contains("CONFIG SET masterauth ***")
            && journal.contains("CLUSTER FAILOVER")
            && journal.contains("CLUSTER MEET 127.0.0.1")
            && !journal.contains("s3cret"),
        "{journal}"
    );
    assert!(tc
        .redis_cli(spare, &["CONFIG", "GET", "masterauth"])
        .contains("s3cret-for-masters"));
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON result");
    assert_eq!(v["known"], tc.ports().len(), "{v}");
    assert_eq!(v["role"], "master", "{v}");
    assert_eq!(v["old"], "replica", "{v}");
    let refused = v["refused"].as_str().unwrap();
    assert!(
        refused.contains(&master_addr) && refused.contains("is a master"),
        "{refused}"
    );

    // As the servers themselves say it: the spare serves the old master's slots.
    let line = own_line(&tc, spare);
    assert!(
        line.contains("myself,master") && line.contains("0-"),
        "{line}"
    );
    assert!(own_line(&tc, master).contains("myself,slave"));
    assert_check_clean(&tc);
    assert_eq!(tc.total_keys(), 300);
}

on_both_servers!(a_stopped_node_is_forgotten_everywhere_and_an_unreachable_one_is_named);
fn a_stopped_node_is_forgotten_everywhere_and_an_unreachable_one_is_named(server: Server) {
    let tc = TestCluster::start(server, 0);
    let seed = tc.seed();
    let ports = tc.ports();
    // Masters, replicas, then the empty master: stop a replica and the empty master.
    let (gone, down) = (ports[3], ports[6]);
    let gone_id = tc.redis_cli(gone, &["CLUSTER", "MYID"]).trim().to_string();
    tc.stop_node(gone);
    tc.stop_node(down);
    let dir = tempfile::tempdir().unwrap();
    let path = script(&dir, "forget.rhai", "forget(args[0])");
    let out = run(&[
        "-c",
        &seed,
        "--json",
        "run",
        &path,
        &format!("127.0.0.1:{gone}"),
    ]);
    assert_eq!(out.code, 0, "{out}");
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON result");
    assert_eq!(v["ok"], false, "{v}");
    let forgot: Vec<&str> = v["forgot"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect();
    let alive: Vec<u16> = ports
        .iter()
        .copied()
        .filter(|p| *p != gone && *p != down)
        .collect();
    assert_eq!(forgot.len(), alive.len(), "{v}");
    let failed = v["failed"].as_array().unwrap();
    assert_eq!(failed.len(), 1, "{v}");
    assert_eq!(failed[0]["node"], format!("127.0.0.1:{down}"), "{v}");
    for p in alive {
        let nodes = tc.redis_cli(p, &["CLUSTER", "NODES"]);
        assert!(!nodes.contains(&gone_id), "{p} still knows it:\n{nodes}");
    }
}

on_both_servers!(a_dry_run_of_addslots_range_and_meet_prints_the_plan_and_writes_nothing);
fn a_dry_run_of_addslots_range_and_meet_prints_the_plan_and_writes_nothing(server: Server) {
    let tc = TestCluster::with(server, |s| s.spare = 1);
    let spare = *tc.ports().last().unwrap();
    let spare_addr = format!("127.0.0.1:{spare}");
    let before = fingerprint(&tc, None);
    let dir = tempfile::tempdir().unwrap();
    // As `create` starts: from a node on its own, slots first, then the others met.
    let path = script(
        &dir,
        "form.rhai",
        r#"
        addslots_range(args[0], 0, 99);
        meet(args[0], "127.0.0.1", parse_int(args[1]));
        set_config(args[0], "masterauth", "s3cret-for-masters");
        node(args[0]).slots
        "#,
    );
    let other = tc.ports()[0].to_string();
    let out = run(&[
        "-c",
        &spare_addr,
        "--dry-run",
        "run",
        &path,
        &spare_addr,
        &other,
    ]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout.contains("Dry run: nothing was written."),
        "{out}"
    );
    let add = out
        .stdout
        .find("CLUSTER ADDSLOTSRANGE 0 99")
        .unwrap_or_else(|| panic!("{out}"));
    let meet = out
        .stdout
        .find(&format!("CLUSTER MEET 127.0.0.1 {other}"))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(add < meet, "{out}");
    // Settings are not part of the model: recorded as sent, the password masked.
    assert!(
        out.stdout
            .contains("CONFIG SET masterauth *** (not simulated)"),
        "{out}"
    );
    assert!(!out.to_string().contains("s3cret"), "{out}");
    assert_eq!(out.stdout.matches("not simulated").count(), 1, "{out}");

    // Bad arguments: one sentence naming the argument, before anything is sent.
    let path = script(
        &dir,
        "bad.rhai",
        r#"
        let said = [];
        for f in [
            || reset(args[0], "medium"),
            || addslots_range(args[0], 10, 5),
            || addslots_range(args[0], 0, 16384),
            || meet(args[0], "127.0.0.1", 0),
            || failover(args[0], "sideways"),
            || set_config(args[0], "", 1),
        ] {
            try { f.call(); said.push("no error"); } catch (e) { said.push(`${e}`); }
        }
        said
        "#,
    );
    let out = run(&["-c", &spare_addr, "--json", "run", &path, &spare_addr]);
    assert_eq!(out.code, 0, "{out}");
    let doc: Value = serde_json::from_str(&out.stdout).expect("JSON result");
    let said: Vec<String> = serde_json::from_value(doc["result"].clone()).expect("messages");
    assert_eq!(
        said,
        [
            "reset: mode must be \"soft\" or \"hard\", got \"medium\"",
            "addslots_range: start 10 is after end 5",
            "addslots_range: end: slot 16384 is out of range: slots are 0 to 16383",
            "meet: port must be 1 to 65535, got 0",
            "failover: mode must be \"\", \"force\" or \"takeover\", got \"sideways\"",
            "set_config: name is empty",
        ]
    );
    assert_eq!(
        fingerprint(&tc, None),
        before,
        "a dry run changed the cluster"
    );
}
