//! `slotsmith repl` as an operator meets it: typed into a real terminal (a
//! pseudo-terminal the test drives), and fed through a pipe, against one real lab
//! cluster shared by every scenario of this module.

use std::path::Path;

use crate::pty::{Terminal, WAIT};
use crate::support::{Server, TestCluster};

const PROMPT: &str = "slotsmith> ";

/// What a session of `slotsmith repl` on a terminal adds to [`Terminal`].
trait Repl {
    /// Type one line and wait for the next prompt; what was printed in between.
    fn line(&mut self, text: &str) -> String;
    /// Leave with Ctrl+D and wait for the process to end.
    fn quit(self);
}

impl Repl for Terminal {
    fn line(&mut self, text: &str) -> String {
        self.send(&format!("{text}\r"));
        self.expect(&format!("\n{PROMPT}"))
    }

    fn quit(mut self) {
        self.send("\x04");
        match self.wait_exit(WAIT) {
            Some(0) => {}
            Some(code) => panic!("repl exit code {code}\n{}", self.screen()),
            None => panic!("repl did not end on Ctrl+D:\n{}", self.screen()),
        }
    }
}

/// A REPL on a terminal, at its first prompt.
fn start(seed: &str, state: &Path) -> Terminal {
    start_with(seed, state, &[])
}

/// A REPL session with extra environment variables (`EDITOR`, say).
fn start_with(seed: &str, state: &Path, env: &[(&str, &str)]) -> Terminal {
    let mut t = Terminal::spawn(&["-c", seed, "repl"], state, env);
    t.expect(PROMPT);
    t
}

on_both_servers!(repl_on_a_terminal_and_through_a_pipe);
fn repl_on_a_terminal_and_through_a_pipe(server: Server) {
    let tc = TestCluster::with(server, |s| {
        s.masters = 3;
        s.replicas = 0;
        s.empty = 1;
        s.keys = 100;
    });
    value_kept_across_lines(&tc);
    three_line_function(&tc);
    tab_completes_primitives(&tc);
    error_then_a_working_line(&tc);
    help_lists_the_primitives(&tc);
    ctrl_c_stops_an_evaluation(&tc);
    history_survives_a_restart(&tc);
    piped_statements(&tc);
}

fn state_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("slotsmith-repl-")
        .tempdir()
        .expect("temp dir")
}

fn value_kept_across_lines(tc: &TestCluster) {
    let dir = state_dir();
    let mut t = start(&tc.seed(), dir.path());
    t.line("let kept = 20000 + 1");
    let out = t.line("kept * 3");
    assert!(
        out.contains("\n60003\n"),
        "a variable set on one line is there on the next:\n{out}"
    );
    let out = t.line("let masters_now = masters(); masters_now.len()");
    assert!(out.contains("\n4\n"), "{out}");
    let out = t.line(":nodes");
    assert!(out.contains("ADDR") && out.contains(&tc.seed()), "{out}");
    t.quit();
}

fn three_line_function(tc: &TestCluster) {
    let dir = state_dir();
    let mut t = start(&tc.seed(), dir.path());
    t.send("fn triple(x) {\r");
    t.expect("...> ");
    t.send("  x * 3\r");
    t.expect("...> ");
    t.line("}");
    let out = t.line("triple(11111)");
    assert!(
        out.contains("\n33333\n"),
        "a function defined over three lines is callable on the next:\n{out}"
    );
    // A function can call one defined on an earlier line.
    t.line("fn sextuple(x) { triple(x) * 2 }");
    let out = t.line("sextuple(1001)");
    assert!(out.contains("\n6006\n"), "{out}");
    t.quit();
}

