//! The state a plan is made on: who owns which slots and which nodes there are, with
//! their roles. A dry run's `--json` plan carries it; `apply` carries the plan out only
//! while the cluster still matches, and otherwise says what changed.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::topology::{format_ranges, ranges_of};
use super::NodeInfo;

/// One node as the fingerprint keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FpNode {
    pub id: String,
    pub addr: String,
    /// `master` or `replica`.
    pub role: String,
    /// The master a replica follows (its id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub master: Option<String>,
}

/// Owners and nodes, and a short hash of both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fingerprint {
    pub hash: String,
    /// `[start, end, owner id]`, ascending; slots without an owner are left out.
    pub owners: Vec<(u16, u16, String)>,
    pub nodes: Vec<FpNode>,
}

/// FNV-1a, 64 bits, as hex: a short name for a state, not a security measure.
fn fnv(text: &str) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in text.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

impl Fingerprint {
    /// The fingerprint of a cluster's merged view (failing and `noaddr` nodes kept:
    /// they are part of what the plan saw).
    pub fn of(nodes: &[NodeInfo]) -> Fingerprint {
        let mut owner: BTreeMap<u16, &str> = BTreeMap::new();
        for n in nodes.iter().filter(|n| n.is_master()) {
            for &(a, b) in &n.slots {
                for s in a..=b {
                    owner.insert(s, &n.id);
                }
            }
        }
        let mut owners: Vec<(u16, u16, String)> = Vec::new();
        for (s, id) in owner {
            match owners.last_mut() {
                Some((_, b, o)) if *b + 1 == s && o == id => *b = s,
                _ => owners.push((s, s, id.to_string())),
            }
        }
        let mut fp_nodes: Vec<FpNode> = nodes
            .iter()
            .map(|n| FpNode {
                id: n.id.clone(),
                addr: n.addr(),
                role: if n.is_master() { "master" } else { "replica" }.to_string(),
                master: n.master_id.clone().filter(|_| !n.is_master()),
            })
            .collect();
        fp_nodes.sort_by(|a, b| a.id.cmp(&b.id));
        let text = serde_json::to_string(&(&owners, &fp_nodes)).unwrap_or_default();
        Fingerprint {
            hash: fnv(&text),
            owners,
            nodes: fp_nodes,
        }
    }

    /// The owner id of every slot.
    fn owner_map(&self) -> BTreeMap<u16, String> {
        let mut out = BTreeMap::new();
        for (a, b, id) in &self.owners {
            for s in *a..=*b {
                out.insert(s, id.clone());
            }
        }
        out
    }

    /// What changed from `self` (the saved state) to `now`, one sentence each: nodes
    /// gone, new, with another address or role; slots with another owner (in ranges,
    /// by old and new owner).
    pub fn changes(&self, now: &Fingerprint) -> Vec<String> {
        let mut out = Vec::new();
        let name = |fp: &Fingerprint, id: &str| {
            fp.nodes
                .iter()
                .find(|n| n.id == id)
                .map_or_else(|| id.chars().take(8).collect(), |n| n.addr.clone())
        };
        for old in &self.nodes {
            match now.nodes.iter().find(|n| n.id == old.id) {
                None => out.push(format!("{} ({}) is gone", old.addr, short(&old.id))),
                Some(n) => {
                    if n.addr != old.addr {
                        out.push(format!("{} is now at {}", old.addr, n.addr));
                    }
                    if n.role != old.role || n.master != old.master {
                        let was = describe(self, old, &name);
                        let is = describe(now, n, &name);
                        out.push(format!("{} was {was}, is now {is}", old.addr));
                    }
                }
            }
        }
        for n in &now.nodes {
            if !self.nodes.iter().any(|o| o.id == n.id) {
                out.push(format!(
                    "{} ({}) joined as a {}",
                    n.addr,
                    short(&n.id),
                    n.role
                ));
            }
        }
        let (before, after) = (self.owner_map(), now.owner_map());
        let mut moved: BTreeMap<(Option<String>, Option<String>), Vec<u16>> = BTreeMap::new();
        for s in 0..super::SLOTS {
            let (b, a) = (before.get(&s), after.get(&s));
            if b != a {
                moved.entry((b.cloned(), a.cloned())).or_default().push(s);
            }
        }
        for ((b, a), slots) in moved {
            let who = |fp: &Fingerprint, id: &Option<String>| match id {
                Some(id) => name(fp, id),
                None => "no one".to_string(),
            };
            out.push(format!(
                "slot{} {}: owned by {} then, by {} now",
                if slots.len() == 1 { "" } else { "s" },
                format_ranges(&ranges_of(&slots)),
                who(self, &b),
                who(now, &a)
            ));
        }
        out
    }
}

fn short(id: &str) -> String {
    id.chars().take(8).collect()
}

fn describe(fp: &Fingerprint, n: &FpNode, name: &dyn Fn(&Fingerprint, &str) -> String) -> String {
    match &n.master {
        Some(m) if n.role == "replica" => format!("a replica of {}", name(fp, m)),
        _ => format!("a {}", n.role),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::topology::parse_cluster_nodes;

    const NODES: &str = "a 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-8191\n\
                         b 127.0.0.1:7002@17002 master - 0 0 2 connected 8192-16383\n\
                         c 127.0.0.1:7003@17003 slave a 0 0 1 connected";

    #[test]
    fn the_same_state_has_the_same_hash_and_no_changes() {
        let fp = Fingerprint::of(&parse_cluster_nodes(NODES).unwrap());
        let again = Fingerprint::of(&parse_cluster_nodes(NODES).unwrap());
        assert_eq!(fp, again);
        assert!(fp.changes(&again).is_empty());
        assert_eq!(fp.owners.len(), 2);
    }

    #[test]
    fn moved_slots_and_roles_are_named() {
        let fp = Fingerprint::of(&parse_cluster_nodes(NODES).unwrap());
        let changed = NODES
            .replace("0-8191", "0-8190")
            .replace("8192-16383", "8191-16383")
            .replace("slave a", "slave b");
        let now = Fingerprint::of(&parse_cluster_nodes(&changed).unwrap());
        let c = fp.changes(&now);
        assert!(c.contains(&"127.0.0.1:7003 was a replica of 127.0.0.1:7001, is now a replica of 127.0.0.1:7002".to_string()), "{c:?}");
        assert!(
            c.contains(
                &"slot 8191: owned by 127.0.0.1:7001 then, by 127.0.0.1:7002 now".to_string()
            ),
            "{c:?}"
        );
        assert_ne!(fp.hash, now.hash);
    }
}
