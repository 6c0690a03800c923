//! What each command does: builds the cluster connection from the global options,
//! runs the bundled script of the same name (or the lab), and turns the outcome into
//! an exit code. The only place that knows both the CLI and the library.

use std::rc::Rc;

use crate::cli::{
    Cli, Command, Fault, Global, JournalAction, LabAction, ScriptsAction, SnapshotAction,
};
use crate::cluster::live::LiveCluster;
use crate::cluster::memory::{summarize, MemoryCluster};
use crate::cluster::snapshot::Snapshot;
use crate::cluster::Cluster;
use crate::connect::{conn_options, open_cluster, script_path, Opened};
use crate::journal::{self, Journal};
use crate::lab;
use crate::script::host::RunOptions;
use crate::script::path;
use crate::script::{Runner, ScriptError};

/// A failure that ends the program, with its exit code.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// Bad arguments or the cluster could not be reached: exit 2.
    #[error("{0}")]
    Usage(String),
    /// The script or the operation failed: exit 1.
    #[error("{0}")]
    Failed(String),
}

impl AppError {
    pub fn exit_code(&self) -> i32 {
        match self {
            AppError::Usage(_) => 2,
            AppError::Failed(_) => 1,
        }
    }
}

impl From<crate::repl::ReplError> for AppError {
    fn from(e: crate::repl::ReplError) -> Self {
        match e {
            crate::repl::ReplError::Usage(m) => AppError::Usage(m),
            crate::repl::ReplError::Failed(m) => AppError::Failed(m),
        }
    }
}

impl From<ScriptError> for AppError {
    fn from(e: ScriptError) -> Self {
        match e {
            ScriptError::Syntax(m) => AppError::Usage(m),
            ScriptError::Runtime { message, cause } => {
                match cause {
                    // The operator needs the node and the reason, not the script line.
                    Some(c) if c.is_connection() => AppError::Usage(c.to_string()),
                    _ => AppError::Failed(message),
                }
            }
        }
    }
}

/// Run the parsed command line; the result is the exit code.
pub fn run(cli: Cli, rt: tokio::runtime::Handle) -> Result<i32, AppError> {
    let g = &cli.global;
    crate::progress::set_level(g.quiet, g.verbose);
    check_security_options(g)?;
    match &cli.command {
        Command::Check => run_script(g, &rt, "check", &[], false),
        Command::Fix {
            replace,
            force,
            pipeline,
            migrate_timeout,
            wait,
            cancel_migrations,
        } => {
            let mut a: Vec<String> = Vec::new();
            if *replace {
                a.push("--replace".into());
            }
            if *force {
                a.push("--force".into());
            }
            if *cancel_migrations {
                a.push("--cancel-migrations".into());
            }
            a.extend(["--wait".to_string(), wait.to_string()]);
            crate::cli::push_move_opts(&mut a, *pipeline, *migrate_timeout);
            run_script(g, &rt, "fix", &a, false)
        }
        Command::Complete(m) => run_script(g, &rt, "complete", &m.script_args(), false),
        Command::Cancel(m) => run_script(g, &rt, "cancel", &m.script_args(), false),
        Command::Rebalance {
            weights,
            use_empty_masters,
            threshold,
            pipeline,
            migrate_timeout,
            migration,
            simulate,
        } => {
            if !threshold.is_finite() || *threshold < 0.0 {
                return Err(AppError::Usage(format!(
                    "--threshold must be a percentage of 0 or more, got {threshold}"
                )));
            }
            let mut a: Vec<String> = Vec::new();
            for w in weights {
                a.extend(["--weight".to_string(), w.clone()]);
            }
            if *use_empty_masters {
                a.push("--use-empty-masters".into());
            }
            a.extend(["--threshold".to_string(), threshold.to_string()]);
            // --simulate is --dry-run: the whole script runs against the in-memory copy.
            crate::cli::push_move_opts(&mut a, *pipeline, *migrate_timeout);
            a.extend(["--migration".to_string(), migration.clone()]);
            run_script(g, &rt, "rebalance", &a, *simulate)
        }
        Command::Reshard {
            from,
            to,
            slots,
            pipeline,
            migrate_timeout,
            migration,
            simulate,
        } => {
            let mut a = vec![
                "--from".to_string(),
                from.clone(),
                "--to".to_string(),
                to.clone(),
                "--slots".to_string(),
                slots.to_string(),
            ];
            crate::cli::push_move_opts(&mut a, *pipeline, *migrate_timeout);
            a.extend(["--migration".to_string(), migration.clone()]);
            run_script(g, &rt, "reshard", &a, *simulate)
        }
        Command::Run { script, args } => run_script(g, &rt, script, args, false),
        Command::Api { definitions } => api(g, &rt, definitions.as_deref()),
        Command::Journal { last, action } => show_journal(g, *last, action.as_ref()),
        Command::Repl => crate::repl::run(
            g,
            &rt,
            RunOptions {
                command: None,
                ..run_options(g)
            },
        )
        .map_err(AppError::from),
        Command::Snapshot {
            action: SnapshotAction::Save { file },
        } => {
            let live = LiveCluster::new(
                &g.cluster,
                conn_options(g),
                rt.clone(),
                crate::interrupt::stop(),
            );
            let snap = Snapshot::take(&live).map_err(|e| {
                if e.is_connection() {
                    AppError::Usage(e.to_string())
                } else {
                    AppError::Failed(e.to_string())
                }
            })?;
            snap.save(file).map_err(AppError::Failed)?;
            let keys: usize = snap
                .nodes
                .iter()
                .flat_map(|n| n.slots.values())
                .map(Vec::len)
                .sum();
            if g.json {
                print_doc(
                    "snapshot",
                    &serde_json::json!({"file": file, "nodes": snap.nodes.len(), "keys": keys}),
                );
            } else {
                println!(
                    "saved {} nodes and {keys} key names to {}",
                    snap.nodes.len(),
                    file.display()
                );
            }
            Ok(0)
        }
        Command::Scripts { action } => scripts(g, action.as_ref().unwrap_or(&ScriptsAction::List)),
        Command::Lab { action } => run_lab(g, &rt, action),
    }
}

