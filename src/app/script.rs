//! Running one script: its cluster opened, its options given, its journal closed,
//! and a dry run's plan shown.

use std::rc::Rc;

use crate::cli::Global;
use crate::cluster::fingerprint::Fingerprint;
use crate::cluster::memory::{render, summarize, MemoryCluster, PlanSummary, Planned};
use crate::cluster::{merged_nodes, Cluster};
use crate::connect::{open_cluster, script_path, Opened};
use crate::journal::Journal;
use crate::script::command::Declaration;
use crate::script::path::Script;
use crate::script::{Runner, ScriptError};

use super::output::{json_text, result_doc, said_code, JSON_SCHEMA};
use super::{run_options, AppError};

/// What a script gets from the command line.
pub(super) enum Input {
    /// A script without a declaration: its arguments as they are, in `args`.
    Args(Vec<String>),
    /// A script that declares its command line: what clap parsed, for `main(opts)`.
    Declared(Declaration, clap::ArgMatches),
}

pub(super) fn run_script(
    g: &Global,
    rt: &tokio::runtime::Handle,
    script: Script,
    input: Input,
) -> Result<i32, AppError> {
    let path = script_path(g);
    let Opened {
        cluster: live,
        journal,
    } = open_cluster(g, rt, &script.name, g.dry_run).map_err(AppError::Usage)?;
    let base = live.clone();
    let memory =
        (g.dry_run || g.snapshot.is_some()).then(|| Rc::new(MemoryCluster::new(live.clone())));
    let cluster: Rc<dyn Cluster> = match &memory {
        Some(m) => m.clone(),
        None => live,
    };
    // The state a dry run's plan is made on, read before it is made, for `apply`.
    let made_on = (g.dry_run && g.json)
        .then(|| base.views().ok())
        .flatten()
        .map(|views| Fingerprint::of(&merged_nodes(&views)));
    let runner = Runner::new(cluster, run_options(g), path);
    let outcome = match input {
        Input::Args(args) => runner.run(&script, &args),
        Input::Declared(d, matches) => runner.run_declared(&script, &d, &matches),
    };
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
    let ids = memory.ids();
    let summary = summarize(&plan, |addr| ids.get(addr).cloned());
    if g.json {
        let mut doc = serde_json::json!({
            "schema_version": JSON_SCHEMA,
            "dry_run": true,
            "result": result_doc(&outcome),
            "summary": summary,
            "commands": plan,
        });
        if let (Some(d), Some(fp)) = (doc.as_object_mut(), made_on) {
            d.insert(
                "fingerprint".into(),
                serde_json::to_value(fp).unwrap_or_default(),
            );
        }
        if let (Some(d), Err(e)) = (doc.as_object_mut(), &outcome) {
            let e = AppError::from(e.clone());
            d.insert("exit_code".into(), e.exit_code().into());
            d.insert("error".into(), e.to_string().into());
        }
        println!("{}", json_text(&doc));
    } else {
        // "Would write nothing" only when it is news: the script meant to change the
        // cluster and succeeded, yet planned no write.
        let news = runner.host().asked.get() && outcome.as_ref().is_ok_and(|o| o.code == 0);
        print_plan(&plan, &summary, news);
    }
    if g.json {
        return Ok(said_code(outcome));
    }
    Ok(outcome?.code)
}

/// A dry run's plan for the operator: what it comes to, then every command in the
/// order it would be sent (runs of the same command summarised). An empty plan is
/// mentioned only when `news`.
pub(super) fn print_plan(plan: &[Planned], summary: &PlanSummary, news: bool) {
    if plan.is_empty() {
        if news {
            println!("Dry run: the script would write nothing.");
        }
        return;
    }
    let pairs: Vec<String> = summary
        .keys_moved
        .iter()
        .map(|(k, v)| format!("{k}: {v} keys"))
        .collect();
    println!(
        "Dry run: nothing was written. The plan, in the order it would be sent ({} commands, {} slots change owner{}):",
        summary.commands,
        summary.slots_moved,
        if pairs.is_empty() {
            String::new()
        } else {
            format!("; {}", pairs.join(", "))
        }
    );
    print!("{}", render(plan));
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
