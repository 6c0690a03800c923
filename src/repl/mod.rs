//! `slotsmith repl`: an interactive Rhai session with the primitives loaded. On a
//! terminal it is a line editor with completion, hints and saved history; with stdin
//! piped it reads statements and prints each result. The session itself (what is
//! kept between inputs) lives in [`session`], the `:` commands in [`command`], and why
//! an input failed is printed by [`failure`].

mod command;
mod failure;
mod helper;
mod history;
mod input;
mod session;
mod show;
mod suggest;
mod text;

use std::io::{BufRead, IsTerminal};

use rustyline::config::Config;
use rustyline::error::ReadlineError;
use rustyline::history::DefaultHistory;
use rustyline::{CompletionType, Editor};

use crate::cli::Global;
use crate::connect::{open_cluster, script_path, Opened};
use crate::script::host::RunOptions;

use helper::ReplHelper;
pub use history::history_path;
use history::{remember, save_history};
use input::{completeness, Input};
pub use session::{Session, Step};

/// Why the REPL ended before its session could.
#[derive(Debug, thiserror::Error)]
pub enum ReplError {
    /// Bad options, or the cluster cannot be opened: exit 2.
    #[error("{0}")]
    Usage(String),
    /// The terminal or stdin failed: exit 1.
    #[error("{0}")]
    Failed(String),
}

impl ReplError {
    pub fn exit_code(&self) -> i32 {
        match self {
            ReplError::Usage(_) => 2,
            ReplError::Failed(_) => 1,
        }
    }
}

/// Start the REPL on the cluster (or snapshot) the global options name.
pub fn run(g: &Global, rt: &tokio::runtime::Handle, opts: RunOptions) -> Result<i32, ReplError> {
    // Every live write is journaled, whatever runs it: a primitive typed here, a
    // script run with :run. A dry run writes nothing.
    let Opened {
        cluster: base,
        journal,
    } = open_cluster(g, rt, "repl", g.dry_run).map_err(ReplError::Usage)?;
    let mut session = Session::new(base, script_path(g), opts, g.dry_run, g.snapshot.is_some());
    let result = if std::io::stdin().is_terminal() {
        interactive(&mut session)
    } else {
        piped(&mut session, std::io::stdin().lock())
    };
    if let Some(j) = &journal {
        match &result {
            Ok(0) => j.finish("ok", 0),
            Ok(code) => j.finish("failed: a statement failed", *code),
            Err(e) => j.finish(&format!("failed: {e}"), e.exit_code()),
        }
        if j.path().exists() && !g.quiet {
            eprintln!("journal: {} (slotsmith journal --last)", j.path().display());
        }
    }
    result
}

/// Statements from a pipe: each one evaluated as soon as the parser says it is
/// complete (or a blank line ends it), its result printed. Exit 1 if any failed.
pub fn piped(session: &mut Session, reader: impl BufRead) -> Result<i32, ReplError> {
    let mut failed = false;
    let mut buffer = String::new();
    for line in reader.lines() {
        let line = line.map_err(|e| ReplError::Failed(format!("cannot read stdin: {e}")))?;
        let step = if buffer.is_empty() && line.trim_start().starts_with(':') {
            session.command(&line)
        } else if line.trim().is_empty() {
            match std::mem::take(&mut buffer) {
                b if b.trim().is_empty() => Step::Ok,
                b => session.eval(None, &b),
            }
        } else {
            if !buffer.is_empty() {
                buffer.push('\n');
            }
            buffer.push_str(&line);
            if completeness(session.engine(), session.scope(), &buffer) == Input::Incomplete {
                continue;
            }
            session.eval(None, &std::mem::take(&mut buffer))
        };
        match step {
            Step::Quit => return Ok(i32::from(failed)),
            Step::Failed => failed = true,
            Step::Ok => {}
        }
    }
    if !buffer.trim().is_empty() && session.eval(None, &buffer) == Step::Failed {
        failed = true;
    }
    Ok(i32::from(failed))
}

fn interactive(session: &mut Session) -> Result<i32, ReplError> {
    let setup = |e: ReadlineError| ReplError::Failed(format!("cannot set up the line editor: {e}"));
    let config = Config::builder()
        .auto_add_history(false)
        .history_ignore_space(true)
        .completion_type(CompletionType::List)
        .max_history_size(10_000)
        .map_err(setup)?
        .history_ignore_dups(true)
        .map_err(setup)?
        .build();
    let mut editor: Editor<ReplHelper, DefaultHistory> = Editor::with_config(config)
        .map_err(|e| ReplError::Failed(format!("cannot open the terminal: {e}")))?;
    let mut helper = ReplHelper::new();
    helper.functions = session.function_names();
    editor.set_helper(Some(helper));
    let history = history_path();
    if let Some(h) = &history {
        // A first session has no file yet.
        let _ = editor.load_history(h);
    }

    match session.refresh_topology() {
        Ok(summary) => eprintln!("slotsmith repl: {summary}."),
        Err(e) => {
            eprintln!("slotsmith repl: cannot read the cluster yet ({e}); :reload tries again.")
        }
    }
    if session.dry_run() {
        eprintln!("Dry run: writes change an in-memory copy and are shown as a plan.");
    }
    eprintln!(":help lists the primitives and commands; Tab completes; Ctrl+D quits.");

    let mut buffer = String::new();
    loop {
        if let Some(h) = editor.helper_mut() {
            h.variables = session.variable_names();
            h.nodes = session.node_words().to_vec();
            h.module_functions = session.module_functions();
            h.scripts = session.script_names();
        }
        let help_words = session.help_words();
        if let Some(h) = editor.helper_mut() {
            h.help_words = help_words;
        }
        let prompt = session.prompt();
        let continuation = format!("{:>w$}", "...> ", w = prompt.len());
        let line = match editor.readline(if buffer.is_empty() {
            prompt
        } else {
            &continuation
        }) {
            Ok(line) => line,
            // Ctrl+C drops what was typed, the whole statement when it spans lines.
            Err(ReadlineError::Interrupted) => {
                buffer.clear();
                continue;
            }
            Err(ReadlineError::Eof) => break,
            Err(e) => return Err(ReplError::Failed(format!("cannot read the terminal: {e}"))),
        };
        let forced = !buffer.is_empty() && line.trim().is_empty();
        if buffer.is_empty() {
            let t = line.trim();
            if t.is_empty() {
                continue;
            }
            if t.starts_with(':') {
                remember(&mut editor, history.as_ref(), t);
                let step = if t == ":history" {
                    for (i, entry) in editor.history().iter().enumerate() {
                        println!("{:>5}  {}", i + 1, entry.replace('\n', "\n       "));
                    }
                    Step::Ok
                } else {
                    session.command(t)
                };
                if step == Step::Quit {
                    break;
                }
                continue;
            }
            buffer = line;
        } else if !forced {
            buffer.push('\n');
            buffer.push_str(&line);
        }
        // A blank line ends the statement, complete or not.
        if !forced && completeness(session.engine(), session.scope(), &buffer) == Input::Incomplete
        {
            continue;
        }
        let text = std::mem::take(&mut buffer);
        remember(&mut editor, history.as_ref(), &text);
        session.eval(None, &text);
    }
    if let Some(h) = &history {
        save_history(&mut editor, h);
    }
    Ok(0)
}
