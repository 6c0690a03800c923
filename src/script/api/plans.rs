//! Saved plans: `fingerprint()` of the cluster now, `fingerprint_changes(saved)` since
//! a plan was made, and `read_json(path)` to load one (see
//! [`crate::cluster::fingerprint`]).

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