fn tab_completes_primitives(tc: &TestCluster) {
    let dir = state_dir();
    let mut t = start(&tc.seed(), dir.path());
    t.send("countkeysin\t");
    t.expect("countkeysinslot");
    let out = t.line("(owner(0), 0) == countkeysinslot(owner(0), 0)");
    assert!(
        out.contains("\ntrue\n"),
        "the completed name is the primitive:\n{out}"
    );
    // Inside a string, Tab completes a node id (and addresses) from the topology.
    let seed = tc.seed();
    let id = tc
        .states()
        .into_iter()
        .find(|(addr, _)| *addr == seed)
        .and_then(|(_, s)| s.myself().map(|m| m.id.clone()))
        .expect("the seed node's id");
    t.send(&format!("node(\"{}\t", &id[..10]));
    t.expect(&id);
    let out = t.line("\").addr");
    assert!(out.contains(&format!("\n{seed}\n")), "{out}");
    // An imported module's functions complete after `alias::`, and the import lasts.
    t.line("import \"fix\" as fix;");
    t.send("fix::proble\t");
    t.expect("fix::problems");
    let out = t.line("().len()");
    assert!(
        out.contains("\n0\n"),
        "a healthy cluster has no problems:\n{out}"
    );
    t.quit();
}

fn error_then_a_working_line(tc: &TestCluster) {
    let dir = state_dir();
    let mut t = start(&tc.seed(), dir.path());
    let out = t.line("nosuchprimitive(1)");
    assert!(out.contains("Function not found: nosuchprimitive"), "{out}");
    let out = t.line("node(\"10.255.255.1:1\")");
    assert!(out.contains("no node at 10.255.255.1:1"), "{out}");
    let out = t.line("1 + 2 * 3000");
    assert!(
        out.contains("\n6001\n"),
        "the session goes on after an error:\n{out}"
    );
    t.quit();
}

fn help_lists_the_primitives(tc: &TestCluster) {
    let dir = state_dir();
    let mut t = start(&tc.seed(), dir.path());
    let out = t.line(":help");
    for name in [
        "nodes",
        "countkeysinslot",
        "getkeysinslot",
        "move_slots",
        "setslot",
        "confirm",
        ":run",
        ":dry-run",
    ] {
        assert!(
            out.contains(&format!("\n  {name} ")),
            "{name} missing from :help:\n{out}"
        );
    }
    let out = t.line(":help countkeysinslot");
    assert!(
        out.contains("countkeysinslot(node: Node, slot: int) -> int"),
        "{out}"
    );
    t.quit();
}

fn ctrl_c_stops_an_evaluation(tc: &TestCluster) {
    let dir = state_dir();
    let mut t = start(&tc.seed(), dir.path());
    t.send("print(\"looping\"); loop { sleep(20); }\r");
    t.expect("\nlooping\n");
    t.send("\x03");
    t.expect("\ninterrupted\n");
    t.expect(PROMPT);
    // Ctrl+C at the prompt drops the line typed so far.
    t.send("abandoned(\x03");
    t.expect(&format!("\n{PROMPT}"));
    let out = t.line("5 + 5");
    assert!(
        out.contains("\n10\n") && !out.contains("abandoned(5"),
        "{out}"
    );
    t.quit();
}

fn history_survives_a_restart(tc: &TestCluster) {
    let dir = state_dir();
    let mut t = start(&tc.seed(), dir.path());
    t.line("let marker = 776 + 1");
    t.quit();
    let file = dir.path().join("state/slotsmith/history");
    let saved =
        std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert!(saved.contains("let marker = 776 + 1"), "{saved}");

    let mut t = start(&tc.seed(), dir.path());
    // Up-arrow brings the last session's line back.
    t.send("\x1b[A");
    t.expect("let marker = 776 + 1");
    t.line("");
    let out = t.line("marker");
    assert!(out.contains("\n777\n"), "{out}");
    let out = t.line(":history");
    assert!(out.contains("let marker = 776 + 1"), "{out}");
    t.quit();
}

fn piped_statements(tc: &TestCluster) {
    let run = |input: &str| {
        let out = crate::support::ss(tc).arg("repl").stdin(input).run();
        (out.code, out.stdout, out.stderr)
    };
    let (code, stdout, stderr) = run("nodes().len()\n");
    assert_eq!((code, stdout.as_str()), (0, "4\n"), "{stderr}");

    let (code, stdout, stderr) = run(concat!(
        "let total = 0;\n",
        "for m in masters() {\n",
        "    total += m.slots.len();\n",
        "}\n",
        "total\n",
        "nosuchprimitive()\n",
        "getkeysinslot(owner(slot_of(\"key:000001\")), slot_of(\"key:000001\"), 10).contains(\"key:000001\")\n",
    ));
    assert_eq!(
        code, 1,
        "a failed statement makes the exit code 1:\n{stdout}\n{stderr}"
    );
    assert_eq!(stdout, "3\ntrue\n", "{stderr}");
    assert!(
        stderr.contains("Function not found: nosuchprimitive"),
        "{stderr}"
    );
}

