//! `slotsmith` on a pseudo-terminal that a test drives: what an operator types and
//! sees (the REPL, a confirmation prompt, colours).

use std::io::{Read, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use portable_pty::{native_pty_system, Child, CommandBuilder, MasterPty, PtySize};
use slotsmith::lab::Fault;

use crate::support::{run, run_env, Server, TestCluster};

/// How long one expected piece of output may take to show.
pub const WAIT: Duration = Duration::from_secs(30);

/// `slotsmith` on a pseudo-terminal, read as a person would see it (escape sequences
/// and carriage returns removed).
pub struct Terminal {
    child: Box<dyn Child + Send + Sync>,
    writer: Box<dyn Write + Send>,
    // Closing the master side would hang up the terminal.
    _master: Box<dyn MasterPty + Send>,
    raw: Arc<Mutex<Vec<u8>>>,
    /// How much of the cleaned output earlier expectations consumed.
    seen: usize,
}

impl Terminal {
    /// `slotsmith ARGS` on a fresh pseudo-terminal, with its state and config
    /// directories under `state` and extra environment variables.
    pub fn spawn(args: &[&str], state: &Path, env: &[(&str, &str)]) -> Terminal {
        let pair = native_pty_system()
            .openpty(PtySize {
                rows: 50,
                cols: 200,
                pixel_width: 0,
                pixel_height: 0,
            })
            .expect("open a pseudo-terminal");
        let mut cmd = CommandBuilder::new(env!("CARGO_BIN_EXE_slotsmith"));
        cmd.args(args);
        cmd.env("TERM", "xterm");
        cmd.env("XDG_STATE_HOME", state.join("state"));
        cmd.env("XDG_CONFIG_HOME", state.join("config"));
        cmd.env_remove("SLOTSMITH_CLUSTER");
        cmd.env_remove("SLOTSMITH_PATH");
        cmd.env_remove("REDISCLI_AUTH");
        cmd.env_remove("VISUAL");
        cmd.env_remove("EDITOR");
        // Colour is the run's own choice, not the test runner's.
        cmd.env_remove("NO_COLOR");
        cmd.env_remove("CLICOLOR");
        cmd.env_remove("CLICOLOR_FORCE");
        for (k, v) in env {
            cmd.env(k, v);
        }
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
        Terminal {
            child,
            writer,
            _master: pair.master,
            raw,
            seen: 0,
        }
    }

    /// Everything written to the terminal so far, escape sequences included.
    pub fn raw(&self) -> String {
        String::from_utf8_lossy(&self.raw.lock().unwrap()).to_string()
    }

    pub fn screen(&self) -> String {
        clean(&self.raw.lock().unwrap())
    }

    /// Type keys (`\r` is Enter, `\t` Tab, `\x03` Ctrl+C, `\x04` Ctrl+D).
    pub fn send(&mut self, keys: &str) {
        self.writer
            .write_all(keys.as_bytes())
            .expect("type into the terminal");
        self.writer.flush().expect("flush the terminal");
    }

    /// Wait until `text` shows after what earlier expectations consumed; return what
    /// showed up to and including it.
    pub fn expect(&mut self, text: &str) -> String {
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

    /// Wait for the process to end, at most `limit`; its exit code (`None` when it
    /// did not end, and it is then killed).
    pub fn wait_exit(&mut self, limit: Duration) -> Option<u32> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("child status") {
                return Some(status.exit_code());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                return None;
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

/// How a line in that style starts on a terminal that takes colour.
fn styled(style: anstyle::Style, text: &str) -> String {
    format!("{}{text}", style.render())
}

fn color(c: anstyle::AnsiColor) -> anstyle::Style {
    anstyle::Style::new().fg_color(Some(c.into()))
}

on_both_servers!(check_is_coloured_on_a_terminal_and_nowhere_else);
fn check_is_coloured_on_a_terminal_and_nowhere_else(server: Server) {
    let tc = TestCluster::start(server, 200);
    let seed = tc.seed();
    tc.lab()
        .break_fault(Fault::StuckSlot { slot: 5519 }, tc.handle())
        .expect("break");
    let home = tempfile::tempdir().unwrap();
    let ok = styled(
        color(anstyle::AnsiColor::Green),
        "[OK] All 16384 slots covered.",
    );
    let warning = styled(color(anstyle::AnsiColor::Yellow), "[WARNING] ");
    let heading = styled(anstyle::Style::new().bold(), ">>> Check slots coverage...");

    // On a terminal: [OK] green, [WARNING] yellow, headings bold, as redis-cli has them.
    let mut t = Terminal::spawn(&["-c", &seed, "check"], home.path(), &[]);
    t.expect("slots covered.");
    assert_eq!(t.wait_exit(WAIT), Some(1), "{}", t.screen());
    let raw = t.raw();
    assert!(raw.contains(&ok), "{raw:?}");
    assert!(raw.contains(&warning), "{raw:?}");
    assert!(raw.contains(&heading), "{raw:?}");

    // NO_COLOR (any value but the empty string), or --color never: no colour at all.
    for (args, env) in [
        (vec!["-c", &seed, "check"], vec![("NO_COLOR", "1")]),
        (vec!["-c", &seed, "check", "--color", "never"], vec![]),
    ] {
        let mut t = Terminal::spawn(&args, home.path(), &env);
        t.expect("slots covered.");
        assert_eq!(t.wait_exit(WAIT), Some(1), "{}", t.screen());
        assert!(!t.raw().contains('\x1b'), "{args:?} {env:?}: {:?}", t.raw());
    }

    // In a pipe: none, on stdout or stderr.
    let out = run(&["-c", &seed, "check"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stdout.contains("[OK] All 16384 slots covered."),
        "{out}"
    );
    assert!(
        !out.stdout.contains('\x1b') && !out.stderr.contains('\x1b'),
        "{out}"
    );

    // --color always: in a pipe too (over NO_COLOR, as an option given for this run).
    let out = run_env(
        &["-c", &seed, "--color", "always", "check"],
        &[("NO_COLOR", "1")],
    );
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stdout.contains(&ok), "{:?}", out.stdout);

    // --json: stdout is the JSON document only, never coloured.
    let out = run(&["-c", &seed, "--color", "always", "--json", "check"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(!out.stdout.contains('\x1b'), "{:?}", out.stdout);
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).expect("one JSON document");
    assert_eq!(doc["ok"], false, "{doc}");
}

on_both_servers!(map_marks_the_open_slot_within_80_columns_and_as_svg);
fn map_marks_the_open_slot_within_80_columns_and_as_svg(server: Server) {
    let tc = TestCluster::start(server, 200);
    let seed = tc.seed();
    tc.lab()
        .break_fault(Fault::StuckSlot { slot: 5519 }, tc.handle())
        .expect("break");
    let home = tempfile::tempdir().unwrap();

    // On a terminal: in colour, four owners in the legend, the open slot's cell marked,
    // no line wider than 80 columns.
    let mut t = Terminal::spawn(&["-c", &seed, "map"], home.path(), &[]);
    t.expect("open slot");
    assert_eq!(t.wait_exit(WAIT), Some(0), "{}", t.screen());
    assert!(t.raw().contains("\x1b[0;38;5;"), "{:?}", t.raw());
    let screen = t.screen();
    let lines: Vec<&str> = screen.lines().collect();
    assert!(lines.iter().all(|l| l.chars().count() <= 80), "{screen}");
    let legend = lines
        .iter()
        .filter(|l| l.contains("127.0.0.1:") && l.contains("slots"))
        .count();
    assert_eq!(legend, 4, "{screen}");
    // Slot 5519: the row of 5120, its 50th cell (8 slots a cell).
    let row = lines
        .iter()
        .find(|l| l.trim_start().starts_with("5120 "))
        .expect("the row of slot 5120");
    assert_eq!(
        row.chars().nth(6 + (5519 - 5120) / 8),
        Some('!'),
        "{screen}"
    );

    // In a pipe: the owners are letters, no colour.
    let out = run(&["-c", &seed, "map"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(!out.stdout.contains('\x1b'), "{out}");
    let row = out
        .stdout
        .lines()
        .find(|l| l.trim_start().starts_with("5120 "))
        .expect("the row of slot 5120")
        .to_string();
    assert!(row.contains("AAA") && row.contains("BBB"), "{row}");
    assert_eq!(row.chars().nth(6 + (5519 - 5120) / 8), Some('!'), "{row}");

    // As SVG: well-formed XML whose cells stand for 16384 slots, the open slot red.
    let file = home.path().join("map.svg");
    let out = run(&["-c", &seed, "map", "--svg", file.to_str().unwrap()]);
    assert_eq!(out.code, 0, "{out}");
    let text = std::fs::read_to_string(&file).unwrap();
    let doc = roxmltree::Document::parse(&text).expect("well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let slots: usize = doc
        .descendants()
        .filter_map(|n| n.attribute("data-slots"))
        .map(|n| n.parse::<usize>().unwrap())
        .sum();
    assert_eq!(slots, 16384);
    assert!(text.contains("slots 5519: 127.0.0.1:"), "{text}");
    assert!(text.contains("(open)"));
}
