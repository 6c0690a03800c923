//! Runbook helpers: asking the operator, talking on stderr, waiting, and ending a
//! script with an exit code. No cluster access of their own.

use std::io::{BufRead, IsTerminal, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

use rhai::{Dynamic, Engine, EvalAltResult, FnPtr, Map, NativeCallContext, Position};

use super::def;
use crate::script::host::{runtime_error, Host, RhaiResult};

/// The token an `exit(...)` call terminates the script with.
pub fn exit_token(code: i64, value: Dynamic) -> Dynamic {
    let mut m = Map::new();
    m.insert("exit".into(), code.into());
    m.insert("value".into(), value);
    m.into()
}

/// End the script with a code and a sentence for the operator (printed by the host,
/// without the script location: it is about the input, not the script).
fn fail(code: i64, text: &str) -> RhaiResult<()> {
    if !(1..=255).contains(&code) {
        return Err(runtime_error(format!(
            "fail: code must be 1 to 255, got {code}"
        )));
    }
    let mut token = exit_token(code, Dynamic::UNIT);
    if let Some(mut m) = token.write_lock::<Map>() {
        m.insert("message".into(), text.into());
    }
    Err(Box::new(EvalAltResult::ErrorTerminated(
        token,
        Position::NONE,
    )))
}

fn exit(code: i64, value: Dynamic) -> RhaiResult<()> {
    if !(0..=255).contains(&code) {
        return Err(runtime_error(format!(
            "exit: code must be 0 to 255, got {code}"
        )));
    }
    // Termination is not catchable by `try`, so exit always ends the script.
    Err(Box::new(EvalAltResult::ErrorTerminated(
        exit_token(code, value),
        Position::NONE,
    )))
}

/// One slot or an array of slots from a script.
fn slot_list(v: &Dynamic) -> RhaiResult<Vec<u16>> {
    let one = |d: &Dynamic| -> RhaiResult<u16> {
        let i = d
            .as_int()
            .map_err(|_| runtime_error(format!("expected a slot number, got {d}")))?;
        crate::script::host::slot_arg(i).map_err(|e| runtime_error(e.to_string()))
    };
    match v.read_lock::<rhai::Array>() {
        Some(items) => items.iter().map(one).collect(),
        None => Ok(vec![one(v)?]),
    }
}

pub fn register(engine: &mut Engine, host: &Rc<Host>) {
    let h = host.clone();
    def(
        engine,
        "confirm",
        &["text: String", "bool"],
        "Ask the operator before changing the cluster: true with --yes; asks y/N on a terminal;\nrefuses (an error naming --yes) when stdin is not a terminal.",
        move |text: &str| -> RhaiResult<bool> {
            h.asked.set(true);
            if h.cluster.dry_run() {
                crate::progress::note(&format!("{text} (dry run: not asking)"));
                return Ok(true);
            }
            if h.opts.yes {
                if !h.opts.quiet {
                    eprintln!("{text} (--yes)");
                }
                return Ok(true);
            }
            if !std::io::stdin().is_terminal() {
                return Err(h.fail(crate::cluster::ClusterError::Refused(
                    "refusing to change the cluster without confirmation: stdin is not a terminal; pass --yes to proceed".into(),
                )));
            }
            // Ctrl+C here means no: the process ends at once, nothing changed.
            let _prompt = crate::interrupt::AtPrompt::new();
            eprint!("{text} [y/N] ");
            let _ = std::io::stderr().flush();
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .map_err(|e| runtime_error(format!("confirm: cannot read the answer: {e}")))?;
            Ok(matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
        },
    );
    let h = host.clone();
    def(
        engine,
        "info",
        &["text: String", "()"],
        "Tell the operator something on stderr (hidden with --quiet).",
        move |text: &str| {
            if !h.opts.quiet {
                eprintln!("{text}");
            }
        },
    );
    def(
        engine,
        "warn",
        &["text: String", "()"],
        "Warn the operator on stderr (always shown).",
        |text: &str| crate::color::eprintln(&format!("[WARNING] {text}")),
    );
    def(
        engine,
        "sleep",
        &["ms: int", "()"],
        "Pause for ms milliseconds.",
        |ms: i64| -> RhaiResult<()> {
            if ms < 0 {
                return Err(runtime_error(format!(
                    "sleep: ms must not be negative, got {ms}"
                )));
            }
            std::thread::sleep(Duration::from_millis(ms as u64));
            Ok(())
        },
    );
    def(
        engine,
        "wait_until",
        &["cond: Fn", "timeout_ms: int", "bool"],
        "Call cond() until it returns true (then true) or timeout_ms passes (then false): again\nafter 10 ms, then twice as long each time, up to every 100 ms.",
        |ctx: NativeCallContext, cond: FnPtr, timeout_ms: i64| -> RhaiResult<bool> {
            let deadline = Instant::now() + Duration::from_millis(timeout_ms.max(0) as u64);
            let mut pause = Duration::from_millis(10);
            loop {
                let ok: Dynamic = cond.call_within_context(&ctx, ())?;
                if ok.as_bool().unwrap_or(false) {
                    return Ok(true);
                }
                if Instant::now() >= deadline {
                    return Ok(false);
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
        },
    );
    def(
        engine,
        "uninterruptible",
        &["step: Fn", "Dynamic"],
        "Call step() and return its result; Ctrl+C or SIGTERM during it takes effect only\nonce it has finished (wrap each step that must not be cut in half, e.g. one slot's repair).",
        |ctx: NativeCallContext, step: FnPtr| -> RhaiResult<Dynamic> {
            let _hold = crate::interrupt::Hold::new();
            step.call_within_context(&ctx, ())
        },
    );
    let h = host.clone();
    def(
        engine,
        "uninterruptible",
        &["slots: int|Array", "step: Fn", "Dynamic"],
        "uninterruptible(step) for a step that works on these slots (one slot or an array):\nif the run is stopped at once (a second Ctrl+C) before the step ends, they are named\nas possibly left open, with the command that settles them.",
        move |ctx: NativeCallContext, slots: Dynamic, step: FnPtr| -> RhaiResult<Dynamic> {
            let slots = slot_list(&slots)?;
            let live = !h.cluster.dry_run();
            let _hold = crate::interrupt::Hold::new();
            if live {
                crate::interrupt::opened(&slots);
            }
            let r = step.call_within_context(&ctx, ())?;
            if live {
                crate::interrupt::settled(&slots);
            }
            Ok(r)
        },
    );
    def(
        engine,
        "share",
        &["value: Dynamic", "Dynamic"],
        "The same value, shared: passing it to a function no longer copies it (a script function\ngets a copy of each argument). Changes made through one name show through every other.\nFor large read-only data a step passes to many calls (every node map, say).",
        |value: Dynamic| value.into_shared(),
    );
    def(
        engine,
        "quote_key",
        &["key: String|Blob", "String"],
        "A key name as redis-cli prints it: bare when plain, else in quotes with escapes (\\n,\n\\xHH, ...), cut after 64 bytes with its length. Print key names with it: they may hold\nterminal escapes or newlines.",
        |key: Dynamic| -> RhaiResult<String> {
            let bytes = crate::script::host::keys_arg(&key)
                .map_err(|e| runtime_error(e.to_string()))?
                .into_iter()
                .next()
                .unwrap_or_default();
            Ok(crate::cluster::keyname::shown(&bytes))
        },
    );
    let h = host.clone();
    def(
        engine,
        "phase",
        &["name: String", "()"],
        "Say that the run enters a phase (\"plan\", \"move\", \"verify\", ...): with -v, how long the\nprevious one took is printed on stderr; otherwise nothing.",
        move |name: &str| {
            let now = std::time::Instant::now();
            let previous = h.phase.borrow_mut().replace((name.to_string(), now));
            if let Some((prev, began)) = previous {
                crate::progress::detail(&format!(
                    "-- {prev}: {:.2} s; now {name}",
                    now.duration_since(began).as_secs_f64()
                ));
            } else {
                crate::progress::detail(&format!("-- {name}"));
            }
        },
    );
    let h = host.clone();
    def(
        engine,
        "dry_run",
        &["bool"],
        "True when writes only change an in-memory copy of the cluster.",
        move || h.cluster.dry_run(),
    );
    let h = host.clone();
    def(
        engine,
        "json",
        &["bool"],
        "True with --json: the script's result is printed as one JSON document on stdout.",
        move || h.opts.json,
    );
    let h = host.clone();
    def(
        engine,
        "verbose",
        &["bool"],
        "True with -v: the operator asked for more detail.",
        move || h.opts.verbose,
    );
    def(
        engine,
        "fail",
        &["code: int", "text: String", "()"],
        "End the script now with an exit code (1 failure, 2 bad input) and one sentence for the\noperator on stderr, without the script location.",
        fail,
    );
    def(
        engine,
        "exit",
        &["code: int", "()"],
        "End the script now with an exit code (0 success, 1 failure).",
        |code: i64| exit(code, Dynamic::UNIT),
    );
    def(
        engine,
        "exit",
        &["code: int", "result: Dynamic", "()"],
        "End the script now with an exit code and a result (printed as JSON with --json).",
        exit,
    );
}