on_both_servers!(stdlib_modules_edited_and_extended_from_the_repl);
/// The bundled scripts as modules from the REPL: their documented steps, a changed
/// plan applied, `:edit` (with an editor that appends what the test says) reloading a
/// script or keeping the old one when the edit breaks it, `:show`, and `:save`d
/// functions in a later session and in `slotsmith run`.
fn stdlib_modules_edited_and_extended_from_the_repl(server: Server) {
    let tc = TestCluster::with(server, |s| {
        s.masters = 3;
        s.replicas = 0;
        s.empty = 1;
        s.keys = 200;
    });
    help_shows_module_functions(&tc);
    half_a_rebalance_plan_applied(&tc);
    edit_reloads_or_keeps_the_old_version(&tc);
    saved_functions_in_a_later_session(&tc);
}

fn help_shows_module_functions(tc: &TestCluster) {
    let dir = state_dir();
    let mut t = start(&tc.seed(), dir.path());
    let out = t.line(":help fix::plan");
    assert!(
        out.contains("fix::plan(p, nodes, opts)\n    The steps that settle one problem slot")
            && out.contains("opts.owner replaces the owner rule")
            && out.contains("fix::plan(p)\n    The plan for one problem with the default options"),
        "the doc comments of fix.rhai's plan:\n{out}"
    );
    let out = t.line(":help fix::");
    for f in [
        "fix::problems()",
        "fix::owner(p, nodes)",
        "fix::apply(plan, opts)",
    ] {
        assert!(out.contains(f), "{f} missing from :help fix:::\n{out}");
    }
    assert!(out.contains("Every problem slot, as"), "{out}");
    // The step itself, to read before replacing it, numbered as in fix.rhai.
    let fix = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/stdlib/fix.rhai"))
        .expect("stdlib/fix.rhai");
    let line = fix
        .lines()
        .position(|l| l == "fn owner(p, nodes) {")
        .expect("fn owner in fix.rhai")
        + 1;
    let out = t.line(":show fix::owner");
    assert!(
        out.contains(&format!(
            "{}  /// The master that should own a problem slot, and why",
            line - 1
        )) && out.contains(&format!("{line}  fn owner(p, nodes) {{")),
        "{out}"
    );
    // An alias the session imported works too, and Tab completes after `:help`.
    t.line("import \"rebalance\" as rb;");
    let out = t.line(":help rb::apply");
    assert!(
        out.contains("rb::apply(p, opts)\n    Move the plan's slots."),
        "{out}"
    );
    t.send(":help cancel::pl\t");
    t.expect("cancel::plan");
    let out = t.line("");
    assert!(
        out.contains("cancel::plan(s, opts)\n    What cancelling would do."),
        "{out}"
    );
    let out = t.line(":help nosuch::plan");
    assert!(out.contains("no module named nosuch"), "{out}");
    t.quit();
}

/// Every slot's owner as `port` sees it.
fn owners_seen_by(tc: &TestCluster, port: u16) -> Vec<String> {
    let text = tc.redis_cli(port, &["CLUSTER", "NODES"]);
    let nodes = slotsmith::cluster::topology::parse_cluster_nodes(&text).expect("CLUSTER NODES");
    let mut owners = vec![String::new(); 16384];
    for n in &nodes {
        for (start, end) in &n.slots {
            for s in *start..=*end {
                owners[s as usize] = n.addr();
            }
        }
    }
    owners
}

