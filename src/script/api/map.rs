//! `slot_map` and `slot_map_svg`: the picture of the slots ([`crate::map`]) as text for
//! the terminal or as an SVG document; `write_file` to keep one.

use std::collections::BTreeMap;
use std::rc::Rc;

use rhai::{Engine, Map};

use super::def;
use crate::map::{svg, term, SlotMap};
use crate::script::host::{runtime_error, Host, RhaiResult};

/// The map opts.by asks for (`slots`, `keys` or `memory`), read from the cluster.
fn read(h: &Host, opts: &Map) -> RhaiResult<SlotMap> {
    let text = |k: &str| opts.get(k).map(|v| v.to_string());
    let by = text("by").unwrap_or_else(|| "slots".into());
    if !["slots", "keys", "memory"].contains(&by.as_str()) {
        return Err(runtime_error(format!(
            "slot_map: by must be \"slots\", \"keys\" or \"memory\", got \"{by}\""
        )));
    }
    let sample = match opts.get("sample") {
        None => 16,
        Some(v) => v
            .as_int()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| runtime_error(format!("slot_map: sample must be 1 to 10000, got {v}")))?
            as u64,
    };
    h.cl(SlotMap::read(h.cluster.as_ref(), &by, sample))
}

/// opts.moves (`[#{slot, dst}]`, dst a node id) as slot -> new owner.
fn moves(opts: &Map) -> RhaiResult<Option<BTreeMap<u16, String>>> {
    let Some(list) = opts.get("moves") else {
        return Ok(None);
    };
    let list = list
        .read_lock::<rhai::Array>()
        .ok_or_else(|| runtime_error("slot_map: moves must be an array of #{slot, dst}"))?;
    let mut out = BTreeMap::new();
    for m in list.iter() {
        let m = m
            .read_lock::<Map>()
            .ok_or_else(|| runtime_error("slot_map: moves must be an array of #{slot, dst}"))?;
        let slot = m.get("slot").and_then(|s| s.as_int().ok());
        let dst = m.get("dst").map(|d| d.to_string());
        match (slot.and_then(|s| u16::try_from(s).ok()), dst) {
            (Some(s), Some(d)) if s < crate::cluster::SLOTS => out.insert(s, d),
            _ => {
                return Err(runtime_error(
                    "slot_map: each move needs a slot (0-16383) and a dst",
                ))
            }
        };
    }
    Ok(Some(out))
}

pub fn register(engine: &mut Engine, host: &Rc<Host>) {
    let h = host.clone();
    def(
        engine,
        "slot_map",
        &["opts: Map", "String"],
        "A picture of the 16384 slots for the terminal (32 rows, 8 slots a cell, within 80\ncolumns): each cell drawn by its main owner, in colour when stdout has it, else as a\nletter; ! an open slot, ~ an atomic migration, . no owner; a legend of the owners.\nopts: #{by: \"slots\"|\"keys\"|\"memory\" (cells shaded by load), sample (keys per slot\nfor memory, default 16), moves: [#{slot, dst}] (then before and after side by side),\ncolor: bool}.",
        move |opts: Map| -> RhaiResult<String> {
            let map = read(&h, &opts)?;
            let colour = match opts.get("color") {
                Some(c) => c.as_bool().unwrap_or(false),
                None => crate::color::stdout_coloured(),
            };
            Ok(match moves(&opts)? {
                Some(m) => term::render_pair(&map, &map.after(&m), colour),
                None => term::render(&map, colour),
            })
        },
    );
    let h = host.clone();
    def(
        engine,
        "slot_map_svg",
        &["opts: Map", "String"],
        "slot_map as a standalone SVG document: 128 rows of 128 slots, runs of a row with\nthe same owner drawn as one rectangle whose data-slots says how many it stands for;\nopen slots red, atomic migrations gold, a legend. opts as slot_map (but color).",
        move |opts: Map| -> RhaiResult<String> {
            let map = read(&h, &opts)?;
            let map = match moves(&opts)? {
                Some(m) => map.after(&m),
                None => map,
            };
            let title = format!("slotsmith map of the cluster of {}", h.cluster.seed());
            Ok(svg::render(&map, &title))
        },
    );
    def(
        engine,
        "write_file",
        &["path: String", "text: String", "()"],
        "Write text to the file at path (created, or replaced), e.g. a map for a ticket.",
        move |path: &str, text: &str| -> RhaiResult<()> {
            std::fs::write(path, text)
                .map_err(|e| runtime_error(format!("cannot write {path}: {e}")))
        },
    );
}
