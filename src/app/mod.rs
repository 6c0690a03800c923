//! What each command does: builds the cluster connection from the global options,
//! runs the script of the command (or the lab), and turns the outcome into an exit
//! code. The only place that knows both the CLI and the library. `script` runs a
//! script and shows its dry-run plan; `output` shapes `--json` documents; `reports`
//! holds the commands that only read (api, journal, scripts, man); `lab_verbs` the lab.

mod lab_verbs;
mod output;
mod reports;
mod script;

use lab_verbs::run_lab;
use output::print_doc;
pub use output::{error_doc, JSON_SCHEMA};
use reports::{api, man, scripts, show_journal};
pub use script::finish_journal;
use script::{run_script, Input};

use crate::cli::{Command, Global, ScriptsAction, SnapshotAction};
use crate::cluster::live::LiveCluster;
use crate::cluster::snapshot::Snapshot;
use crate::commands::Parsed;
use crate::connect::{conn_options, script_path};
use crate::journal;
use crate::script::host::RunOptions;
use crate::script::ScriptError;

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
            ScriptError::Syntax(m) | ScriptError::Usage(m) => AppError::Usage(m),
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
pub fn run(parsed: Parsed, rt: tokio::runtime::Handle) -> Result<i32, AppError> {
    let cli = match parsed {
        Parsed::BuiltIn(cli) => cli,
        Parsed::Script {
            global,
            script,
            declaration,
            matches,
        } => {
            prepare(&global)?;
            return run_script(&global, &rt, script, Input::Declared(declaration, matches));
        }
        Parsed::Broken(global, sentence) => {
            prepare(&global)?;
            return Err(AppError::Usage(sentence));
        }
    };
    let g = &cli.global;
    prepare(g)?;
    match &cli.command {
        Command::Run { script, args } => {
            let script = script_path(g).load(script).map_err(AppError::Usage)?;
            run_script(g, &rt, script, Input::Args(args.clone()))
        }
        Command::Completions { shell } => {
            let mut cmd =
                crate::commands::command(&crate::commands::discover(&script_path(g)), true);
            clap_complete::generate(*shell, &mut cmd, "slotsmith", &mut std::io::stdout());
            Ok(0)
        }
        Command::Man { dir } => man(g, dir.as_deref()),
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
                g.cluster(),
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

/// What every command does first: the verbosity, and the security options checked.
fn prepare(g: &Global) -> Result<(), AppError> {
    crate::color::init(g.color);
    crate::progress::set_level(g.quiet, g.verbose);
    check_security_options(g)
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

pub(super) fn run_options(g: &Global) -> RunOptions {
    RunOptions {
        yes: g.yes,
        json: g.json,
        verbose: g.verbose,
        quiet: g.quiet,
        max_operations: g.max_operations,
        command: Some(journal::command_line()),
    }
}
