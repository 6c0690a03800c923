//! `check`: a pure function from every node's own view of the cluster (its
//! `CLUSTER NODES` and `DBSIZE`) to a health report, and the report rendered as text
//! close to `redis-cli --cluster check`. The live and in-memory clusters share it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub mod migrations;
mod render;

pub use render::render;
use render::{
    and_list, coverage_errors, disagreement_errors, open_slot_warnings, serving_errors,
    several_owner_warnings,
};

use crate::cluster::topology::{format_ranges, ranges_of};
use crate::cluster::{merged_nodes, NodeInfo, NodeState, NodeView, SLOTS};

/// The result of [`check`]. `warnings` and `errors` hold every problem as one
/// self-contained sentence; the other fields hold the same facts as data.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CheckReport {
    /// The address slotsmith was pointed at.
    pub seed: String,
    /// `agree` and no open slots, no uncovered slots and no errors.
    pub ok: bool,
    /// Every reachable node has the same slot-to-owner map.
    pub agree: bool,
    /// The slots on which views differ, grouped by identical claims.
    pub disagreements: Vec<Disagreement>,
    /// Slots some node has in migrating or importing state (as redis-cli means "open").
    pub open_slots: Vec<OpenSlot>,
    /// Slots that more than one master claims (in the merged view), grouped by their
    /// owners: a failover that gossip has not finished telling, or a real conflict.
    #[serde(default)]
    pub several_owners: Vec<SeveralOwners>,
    /// Ranges no node owns in the merged view (each node as it describes itself).
    pub uncovered: Vec<(u16, u16)>,
    /// Every master, sorted by address.
    pub masters: Vec<MasterSummary>,
    /// Every replica, sorted by address.
    pub replicas: Vec<ReplicaSummary>,
    /// Sum of the reachable masters' `DBSIZE`.
    pub total_keys: u64,
    /// redis-cli's open slot messages (`Node ... has slots in migrating state 5519.`)
    /// and node oddities (handshake, replicas not asked, unknown masters).
    pub warnings: Vec<String>,
    /// Unreachable and failing nodes, disagreements, uncovered slots, nodes that do
    /// not serve.
    pub errors: Vec<String>,
    /// Nodes that say `cluster_state:fail`: they refuse every query, MIGRATE included,
    /// so no slot can move while any does.
    #[serde(default)]
    pub not_serving: Vec<String>,
    /// Atomic slot migrations in flight, and those that failed a moment ago (see
    /// [`migrations::add`]); a job in flight makes the report not ok.
    #[serde(default)]
    pub migrations: Vec<migrations::Migration>,
    /// Nodes that could not list their atomic slot migrations, each as one sentence
    /// (`cannot list the atomic slot migrations of A: why`, see
    /// [`migrations::add_unlisted`]): a warning, and the report is not ok, since a job
    /// may be in flight there.
    #[serde(default)]
    pub unlisted: Vec<String>,
}

/// Slots on which the reachable nodes' views differ, and what each of them says.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Disagreement {
    /// The slots, as sorted inclusive ranges.
    pub slots: Vec<(u16, u16)>,
    /// One claim per reachable node, in address order.
    pub claims: Vec<Claim>,
}

/// What one node says about the owner of some slots.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claim {
    /// Address of the node whose view this is.
    pub node: String,
    /// Id of the owner that node sees, `None` when it sees none.
    pub owner: Option<String>,
}

/// Slots claimed by the same several masters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SeveralOwners {
    /// The slots, as sorted inclusive ranges.
    pub slots: Vec<(u16, u16)>,
    /// Their owners' ids.
    pub owners: Vec<String>,
    /// One owner is failing and another is not: a failover in progress, the nodes
    /// not yet all told.
    pub failover: bool,
}

/// A slot being migrated or imported.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenSlot {
    pub slot: u16,
    /// Ids of the nodes that have the slot in migrating state.
    pub migrating: Vec<String>,
    /// Ids of the nodes that have the slot in importing state.
    pub importing: Vec<String>,
    /// Every distinct owner id that any view claims for the slot.
    pub owners: Vec<String>,
}

