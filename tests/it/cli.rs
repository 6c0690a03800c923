//! The command line as scripts declare it: each command's help from its script with
//! the global options under their own heading, one-sentence refusals of bad values
//! that leave the cluster as it was, a runbook on the script path as a command with
//! typed options, shell completion, and redis-cli's spellings.

use crate::support::{assert_check_clean, fingerprint, run, Output, Server, TestCluster};

/// A refusal of the operator's input: exit 2, the words, no script file or line, no
/// panic.
fn assert_usage(out: &Output, words: &str) {
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains(words), "expected \"{words}\" in: {out}");
    assert!(!out.stderr.contains(".rhai:"), "a script line: {out}");
    assert!(!out.stderr.contains("panicked"), "{out}");
}

/// Where `needle` starts in `text`, or a failure naming both.
fn at(text: &str, needle: &str) -> usize {
    text.find(needle)
        .unwrap_or_else(|| panic!("no \"{needle}\" in:\n{text}"))
}

#[test]
fn each_command_shows_its_own_options_first_then_the_global_ones() {
    for (cmd, own, from_script) in [
        (
            "fix",
            "--replace",
            "Overwrite a key that exists on both sides with different values",
        ),
        (
            "rebalance",
            "--use-empty-masters",
            "Give masters without slots their share too",
        ),
    ] {
        let out = run(&[cmd, "--help"]);
        assert_eq!(out.code, 0, "{out}");
        let text = &out.stdout;
        let own_at = at(text, own);
        at(text, from_script);
        let global = at(text, "Global options:");
        assert!(
            own_at < global,
            "{cmd}: its own options come first:\n{text}"
        );
        assert!(at(text, "--cluster <HOST:PORT>") > global, "{text}");
        assert!(at(text, "--pipeline <N>") < global, "{text}");
    }
    // fix's owner rule is in its help.
    let out = run(&["fix", "--help"]);
    assert!(out.stdout.contains("Owner rule:"), "{out}");
}

/// A runbook with a declaration: one node option, one int option with a range, one
/// flag; it prints the type of each value it gets.
const RUNBOOK: &str = r#"
// say-options: what main(opts) receives.
const COMMAND = #{
    summary: "Print the type of each option",
    options: [
        #{name: "to", type: "node", required: true, help: "The node to name"},
        #{name: "batch", type: "int", min: 1, max: 10, default_value: 3, help: "Slots at a time"},
        #{name: "loud", type: "flag", help: "Say it twice"},
    ],
};

fn main(o) {
    print(`to: ${type_of(o.to)} ${o.to.addr}`);
    print(`batch: ${type_of(o.batch)} ${o.batch}`);
    print(`loud: ${type_of(o.loud)} ${o.loud}`);
}
"#;

/// A script named like a built-in command: not a command.
const SHADOW: &str = r#"
const COMMAND = #{summary: "Not the lab"};
fn main(o) { print("shadow ran"); }
"#;

fn runbook_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("say-options.rhai"), RUNBOOK).unwrap();
    std::fs::write(dir.path().join("lab.rhai"), SHADOW).unwrap();
    dir
}

