//! The commands that read and report: `api`, `journal`, `scripts`, `man`.

use std::rc::Rc;

use crate::cli::{Global, JournalAction, ScriptsAction};
use crate::cluster::live::LiveCluster;
use crate::connect::{conn_options, script_path};
use crate::journal;
use crate::script::path;
use crate::script::Runner;

use super::output::{print_doc, say};
use super::{run_options, AppError};

pub(super) fn api(
    g: &Global,
    rt: &tokio::runtime::Handle,
    definitions: Option<&std::path::Path>,
) -> Result<i32, AppError> {
    // Registration needs no connection: the cluster is only reached when a function runs.
    let cluster = LiveCluster::new(
        g.cluster(),
        conn_options(g),
        rt.clone(),
        crate::interrupt::stop(),
    );
    let runner = Runner::new(Rc::new(cluster), run_options(g), script_path(g));
    if let Some(dir) = definitions {
        return write_definitions(g, runner.engine(), dir);
    }
    let docs = crate::script::api::docs(runner.engine());
    if g.json {
        print_doc("functions", &docs);
        return Ok(0);
    }
    for d in docs {
        println!("{}\n    {}", d.signature, d.doc.replace('\n', "\n    "));
    }
    Ok(0)
}

/// The file `api --definitions DIR` writes: one file, so an editor needs one setting.
const DEFINITIONS_FILE: &str = "slotsmith.d.rhai";

/// Write the engine's Rhai definitions (the builtins, every slotsmith primitive with its
/// doc, and the `args` every script gets) to `DIR/slotsmith.d.rhai`; print the path.
pub(super) fn write_definitions(
    g: &Global,
    engine: &rhai::Engine,
    dir: &std::path::Path,
) -> Result<i32, AppError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| AppError::Failed(format!("cannot create {}: {e}", dir.display())))?;
    let file = dir.join(DEFINITIONS_FILE);
    let mut scope = rhai::Scope::new();
    scope.push_constant("args", rhai::Array::new());
    engine
        .definitions_with_scope(&scope)
        .write_to_file(&file)
        .map_err(|e| AppError::Failed(format!("cannot write {}: {e}", file.display())))?;
    if g.json {
        print_doc("definitions", &file);
    } else {
        println!("{}", file.display());
    }
    if !g.quiet {
        eprintln!("Rhai definitions written: load this file in an editor with Rhai support (the Rhai language server reads *.d.rhai files).");
    }
    Ok(0)
}

pub(super) fn show_journal(
    g: &Global,
    last: bool,
    action: Option<&JournalAction>,
) -> Result<i32, AppError> {
    let one = match action {
        Some(JournalAction::Show { run }) => Some(run.as_str()),
        None if last => Some("-1"),
        None => None,
    };
    if let Some(word) = one {
        let run = journal::find(word).map_err(AppError::Failed)?;
        if g.json {
            print_doc("run", &run);
            return Ok(0);
        }
        println!("{}", run_line(&run));
        println!("    {}", run.file.display());
        for e in run.entries {
            println!("{}  {:<21} {}  -> {}", e.time, e.node, e.command, e.reply);
        }
        return Ok(0);
    }
    let mut runs = Vec::new();
    for f in journal::files() {
        runs.push(journal::read(&f).map_err(AppError::Failed)?);
    }
    if g.json {
        // The runs without their writes (`journal show RUN --json` has them).
        let list: Vec<serde_json::Value> = runs
            .iter()
            .map(|r| {
                let mut v = serde_json::to_value(r).unwrap_or_default();
                if let Some(m) = v.as_object_mut() {
                    m.remove("entries");
                }
                v
            })
            .collect();
        print_doc("runs", &list);
        return Ok(0);
    }
    if runs.is_empty() {
        println!(
            "No run has written to a cluster yet (journal: {}).",
            journal::dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default()
        );
    }
    for (i, r) in runs.iter().enumerate() {
        println!("{:>3}  {}", i + 1, run_line(r));
    }
    Ok(0)
}

