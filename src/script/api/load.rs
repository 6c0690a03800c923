//! `slot_stats`: the keys and (estimated) bytes of every slot of some masters, asked
//! of all of them at once (see [`crate::cluster::load`]).

use std::rc::Rc;

use rhai::{Array, Dynamic, Engine, Map};

use super::def;
use crate::cluster::load::Loads;
use crate::script::host::{runtime_error, Host, RhaiResult};

/// One node's loads as a script sees them: #{addr, keys, bytes, keys_from, sample,
/// slots: [#{slot, keys, bytes}]} (bytes `()` when not measured).
fn loads_map(addr: String, l: Loads) -> Map {
    let measured = l.sample > 0;
    let mut total_keys = 0i64;
    let mut total_bytes = 0i64;
    let slots: Array = l
        .slots
        .into_iter()
        .map(|s| {
            total_keys += s.keys as i64;
            total_bytes += s.bytes.unwrap_or(0) as i64;
            let mut m = Map::new();
            m.insert("slot".into(), i64::from(s.slot).into());
            m.insert("keys".into(), (s.keys as i64).into());
            m.insert(
                "bytes".into(),
                s.bytes.map_or(Dynamic::UNIT, |b| (b as i64).into()),
            );
            m.into()
        })
        .collect();
    let mut m = Map::new();
    m.insert("addr".into(), addr.into());
    m.insert("keys".into(), total_keys.into());
    m.insert(
        "bytes".into(),
        if measured {
            total_bytes.into()
        } else {
            Dynamic::UNIT
        },
    );
    m.insert("keys_from".into(), l.keys_from.into());
    m.insert("sample".into(), (l.sample as i64).into());
    m.insert("slots".into(), slots.into());
    m
}

pub fn register(engine: &mut Engine, host: &Rc<Host>) {
    let h = host.clone();
    let stats = move |nodes: Array, opts: Map| -> RhaiResult<Array> {
        let sample = match opts.get("sample") {
            None => 0,
            Some(v) => match v.as_int() {
                Ok(n) if (0..=10_000).contains(&n) => n as u64,
                _ => {
                    return Err(runtime_error(format!(
                        "slot_stats: sample must be a number of keys from 0 to 10000, got {v}"
                    )))
                }
            },
        };
        let mut asks = Vec::with_capacity(nodes.len());
        for n in &nodes {
            let info = h.locate(n)?;
            let slots: Vec<u16> = info.slots.iter().flat_map(|&(a, b)| a..=b).collect();
            asks.push((info.addr(), slots));
        }
        let loads = h.cluster.slot_loads_of(&asks, sample);
        let mut out = Array::with_capacity(loads.len());
        for ((addr, _), l) in asks.into_iter().zip(loads) {
            out.push(loads_map(addr, h.cl(l)?).into());
        }
        Ok(out)
    };
    let s2 = stats.clone();
    def(
        engine,
        "slot_stats",
        &["nodes: Array", "opts: Map", "Array"],
        "The load of every slot each node of nodes holds, all nodes asked at once: [#{addr, keys,\nbytes, keys_from, sample, slots: [#{slot, keys, bytes}]}] (slots with keys only). Keys\ncome from CLUSTER SLOT-STATS where the server has it (keys_from \"slot-stats\"), else\nfrom pipelined COUNTKEYSINSLOT. With opts.sample N (0 to 10000), bytes are estimated:\nMEMORY USAGE of up to N keys of each slot, their mean times the slot's keys (exact\nwhen it holds no more); without it, bytes are ().",
        move |nodes: Array, opts: Map| s2(nodes, opts),
    );
    let s3 = stats.clone();
    def(
        engine,
        "slot_stats",
        &["node: Node", "Map"],
        "slot_stats of one node, keys only.",
        move |node: Dynamic| -> RhaiResult<Map> {
            let mut out = s3(vec![node], Map::new())?;
            Ok(out
                .pop()
                .and_then(|d| d.try_cast::<Map>())
                .unwrap_or_default())
        },
    );
    def(
        engine,
        "slot_stats",
        &["node: Node", "opts: Map", "Map"],
        "slot_stats of one node.",
        move |node: Dynamic, opts: Map| -> RhaiResult<Map> {
            let mut out = stats(vec![node], opts)?;
            Ok(out
                .pop()
                .and_then(|d| d.try_cast::<Map>())
                .unwrap_or_default())
        },
    );
}