/// One master, as the merged view describes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MasterSummary {
    pub id: String,
    pub addr: String,
    /// Its own `DBSIZE`; 0 when unreachable.
    pub keys: u64,
    /// Number of slots it owns.
    pub slots: usize,
    /// The slots it owns, as sorted inclusive ranges.
    pub ranges: Vec<(u16, u16)>,
    /// Number of replicas whose master id is this master.
    pub replicas: usize,
    /// Some reachable node flags it `fail` or `fail?`.
    pub failing: bool,
    /// It answered for itself.
    pub reachable: bool,
}

/// One replica, as the merged view describes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReplicaSummary {
    pub id: String,
    pub addr: String,
    pub master_id: Option<String>,
    /// Some reachable node flags it `fail` or `fail?`.
    pub failing: bool,
    /// It answered for itself.
    pub reachable: bool,
}

/// Checks a cluster from every node's own view, like `redis-cli --cluster check` but
/// naming the nodes and slots behind each problem. `seed` is only reported.
pub fn check(seed: &str, views: &[NodeView]) -> CheckReport {
    let merged = merged_nodes(views);
    let mut errors = Vec::new();
    let warnings = Vec::new();

    let mut reachable: Vec<(&str, &NodeState)> = views
        .iter()
        .filter_map(|v| v.state.as_ref().ok().map(|s| (v.addr.as_str(), s)))
        .collect();
    reachable.sort_by(|a, b| addr_key(a.0).cmp(&addr_key(b.0)));
    let mut unreachable: Vec<(&str, &str)> = views
        .iter()
        .filter_map(|v| {
            let reason = v.state.as_ref().err()?;
            Some((v.addr.as_str(), reason.as_str()))
        })
        .collect();
    unreachable.sort_by(|a, b| addr_key(a.0).cmp(&addr_key(b.0)));

    if views.is_empty() {
        errors.push("No node was asked.".to_string());
    }
    for (addr, reason) in &unreachable {
        errors.push(format!("{addr}: {reason}"));
    }
    for (addr, state) in &reachable {
        if state.myself().is_none() {
            errors.push(format!("{addr}: its CLUSTER NODES has no myself line."));
        }
    }

    let signatures: Vec<Vec<String>> = reachable.iter().map(|(_, s)| signature(&s.nodes)).collect();
    let agree = signatures.windows(2).all(|w| w[0] == w[1]);
    // A table of 16384 owners per view is only worth building when the views differ.
    let disagreements = if agree {
        Vec::new()
    } else {
        let tables: Vec<Vec<Option<&str>>> = reachable
            .iter()
            .map(|(_, s)| owner_table(&s.nodes))
            .collect();
        find_disagreements(&reachable, &tables)
    };

    // Owners in the merged view, where each node describes itself when it can.
    let mut merged_owners: Vec<Vec<&str>> = vec![Vec::new(); usize::from(SLOTS)];
    for n in &merged {
        for slot in slots_of(n) {
            let owners = &mut merged_owners[usize::from(slot)];
            if !owners.contains(&n.id.as_str()) {
                owners.push(n.id.as_str());
            }
        }
    }
    let uncovered_slots: Vec<u16> = (0..SLOTS)
        .filter(|&s| merged_owners[usize::from(s)].is_empty())
        .collect();
    let open_slots = find_open_slots(&reachable, &merged_owners);
    let claimed_twice = find_several_owners(&merged_owners);

    let mut nodes = Nodes {
        merged: &merged,
        reachable: &reachable,
        unreachable: &unreachable,
        masters: Vec::new(),
        replicas: Vec::new(),
        warnings,
        errors,
    };
    nodes.summarize();
    let Nodes {
        mut masters,
        mut replicas,
        warnings,
        errors,
        ..
    } = nodes;
    masters.sort_by(|a, b| addr_key(&a.addr).cmp(&addr_key(&b.addr)));
    replicas.sort_by(|a, b| addr_key(&a.addr).cmp(&addr_key(&b.addr)));
    let total_keys = masters.iter().map(|m| m.keys).sum();

    let mut report = CheckReport {
        seed: seed.to_string(),
        ok: false,
        agree,
        disagreements,
        open_slots,
        uncovered: ranges_of(&uncovered_slots),
        masters,
        replicas,
        total_keys,
        several_owners: Vec::new(),
        unlisted: Vec::new(),
        warnings,
        errors,
        not_serving: reachable
            .iter()
            .filter(|(_, s)| s.says_fail())
            .map(|(a, _)| a.to_string())
            .collect(),
        migrations: Vec::new(),
    };
    report.several_owners = claimed_twice
        .into_iter()
        .map(|(owners, slots)| {
            let failing = |id: &String| report.masters.iter().any(|m| &m.id == id && m.failing);
            SeveralOwners {
                slots: ranges_of(&slots),
                failover: owners.iter().any(failing) && !owners.iter().all(failing),
                owners,
            }
        })
        .collect();
    // The sentences about slots, made from the report so that `render` can place them.
    let mut more_warnings = several_owner_warnings(&report);
    more_warnings.extend(open_slot_warnings(&report));
    report.warnings.extend(more_warnings);
    let mut more_errors = disagreement_errors(&report);
    more_errors.extend(coverage_errors(&report));
    more_errors.extend(serving_errors(&report));
    report.errors.extend(more_errors);
    report.ok = report.agree
        && report.open_slots.is_empty()
        && report.several_owners.is_empty()
        && report.uncovered.is_empty()
        && report.errors.is_empty();
    report
}