fn half_a_rebalance_plan_applied(tc: &TestCluster) {
    let ports = tc.ports();
    let empty = format!("127.0.0.1:{}", ports[3]);
    let before = owners_seen_by(tc, ports[0]);
    let keys = tc.total_keys();
    assert!(
        !before.contains(&empty),
        "the empty master holds no slot yet"
    );

    let dir = state_dir();
    let mut t = start(&tc.seed(), dir.path());
    t.line("import \"rebalance\" as rb;");
    t.line("let p = rb::plan(#{use_empty_masters: true});");
    let out = t.line("p.summary");
    assert!(
        out.contains("SRC_ADDR") && out.matches(&empty).count() == 3,
        "the plan moves slots from each of the three masters to the empty one:\n{out}"
    );
    let out = t.line("p.moves.len()");
    assert!(out.contains("\n4096\n"), "{out}");
    // Keep the first half of the moves, drop the rest.
    t.line("p.moves = p.moves.extract(0, p.moves.len() / 2);");
    let out = t.line("let kept = \"\"; for m in p.moves { kept += `${m.slot} `; } kept");
    let kept: std::collections::BTreeSet<usize> = out
        .lines()
        .find(|l| l.ends_with(' ') && l.split_whitespace().all(|w| w.parse::<usize>().is_ok()))
        .unwrap_or_else(|| panic!("the kept slots:\n{out}"))
        .split_whitespace()
        .map(|w| w.parse().unwrap())
        .collect();
    assert_eq!(kept.len(), 2048);
    // (The mover's progress bar shares the line, so the count is labelled.)
    let out = t.line("let r = rb::apply(p); `moved: ${r.slots} slots`");
    assert!(
        out.contains("moved: 2048 slots\n"),
        "exactly the kept moves ran:\n{out}"
    );
    t.quit();

    // Every node agrees: the kept slots moved to the empty master, every other slot
    // stayed where it was.
    for port in &ports {
        let after = owners_seen_by(tc, *port);
        for (slot, owner) in after.iter().enumerate() {
            let want = if kept.contains(&slot) {
                &empty
            } else {
                &before[slot]
            };
            assert_eq!(owner, want, "slot {slot} as 127.0.0.1:{port} sees it");
        }
    }
    assert_eq!(tc.total_keys(), keys, "no key was lost");
    crate::support::assert_check_clean(tc);
}

/// An `EDITOR` that appends the file `append` (in `dir`) to the file it is given.
fn appending_editor(dir: &Path) -> (String, std::path::PathBuf) {
    let editor = dir.join("editor.sh");
    let append = dir.join("append");
    std::fs::write(
        &editor,
        format!("#!/bin/sh\ncat '{}' >> \"$1\"\n", append.display()),
    )
    .unwrap();
    let mut perm = std::fs::metadata(&editor).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perm, 0o755);
    std::fs::set_permissions(&editor, perm).unwrap();
    (editor.display().to_string(), append)
}

fn edit_reloads_or_keeps_the_old_version(tc: &TestCluster) {
    let dir = state_dir();
    let (editor, append) = appending_editor(dir.path());
    let scripts = dir.path().join("config/slotsmith/scripts");
    let mut t = start_with(&tc.seed(), dir.path(), &[("EDITOR", &editor)]);
    t.line("import \"rebalance\" as rb;");

    // A bundled script: copied into the user directory, edited, reloaded.
    std::fs::write(
        &append,
        "\n/// Added by the editor.\nfn added_by_editor() { 4242 }\n",
    )
    .unwrap();
    let out = t.line(":edit rebalance");
    let copy = scripts.join("rebalance.rhai");
    assert!(
        out.contains(&format!(
            "copied the bundled rebalance.rhai to {}",
            copy.display()
        )) && out.contains("reloaded"),
        "{out}"
    );
    assert!(std::fs::read_to_string(&copy)
        .unwrap()
        .ends_with("fn added_by_editor() { 4242 }\n"));
    let out = t.line("rb::added_by_editor() + 1");
    assert!(
        out.contains("\n4243\n"),
        "the new function, without a restart:\n{out}"
    );
    let out = t.line(":help rb::added_by_editor");
    assert!(out.contains("Added by the editor."), "{out}");

    // A new script of one's own, run with :run.
    std::fs::write(&append, "print(\"hello v1\");\n").unwrap();
    let out = t.line(":edit hello");
    assert!(
        out.contains("new script") && out.contains("reloaded"),
        "{out}"
    );
    let out = t.line(":run hello");
    assert!(out.contains("\nhello v1\n"), "{out}");

    // Broken edits: the error names the file and line; the old versions still run.
    std::fs::write(&append, "fn broken( {\n").unwrap();
    let out = t.line(":edit rebalance");
    let lines = std::fs::read_to_string(&copy).unwrap().lines().count();
    assert!(
        out.contains(&format!("{}:{lines}:", copy.display()))
            && out.contains("syntax error")
            && out.contains(&format!(" {lines} | fn broken( {{"))
            && out.contains("keeps using the version from before this edit"),
        "{out}"
    );
    let out = t.line("rb::added_by_editor()");
    assert!(out.contains("\n4242\n"), "{out}");
    let out = t.line("rb::plan(#{use_empty_masters: true}).needed");
    assert!(
        out.contains("\ntrue\n") || out.contains("\nfalse\n"),
        "{out}"
    );
    std::fs::write(&append, "let = ;\n").unwrap();
    let out = t.line(":edit hello");
    assert!(
        out.contains("hello.rhai:3:") && out.contains("syntax error"),
        "{out}"
    );
    let out = t.line(":run hello");
    assert!(
        out.contains("\nhello v1\n"),
        "the old version still runs:\n{out}"
    );
    let out = t.line(":show hello");
    assert!(
        out.contains("\n2  print(\"hello v1\");\n3  let = ;\n") && out.contains("does not compile"),
        ":show shows the file with line numbers:\n{out}"
    );

    // Fixed outside the REPL: :reload uses the file again.
    std::fs::write(scripts.join("hello.rhai"), "print(\"hello v2\");\n").unwrap();
    let out = t.line(":reload");
    assert!(out.contains("hello.rhai compiles now"), "{out}");
    let out = t.line(":run hello");
    assert!(out.contains("\nhello v2\n"), "{out}");
    t.quit();
}