/// Options that weaken security, said before anything runs: `--insecure` without TLS
/// is refused (it would quietly connect in plain text); with TLS it is a warning; a
/// password given with `-a` shows in the process list (as redis-cli warns).
fn check_security_options(g: &Global) -> Result<(), AppError> {
    let tls = g.tls || g.cacert.is_some() || g.cert.is_some();
    if g.insecure && !tls {
        return Err(AppError::Usage(
            "--insecure turns off TLS certificate checks, but this run does not use TLS: add --tls (or drop --insecure)".into(),
        ));
    }
    if g.insecure && !g.quiet {
        eprintln!("Warning: --insecure: the nodes' TLS certificates are not checked, so anyone between you and the cluster can pose as a node.");
    }
    let on_command_line = std::env::args_os().skip(1).any(|a| {
        let a = a.to_string_lossy();
        a == "--password" || a.starts_with("--password=") || journal::short_password(&a).is_some()
    });
    if g.password.is_some() && on_command_line && !g.no_auth_warning {
        eprintln!("Warning: Using a password with '-a' or '--password' on the command line interface may not be safe: other users can see it in the process list. Use REDISCLI_AUTH instead, or --no-auth-warning to silence this.");
    }
    Ok(())
}

fn run_options(g: &Global) -> RunOptions {
    RunOptions {
        yes: g.yes,
        json: g.json,
        verbose: g.verbose,
        quiet: g.quiet,
        max_operations: g.max_operations,
        command: Some(journal::command_line()),
    }
}

