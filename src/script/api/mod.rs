//! The Rhai API: one file per area (reads, writes, runbook helpers), each
//! registering its functions with a one-line doc that `slotsmith api` and the REPL's
//! help print. The functions reach the cluster only through [`Host`].

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