fn saved_functions_in_a_later_session(tc: &TestCluster) {
    let dir = state_dir();
    let mut t = start(&tc.seed(), dir.path());
    t.line("import \"rebalance\" as rb;");
    t.send("/// Three times x.\r");
    t.expect("...> ");
    t.line("fn triple(x) { x * 3 }");
    t.line("fn hexa(x) { triple(x) * 2 }");
    t.line("fn share_of(addr) { rb::plan(#{use_empty_masters: true}).expected[node(addr).id] }");
    let out = t.line("hexa(7)");
    assert!(out.contains("\n42\n"), "{out}");
    let out = t.line(":save mylib");
    let file = dir.path().join("config/slotsmith/scripts/mylib.rhai");
    assert!(
        out.contains(&format!(
            "saved 3 functions (triple/1, hexa/1, share_of/1) to {}",
            file.display()
        )),
        "{out}"
    );
    let saved = std::fs::read_to_string(&file).unwrap();
    assert!(
        saved.contains("import \"rebalance\" as rb;")
            && saved.contains("/// Three times x.\nfn triple(x) { x * 3 }"),
        "{saved}"
    );
    // A bundled name is refused.
    let out = t.line(":save fix");
    assert!(out.contains("fix is a bundled script"), "{out}");
    t.quit();

    // A later session: the functions are there, loaded or imported.
    let mut t = start(&tc.seed(), dir.path());
    let out = t.line(":load mylib");
    assert!(!out.contains("error"), "{out}");
    let out = t.line("hexa(7) + 1");
    assert!(out.contains("\n43\n"), "{out}");
    let out = t.line(":help triple");
    assert!(out.contains("triple(x)\n    Three times x."), "{out}");
    t.line("import \"mylib\" as ml;");
    let out = t.line(&format!("ml::share_of(\"{}\")", tc.seed()));
    assert!(out.contains("\n4096\n"), "{out}");
    t.quit();

    // And `slotsmith run` of a script that imports them.
    let runbook = dir.path().join("use-mylib.rhai");
    std::fs::write(&runbook, "import \"mylib\" as m;\nprint(m::hexa(5));\n").unwrap();
    let config = dir.path().join("config");
    let out = crate::support::run_env(
        &["-c", &tc.seed(), "run", runbook.to_str().unwrap()],
        &[("XDG_CONFIG_HOME", config.to_str().unwrap())],
    );
    assert_eq!((out.code, out.stdout.as_str()), (0, "30\n"), "{out}");
}