#[test]
fn a_runbook_on_the_script_path_is_a_command_with_its_own_help() {
    let dir = runbook_dir();
    let d = dir.path().to_str().unwrap();
    let out = run(&["--scripts", d, "--help"]);
    assert_eq!(out.code, 0, "{out}");
    let heading = at(&out.stdout, "Runbooks (scripts on the script path):");
    assert!(
        at(&out.stdout, "say-options") > heading,
        "listed under its heading: {out}"
    );
    assert!(
        out.stdout.contains("Print the type of each option"),
        "{out}"
    );

    let out = run(&["--scripts", d, "say-options", "--help"]);
    assert_eq!(out.code, 0, "{out}");
    for words in [
        "--to <NODE>",
        "The node to name",
        "--batch <N>",
        "[default: 3]",
        "--loud",
        "Global options:",
    ] {
        assert!(out.stdout.contains(words), "no \"{words}\" in {out}");
    }

    // Values that cannot be: exit 2 before any connection.
    let out = run(&[
        "--scripts",
        d,
        "say-options",
        "--to",
        "x:1",
        "--batch",
        "11",
    ]);
    assert_usage(&out, "--batch");
    assert!(out.stderr.contains("11 is out of range"), "{out}");
    let out = run(&["--scripts", d, "say-options"]);
    assert_usage(&out, "--to <NODE>");

    // The same script by path: its own help, its own refusals.
    let file = dir.path().join("say-options.rhai");
    let out = run(&["run", file.to_str().unwrap(), "--help"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("--batch <N>"), "{out}");
    let out = run(&["run", file.to_str().unwrap(), "--to", "x:1", "--batch", "0"]);
    assert_usage(&out, "0 is out of range");

    // An option spelled like a global one cannot be: one sentence, not a crash.
    let clash = dir.path().join("clash.rhai");
    std::fs::write(
        &clash,
        "const COMMAND = #{summary: \"x\", options: [#{name: \"timeout\", type: \"int\"}]};\nfn main(o) { }\n",
    )
    .unwrap();
    // (The sentence names the script: the mistake is in it, not in the command line.)
    for args in [
        vec!["run", clash.to_str().unwrap(), "--timeout", "5"],
        vec!["--scripts", d, "clash", "--timeout", "5"],
    ] {
        let out = run(&args);
        assert_eq!(out.code, 2, "{out}");
        assert!(
            out.stderr
                .contains("its option --timeout has the name of a global option"),
            "{out}"
        );
        assert!(!out.stderr.contains("panicked"), "{out}");
    }
    std::fs::remove_file(&clash).unwrap();

    // The built-in `lab` is not shadowed; the list says why the script is no command.
    let out = run(&["--scripts", d, "lab", "--help"]);
    assert!(out.stdout.contains("lab cluster"), "{out}");
    let out = run(&["--scripts", d, "scripts", "list"]);
    assert!(
        out.stdout
            .contains("not a command: `lab` is a built-in command"),
        "{out}"
    );
    assert!(out.stdout.contains("say-options"), "{out}");
}

#[test]
fn bash_completes_commands_and_runbooks() {
    let dir = runbook_dir();
    let d = dir.path().to_str().unwrap();
    let out = run(&["--scripts", d, "completions", "bash"]);
    assert_eq!(out.code, 0, "{out}");
    let file = dir.path().join("slotsmith.bash");
    std::fs::write(&file, &out.stdout).unwrap();
    let complete = |word: &str| -> String {
        let script = format!(
            "source {}\nCOMP_WORDS=(slotsmith {word}); COMP_CWORD=1; COMP_LINE='slotsmith {word}'; COMP_POINT=${{#COMP_LINE}}\n_slotsmith slotsmith {word} slotsmith\necho \"${{COMPREPLY[@]}}\"",
            file.display()
        );
        let o = std::process::Command::new("bash")
            .args(["-c", &script])
            .output()
            .expect("bash runs");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8_lossy(&o.stdout).trim().to_string()
    };
    assert_eq!(complete("reb"), "rebalance");
    assert_eq!(complete("say"), "say-options");
}

#[test]
fn the_man_page_names_every_command() {
    let out = run(&["man"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.starts_with(".ie"), "roff: {out}");
    for cmd in ["fix", "rebalance", "reshard", "completions"] {
        assert!(out.stdout.contains(cmd), "no {cmd} in the man page");
    }
    let dir = tempfile::tempdir().unwrap();
    let out = run(&["man", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out}");
    for page in ["slotsmith.1", "slotsmith-fix.1", "slotsmith-rebalance.1"] {
        assert!(dir.path().join(page).is_file(), "no {page}");
    }
}

on_both_servers!(bad_values_are_one_sentence_and_change_nothing);
fn bad_values_are_one_sentence_and_change_nothing(server: Server) {
    let tc = TestCluster::with(server, |s| {
        s.masters = 3;
        s.replicas = 0;
        s.empty = 1;
        s.keys = 1000;
    });
    let seed = tc.seed();
    let before = fingerprint(&tc, None);
    let target = format!("127.0.0.1:{}", tc.ports()[3]);
    for (args, words) in [
        (vec!["rebalance", "--threshold", "abc"], "--threshold"),
        (vec!["rebalance", "--weight", "nonsense"], "--weight"),
        (
            vec!["reshard", "--from", "all", "--to", &target, "--slots", "0"],
            "--slots",
        ),
        (
            vec![
                "reshard",
                "--from",
                "127.0.0.1:9",
                "--to",
                &target,
                "--slots",
                "5",
            ],
            "--from 127.0.0.1:9: no node at 127.0.0.1:9",
        ),
        (vec!["complete", "16384"], "slot 16384 is out of range"),
        (vec!["cancel", "abc"], "\"abc\" is not a slot number"),
        (vec!["fix", "--wait", "-1"], "--wait"),
    ] {
        let mut v = vec!["-c", seed.as_str(), "-y"];
        v.extend_from_slice(&args);
        let out = run(&v);
        assert_usage(&out, words);
    }
    assert_eq!(
        fingerprint(&tc, None),
        before,
        "a refused command changed the cluster"
    );

    // The runbook gets typed values, the node resolved to its node map.
    let dir = runbook_dir();
    let d = dir.path().to_str().unwrap();
    let out = run(&[
        "--scripts",
        d,
        "-c",
        &seed,
        "say-options",
        "--to",
        &target,
        "--batch",
        "5",
        "--loud",
    ]);
    assert_eq!(out.code, 0, "{out}");
    for line in [
        format!("to: map {target}"),
        "batch: i64 5".into(),
        "loud: bool true".into(),
    ] {
        assert!(out.stdout.contains(&line), "no \"{line}\" in {out}");
    }
    let out = run(&[
        "--scripts",
        d,
        "-c",
        &seed,
        "say-options",
        "--to",
        "127.0.0.1:9",
    ]);
    assert_usage(&out, "--to 127.0.0.1:9: no node at 127.0.0.1:9");

    // The REPL's `:run` parses a script's declaration the same way.
    let mut child = crate::support::bin()
        .args(["-c", &seed, "repl"])
        .env("XDG_STATE_HOME", dir.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("repl starts");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin
            .write_all(b":run complete 99999\n:run check\n")
            .unwrap();
    }
    let o = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr),
    );
    assert!(
        stderr.contains("slot 99999 is out of range: slots are 0 to 16383"),
        "{stderr}"
    );
    assert!(!stderr.contains("error: error"), "{stderr}");
    assert!(stdout.contains("[OK] All 16384 slots covered."), "{stdout}");
    assert_eq!(o.status.code(), Some(1), "a failed statement: exit 1");

    // As a redis-cli user types it: the cluster as a positional, redis-cli's spellings.
    let out = run(&["check", &seed]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout.contains("[OK] All 16384 slots covered."),
        "{out}"
    );
    let out = run(&["check", &seed, "-c", "127.0.0.1:9"]);
    assert_usage(&out, "the cluster is named twice");
    let out = run(&[
        "rebalance",
        &seed,
        "--cluster-use-empty-masters",
        "--cluster-yes",
        "--cluster-pipeline",
        "50",
        "--cluster-threshold",
        "1",
    ]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("[OK]"), "{out}");
    let slots = crate::support::slots_of(&tc, tc.ports()[3]);
    assert_eq!(slots, 4096, "the empty master got its share");
    assert_check_clean(&tc);
    crate::support::assert_lab_keys(&tc, 1000, 1000, 97);
}
