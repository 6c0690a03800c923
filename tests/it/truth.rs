//! Security and truth, tried as a new user and as an attacker would: only the code the
//! operator names runs, every write is on the record, an interruption at a prompt
//! means no, and what is printed (dry runs, refusals, key names, JSON) is true.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use slotsmith::cluster::slot::key_in_slot;

use crate::pty::Terminal;
use crate::support::{fingerprint, run_in, Output, Server, TestCluster};

/// Runs with their own state and config directories (journals, user scripts).
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        Home {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn env(&self) -> Vec<(String, String)> {
        vec![
            (
                "XDG_STATE_HOME".into(),
                self.path().join("state").display().to_string(),
            ),
            (
                "XDG_CONFIG_HOME".into(),
                self.path().join("config").display().to_string(),
            ),
            ("SLOTSMITH_PATH".into(), String::new()),
        ]
    }

    /// `slotsmith ARGS` from the working directory `cwd` (else this home).
    fn run_at(&self, cwd: &Path, args: &[&str]) -> Output {
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run_in(Some(cwd), args, &env)
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_at(self.path(), args)
    }

    /// `slotsmith ARGS` with `input` on its stdin (a piped REPL), and `extra` env.
    fn run_piped(&self, args: &[&str], extra: &[(&str, &str)], input: &[u8]) -> Output {
        crate::support::ss_bare()
            .args(args)
            .envs(self.env())
            .envs(extra.iter().copied())
            .stdin(input)
            .run()
    }
}

/// One sentence on stderr, no script location (`file.rhai:12:5`).
fn one_sentence(out: &Output) {
    assert_eq!(out.stderr.trim().lines().count(), 1, "one sentence: {out}");
    assert!(!has_location(&out.stderr), "no script location: {out}");
}

/// Whether text holds a script location, `name.rhai:LINE`.
fn has_location(text: &str) -> bool {
    text.match_indices(".rhai:")
        .any(|(i, m)| text[i + m.len()..].starts_with(|c: char| c.is_ascii_digit()))
}

