//! `--dry-run` against a live cluster: the plan is printed, nothing is written, and a
//! runbook's loop ends in the dry run exactly as it then does live.

use serde_json::Value;
use slotsmith::lab::Fault;

use crate::support::{fingerprint, run, run_env, Server, TestCluster};

on_both_servers!(dry_run_fix_prints_the_plan_and_changes_nothing);
fn dry_run_fix_prints_the_plan_and_changes_nothing(server: Server) {
    let tc = TestCluster::start(server, 500);
    let seed = tc.seed();
    tc.lab()
        .break_fault(Fault::StuckSlot { slot: 5519 }, tc.handle())
        .expect("break");
    let before = fingerprint(&tc, Some(5519));

    let out = run(&["-c", &seed, "--dry-run", "fix"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout.contains("Dry run: nothing was written."),
        "{out}"
    );
    // Each command in the order it would be sent: MIGRATE (a summary: the plan keeps
    // its keys, not its timeout or credentials), then the owner everywhere, verbatim.
    let migrate = out
        .stdout
        .find("1 x MIGRATE to 127.0.0.1:")
        .unwrap_or_else(|| panic!("{out}"));
    let owner = out
        .stdout
        .find("CLUSTER SETSLOT 5519 NODE ")
        .unwrap_or_else(|| panic!("{out}"));
    assert!(migrate < owner, "{out}");
    assert!(
        out.stdout
            .contains("KEYS <keys>  (slot 5519; 1 key: user:loadtest_user_33:reservations)"),
        "{out}"
    );
    // The owner rule in one line; -v prints it whole.
    assert!(out.stdout.contains("(-v: the whole rule)"), "{out}");
    assert!(!out.stdout.contains("then the lowest address"), "{out}");
    let verbose = run(&["-c", &seed, "--dry-run", "-v", "fix"]);
    assert_eq!(verbose.code, 0, "{verbose}");
    assert!(
        verbose.stdout.contains("then the lowest address")
            && !verbose.stdout.contains("(-v: the whole rule)"),
        "{verbose}"
    );
    assert_eq!(
        fingerprint(&tc, Some(5519)),
        before,
        "a dry run changed the cluster"
    );

    let out = run(&["-c", &seed, "--dry-run", "--json", "fix"]);
    assert_eq!(out.code, 0, "{out}");
    let doc: Value = serde_json::from_str(&out.stdout).expect("one JSON document");
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["summary"]["slots_moved"], 1);
    let commands = doc["commands"].as_array().expect("commands");
    assert!(
        commands
            .iter()
            .any(|c| c["command"].as_str().unwrap().starts_with("MIGRATE")),
        "{doc}"
    );
    assert_eq!(
        fingerprint(&tc, Some(5519)),
        before,
        "a dry run changed the cluster"
    );

    // A dry run keeps no journal; the real run records every write it sends.
    let state = tempfile::tempdir().unwrap();
    let env = [("XDG_STATE_HOME", state.path().to_str().unwrap())];
    let out = run_env(&["-c", &seed, "--dry-run", "fix"], &env);
    assert_eq!(out.code, 0, "{out}");
    let out = run_env(&["journal"], &env);
    assert!(out.stdout.contains("No run has written"), "{out}");

    // The same cluster, for real: the plan was right.
    let out = run_env(&["-c", &seed, "fix", "-y"], &env);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stderr.contains("journal: "), "{out}");
    assert_eq!(run(&["-c", &seed, "check"]).code, 0);
    let out = run_env(&["journal"], &env);
    assert_eq!(out.stdout.lines().count(), 1, "{out}");
    assert!(out.stdout.contains("fix.rhai"), "{out}");
    let out = run_env(&["journal", "--last"], &env);
    assert_eq!(out.code, 0, "{out}");
    // What ran, against which node, and how it ended; then each write.
    let head = out.stdout.lines().next().unwrap_or_default();
    assert!(
        head.contains("fix.rhai")
            && head.contains(&format!("-c {seed}"))
            && head.contains("exit 0, ok")
            && head.contains(&format!("slotsmith -c {seed} fix -y")),
        "{out}"
    );
    assert!(out.stdout.contains("MIGRATE 127.0.0.1"), "{out}");
    assert!(
        out.stdout.contains("user:loadtest_user_33:reservations"),
        "{out}"
    );
    assert!(out.stdout.contains("CLUSTER SETSLOT 5519 NODE"), "{out}");
    assert!(
        out.stdout.lines().skip(2).all(|l| l.ends_with("-> ok")),
        "{out}"
    );
}

