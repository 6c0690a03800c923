//! Saved plans: `fingerprint()` of the cluster now, `fingerprint_changes(saved)` since
//! a plan was made, and `read_json(path)` to load one (see
//! [`crate::cluster::fingerprint`]); `moves_for(slots, src, dst)` to build one's moves,
//! `record_plan(plan)` in the journal before moving, and `last_plan([file])` to resume
//! one.

use std::rc::Rc;

use rhai::{Array, Dynamic, Engine, Map};

use super::def;
use crate::cluster::fingerprint::Fingerprint;
use crate::cluster::merged_nodes;
use crate::script::host::{runtime_error, Host, RhaiResult};

fn now(h: &Host) -> RhaiResult<Fingerprint> {
    let views = h.cl(h.cluster.views())?;
    Ok(Fingerprint::of(&merged_nodes(&views)))
}

pub fn register(engine: &mut Engine, host: &Rc<Host>) {
    def(
        engine,
        "moves_for",
        &["slots: Array", "src: String", "dst: String", "Array"],
        "The moves of `slots` from src to dst, as move_slots and record_plan take them:
[#{slot, src, dst}], built at native speed (a plan of thousands of slots).",
        |slots: Array,
         src: rhai::ImmutableString,
         dst: rhai::ImmutableString|
         -> RhaiResult<Array> {
            slots
                .into_iter()
                .map(|slot| {
                    let slot = slot.as_int().map_err(|t| {
                        runtime_error(format!("moves_for: a slot must be an integer, got {t}"))
                    })?;
                    let mut m = Map::new();
                    m.insert("slot".into(), Dynamic::from(slot));
                    m.insert("src".into(), Dynamic::from(src.clone()));
                    m.insert("dst".into(), Dynamic::from(dst.clone()));
                    Ok(Dynamic::from_map(m))
                })
                .collect()
        },
    );
    let h = host.clone();
    def(
        engine,
        "fingerprint",
        &["Map"],
        "The state plans are made on: #{hash, owners: [[start, end, owner id]], nodes: [#{id,\naddr, role, master}]}; a dry run's --json plan carries it as `fingerprint`.",
        move || -> RhaiResult<Map> {
            rhai::serde::to_dynamic(now(&h)?)
                .map(|d| d.cast::<Map>())
                .map_err(|e| runtime_error(format!("fingerprint: {e}")))
        },
    );
    let h = host.clone();
    def(
        engine,
        "fingerprint_changes",
        &["saved: Map", "Array"],
        "What changed since the saved fingerprint, one sentence each (nodes gone, new, moved\nor with another role; slots with another owner); empty when nothing did.",
        move |saved: Map| -> RhaiResult<Array> {
            let saved: Fingerprint = rhai::serde::from_dynamic(&Dynamic::from(saved))
                .map_err(|e| runtime_error(format!("fingerprint_changes: not a fingerprint: {e}")))?;
            Ok(saved
                .changes(&now(&h)?)
                .into_iter()
                .map(Dynamic::from)
                .collect())
        },
    );
    let h = host.clone();
    def(
        engine,
        "record_plan",
        &["plan: Map", "()"],
        "Write the plan about to be carried out (#{command, moves: [#{slot, src, dst}]}) to\nthis run's journal, before the first move, so that `slotsmith resume` can finish it\nafter a crash. Nothing in a dry run.",
        move |plan: Map| -> RhaiResult<()> {
            // Straight to JSON text: thousands of moves, no tree built in between.
            let text = serde_json::to_string(&Dynamic::from(plan))
                .map_err(|e| runtime_error(format!("record_plan: {e}")))?;
            h.cluster.record_plan(&text);
            Ok(())
        },
    );
    let h = host.clone();
    let last = move |file: Option<&str>| -> RhaiResult<Dynamic> {
        let run = match file {
            Some(f) => Some(crate::journal::read(std::path::Path::new(f)).map_err(runtime_error)?),
            None => {
                // This cluster's node ids: a plan of another cluster is passed over.
                let views = h.cl(h.cluster.views())?;
                let ids: std::collections::HashSet<String> =
                    merged_nodes(&views).into_iter().map(|n| n.id).collect();
                let ours = |plan: &serde_json::Value| {
                    plan.get("moves")
                        .and_then(|m| m.as_array())
                        .is_some_and(|moves| {
                            moves.iter().any(|m| {
                                ["src", "dst"].iter().any(|k| {
                                    m.get(*k)
                                        .and_then(|v| v.as_str())
                                        .is_some_and(|id| ids.contains(id))
                                })
                            })
                        })
                };
                // Newest first. A run that ended well ends the search when it made its
                // own plan (whatever was stopped before it is history), and marks the
                // run it finished when it was a resume (its plan's `resumes`).
                let mut resumed = std::collections::HashSet::new();
                let mut found = None;
                for r in crate::journal::files()
                    .iter()
                    .rev()
                    .filter_map(|f| crate::journal::read(f).ok())
                {
                    let Some(plan) = &r.plan else {
                        continue;
                    };
                    if !ours(plan) {
                        continue;
                    }
                    let resumes = plan.get("resumes").and_then(|v| v.as_str());
                    if r.outcome.as_deref() == Some("ok") {
                        match resumes {
                            Some(id) => {
                                resumed.insert(id.to_string());
                                continue;
                            }
                            None => break,
                        }
                    }
                    if resumed.contains(&r.run) || resumes.is_some_and(|id| resumed.contains(id)) {
                        continue;
                    }
                    found = Some(r);
                    break;
                }
                found
            }
        };
        let Some(run) = run else {
            return Ok(Dynamic::UNIT);
        };
        let doc = serde_json::json!({
            "file": run.file.display().to_string(),
            "run": run.run,
            "script": run.script,
            "command": run.command,
            "started": run.started,
            "outcome": run.outcome,
            "plan": run.plan,
        });
        rhai::serde::to_dynamic(doc).map_err(|e| runtime_error(format!("last_plan: {e}")))
    };
    def(
        engine,
        "last_plan",
        &["Dynamic"],
        "The newest run in the journal that recorded a plan (record_plan) for this cluster and did\nnot end well (killed, interrupted, failed), unless a later resume finished it (its plan's\n`resumes` names the run) or a later run of its own plan ended well: #{file, run, script,\ncommand, started, outcome (() when it never ended), plan}; () when there is none.",
        {
            let last = last.clone();
            move || last(None)
        },
    );
    def(
        engine,
        "last_plan",
        &["file: String", "Dynamic"],
        "The run of one journal file, as last_plan(); its plan is () when it recorded none.",
        move |file: &str| last(Some(file)),
    );
    def(
        engine,
        "read_json",
        &["path: String", "Dynamic"],
        "The JSON document in the file at path (a saved plan, say), as maps and arrays.",
        move |path: &str| -> RhaiResult<Dynamic> {
            let text = std::fs::read_to_string(path)
                .map_err(|e| runtime_error(format!("cannot read {path}: {e}")))?;
            let value: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| runtime_error(format!("{path} is not JSON: {e}")))?;
            rhai::serde::to_dynamic(value).map_err(|e| runtime_error(format!("{path}: {e}")))
        },
    );
}
