//! The Rhai API: one file per area (reads, writes, runbook helpers), each
//! registering its functions with a one-line doc that `slotsmith api` and the REPL's
//! help print. The functions reach the cluster only through [`Host`].

pub mod lifecycle;
mod load;
mod map;
mod plans;
pub mod read;
pub mod runbook;
pub mod write;

use std::rc::Rc;

use rhai::{Engine, FuncRegistration, RhaiNativeFunc, Variant};

use super::host::Host;

/// Register every primitive and helper into `engine`.
pub fn register(engine: &mut Engine, host: &Rc<Host>) {
    read::register(engine, host);
    write::register(engine, host);
    lifecycle::register(engine, host);
    load::register(engine, host);
    map::register(engine, host);
    plans::register(engine, host);
    runbook::register(engine, host);
}

/// Register one function with its parameter names, return type and doc line.
/// `sig` lists parameters as `name: type` and ends with the return type.
/// Every slotsmith function is volatile: it reads or changes a live cluster, so
/// the optimizer must never fold it.
pub(crate) fn def<A, const N: usize, const X: bool, R, const F: bool, FUNC>(
    engine: &mut Engine,
    name: &str,
    sig: &[&str],
    doc: &str,
    f: FUNC,
) where
    A: 'static,
    R: Variant + Clone,
    FUNC: RhaiNativeFunc<A, N, X, R, F> + 'static,
{
    let comments: Vec<String> = doc.lines().map(|l| format!("/// {l}")).collect();
    FuncRegistration::new(name)
        .with_params_info(sig)
        .with_comments([comments.join("\n")])
        .with_volatility(true)
        .with_purity(true)
        .register_into_engine(engine, f);
}

/// One registered function, as `slotsmith api` and the REPL's help show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FnDoc {
    pub name: String,
    /// `name(param: Type, ...) -> Return`.
    pub signature: String,
    /// The doc text, without comment markers.
    pub doc: String,
}

/// Every function slotsmith registered into `engine`, read back from the
/// registration itself, sorted by name.
pub fn docs(engine: &Engine) -> Vec<FnDoc> {
    let json = engine.gen_fn_metadata_to_json(false).unwrap_or_default();
    let value: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
    let mut out: Vec<FnDoc> = value["functions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .filter_map(|f| {
            let doc: Vec<String> = f["docComments"]
                .as_array()?
                .iter()
                .filter_map(|c| c.as_str())
                .flat_map(|c| c.lines())
                .map(|l| l.trim_start_matches("///").trim().to_string())
                .collect();
            Some(FnDoc {
                name: f["name"].as_str()?.to_string(),
                signature: f["signature"].as_str()?.to_string(),
                doc: doc.join("\n"),
            })
        })
        .collect();
    out.sort_by(|a, b| {
        a.name
            .cmp(&b.name)
            .then(a.signature.len().cmp(&b.signature.len()))
    });
    out
}
