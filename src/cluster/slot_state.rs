//! The state of slots as every master says of itself: who owns each, which markers
//! it has, how many of its keys each master holds, which of the masters involved are
//! down, and which marker names a master that has since turned replica (a failover).
//! The facts `fix`, `complete` and `cancel` plan from; the plans stay in the scripts.

use std::collections::BTreeMap;

use super::{merged_nodes, Cluster, NodeInfo, Result};

/// Who owns a slot and which markers it has: `owners` (ids), `migrating` (id ->
/// target id), `importing` (id -> source id), as the masters say of themselves.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Marked {
    pub owners: Vec<String>,
    pub migrating: BTreeMap<String, String>,
    pub importing: BTreeMap<String, String>,
}

/// A marker that named a master which has since turned replica, and its new master.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Failover {
    pub was: String,
    pub now: String,
}

/// One slot's state. `migrating`/`importing` name the shard's master now (see
/// `failovers`); `marked` keeps the markers as they are.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SlotState {
    pub slot: u16,
    pub owners: Vec<String>,
    pub migrating: BTreeMap<String, String>,
    pub importing: BTreeMap<String, String>,
    /// Keys of the slot per reachable master, where it holds any.
    pub keys: BTreeMap<String, u64>,
    /// Failing or unreachable masters the slot involves.
    pub down: Vec<String>,
    pub failovers: Vec<Failover>,
    pub marked: Marked,
}

/// The node that stands in for `id` in a marker: itself while it is a master, its
/// master once it has turned replica (and that master serves).
fn stand_in(nodes: &[NodeInfo], id: &str) -> String {
    match nodes.iter().find(|n| n.id == id) {
        Some(n) if !n.is_master() => n
            .master_id
            .as_ref()
            .filter(|m| {
                nodes
                    .iter()
                    .any(|o| &o.id == *m && o.is_master() && !o.failing())
            })
            .cloned()
            .unwrap_or_else(|| id.to_string()),
        _ => id.to_string(),
    }
}

/// The markers of one slot in merged nodes (each reachable node as it describes itself).
pub fn marked(nodes: &[NodeInfo], slot: u16) -> Marked {
    let mut m = Marked::default();
    for n in nodes.iter().filter(|n| n.is_master()) {
        if n.owns(slot) {
            m.owners.push(n.id.clone());
        }
        if let Some(t) = n.migrating.get(&slot) {
            m.migrating.insert(n.id.clone(), t.clone());
        }
        if let Some(f) = n.importing.get(&slot) {
            m.importing.insert(n.id.clone(), f.clone());
        }
    }
    m
}

/// The state of each of `slots`, asking every reachable master once for its keys in
/// them.
pub fn states(c: &dyn Cluster, slots: &[u16]) -> Result<Vec<SlotState>> {
    let views = c.views()?;
    let nodes = merged_nodes(&views);
    let answered: Vec<&str> = views
        .iter()
        .filter(|v| v.state.is_ok())
        .filter_map(|v| v.state.as_ref().ok()?.myself().map(|m| m.id.as_str()))
        .collect();
    // Keys per slot of every reachable master (one that cannot be asked is down).
    let mut keys: BTreeMap<String, BTreeMap<u16, u64>> = BTreeMap::new();
    let asked: Vec<&NodeInfo> = nodes
        .iter()
        .filter(|n| n.is_master() && !n.failing() && answered.contains(&n.id.as_str()))
        .collect();
    let asks: Vec<(String, Vec<u16>)> = asked.iter().map(|n| (n.addr(), slots.to_vec())).collect();
    for (n, counts) in asked.iter().zip(c.key_counts_of(&asks)) {
        match counts {
            Ok(counts) => {
                keys.insert(n.id.clone(), counts.into_iter().collect());
            }
            Err(e) if e.is_connection() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(slots
        .iter()
        .map(|&slot| state_of(&nodes, &keys, slot))
        .collect())
}

fn state_of(
    nodes: &[NodeInfo],
    keys: &BTreeMap<String, BTreeMap<u16, u64>>,
    slot: u16,
) -> SlotState {
    let raw = marked(nodes, slot);
    let mut failovers: Vec<Failover> = Vec::new();
    let mut stood_in = |map: &BTreeMap<String, String>| -> BTreeMap<String, String> {
        map.iter()
            .map(|(id, other)| {
                let now = stand_in(nodes, other);
                if &now != other {
                    failovers.push(Failover {
                        was: other.clone(),
                        now: now.clone(),
                    });
                }
                (id.clone(), now)
            })
            .collect()
    };
    let migrating = stood_in(&raw.migrating);
    let importing = stood_in(&raw.importing);
    let mut st = SlotState {
        slot,
        owners: raw.owners.clone(),
        migrating,
        importing,
        keys: BTreeMap::new(),
        down: Vec::new(),
        failovers,
        marked: raw,
    };
    for n in nodes.iter().filter(|n| n.is_master()) {
        let Some(counts) = keys.get(&n.id).filter(|_| !n.failing()) else {
            let involved = n.owns(slot)
                || st.migrating.contains_key(&n.id)
                || st.importing.contains_key(&n.id);
            if involved {
                st.down.push(n.id.clone());
            }
            continue;
        };
        if let Some(&k) = counts.get(&slot).filter(|k| **k > 0) {
            st.keys.insert(n.id.clone(), k);
        }
    }
    let ends: Vec<String> = st
        .migrating
        .values()
        .chain(st.importing.values())
        .cloned()
        .collect();
    for id in ends {
        if !st.down.contains(&id) && !keys.contains_key(&id) {
            st.down.push(id);
        }
    }
    st
}