fn run_script(
    g: &Global,
    rt: &tokio::runtime::Handle,
    what: &str,
    args: &[String],
    dry_run: bool,
) -> Result<i32, AppError> {
    let path = script_path(g);
    let script = path.load(what).map_err(AppError::Usage)?;
    let Opened {
        cluster: live,
        journal,
    } = open_cluster(g, rt, &script.name, g.dry_run || dry_run).map_err(AppError::Usage)?;
    let memory = (g.dry_run || dry_run || g.snapshot.is_some())
        .then(|| Rc::new(MemoryCluster::new(live.clone())));
    let cluster: Rc<dyn Cluster> = match &memory {
        Some(m) => m.clone(),
        None => live,
    };
    let runner = Runner::new(cluster, run_options(g), path);
    let outcome = runner.run(&script, args);
    if let Ok(Some(m)) = outcome.as_ref().map(|o| o.message.as_ref()) {
        eprintln!("slotsmith: {m}");
    }
    if let Some(j) = &journal {
        finish_journal(j, &outcome);
        if j.path().exists() && !g.quiet {
            eprintln!("journal: {} (slotsmith journal --last)", j.path().display());
        }
    }
    let Some(memory) = memory else {
        if g.json {
            println!("{}", json_text(&result_doc(&outcome)));
            return Ok(said_code(outcome));
        }
        return Ok(outcome?.code);
    };
    // A dry run shows its plan even when the script failed half-way.
    let plan = memory.plan();
    let summary = summarize(&plan, |addr| memory.id_at(addr));
    if g.json {
        let mut doc = serde_json::json!({
            "schema_version": JSON_SCHEMA,
            "dry_run": true,
            "result": result_doc(&outcome),
            "summary": summary,
            "commands": plan,
        });
        if let (Some(d), Err(e)) = (doc.as_object_mut(), &outcome) {
            let e = AppError::from(e.clone());
            d.insert("exit_code".into(), e.exit_code().into());
            d.insert("error".into(), e.to_string().into());
        }
        println!("{}", json_text(&doc));
    } else if plan.is_empty() {
        // Only when it is news: the script meant to change the cluster and succeeded,
        // yet planned no write.
        if runner.host().asked.get() && outcome.as_ref().is_ok_and(|o| o.code == 0) {
            println!("Dry run: the script would write nothing.");
        }
    } else {
        let pairs: Vec<String> = summary
            .keys_moved
            .iter()
            .map(|(k, v)| format!("{k}: {v} keys"))
            .collect();
        println!(
            "Dry run: nothing was written. The plan ({} commands, {} slots change owner{}):",
            summary.commands,
            summary.slots_moved,
            if pairs.is_empty() {
                String::new()
            } else {
                format!("; {}", pairs.join(", "))
            }
        );
        print!("{}", crate::cluster::memory::render(&plan));
    }
    if g.json {
        return Ok(said_code(outcome));
    }
    Ok(outcome?.code)
}

/// Say in the journal how the run ended: its outcome and exit code (an interruption's
/// code wins, as it does for the process).
pub fn finish_journal(j: &Journal, outcome: &Result<crate::script::Outcome, ScriptError>) {
    let (text, code) = match outcome {
        Ok(o) if o.code == 0 => ("ok".to_string(), 0),
        Ok(o) => (
            format!(
                "failed: {}",
                o.message
                    .as_deref()
                    .unwrap_or("the script reported failure")
            ),
            o.code,
        ),
        Err(e) => {
            let e = AppError::from(e.clone());
            (format!("failed: {e}"), e.exit_code())
        }
    };
    match crate::interrupt::exit_code() {
        Some(c) => j.finish("interrupted", c),
        None => j.finish(&text, code),
    }
}

/// The version of every `--json` document's shape; bumped when a field changes meaning.
pub const JSON_SCHEMA: u32 = 1;

/// The one JSON document of a run: the script's result (a map gets `schema_version`
/// and `exit_code` added; anything else goes under `result`), or, when it failed or
/// refused without a result, `{schema_version, exit_code, error}`.
fn result_doc(outcome: &Result<crate::script::Outcome, ScriptError>) -> serde_json::Value {
    let (value, code, message) = match outcome {
        Ok(o) => (
            rhai::serde::from_dynamic::<serde_json::Value>(&o.value)
                .unwrap_or_else(|e| serde_json::json!({ "unprintable_result": e.to_string() })),
            o.code,
            o.message.clone(),
        ),
        Err(e) => {
            let e = AppError::from(e.clone());
            (serde_json::Value::Null, e.exit_code(), Some(e.to_string()))
        }
    };
    let mut doc = match value {
        serde_json::Value::Object(m) => m,
        serde_json::Value::Null => serde_json::Map::new(),
        other => {
            let mut m = serde_json::Map::new();
            m.insert("result".into(), other);
            m
        }
    };
    doc.insert("schema_version".into(), JSON_SCHEMA.into());
    doc.insert("exit_code".into(), code.into());
    if let Some(m) = message {
        doc.insert("error".into(), m.into());
    }
    serde_json::Value::Object(doc)
}

/// The exit code of a run whose JSON document is already printed; a failure's
/// sentence still goes to stderr.
fn said_code(outcome: Result<crate::script::Outcome, ScriptError>) -> i32 {
    match outcome {
        Ok(o) => o.code,
        Err(e) => {
            let e = AppError::from(e);
            eprintln!("slotsmith: {e}");
            e.exit_code()
        }
    }
}