on_both_servers!(a_while_loop_runbook_ends_the_same_in_a_dry_run_and_live);
fn a_while_loop_runbook_ends_the_same_in_a_dry_run_and_live(server: Server) {
    let tc = TestCluster::with(server, |s| {
        s.masters = 3;
        s.replicas = 0;
        s.empty = 1;
        s.keys = 3000;
    });
    let seed = tc.seed();
    let p = tc.ports();

    // A rebalance in a dry run: a JSON plan, nothing changed.
    let before = fingerprint(&tc, None);
    let out = run(&[
        "-c",
        &seed,
        "--dry-run",
        "--json",
        "rebalance",
        "--use-empty-masters",
    ]);
    assert_eq!(out.code, 0, "{out}");
    let doc: Value = serde_json::from_str(&out.stdout).expect("one JSON document");
    assert_eq!(doc["dry_run"], true);
    assert_eq!(doc["summary"]["slots_moved"], 4096, "{}", doc["summary"]);
    let commands = doc["commands"].as_array().expect("commands");
    let sent = |start: &str| {
        commands
            .iter()
            .filter(|c| c["command"].as_str().unwrap().starts_with(start))
            .count()
    };
    if server.atomic() {
        // One CLUSTER MIGRATESLOTS per source; the server moves the keys.
        assert_eq!(sent("CLUSTER MIGRATESLOTS"), 3, "{}", out.stdout);
        assert_eq!(sent("MIGRATE"), 0, "{}", out.stdout);
    } else {
        assert!(sent("CLUSTER SETSLOT") > 0, "{}", out.stdout);
        assert!(sent("MIGRATE") > 0, "{}", out.stdout);
    }
    assert_eq!(
        fingerprint(&tc, None),
        before,
        "a dry run changed the cluster"
    );

    let (src, dst) = (format!("127.0.0.1:{}", p[0]), format!("127.0.0.1:{}", p[3]));
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join("drain-slot.rhai");
    std::fs::write(
        &book,
        r#"
        let src = node(args[0]);
        let dst = node(args[1]);
        // The busiest slot of the source.
        let counts = keys_per_slot(src);
        let s = 0; let most = 0;
        for k in counts.keys() { if counts[k] > most { most = counts[k]; s = parse_int(k); } }
        setslot(dst, s, "importing", src);
        setslot(src, s, "migrating", dst);
        let rounds = 0;
        while countkeysinslot(src, s) > 0 {
            migrate(src, dst, getkeysinslot(src, s, 1));
            rounds += 1;
        }
        setslot_everywhere(s, dst);
        #{slot: s, rounds: rounds, src: countkeysinslot(src, s), dst: countkeysinslot(dst, s), owner: owner(s).addr}
        "#,
    )
    .unwrap();
    let b = book.to_str().unwrap();
    let dry = run(&["-c", &seed, "--dry-run", "--json", "run", b, &src, &dst]);
    assert_eq!(dry.code, 0, "{dry}");
    let dry: Value = serde_json::from_str(&dry.stdout).expect("JSON");
    let planned = dry["result"].clone();
    assert_eq!(planned["src"], 0, "{dry}");
    assert!(planned["dst"].as_u64().unwrap() >= 1, "{dry}");
    assert_eq!(planned["owner"], dst.as_str());
    assert_eq!(dry["summary"]["slots_moved"], 1);
    let slot = planned["slot"].as_u64().unwrap().to_string();
    assert_eq!(
        tc.redis_cli(p[3], &["CLUSTER", "COUNTKEYSINSLOT", &slot])
            .trim(),
        "0",
        "dry run moved keys"
    );

    let live = run(&["-c", &seed, "--json", "run", b, &src, &dst]);
    assert_eq!(live.code, 0, "{live}");
    let live: Value = serde_json::from_str(&live.stdout).expect("JSON");
    assert_eq!(
        live, planned,
        "the dry run and the live run ended differently"
    );
    assert_eq!(
        tc.redis_cli(p[3], &["CLUSTER", "COUNTKEYSINSLOT", &slot])
            .trim(),
        planned["dst"].to_string()
    );
    assert_eq!(run(&["-c", &seed, "check"]).code, 0);
}
