//! Plans kept for later: `apply` of a plan saved with `--dry-run --json` carries it out
//! only on the cluster it was made on, and names what changed otherwise.

use crate::support::{
    assert_check_clean, assert_lab_keys, fingerprint, run, slots_of, Server, TestCluster,
};

fn addr(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

on_both_servers!(apply_refuses_a_changed_cluster_and_carries_out_an_unchanged_one);
fn apply_refuses_a_changed_cluster_and_carries_out_an_unchanged_one(server: Server) {
    let tc = TestCluster::start(server, 2000);
    let seed = tc.seed();
    let ports = tc.ports();
    let (m0, m1, empty) = (ports[0], ports[1], ports[6]);
    let dir = tempfile::tempdir().unwrap();
    let save = |name: &str| {
        let out = run(&[
            "-c",
            &seed,
            "--dry-run",
            "--json",
            "reshard",
            "--from",
            "all",
            "--to",
            &addr(empty),
            "--slots",
            "30",
            "-y",
        ]);
        assert_eq!(out.code, 0, "{out}");
        let file = dir.path().join(name);
        std::fs::write(&file, &out.stdout).unwrap();
        file.to_str().unwrap().to_string()
    };

    // A plan, then a manual reshard of three of its slots: the plan is refused, every
    // change named, nothing written.
    let plan = save("plan.json");
    let out = run(&[
        "-c",
        &seed,
        "-y",
        "reshard",
        "--from",
        &addr(m0),
        "--to",
        &addr(m1),
        "--slots",
        "3",
    ]);
    assert_eq!(out.code, 0, "{out}");
    let before = fingerprint(&tc, None);
    let out = run(&["-c", &seed, "-y", "apply", &plan]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stdout.contains("changed since the plan was made"),
        "{out}"
    );
    let line = format!("slots 0-2: owned by {} then, by {} now", addr(m0), addr(m1));
    assert!(out.stdout.contains(&line), "{out}");
    assert!(out.stdout.contains("Nothing was written"), "{out}");
    assert_eq!(fingerprint(&tc, None), before, "a refused apply wrote");
    assert_eq!(slots_of(&tc, empty), 0);

    // A plan of the cluster as it is now is carried out.
    let plan = save("again.json");
    let out = run(&["-c", &seed, "-y", "apply", &plan]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("[OK]"), "{out}");
    assert_eq!(slots_of(&tc, empty), 30);
    assert_check_clean(&tc);
    assert_lab_keys(&tc, 2000, 2000, 7);

    // A file that is not a saved plan: exit 2, one sentence.
    let out = run(&["-c", &seed, "-y", "apply", "/nonexistent/plan.json"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains("cannot read /nonexistent/plan.json"),
        "{out}"
    );
}