/// The slots on which the reachable views (`tables`, one owner per slot each) differ,
/// grouped by identical claims and sorted by first slot.
fn find_disagreements(
    reachable: &[(&str, &NodeState)],
    tables: &[Vec<Option<&str>>],
) -> Vec<Disagreement> {
    let mut groups: BTreeMap<Vec<Option<&str>>, Vec<u16>> = BTreeMap::new();
    for slot in 0..SLOTS {
        let claims: Vec<Option<&str>> = tables.iter().map(|t| t[usize::from(slot)]).collect();
        if claims.windows(2).any(|w| w[0] != w[1]) {
            groups.entry(claims).or_default().push(slot);
        }
    }
    let mut out: Vec<Disagreement> = groups
        .into_iter()
        .map(|(claims, slots)| Disagreement {
            slots: ranges_of(&slots),
            claims: reachable
                .iter()
                .zip(claims)
                .map(|((addr, _), owner)| Claim {
                    node: addr.to_string(),
                    owner: owner.map(str::to_string),
                })
                .collect(),
        })
        .collect();
    out.sort_by_key(|d| d.slots.first().copied());
    out
}

/// Slots in migrating or importing state on the `myself` line of any reachable node,
/// with every owner any view claims.
fn find_open_slots(reachable: &[(&str, &NodeState)], merged_owners: &[Vec<&str>]) -> Vec<OpenSlot> {
    let mut open: BTreeMap<u16, OpenSlot> = BTreeMap::new();
    for me in reachable.iter().filter_map(|(_, s)| s.myself()) {
        for &slot in me.migrating.keys() {
            push_unique(&mut open_entry(&mut open, slot).migrating, &me.id);
        }
        for &slot in me.importing.keys() {
            push_unique(&mut open_entry(&mut open, slot).importing, &me.id);
        }
    }
    for (&slot, o) in open.iter_mut() {
        let i = usize::from(slot);
        let claimed = reachable
            .iter()
            .filter_map(|(_, s)| owner_in(&s.nodes, slot));
        for owner in claimed.chain(merged_owners.get(i).into_iter().flatten().copied()) {
            push_unique(&mut o.owners, owner);
        }
    }
    open.into_values().collect()
}

