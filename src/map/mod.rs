//! A picture of the 16384 slots: who owns each, how loaded it is, which are open or in
//! an atomic job. [`SlotMap`] is the model, read from a cluster (or given, for a plan's
//! "after"); [`term`] draws it for a terminal (cells of several slots, colour or
//! letters), [`svg`] as a standalone SVG (one cell per slot, runs merged).

use std::collections::BTreeMap;

use crate::cluster::load::Loads;
use crate::cluster::{merged_nodes, Cluster, NodeInfo, Result, SLOTS};

pub mod svg;
pub mod term;

/// What a slot is, for the picture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Owned and stable.
    Plain,
    /// `MIGRATING` or `IMPORTING` somewhere.
    Open,
    /// In an atomic migration job in flight.
    Moving,
}

/// One owner of the picture.
#[derive(Debug, Clone, PartialEq)]
pub struct Owner {
    pub addr: String,
    pub id: String,
    pub slots: usize,
    /// Its load in the measure of the picture (keys or bytes), when measured.
    pub load: Option<u64>,
}

/// The 16384 slots: each one's owner (an index into `owners`, `None` when no master
/// claims it), mark and load.
#[derive(Debug, Clone)]
pub struct SlotMap {
    pub owners: Vec<Owner>,
    pub owner: Vec<Option<usize>>,
    pub mark: Vec<Mark>,
    /// Per slot, in the measure `by` (all 0 when by slots).
    pub load: Vec<u64>,
    /// `slots`, `keys` or `memory`.
    pub by: String,
}

/// The letter of owner `i` when there is no colour: A-Z, then a-z, then 0-9, then `#`.
pub fn letter(i: usize) -> char {
    const LETTERS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    LETTERS.get(i).map_or('#', |b| char::from(*b))
}

impl SlotMap {
    /// The map of `masters`' slots (in their order), marks from their own views.
    pub fn of_masters(masters: &[NodeInfo], by: &str) -> SlotMap {
        let mut owner = vec![None; usize::from(SLOTS)];
        let mut mark = vec![Mark::Plain; usize::from(SLOTS)];
        let mut owners = Vec::new();
        for (i, m) in masters.iter().enumerate() {
            let mut count = 0;
            for &(a, b) in &m.slots {
                for s in a..=b {
                    owner[usize::from(s)] = Some(i);
                    count += 1;
                }
            }
            for s in m.migrating.keys().chain(m.importing.keys()) {
                mark[usize::from(*s)] = Mark::Open;
            }
            owners.push(Owner {
                addr: m.addr(),
                id: m.id.clone(),
                slots: count,
                load: None,
            });
        }
        SlotMap {
            owners,
            owner,
            mark,
            load: vec![0; usize::from(SLOTS)],
            by: by.to_string(),
        }
    }

    /// The map of `cluster` now: its masters in address order, open slots and atomic
    /// jobs in flight marked; with `by` keys or memory, each slot's load measured
    /// (memory from `sample` keys per slot).
    pub fn read(cluster: &dyn Cluster, by: &str, sample: u64) -> Result<SlotMap> {
        let nodes = merged_nodes(&cluster.views()?);
        let mut masters: Vec<NodeInfo> = nodes
            .into_iter()
            .filter(|n| n.is_master() && !n.noaddr())
            .collect();
        masters.sort_by_key(|n| (n.host.clone(), n.port));
        let mut map = SlotMap::of_masters(&masters, by);
        for m in &masters {
            for job in cluster.slot_migrations(&m.addr())? {
                if job.in_flight() {
                    for &(a, b) in &job.slots {
                        for s in a..=b {
                            map.mark[usize::from(s)] = Mark::Moving;
                        }
                    }
                }
            }
        }
        if by != "slots" {
            let asks: Vec<(String, Vec<u16>)> = masters
                .iter()
                .map(|m| {
                    let slots = m.slots.iter().flat_map(|&(a, b)| a..=b).collect();
                    (m.addr(), slots)
                })
                .collect();
            let sample = if by == "memory" { sample.max(1) } else { 0 };
            let loads: Vec<Loads> = cluster
                .slot_loads_of(&asks, sample)
                .into_iter()
                .collect::<Result<_>>()?;
            for (i, l) in loads.iter().enumerate() {
                let mut total = 0;
                for s in &l.slots {
                    let v = if by == "keys" {
                        s.keys
                    } else {
                        s.bytes.unwrap_or(0)
                    };
                    map.load[usize::from(s.slot)] = v;
                    total += v;
                }
                map.owners[i].load = Some(total);
            }
        }
        Ok(map)
    }

    /// This map after `moves` (slot -> new owner's id): owners and loads follow their
    /// slots; the marks are cleared on the slots moved.
    pub fn after(&self, moves: &BTreeMap<u16, String>) -> SlotMap {
        let mut out = self.clone();
        for (slot, id) in moves {
            let Some(to) = out.owners.iter().position(|o| &o.id == id) else {
                continue;
            };
            let s = usize::from(*slot);
            if let Some(from) = out.owner[s] {
                out.owners[from].slots -= 1;
                if let Some(l) = out.owners[from].load.as_mut() {
                    *l -= out.load[s];
                }
            }
            out.owners[to].slots += 1;
            if let Some(l) = out.owners[to].load.as_mut() {
                *l += out.load[s];
            }
            out.owner[s] = Some(to);
            out.mark[s] = Mark::Plain;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master(id: &str, port: u16, slots: Vec<(u16, u16)>) -> NodeInfo {
        let line = format!("{id} 127.0.0.1:{port}@1{port} master - 0 0 1 connected");
        let mut n = crate::cluster::topology::parse_cluster_nodes(&line)
            .unwrap()
            .remove(0);
        n.slots = slots;
        n
    }

    #[test]
    fn owners_marks_and_moves() {
        let mut a = master("a", 7001, vec![(0, 8191)]);
        a.migrating.insert(5, "b".into());
        let b = master("b", 7002, vec![(8192, 16383)]);
        let map = SlotMap::of_masters(&[a, b], "slots");
        assert_eq!(map.owners[0].slots, 8192);
        assert_eq!(map.owner[8192], Some(1));
        assert_eq!(map.mark[5], Mark::Open);
        let after = map.after(&[(5u16, "b".to_string())].into());
        assert_eq!((after.owners[0].slots, after.owners[1].slots), (8191, 8193));
        assert_eq!(after.mark[5], Mark::Plain);
        assert_eq!(letter(0), 'A');
        assert_eq!(letter(26), 'a');
        assert_eq!(letter(99), '#');
    }
}
