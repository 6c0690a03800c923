//! User scripts through `slotsmith run`: reads that match what redis-cli reports,
//! writes that change the cluster, the script path, `import`, and script errors.

use serde_json::Value;

use crate::support::{port_of, run, run_env, Server, TestCluster};

on_both_servers!(a_user_script_reads_what_redis_cli_reads_and_its_setslot_changes_the_cluster);
fn a_user_script_reads_what_redis_cli_reads_and_its_setslot_changes_the_cluster(server: Server) {
    let tc = TestCluster::start(server, 500);
    let seed = tc.seed();
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("look.rhai");
    std::fs::write(
        &script,
        r#"
        let s = slot_of("key:000042");
        let o = owner(s);
        #{
            nodes: nodes().len(),
            masters: masters().len(),
            replicas: replicas_of(o).len(),
            slot: s,
            owner: o.addr,
            count: countkeysinslot(o, s),
            keys: getkeysinslot(o, s, 100),
            state: cluster_info(o.addr).cluster_state,
            args: args,
        }
        "#,
    )
    .unwrap();
    let out = run(&[
        "-c",
        &seed,
        "--json",
        "run",
        script.to_str().unwrap(),
        "one",
        "--two",
    ]);
    assert_eq!(out.code, 0, "{out}");
    let v: Value = serde_json::from_str(&out.stdout).expect("JSON result");
    let port: u16 = port_of(v["owner"].as_str().unwrap());
    let slot = v["slot"].as_u64().unwrap().to_string();
    assert_eq!(
        tc.redis_cli(port, &["CLUSTER", "KEYSLOT", "key:000042"])
            .trim(),
        slot
    );
    assert_eq!(
        v["count"].as_u64().unwrap().to_string(),
        tc.redis_cli(port, &["CLUSTER", "COUNTKEYSINSLOT", &slot])
            .trim()
    );
    let mut cli_keys: Vec<String> = tc
        .redis_cli(port, &["CLUSTER", "GETKEYSINSLOT", &slot, "100"])
        .lines()
        .map(str::to_string)
        .collect();
    let mut keys: Vec<String> = v["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap().to_string())
        .collect();
    cli_keys.sort();
    keys.sort();
    assert!(keys.contains(&"key:000042".to_string()));
    assert_eq!(keys, cli_keys);
    let cli_nodes = tc.redis_cli(port, &["CLUSTER", "NODES"]);
    assert_eq!(
        v["nodes"].as_u64().unwrap() as usize,
        cli_nodes.lines().count()
    );
    assert_eq!(v["masters"], 4);
    assert_eq!(v["replicas"], 1);
    assert_eq!(v["state"], "ok");
    assert_eq!(v["args"], serde_json::json!(["one", "--two"]));

    // setslot through a script changes what the nodes report.
    let src_id = tc.redis_cli(port, &["CLUSTER", "MYID"]).trim().to_string();
    let empty = *tc.ports().last().unwrap();
    let mark = dir.path().join("mark.rhai");
    std::fs::write(
        &mark,
        r#"
        let dst = node(args[0]);
        let src = owner(parse_int(args[1]));
        setslot(dst, parse_int(args[1]), "importing", src);
        "#,
    )
    .unwrap();
    let dst = format!("127.0.0.1:{empty}");
    let out = run(&["-c", &seed, "run", mark.to_str().unwrap(), &dst, &slot]);
    assert_eq!(out.code, 0, "{out}");
    let nodes = tc.redis_cli(empty, &["CLUSTER", "NODES"]);
    assert!(nodes.contains(&format!("[{slot}-<-{src_id}]")), "{nodes}");
    let out = run(&["-c", &seed, "check"]);
    assert_eq!(out.code, 1, "{out}");

    std::fs::write(&mark, r#"setslot(args[0], parse_int(args[1]), "stable");"#).unwrap();
    let out = run(&["-c", &seed, "run", mark.to_str().unwrap(), &dst, &slot]);
    assert_eq!(out.code, 0, "{out}");
    assert!(!tc.redis_cli(empty, &["CLUSTER", "NODES"]).contains("-<-"));
    assert_eq!(run(&["-c", &seed, "check"]).code, 0);

    // A primitive's error names the node and command, and the script can catch it.
    std::fs::write(
        &mark,
        r#"
        try { setslot(args[0], 1, "node", "0123456789abcdef0123456789abcdef01234567"); print("no error"); }
        catch (e) { print(`caught: ${e}`); }
        setslot(args[0], 1, "migrating", args[0]);
        "#,
    )
    .unwrap();
    let out = run(&["-c", &seed, "run", mark.to_str().unwrap(), &dst]);
    assert!(
        out.stdout
            .contains("caught: no node with id 0123456789abcdef0123456789abcdef01234567"),
        "{out}"
    );
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains("CLUSTER SETSLOT 1 MIGRATING") && out.stderr.contains(&dst),
        "{out}"
    );
    assert!(out.stderr.contains("mark.rhai:4:"), "{out}");
}