/// Slots with several owners in the merged view, grouped by the same owners, in
/// order of their first slot.
fn find_several_owners(merged_owners: &[Vec<&str>]) -> Vec<(Vec<String>, Vec<u16>)> {
    let mut groups: BTreeMap<Vec<String>, Vec<u16>> = BTreeMap::new();
    for slot in 0..SLOTS {
        let owners = &merged_owners[usize::from(slot)];
        if owners.len() > 1 {
            let mut key: Vec<String> = owners.iter().map(|o| o.to_string()).collect();
            key.sort();
            groups.entry(key).or_default().push(slot);
        }
    }
    let mut out: Vec<(Vec<String>, Vec<u16>)> = groups.into_iter().collect();
    out.sort_by_key(|(_, slots)| slots.first().copied());
    out
}

/// The entry of `slot`, created empty if needed.
fn open_entry(open: &mut BTreeMap<u16, OpenSlot>, slot: u16) -> &mut OpenSlot {
    open.entry(slot).or_insert_with(|| OpenSlot {
        slot,
        migrating: Vec::new(),
        importing: Vec::new(),
        owners: Vec::new(),
    })
}

/// The node summaries being built, with the problems found on the way.
struct Nodes<'a> {
    merged: &'a [NodeInfo],
    reachable: &'a [(&'a str, &'a NodeState)],
    unreachable: &'a [(&'a str, &'a str)],
    masters: Vec<MasterSummary>,
    replicas: Vec<ReplicaSummary>,
    warnings: Vec<String>,
    errors: Vec<String>,
}

impl<'a> Nodes<'a> {
    /// One summary per master and replica of the merged view; errors for failing
    /// nodes and for masters nobody could ask about themselves.
    fn summarize(&mut self) {
        for n in self.merged {
            let addr = n.addr();
            if n.handshake() {
                self.warnings
                    .push(format!("Node {addr} ({}) is in handshake state.", n.id));
                continue;
            }
            let own = self
                .reachable
                .iter()
                .find(|(_, s)| s.myself().is_some_and(|me| me.id == n.id))
                .map(|(_, s)| *s);
            let marks = self.failure_marks(&n.id);
            let failing = !marks.is_empty();
            if failing {
                self.errors.push(failing_message(n, &marks));
            }
            let asked = self.unreachable.iter().any(|(a, _)| *a == addr);
            if own.is_none() && !asked && !failing {
                let msg = format!(
                    "{} {addr} ({}) was not asked about itself.",
                    role_word(n),
                    n.id
                );
                if n.is_master() {
                    self.errors.push(msg);
                } else {
                    self.warnings.push(msg);
                }
            }
            if n.is_master() {
                let slots: Vec<u16> = slots_of(n).collect();
                self.masters.push(MasterSummary {
                    id: n.id.clone(),
                    addr,
                    keys: own.map_or(0, |s| s.keys),
                    slots: slots.len(),
                    ranges: ranges_of(&slots),
                    replicas: self
                        .merged
                        .iter()
                        .filter(|r| r.is_replica() && !r.handshake())
                        .filter(|r| r.master_id.as_ref() == Some(&n.id))
                        .count(),
                    failing,
                    reachable: own.is_some(),
                });
            } else if n.is_replica() {
                self.check_master_of(n);
                self.replicas.push(ReplicaSummary {
                    id: n.id.clone(),
                    addr,
                    master_id: n.master_id.clone(),
                    failing,
                    reachable: own.is_some(),
                });
            } else {
                self.warnings.push(format!(
                    "Node {addr} ({}) is neither master nor replica (flags {}).",
                    n.id,
                    n.flags.join(",")
                ));
            }
        }
    }

    /// `(viewer, "fail" | "fail?")` for every reachable node that flags `id` so.
    fn failure_marks(&self, id: &str) -> Vec<(&'a str, &'static str)> {
        self.reachable
            .iter()
            .filter_map(|(viewer, s)| {
                let seen = s.nodes.iter().find(|o| o.id == id && !o.is_myself())?;
                let flag = if seen.has_flag("fail") {
                    "fail"
                } else if seen.has_flag("fail?") {
                    "fail?"
                } else {
                    return None;
                };
                Some((*viewer, flag))
            })
            .collect()
    }