/// Print one `--json` document: `value` with `schema_version` added when it is an
/// object, else `{schema_version, <key>: value}`.
fn print_doc<T: serde::Serialize>(key: &str, value: &T) {
    let value = serde_json::to_value(value).unwrap_or_default();
    let doc = match value {
        serde_json::Value::Object(mut m) => {
            m.insert("schema_version".into(), JSON_SCHEMA.into());
            serde_json::Value::Object(m)
        }
        other => serde_json::json!({ "schema_version": JSON_SCHEMA, key: other }),
    };
    println!("{}", json_text(&doc));
}

/// What a command that reports in words says: the words, or with `--json` one
/// document holding them (`{schema_version, <key>: text}`).
fn say(g: &Global, key: &str, text: String) {
    if g.json {
        print_doc(key, &text);
    } else {
        println!("{text}");
    }
}

/// A JSON document as printed.
fn json_text(doc: &serde_json::Value) -> String {
    serde_json::to_string_pretty(doc).unwrap_or_default()
}

/// The JSON document of a run that ended before its script could run (bad options,
/// an unreachable cluster): `{schema_version, exit_code, error}`.
pub fn error_doc(e: &AppError) -> String {
    json_text(&serde_json::json!({
        "schema_version": JSON_SCHEMA,
        "exit_code": e.exit_code(),
        "error": e.to_string(),
    }))
}

fn api(
    g: &Global,
    rt: &tokio::runtime::Handle,
    definitions: Option<&std::path::Path>,
) -> Result<i32, AppError> {
    // Registration needs no connection: the cluster is only reached when a function runs.
    let cluster = LiveCluster::new(
        &g.cluster,
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
fn write_definitions(
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

fn show_journal(g: &Global, last: bool, action: Option<&JournalAction>) -> Result<i32, AppError> {
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
fn run_line(r: &journal::Run) -> String {
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

fn scripts(g: &Global, action: &ScriptsAction) -> Result<i32, AppError> {
    let path = script_path(g);
    match action {
        ScriptsAction::List => {
            let list = path.list();
            if g.json {
                print_doc("scripts", &list);
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
                println!("{:width$}  {}{shadows}", l.name, l.resolves_to);
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

fn run_lab(g: &Global, rt: &tokio::runtime::Handle, action: &LabAction) -> Result<i32, AppError> {
    // A layout or server that cannot be is bad input (exit 2); the rest failed (exit 1).
    let lab_err = |e: lab::LabError| match e {
        lab::LabError::Spec(_) => AppError::Usage(e.to_string()),
        e => AppError::Failed(e.to_string()),
    };
    let password = g.password.clone().filter(|p| !p.is_empty());
    let open = |port: u16| -> Result<lab::Lab, AppError> {
        Ok(lab::Lab::open(port)
            .map_err(lab_err)?
            .with_password(password.clone()))
    };
    match action {
        LabAction::Up {
            port,
            masters,
            replicas,
            empty,
            keys,
            server,
        } => {
            let mut spec = lab::LabSpec::new(port.port);
            spec.server = server.clone();
            spec.masters = *masters as usize;
            spec.replicas = *replicas as usize;
            spec.empty = *empty as usize;
            spec.keys = *keys;
            spec.password = password.clone();
            spec.user = g.user.clone();
            if g.tls || g.cacert.is_some() {
                // The nodes serve TLS with the same files the clients use.
                match (&g.cacert, &g.cert, &g.key) {
                    (Some(ca), Some(cert), Some(key)) => {
                        spec.tls = Some(lab::LabTls {
                            ca: ca.clone(),
                            cert: cert.clone(),
                            key: key.clone(),
                            auth_clients: true,
                        })
                    }
                    _ => {
                        return Err(AppError::Usage(
                            "a TLS lab needs --cacert, --cert and --key (the nodes use the same certificate)".into(),
                        ))
                    }
                }
            }
            let lab = lab::up(&spec, rt).map_err(lab_err)?;
            say(g, "lab", lab.next_steps());
            Ok(0)
        }
        LabAction::Status { port } => {
            let status = open(port.port)?.status(rt).map_err(lab_err)?;
            if g.json {
                print_doc("lab", &status);
            } else {
                println!("{status}");
            }
            Ok(0)
        }
        LabAction::Down { port } => {
            say(g, "lab", lab::down(port.port).map_err(lab_err)?.to_string());
            Ok(0)
        }
        LabAction::Break { fault } => match fault {
            Fault::StuckSlot { port, slot } => {
                let text = open(port.port)?
                    .break_fault(lab::Fault::StuckSlot { slot: *slot }, rt)
                    .map_err(lab_err)?;
                say(g, "lab", text);
                Ok(0)
            }
        },
    }
}
