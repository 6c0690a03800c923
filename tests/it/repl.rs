//! `slotsmith repl` as an operator meets it: typed into a real terminal (a
//! pseudo-terminal the test drives), and fed through a pipe, against one real lab
//! cluster shared by every scenario of this module.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{native_pty_system, Child, CommandBuilder, MasterPty, PtySize};

use crate::support::TestCluster;

/// How long one expected piece of output may take to show.
const WAIT: Duration = Duration::from_secs(30);
const PROMPT: &str = "slotsmith> ";

/// A `slotsmith repl` on a pseudo-terminal, read as a person would see it (escape
/// sequences and carriage returns removed).
struct Terminal {
    child: Box<dyn Child + Send + Sync>,
    writer: Box<dyn Write + Send>,
    // Closing the master side would hang up the terminal.
    _master: Box<dyn MasterPty + Send>,
    raw: Arc<Mutex<Vec<u8>>>,
    /// How much of the cleaned output earlier expectations consumed.
    seen: usize,
}

impl Terminal {
    fn start(seed: &str, state: &Path) -> Terminal {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: 50,
                cols: 200,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("open a pseudo-terminal");
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_slotsmith"));
        cmd.args(["-c", seed, "repl"]);
        cmd.env("TERM", "xterm");
        cmd.env("XDG_STATE_HOME", state.join("state"));
        cmd.env("XDG_CONFIG_HOME", state.join("config"));
        cmd.env_remove("SLOTSMITH_CLUSTER");
        cmd.env_remove("SLOTSMITH_PATH");
        cmd.env_remove("REDISCLI_AUTH");
        let child = pair.slave.spawn_command(cmd).expect("start slotsmith repl");
        drop(pair.slave);
        let mut reader = pair.master.try_clone_reader().expect("pty reader");
        let writer = pair.master.take_writer().expect("pty writer");
        let raw = Arc::new(Mutex::new(Vec::new()));
        let sink = raw.clone();
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        let mut t = Terminal {
            child,
            writer,
            _master: pair.master,
            raw,
            seen: 0,
        };
        t.expect(PROMPT);
        t
    }

    fn screen(&self) -> String {
        clean(&self.raw.lock().unwrap())
    }

    /// Type keys (`\r` is Enter, `\t` Tab, `\x03` Ctrl+C, `\x04` Ctrl+D).
    fn send(&mut self, keys: &str) {
        self.writer
            .write_all(keys.as_bytes())
            .expect("type into the terminal");
        self.writer.flush().expect("flush the terminal");
    }

    /// Wait until `text` shows after what earlier expectations consumed; return what
    /// showed up to and including it.
    fn expect(&mut self, text: &str) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let screen = self.screen();
            if let Some(i) = screen[self.seen..].find(text) {
                let upto = self.seen + i + text.len();
                let got = screen[self.seen..upto].to_string();
                self.seen = upto;
                return got;
            }
            if Instant::now() > deadline {
                panic!(
                    "{text:?} did not show within {WAIT:?}; the terminal after the last match:\n{}",
                    &screen[self.seen..]
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Type one line and wait for the next prompt; what was printed in between.
    fn line(&mut self, text: &str) -> String {
        self.send(&format!("{text}\r"));
        self.expect(&format!("\n{PROMPT}"))
    }

    /// Leave with Ctrl+D and wait for the process to end.
    fn quit(mut self) {
        self.send("\x04");
        let deadline = Instant::now() + WAIT;
        loop {
            if let Some(status) = self.child.try_wait().expect("child status") {
                assert!(
                    status.success(),
                    "repl exit status {status:?}\n{}",
                    self.screen()
                );
                return;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("repl did not end on Ctrl+D:\n{}", self.screen());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
    }
}

/// Terminal output without escape sequences and carriage returns. An escape
/// sequence cut off at the end is dropped, so a longer read never changes the text
/// before it.
fn clean(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(raw);
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.next() {
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('\x40'..='\x7e').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    while let Some(c) = chars.next() {
                        if c == '\x07' || (c == '\x1b' && chars.next_if_eq(&'\\').is_some()) {
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

#[test]
fn repl_on_a_terminal_and_through_a_pipe() {
    let tc = TestCluster::with(|s| {
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
    let mut t = Terminal::start(&tc.seed(), dir.path());
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
    let mut t = Terminal::start(&tc.seed(), dir.path());
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
    let mut t = Terminal::start(&tc.seed(), dir.path());
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
    let mut t = Terminal::start(&tc.seed(), dir.path());
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
    let mut t = Terminal::start(&tc.seed(), dir.path());
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
    let mut t = Terminal::start(&tc.seed(), dir.path());
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
    let mut t = Terminal::start(&tc.seed(), dir.path());
    t.line("let marker = 776 + 1");
    t.quit();
    let file = dir.path().join("state/slotsmith/history");
    let saved =
        std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    assert!(saved.contains("let marker = 776 + 1"), "{saved}");

    let mut t = Terminal::start(&tc.seed(), dir.path());
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
    let seed = tc.seed();
    let run = |input: &str| {
        let mut child = crate::support::bin()
            .args(["-c", &seed, "repl"])
            .env_remove("SLOTSMITH_CLUSTER")
            .env_remove("REDISCLI_AUTH")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("slotsmith runs");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        let out = child.wait_with_output().expect("slotsmith ends");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
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