on_both_servers!(only_named_code_runs_and_every_write_is_on_the_record);
fn only_named_code_runs_and_every_write_is_on_the_record(server: Server) {
    let tc = TestCluster::with(server, |s| {
        s.masters = 3;
        s.replicas = 0;
        s.empty = 1;
        s.keys = 2000;
    });
    let seed = tc.seed();
    let home = Home::new();
    let work = home.path().join("work");
    std::fs::create_dir_all(work.join("lib")).unwrap();

    // 1. A file named like a command, or like a bundled module, where the operator
    // stands is never run; it runs when named as a path.
    std::fs::write(work.join("check"), "print(\"not the bundled check\");\n").unwrap();
    std::fs::write(
        work.join("lib/plan.rhai"),
        "fn join(a, b) { \"hijacked\" }\n",
    )
    .unwrap();
    let out = home.run_at(&work, &["-c", &seed, "check"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        !out.stdout.contains("not the bundled check")
            && out.stdout.contains("[OK] All 16384 slots covered."),
        "{out}"
    );
    let out = home.run_at(&work, &["-c", &seed, "run", "./check"]);
    assert!(out.stdout.contains("not the bundled check"), "{out}");
    std::fs::write(
        work.join("uses-plan.rhai"),
        "import \"lib/plan\" as pl;\nprint(pl::join([\"4\", \"2\"], \"\"));\n",
    )
    .unwrap();
    let out = home.run_at(&work, &["-c", &seed, "run", "./uses-plan.rhai"]);
    assert_eq!(out.code, 0, "{out}");
    assert_eq!(out.stdout.trim(), "42", "the bundled lib/plan: {out}");
    // 2. Imports are names, never paths; nothing of the file shows.
    std::fs::write(work.join("etc.rhai"), "import \"/etc/hostname\" as h;\n").unwrap();
    let out = home.run_at(&work, &["-c", &seed, "run", "./etc.rhai"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .contains("import \"/etc/hostname\": an import names a script on the script path"),
        "{out}"
    );
    let hostname = std::fs::read_to_string("/etc/hostname").unwrap_or_default();
    if !hostname.trim().is_empty() {
        assert!(!out.stderr.contains(hostname.trim()), "{out}");
    }
    // 2. Scripts others can write are refused, unless allowed.
    let shared = home.path().join("shared");
    std::fs::create_dir_all(&shared).unwrap();
    std::fs::write(shared.join("hello.rhai"), "print(\"hello\");\n").unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o777)).unwrap();
    let dir = shared.to_str().unwrap();
    let out = home.run(&["-c", &seed, "--scripts", dir, "run", "hello"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains("can be written by other users")
            && out.stderr.contains("--allow-unsafe-scripts"),
        "{out}"
    );
    one_sentence(&out);
    let out = home.run(&[
        "-c",
        &seed,
        "--scripts",
        dir,
        "--allow-unsafe-scripts",
        "run",
        "hello",
    ]);
    assert_eq!(out.stdout.trim(), "hello", "{out}");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(
        shared.join("hello.rhai"),
        std::fs::Permissions::from_mode(0o666),
    )
    .unwrap();
    let out = home.run(&["-c", &seed, "--scripts", dir, "run", "hello"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr
            .contains("hello.rhai can be written by other users"),
        "{out}"
    );

    // ... nor a planted module below a safe script directory, nor a file beside a
    // script named by a relative path in a directory others can write to.
    let scripts = home.path().join("scripts");
    std::fs::create_dir_all(scripts.join("lib")).unwrap();
    std::fs::write(scripts.join("lib/slot.rhai"), "fn planted() {}\n").unwrap();
    std::fs::set_permissions(scripts.join("lib"), std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = home.run(&["-c", &seed, "--scripts", scripts.to_str().unwrap(), "fix"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains("lib can be written by other users"),
        "{out}"
    );
    let open_dir = home.path().join("open");
    std::fs::create_dir_all(&open_dir).unwrap();
    std::fs::write(open_dir.join("x.rhai"), "import \"helper\" as h;\n").unwrap();
    std::fs::write(open_dir.join("helper.rhai"), "print(\"PLANTED\");\n").unwrap();
    std::fs::set_permissions(&open_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let out = home.run_at(&open_dir, &["-c", &seed, "run", "x.rhai"]);
    assert!(!out.stdout.contains("PLANTED"), "{out}");
    assert!(
        out.stderr.contains("can be written by other users"),
        "{out}"
    );
    // The REPL's :edit never writes over a script it refuses to run.
    let mine = home.path().join("config/slotsmith/scripts/mine.rhai");
    std::fs::create_dir_all(mine.parent().unwrap()).unwrap();
    std::fs::write(&mine, "print(\"mine\");\n").unwrap();
    std::fs::set_permissions(&mine, std::fs::Permissions::from_mode(0o666)).unwrap();
    let edited = home.run_piped(
        &["-c", &seed, "repl"],
        &[("EDITOR", "true")],
        b":edit mine\n",
    );
    assert_eq!(
        std::fs::read_to_string(&mine).unwrap_or_default(),
        "print(\"mine\");\n",
        "{edited}"
    );
    // A script slotsmith writes for you runs, whatever the umask.
    let out = home.run(&["scripts", "eject", "reshard"]);
    assert_eq!(out.code, 0, "{out}");
    let ejected = home.path().join("config/slotsmith/scripts/reshard.rhai");
    assert_eq!(
        std::fs::metadata(&ejected).unwrap().permissions().mode() & 0o777,
        0o644
    );

    // 3. A password on the command line is warned about (as redis-cli does), and
    // --insecure without TLS is refused.
    let out = home.run(&["-a", "s3cret", "api"]);
    assert!(
        out.stderr.contains("Warning: Using a password with '-a'"),
        "{out}"
    );
    let out = home.run(&["-ya", "s3cret", "api"]);
    assert!(
        out.stderr.contains("Warning: Using a password with '-a'"),
        "{out}"
    );
    let out = home.run(&["-a", "s3cret", "--no-auth-warning", "api"]);
    assert!(!out.stderr.contains("Warning"), "{out}");
    let out = home.run(&["-c", &seed, "--insecure", "check"]);
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains("--insecure") && out.stderr.contains("--tls"),
        "{out}"
    );
    one_sentence(&out);

    // 4. REPL writes are journaled: seed, command line, outcome and exit code.
    let ports = tc.ports();
    let (from, to) = (ports[0], ports[3]);
    let slot = 0;
    let statement = format!("move_slot({slot}, \"127.0.0.1:{from}\", \"127.0.0.1:{to}\")\n");
    let repl = home.run_piped(&["-c", &seed, "-y", "repl"], &[], statement.as_bytes());
    assert_eq!(repl.code, 0, "{repl}");
    let out = home.run(&["--json", "journal"]);
    let doc: Value = serde_json::from_str(&out.stdout).expect("journal --json");
    assert_eq!(doc["schema_version"], 1);
    let runs = doc["runs"].as_array().expect("runs");
    let r = runs
        .iter()
        .find(|r| r["script"] == "repl")
        .expect("the REPL's run");
    assert_eq!(r["seed"], seed.as_str(), "{r}");
    assert!(
        r["command"]
            .as_str()
            .unwrap()
            .ends_with(&format!("-c {seed} -y repl")),
        "{r}"
    );
    assert_eq!(r["outcome"], "ok");
    assert_eq!(r["exit_code"], 0);
    assert!(r["writes"].as_u64().unwrap() >= 3, "{r}");
    let run_id = r["run"].as_str().unwrap();
    let out = home.run(&["journal", "show", run_id]);
    assert!(
        out.stdout.contains(&format!("CLUSTER SETSLOT {slot} NODE")),
        "{out}"
    );
    // 2. The journal is the operator's own.
    let file = Path::new(r["file"].as_str().unwrap());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(file), 0o600, "journal file");
    assert_eq!(mode(file.parent().unwrap()), 0o700, "journal directory");

    // 5. Ctrl+C at a confirmation prompt means no: exit 130 at once, nothing changed.
    let before = fingerprint(&tc, None);
    let mut t = Terminal::spawn(
        &["-c", &seed, "rebalance", "--use-empty-masters"],
        home.path(),
        &[],
    );
    t.expect("[y/N]");
    t.send("\x03");
    assert_eq!(
        t.wait_exit(Duration::from_secs(5)),
        Some(130),
        "{}",
        t.screen()
    );
    assert!(!t.screen().contains("finishing"), "{}", t.screen());
    assert_eq!(
        fingerprint(&tc, None),
        before,
        "Ctrl+C at the prompt changed the cluster"
    );

    // 10. Refusals and usage errors are one sentence, without script internals.
    let out = home.run(&["-c", &seed, "cancel", "100"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("slot 100 is not open"), "{out}");
    one_sentence(&out);
    let out = home.run(&["-c", &seed, "rebalance", "--use-empty-masters"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("pass --yes"), "{out}");
    assert!(!has_location(&out.stderr), "{out}");
    // 15. ... and with --json it is one JSON document too.
    let out = home.run(&["-c", &seed, "--json", "rebalance", "--use-empty-masters"]);
    assert_eq!(out.code, 1, "{out}");
    let doc: Value = serde_json::from_str(&out.stdout).expect("one JSON document");
    assert_eq!(doc["schema_version"], 1, "{doc}");
    assert_eq!(doc["exit_code"], 1, "{doc}");
    assert!(doc["error"].as_str().unwrap().contains("--yes"), "{doc}");
    let out = home.run(&["-c", "127.0.0.1:notaport", "--json", "check"]);
    assert_eq!(out.code, 2, "{out}");
    let doc: Value = serde_json::from_str(&out.stdout).expect("one JSON document");
    assert_eq!(doc["exit_code"], 2, "{doc}");
    // A typo in the REPL gets the closest names.
    let out = home.run_piped(&["-c", &seed, "repl"], &[], b"nodez()\n");
    assert!(
        out.stderr.contains("did you mean node(), nodes()?"),
        "{out}"
    );
}

on_both_servers!(what_is_printed_is_true);
fn what_is_printed_is_true(server: Server) {
    let tc = TestCluster::with(server, |s| {
        s.masters = 3;
        s.replicas = 1;
        s.empty = 1;
        s.keys = 2000;
    });
    let seed = tc.seed();
    let home = Home::new();
    let ports = tc.ports();
    let (a, e) = (ports[1], *ports.last().unwrap());

    // 13. Key names that would take over the terminal, or hide among spaces.
    let slot = 5519u16;
    let tag = key_in_slot(slot, "k");
    let nasty: Vec<Vec<u8>> = vec![
        format!("{{{tag}}}\x1b[31mred\x1b]0;title\x07").into_bytes(),
        format!("{{{tag}}}two\nlines").into_bytes(),
        format!("{{{tag}}} with  spaces ").into_bytes(),
        [format!("{{{tag}}}").into_bytes(), vec![0xff, 0xfe]].concat(),
    ];
    let client = redis::Client::open(format!("redis://127.0.0.1:{a}")).unwrap();
    let mut con = client.get_connection().unwrap();
    for k in &nasty {
        let _: () = redis::cmd("SET")
            .arg(k.as_slice())
            .arg("v")
            .query(&mut con)
            .unwrap();
    }
    let id = |p: u16| tc.redis_cli(p, &["CLUSTER", "MYID"]).trim().to_string();
    tc.redis_cli(
        e,
        &["CLUSTER", "SETSLOT", &slot.to_string(), "IMPORTING", &id(a)],
    );
    tc.redis_cli(
        a,
        &["CLUSTER", "SETSLOT", &slot.to_string(), "MIGRATING", &id(e)],
    );

    // 7. A dry run says "would", and its plan shows the names quoted, never raw.
    let out = home.run(&["-c", &seed, "--dry-run", "fix"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout.contains(&format!(
            "[PLAN] slot {slot} would be owned by 127.0.0.1:{e}"
        )) && out.stdout.contains("[PLAN] The cluster would be healthy")
            && !out.stdout.contains("[OK] slot"),
        "{out}"
    );
    assert!(
        !out.stdout.contains('\x1b'),
        "a raw escape reached the terminal: {out}"
    );
    let quoted = [
        "\\x1b[31mred\\x1b]0;title\\a\"",
        "two\\nlines\"",
        " with  spaces \"",
        "\\xff\\xfe\"",
    ];
    assert!(
        quoted.iter().filter(|q| out.stdout.contains(*q)).count() >= 2,
        "the plan's key names, quoted: {out}"
    );

    // 14. A snapshot keeps every name exactly.
    let snap = home.path().join("snap.json");
    let out = home.run(&["-c", &seed, "snapshot", "save", snap.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out}");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&snap).unwrap()).unwrap();
    let stored: Vec<Value> = doc["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["slots"][slot.to_string()].as_array().cloned())
        .flatten()
        .collect();
    let want_hex: String = nasty[3].iter().map(|b| format!("{b:02x}")).collect();
    assert!(
        stored.iter().any(|k| k["hex"] == want_hex.as_str()),
        "{stored:?}"
    );
    // ... and a read-only run on it does not claim it would write nothing.
    let out = home.run(&["--snapshot", snap.to_str().unwrap(), "check"]);
    assert!(!out.stdout.contains("would write nothing"), "{out}");

    // 13. The live fix names the keys the same way, and settles them all.
    let out = home.run(&["-c", &seed, "fix", "-y"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(!out.stdout.contains('\x1b'), "{out}");
    let client = redis::cluster::ClusterClient::new(vec![format!("redis://{seed}")]).unwrap();
    let mut con = client.get_connection().unwrap();
    for k in &nasty {
        let v: Option<String> = redis::cmd("GET").arg(k.as_slice()).query(&mut con).unwrap();
        assert_eq!(v.as_deref(), Some("v"), "{}", String::from_utf8_lossy(k));
    }

    let out = home.run(&["-c", &seed, "--dry-run", "rebalance", "--use-empty-masters"]);
    assert!(
        out.stdout.contains(">>> Would move") && !out.stdout.contains(">>> Moved"),
        "{out}"
    );

    // 8. A runbook's dry run ends as the live run would: the replicas follow.
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/move-hot-slot.rhai");
    let out = home.run(&["-c", &seed, "--dry-run", "run", example]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("[PLAN] slot"), "{out}");

    // 12. -v shows each command sent and the phases; -q only results and errors.
    let out = home.run(&[
        "-c",
        &seed,
        "-v",
        "--dry-run",
        "rebalance",
        "--use-empty-masters",
    ]);
    assert!(
        out.stderr.contains("CLUSTER NODES") && out.stderr.contains("-- plan"),
        "{out}"
    );
    let out = home.run(&["-c", &seed, "-q", "rebalance", "--use-empty-masters", "-y"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stderr.trim().is_empty(), "-q: {out}");
}

/// `--version` names the release, the commit the binary was built from and the date.
#[test]
fn version_names_the_commit_and_the_build_date() {
    let out = crate::support::run(&["--version"]);
    assert_eq!(out.code, 0, "{out}");
    let line = out.stdout.trim();
    assert!(
        line.starts_with(&format!("slotsmith {} (", env!("CARGO_PKG_VERSION"))),
        "{line}"
    );
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("git runs");
    // Built outside a git checkout, the binary says so.
    let head = match String::from_utf8_lossy(&head.stdout).trim() {
        "" => "unknown commit".to_string(),
        h => h.to_string(),
    };
    assert!(line.contains(&format!("({head}, built ")), "{line}");
    let date = line
        .rsplit_once("built ")
        .map(|(_, d)| d.trim_end_matches(')'))
        .unwrap_or_default();
    let parts: Vec<&str> = date.split('-').collect();
    assert!(
        parts.len() == 3 && parts.iter().all(|p| p.parse::<u32>().is_ok()),
        "{line}"
    );
}