/// One run on one line: when, what, against which node, how many writes, how it ended.
pub(super) fn run_line(r: &journal::Run) -> String {
    let ended = match (&r.outcome, r.exit_code) {
        (Some(o), Some(c)) => format!("exit {c}, {o}"),
        _ => "did not say how it ended (killed, or still running)".into(),
    };
    format!(
        "{}  {}  -c {}  {} writes{}  {}  [{}]",
        r.started,
        r.script,
        r.seed,
        r.writes,
        if r.failed > 0 {
            format!(" ({} refused)", r.failed)
        } else {
            String::new()
        },
        ended,
        r.command
    )
}

pub(super) fn scripts(g: &Global, action: &ScriptsAction) -> Result<i32, AppError> {
    let path = script_path(g);
    match action {
        ScriptsAction::List => {
            let list = path.list();
            let commands = crate::commands::discover(&path);
            // What each name is as a command: `slotsmith NAME`, or why it is not one.
            let role = |name: &str| -> Option<String> {
                if let Some(c) = commands.iter().find(|c| c.name == name) {
                    return Some(match &c.declaration {
                        Ok(_) => format!("command: slotsmith {name}"),
                        Err(e) => format!("not a command: {e}"),
                    });
                }
                let declares =
                    path.peek(name).ok().flatten().is_some_and(|s| {
                        matches!(crate::script::command::read(&s.text), Ok(Some(_)))
                    });
                if declares {
                    crate::commands::not_a_command(name)
                } else {
                    None
                }
            };
            if g.json {
                let rows: Vec<serde_json::Value> = list
                    .iter()
                    .map(|l| {
                        let mut v = serde_json::to_value(l).unwrap_or_default();
                        if let (Some(m), Some(r)) = (v.as_object_mut(), role(&l.name)) {
                            m.insert("command".into(), r.into());
                        }
                        v
                    })
                    .collect();
                print_doc("scripts", &rows);
                return Ok(0);
            }
            println!("script path: {}", path.describe());
            let width = list.iter().map(|l| l.name.len()).max().unwrap_or(0);
            for l in list {
                let shadows = if l.shadows.is_empty() {
                    String::new()
                } else {
                    format!("  (shadows {})", l.shadows.join(", "))
                };
                let role = role(&l.name)
                    .map(|r| format!("  [{r}]"))
                    .unwrap_or_default();
                println!("{:width$}  {}{shadows}{role}", l.name, l.resolves_to);
            }
            Ok(0)
        }
        ScriptsAction::Show { name } => {
            let s = path.load(name).map_err(AppError::Usage)?;
            if g.json {
                print_doc(
                    "script",
                    &serde_json::json!({"name": s.name, "from": s.origin.to_string(), "text": s.text}),
                );
            } else {
                print!("{}", s.text);
            }
            Ok(0)
        }
        ScriptsAction::Eject { name, force } => {
            let dest = path::eject(name, *force).map_err(|e| {
                if e.ends_with("already exists") {
                    AppError::Usage(format!("{e}; pass --force to overwrite it"))
                } else {
                    AppError::Usage(e)
                }
            })?;
            let name = name.strip_suffix(".rhai").unwrap_or(name);
            if g.json {
                print_doc("file", &dest);
            } else {
                println!("{}", dest.display());
            }
            eprintln!("`slotsmith {name}` and `import \"{name}\"` now use this copy.");
            Ok(0)
        }
    }
}

/// `slotsmith man`: the man page on stdout, or one page per command in `dir`.
pub(super) fn man(g: &Global, dir: Option<&std::path::Path>) -> Result<i32, AppError> {
    let cmd = crate::commands::command(&crate::commands::discover(&script_path(g)), true);
    match dir {
        None => {
            clap_mangen::Man::new(cmd)
                .render(&mut std::io::stdout())
                .map_err(|e| AppError::Failed(format!("cannot write the man page: {e}")))?;
        }
        Some(d) => {
            std::fs::create_dir_all(d)
                .map_err(|e| AppError::Failed(format!("cannot create {}: {e}", d.display())))?;
            clap_mangen::generate_to(cmd, d)
                .map_err(|e| AppError::Failed(format!("cannot write into {}: {e}", d.display())))?;
            say(g, "dir", d.display().to_string());
        }
    }
    Ok(0)
}