    /// A warning when a replica's master is missing or not a master.
    fn check_master_of(&mut self, n: &NodeInfo) {
        let addr = n.addr();
        match &n.master_id {
            None => self
                .warnings
                .push(format!("Replica {addr} ({}) has no master.", n.id)),
            Some(m) if !self.merged.iter().any(|o| &o.id == m && o.is_master()) => {
                self.warnings.push(format!(
                    "Replica {addr} ({}) replicates {m}, which is not a known master.",
                    n.id
                ))
            }
            Some(_) => {}
        }
    }
}

/// `Master`, `Replica` or `Node`, to start a sentence about `n`.
fn role_word(n: &NodeInfo) -> &'static str {
    if n.is_master() {
        "Master"
    } else if n.is_replica() {
        "Replica"
    } else {
        "Node"
    }
}

/// `Node 127.0.0.1:7003 (<id>) is failing: marked fail by A and B; fail? by C.`
fn failing_message(n: &NodeInfo, marks: &[(&str, &str)]) -> String {
    let mut parts = Vec::new();
    for flag in ["fail", "fail?"] {
        let by: Vec<&str> = marks
            .iter()
            .filter(|(_, f)| *f == flag)
            .map(|(v, _)| *v)
            .collect();
        if !by.is_empty() {
            parts.push(format!("{flag} by {}", and_list(&by)));
        }
    }
    format!(
        "Node {} ({}) is failing: marked {}.",
        n.addr(),
        n.id,
        parts.join("; ")
    )
}

/// The owner map of one view, as `id:ranges` of every node owning slots, sorted.
fn signature(nodes: &[NodeInfo]) -> Vec<String> {
    let mut sig: Vec<String> = nodes
        .iter()
        .filter(|n| !n.slots.is_empty())
        .map(|n| format!("{}:{}", n.id, format_ranges(&normal_ranges(&n.slots))))
        .collect();
    sig.sort();
    sig
}

/// Slot ranges sorted, merged where they touch or overlap, and cut to valid slots:
/// what `ranges_of` gives for the slots they cover, without listing each slot.
fn normal_ranges(ranges: &[(u16, u16)]) -> Vec<(u16, u16)> {
    let mut sorted: Vec<(u16, u16)> = ranges
        .iter()
        .filter(|&&(a, b)| a <= b && a < SLOTS)
        .map(|&(a, b)| (a, b.min(SLOTS - 1)))
        .collect();
    sorted.sort_unstable();
    let mut out: Vec<(u16, u16)> = Vec::with_capacity(sorted.len());
    for (a, b) in sorted {
        match out.last_mut() {
            Some((_, end)) if a <= end.saturating_add(1) => *end = (*end).max(b),
            _ => out.push((a, b)),
        }
    }
    out
}

/// The owner of `slot` in one view: the first node that claims it.
fn owner_in(nodes: &[NodeInfo], slot: u16) -> Option<&str> {
    nodes
        .iter()
        .find(|n| n.slots.iter().any(|&(a, b)| a <= slot && slot <= b))
        .map(|n| n.id.as_str())
}

/// The owner id of every slot in one view (the first claimer if several claim it).
fn owner_table(nodes: &[NodeInfo]) -> Vec<Option<&str>> {
    let mut table = vec![None; usize::from(SLOTS)];
    for n in nodes {
        for slot in slots_of(n) {
            if let Some(entry) = table.get_mut(usize::from(slot)) {
                entry.get_or_insert(n.id.as_str());
            }
        }
    }
    table
}

/// Every slot a node claims, valid or not, in printed order.
fn slots_of(n: &NodeInfo) -> impl Iterator<Item = u16> + '_ {
    n.slots
        .iter()
        .flat_map(|&(a, b)| a..=b)
        .filter(|&s| s < SLOTS)
}

fn push_unique(list: &mut Vec<String>, id: &str) {
    if !list.iter().any(|i| i == id) {
        list.push(id.to_string());
    }
}

/// Sort key of an address: host, then numeric port.
fn addr_key(addr: &str) -> (&str, u16) {
    match addr.rsplit_once(':') {
        Some((host, port)) => (host, port.parse().unwrap_or(0)),
        None => (addr, 0),
    }
}

#[cfg(test)]
mod tests;