#[test]
fn script_path_import_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let scripts = dir.path().join("runbooks");
    std::fs::create_dir_all(scripts.join("lib")).unwrap();
    std::fs::write(
        scripts.join("lib/greet.rhai"),
        "fn hello(n) { `hello ${n}` }\nfn boom() { throw \"boom from lib\"; }\n",
    )
    .unwrap();
    std::fs::write(
        scripts.join("hi.rhai"),
        "import \"lib/greet\" as g;\nprint(g::hello(slot_of(\"foo\")));\n",
    )
    .unwrap();
    std::fs::write(
        scripts.join("fails.rhai"),
        "import \"lib/greet\" as g;\n\ng::boom();\n",
    )
    .unwrap();
    std::fs::write(scripts.join("syntax.rhai"), "let a = 1;\nlet b = [1, 2;\n").unwrap();
    let cfg = dir.path().join("config");
    let env = [
        ("XDG_CONFIG_HOME", cfg.to_str().unwrap()),
        ("SLOTSMITH_PATH", ""),
    ];
    let sdir = scripts.to_str().unwrap();

    // By name on the script path, with an import from the same path.
    let out = run_env(&["--scripts", sdir, "run", "hi"], &env);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.stdout.trim(), "hello 12182");
    // The same through SLOTSMITH_PATH.
    let out = run_env(
        &["run", "hi"],
        &[
            ("XDG_CONFIG_HOME", cfg.to_str().unwrap()),
            ("SLOTSMITH_PATH", sdir),
        ],
    );
    assert_eq!(out.stdout.trim(), "hello 12182", "{out}");

    // A thrown error: exit 1, where it was thrown.
    let out = run_env(&["--scripts", sdir, "run", "fails"], &env);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("boom from lib"), "{out}");
    assert!(
        out.stderr.contains("lib/greet") || out.stderr.contains("fails.rhai:3"),
        "{out}"
    );

    // A syntax error: file, line, column and the line itself; exit 2.
    let out = run_env(&["--scripts", sdir, "run", "syntax"], &env);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("syntax.rhai:2:14"), "{out}");
    assert!(out.stderr.contains("let b = [1, 2;"), "{out}");

    // A name that is nowhere.
    let out = run_env(&["--scripts", sdir, "run", "nope"], &env);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("no script named \"nope\""), "{out}");

    // scripts list / show / eject: the ejected, edited copy runs instead of the bundled one.
    let out = run_env(&["--scripts", sdir, "scripts", "list"], &env);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("check") && l.contains("bundled")),
        "{out}"
    );
    assert!(
        out.stdout
            .lines()
            .any(|l| l.starts_with("lib/greet") && l.contains("greet.rhai")),
        "{out}"
    );
    let out = run_env(&["scripts", "show", "check"], &env);
    assert!(out.stdout.contains("check()"), "{out}");
    let out = run_env(&["scripts", "eject", "check"], &env);
    assert_eq!(out.code, 0, "{out}");
    let ejected = cfg.join("slotsmith/scripts/check.rhai");
    assert_eq!(out.stdout.trim(), ejected.to_str().unwrap());
    let text = std::fs::read_to_string(&ejected).unwrap();
    std::fs::write(
        &ejected,
        format!("print(\"edited check\");\nexit(0);\n{text}"),
    )
    .unwrap();
    let out = run_env(&["check"], &env);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.stdout.trim(), "edited check");
    // The operator is told, once, that their copy runs in place of the bundled one
    // (-q hides it); an error in the copy names its full path.
    assert_eq!(
        out.stderr
            .matches(&format!(
                "using your copy {} in place of the bundled check",
                ejected.display()
            ))
            .count(),
        1,
        "{out}"
    );
    let out = run_env(&["-q", "check"], &env);
    assert!(!out.stderr.contains("using your copy"), "{out}");
    std::fs::write(&ejected, format!("let broken = ;\n{text}")).unwrap();
    let out = run_env(&["check"], &env);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains(&format!("{}:1:", ejected.display())),
        "the full path of the broken copy: {out}"
    );
    std::fs::write(
        &ejected,
        format!("print(\"edited check\");\nexit(0);\n{text}"),
    )
    .unwrap();
    let out = run_env(&["scripts", "list"], &env);
    assert!(
        out.stdout.lines().any(|l| l.starts_with("check")
            && l.contains("check.rhai")
            && l.contains("shadows bundled")),
        "{out}"
    );
    let out = run_env(&["scripts", "eject", "check"], &env);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("--force"), "{out}");
}

#[test]
fn api_lists_every_primitive_with_a_doc() {
    let out = run(&["api", "--json"]);
    assert_eq!(out.code, 0, "{out}");
    let doc: Value = serde_json::from_str(&out.stdout).expect("api --json");
    assert_eq!(doc["schema_version"], 1, "{doc}");
    let docs: Vec<Value> = doc["functions"].as_array().expect("functions").clone();
    for d in &docs {
        assert!(
            !d["doc"].as_str().unwrap_or("").trim().is_empty(),
            "no doc: {d}"
        );
    }
    let names: Vec<&str> = docs.iter().filter_map(|d| d["name"].as_str()).collect();
    for want in [
        "nodes",
        "masters",
        "replicas_of",
        "node",
        "owner",
        "countkeysinslot",
        "getkeysinslot",
        "check",
        "slot_of",
        "cluster_info",
        "migrate",
        "setslot",
        "setslot_everywhere",
        "addslots",
        "delslots",
        "command",
        "move_slot",
        "move_slots",
        "move_keys",
        "claim_slot",
        "meet",
        "replicate",
        "forget",
        "reset",
        "failover",
        "set_config",
        "addslots_range",
        "wait_for_join",
        "confirm",
        "info",
        "warn",
        "sleep",
        "wait_until",
        "dry_run",
        "exit",
    ] {
        assert!(names.contains(&want), "{want} missing from `slotsmith api`");
    }
    let out = run(&["api"]);
    assert!(
        out.stdout
            .contains("countkeysinslot(node: Node, slot: int) -> int"),
        "{out}"
    );
}
