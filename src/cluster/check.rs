//! `check`: a pure function from every node's own view of the cluster (its
//! `CLUSTER NODES` and `DBSIZE`) to a health report, and the report rendered as text
//! close to `redis-cli --cluster check`. The live and in-memory clusters share it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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
        warnings,
        errors,
        not_serving: reachable
            .iter()
            .filter(|(_, s)| s.says_fail())
            .map(|(a, _)| a.to_string())
            .collect(),
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

/// The report as text close to `redis-cli --cluster check`.
pub fn render(report: &CheckReport) -> String {
    let disagreement = disagreement_errors(report);
    let open = open_slot_warnings(report);
    let coverage = coverage_errors(report);
    let mut out: Vec<String> = Vec::new();

    for m in &report.masters {
        let keys = if m.reachable {
            format!("{} keys", m.keys)
        } else {
            "unreachable".to_string()
        };
        out.push(format!(
            "{} ({}...) -> {keys} | {} slots | {} replicas.",
            m.addr,
            short_id(&m.id),
            m.slots,
            m.replicas
        ));
    }
    let down = report.masters.iter().filter(|m| !m.reachable).count();
    if down == 0 {
        out.push(format!(
            "[OK] {} keys in {} masters.",
            report.total_keys,
            report.masters.len()
        ));
    } else {
        out.push(format!(
            "[WARNING] {} keys in {} masters ({down} unreachable, not counted).",
            report.total_keys,
            report.masters.len()
        ));
    }
    out.push(format!(
        "{:.2} keys per slot on average.",
        report.total_keys as f64 / f64::from(SLOTS)
    ));

    out.push(format!(
        ">>> Performing Cluster Check (using node {})",
        report.seed
    ));
    for m in &report.masters {
        out.push(format!("M: {} {}", m.id, m.addr));
        out.push(format!(
            "   slots:{} ({} slots) master{}",
            bracketed(&m.ranges),
            m.slots,
            condition(m.failing, m.reachable)
        ));
        if m.replicas > 0 {
            out.push(format!("   {} additional replica(s)", m.replicas));
        }
    }
    for r in &report.replicas {
        out.push(format!("S: {} {}", r.id, r.addr));
        out.push(format!(
            "   slots: (0 slots) replica{}",
            condition(r.failing, r.reachable)
        ));
        if let Some(m) = &r.master_id {
            out.push(format!("   replicates {m}"));
        }
    }
    for e in &report.errors {
        if !disagreement.contains(e) && !coverage.contains(e) {
            out.push(format!("[ERR] {e}"));
        }
    }
    for w in &report.warnings {
        if !open.contains(w) {
            out.push(format!("[WARNING] {w}"));
        }
    }

    if report.agree {
        out.push("[OK] All nodes agree about slots configuration.".to_string());
    } else {
        out.push("[ERR] Nodes don't agree about configuration!".to_string());
        out.extend(disagreement.iter().map(|d| format!("   {d}")));
    }
    out.push(">>> Check for open slots...".to_string());
    out.extend(open.iter().map(|w| format!("[WARNING] {w}")));
    out.push(">>> Check slots coverage...".to_string());
    if report.uncovered.is_empty() {
        out.push(format!("[OK] All {SLOTS} slots covered."));
    } else {
        out.push(format!("[ERR] Not all {SLOTS} slots are covered by nodes."));
        out.push(format!(
            "   uncovered slots: {}",
            format_ranges(&report.uncovered)
        ));
    }
    let mut text = out.join("\n");
    text.push('\n');
    text
}

/// Slots claimed by several masters: a failover that gossip has not finished telling
/// (one owner failing, the other its successor), or a real conflict.
fn several_owner_warnings(report: &CheckReport) -> Vec<String> {
    report
        .several_owners
        .iter()
        .map(|g| {
            let slots = format_ranges(&g.slots);
            let (noun, verb) = if g.slots.len() == 1 && g.slots[0].0 == g.slots[0].1 {
                ("Slot", "is")
            } else {
                ("Slots", "are")
            };
            let failing = |id: &String| report.masters.iter().any(|m| &m.id == id && m.failing);
            if g.failover {
                let old: Vec<String> = g.owners.iter().filter(|o| failing(o)).map(|o| addr_of(report, o)).collect();
                let new: Vec<String> = g.owners.iter().filter(|o| !failing(o)).map(|o| addr_of(report, o)).collect();
                format!(
                    "Failover in progress: {} is failing and {} has taken over {} {slots}; gossip has not converged yet (the nodes disagree until it has).",
                    old.join(", "),
                    new.join(", "),
                    noun.to_lowercase()
                )
            } else {
                let names: Vec<String> = g.owners.iter().map(|o| label(report, o)).collect();
                format!(
                    "{noun} {slots} {verb} claimed by {} owners: {}.",
                    g.owners.len(),
                    names.join(", ")
                )
            }
        })
        .collect()
}

/// The warnings about open slots, redis-cli's sentences: per node, its slots in
/// migrating and in importing state; then the list.
fn open_slot_warnings(report: &CheckReport) -> Vec<String> {
    let mut out = Vec::new();
    if report.open_slots.is_empty() {
        return out;
    }
    let mut ids: Vec<&str> = Vec::new();
    for o in &report.open_slots {
        for id in o.migrating.iter().chain(&o.importing) {
            if !ids.contains(&id.as_str()) {
                ids.push(id);
            }
        }
    }
    ids.sort_by(|a, b| {
        let (aa, ba) = (addr_of(report, a), addr_of(report, b));
        (addr_key(&aa), *a).cmp(&(addr_key(&ba), *b))
    });
    for id in ids {
        let addr = addr_of(report, id);
        for state in ["migrating", "importing"] {
            let slots: Vec<u16> = report
                .open_slots
                .iter()
                .filter(|o| marked(o, state).iter().any(|i| i == id))
                .map(|o| o.slot)
                .collect();
            if !slots.is_empty() {
                out.push(format!(
                    "Node {addr} has slots in {state} state {}.",
                    format_ranges(&ranges_of(&slots))
                ));
            }
        }
    }
    let all: Vec<u16> = report.open_slots.iter().map(|o| o.slot).collect();
    out.push(format!(
        "The following slots are open: {}.",
        format_ranges(&ranges_of(&all))
    ));
    out
}

/// The ids of the nodes that have the slot in `state` (`migrating` or `importing`).
fn marked<'a>(o: &'a OpenSlot, state: &str) -> &'a [String] {
    if state == "migrating" {
        &o.migrating
    } else {
        &o.importing
    }
}

/// One error per disagreement, naming the viewers and the owner each of them sees.
fn disagreement_errors(report: &CheckReport) -> Vec<String> {
    report
        .disagreements
        .iter()
        .map(|d| {
            let count: usize = d.slots.iter().map(|(a, b)| usize::from(b - a) + 1).sum();
            let (noun, it) = if count == 1 {
                ("slot", "it")
            } else {
                ("slots", "them")
            };
            let mut groups: Vec<(Option<&str>, Vec<&str>)> = Vec::new();
            for c in &d.claims {
                let owner = c.owner.as_deref();
                match groups.iter_mut().find(|(o, _)| *o == owner) {
                    Some((_, viewers)) => viewers.push(&c.node),
                    None => groups.push((owner, vec![&c.node])),
                }
            }
            let parts: Vec<String> = groups
                .iter()
                .map(|(owner, viewers)| {
                    let verb = if viewers.len() == 1 { "says" } else { "say" };
                    let who = owner.map_or("nobody".to_string(), |o| label(report, o));
                    format!("{} {verb} {who} owns {it}", and_list(viewers))
                })
                .collect();
            format!(
                "Nodes don't agree about {noun} {}: {}.",
                format_ranges(&d.slots),
                parts.join("; ")
            )
        })
        .collect()
}

/// redis-cli's coverage error, with the uncovered ranges.
fn coverage_errors(report: &CheckReport) -> Vec<String> {
    if report.uncovered.is_empty() {
        return Vec::new();
    }
    vec![format!(
        "Not all {SLOTS} slots are covered by nodes. Uncovered: {}.",
        format_ranges(&report.uncovered)
    )]
}

/// Nodes that say `cluster_state:fail`, and why as far as the views tell: failing
/// masters that hold slots, uncovered slots.
fn serving_errors(report: &CheckReport) -> Vec<String> {
    if report.not_serving.is_empty() {
        return Vec::new();
    }
    let mut why: Vec<String> = report
        .masters
        .iter()
        .filter(|m| m.failing && m.slots > 0)
        .map(|m| {
            format!(
                "master {} holding slots {} is failing",
                m.addr,
                format_ranges(&m.ranges)
            )
        })
        .collect();
    if !report.uncovered.is_empty() {
        why.push(format!(
            "slots {} have no owner",
            format_ranges(&report.uncovered)
        ));
    }
    let who: Vec<&str> = report.not_serving.iter().map(String::as_str).collect();
    let verb = if who.len() == 1 { "says" } else { "say" };
    vec![format!(
        "{} {verb} cluster_state:fail, so the cluster refuses queries and MIGRATE there{}.",
        and_list(&who),
        if why.is_empty() {
            String::new()
        } else {
            format!(": {}", why.join("; "))
        }
    )]
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

/// The address of a node of the report, or its id when the report does not list it.
fn addr_of(report: &CheckReport, id: &str) -> String {
    report
        .masters
        .iter()
        .find(|m| m.id == id)
        .map(|m| m.addr.clone())
        .or_else(|| {
            report
                .replicas
                .iter()
                .find(|r| r.id == id)
                .map(|r| r.addr.clone())
        })
        .unwrap_or_else(|| id.to_string())
}

/// `<id> (<addr>)`, or the id alone when the report does not list the node.
fn label(report: &CheckReport, id: &str) -> String {
    let addr = addr_of(report, id);
    if addr == id {
        id.to_string()
    } else {
        format!("{id} ({addr})")
    }
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The first 8 characters of an id.
fn short_id(id: &str) -> &str {
    id.get(..8).unwrap_or(id)
}

/// `[0-5460],[5519]` as redis-cli prints slots.
fn bracketed(ranges: &[(u16, u16)]) -> String {
    ranges
        .iter()
        .map(|r| format!("[{}]", format_ranges(std::slice::from_ref(r))))
        .collect::<Vec<_>>()
        .join(",")
}

/// `, failing`, `, unreachable` or both, after the role in the node lines.
fn condition(failing: bool, reachable: bool) -> String {
    let mut s = String::new();
    if failing {
        s.push_str(", failing");
    }
    if !reachable {
        s.push_str(", unreachable");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::topology::parse_cluster_nodes;

    fn id(c: char) -> String {
        c.to_string().repeat(40)
    }

    #[test]
    fn normal_ranges_cover_what_the_slots_cover() {
        let cases: [&[(u16, u16)]; 5] = [
            &[(5, 9), (0, 4), (20, 20)],
            &[(0, 100), (50, 60), (101, 101)],
            &[(16380, 16383), (16000, 16390)],
            &[(7, 3), (1, 1)],
            &[],
        ];
        for ranges in cases {
            let slots: Vec<u16> = ranges
                .iter()
                .flat_map(|&(a, b)| a..=b)
                .filter(|&s| s < SLOTS)
                .collect();
            assert_eq!(normal_ranges(ranges), ranges_of(&slots), "{ranges:?}");
        }
    }

    /// One line of `CLUSTER NODES` for node `c` at port `port`, 40 times `c` as id.
    fn line(c: char, port: u16, flags: &str, master: Option<char>, rest: &str) -> String {
        let master = master.map_or("-".to_string(), id);
        format!(
            "{} 127.0.0.1:{port}@{} {flags} {master} 0 1700000000000 1 connected {rest}",
            id(c),
            port + 10000
        )
    }

    /// A cluster description: (id char, port, flags without myself, master, slots).
    type Topo = Vec<(char, u16, &'static str, Option<char>, String)>;

    /// 3 masters (a, b, c on 7001-7003), one replica each (d, e, f on 7004-7006).
    fn healthy() -> Topo {
        vec![
            ('a', 7001, "master", None, "0-5460".into()),
            ('b', 7002, "master", None, "5461-10922".into()),
            ('c', 7003, "master", None, "10923-16383".into()),
            ('d', 7004, "slave", Some('a'), String::new()),
            ('e', 7005, "slave", Some('b'), String::new()),
            ('f', 7006, "slave", Some('c'), String::new()),
        ]
    }

    /// Node `me`'s `CLUSTER NODES`: `topo`, with `myself` on its line and `extra`
    /// (migrating/importing markers) after its slots.
    fn text(topo: &Topo, me: char, extra: &str) -> String {
        topo.iter()
            .map(|(c, port, flags, master, slots)| {
                if *c == me {
                    line(
                        *c,
                        *port,
                        &format!("myself,{flags}"),
                        *master,
                        &format!("{slots} {extra}"),
                    )
                } else {
                    line(*c, *port, flags, *master, slots)
                }
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn port_of(topo: &Topo, me: char) -> u16 {
        topo.iter().find(|n| n.0 == me).map_or(0, |n| n.1)
    }

    fn view_text(addr: &str, keys: u64, text: &str) -> NodeView {
        NodeView {
            addr: addr.to_string(),
            state: Ok(NodeState {
                nodes: parse_cluster_nodes(text).expect("test text parses"),
                keys,
                cluster_state: None,
            }),
        }
    }

    fn view(topo: &Topo, me: char, keys: u64, extra: &str) -> NodeView {
        let addr = format!("127.0.0.1:{}", port_of(topo, me));
        view_text(&addr, keys, &text(topo, me, extra))
    }

    fn down(addr: &str, reason: &str) -> NodeView {
        NodeView {
            addr: addr.to_string(),
            state: Err(reason.to_string()),
        }
    }

    /// Every node of `topo` answering with the same view and no open slots.
    fn all_views(topo: &Topo) -> Vec<NodeView> {
        topo.iter()
            .map(|n| view(topo, n.0, if n.2 == "master" { 10 } else { 0 }, ""))
            .collect()
    }

    fn set_slots(topo: &mut Topo, c: char, slots: &str) {
        if let Some(n) = topo.iter_mut().find(|n| n.0 == c) {
            n.4 = slots.to_string();
        }
    }

    fn has_line(text: &str, wanted: &str) -> bool {
        text.lines().any(|l| l == wanted)
    }

    #[test]
    fn healthy_three_masters() {
        let topo = healthy();
        let views = all_views(&topo);
        let r = check("127.0.0.1:7001", &views);
        assert!(r.ok, "{r:#?}");
        assert!(r.agree && r.disagreements.is_empty());
        assert!(r.open_slots.is_empty() && r.uncovered.is_empty());
        assert!(r.warnings.is_empty() && r.errors.is_empty(), "{r:#?}");
        assert_eq!(r.total_keys, 30);
        let addrs: Vec<&str> = r.masters.iter().map(|m| m.addr.as_str()).collect();
        assert_eq!(
            addrs,
            ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"]
        );
        let a = &r.masters[0];
        assert_eq!(a.id, id('a'));
        assert_eq!((a.keys, a.slots, a.replicas), (10, 5461, 1));
        assert_eq!(a.ranges, vec![(0, 5460)]);
        assert!(a.reachable && !a.failing);
        assert_eq!(r.replicas.len(), 3);
        assert_eq!(r.replicas[0].master_id, Some(id('a')));
        assert!(r.replicas.iter().all(|s| s.reachable && !s.failing));

        let out = render(&r);
        let expected = format!(
            "127.0.0.1:7001 (aaaaaaaa...) -> 10 keys | 5461 slots | 1 replicas.
127.0.0.1:7002 (bbbbbbbb...) -> 10 keys | 5462 slots | 1 replicas.
127.0.0.1:7003 (cccccccc...) -> 10 keys | 5461 slots | 1 replicas.
[OK] 30 keys in 3 masters.
0.00 keys per slot on average.
>>> Performing Cluster Check (using node 127.0.0.1:7001)
M: {a} 127.0.0.1:7001
   slots:[0-5460] (5461 slots) master
   1 additional replica(s)
M: {b} 127.0.0.1:7002
   slots:[5461-10922] (5462 slots) master
   1 additional replica(s)
M: {c} 127.0.0.1:7003
   slots:[10923-16383] (5461 slots) master
   1 additional replica(s)
S: {d} 127.0.0.1:7004
   slots: (0 slots) replica
   replicates {a}
S: {e} 127.0.0.1:7005
   slots: (0 slots) replica
   replicates {b}
S: {f} 127.0.0.1:7006
   slots: (0 slots) replica
   replicates {c}
[OK] All nodes agree about slots configuration.
>>> Check for open slots...
>>> Check slots coverage...
[OK] All 16384 slots covered.
",
            a = id('a'),
            b = id('b'),
            c = id('c'),
            d = id('d'),
            e = id('e'),
            f = id('f'),
        );
        assert_eq!(out, expected);
    }

    #[test]
    fn report_serializes_to_json() {
        let r = check("127.0.0.1:7001", &all_views(&healthy()));
        let v = serde_json::to_value(&r).expect("serializes");
        assert_eq!(v["ok"], true);
        assert_eq!(v["masters"][0]["ranges"], serde_json::json!([[0, 5460]]));
        assert_eq!(v["uncovered"], serde_json::json!([]));
    }

    #[test]
    fn report_round_trips_through_json() {
        let r = check("127.0.0.1:7001", &all_views(&healthy()));
        let json = serde_json::to_string(&r).expect("serializes");
        let back: CheckReport = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(render(&back), render(&r));
    }

    #[test]
    fn ranges_printed_in_pieces_still_agree() {
        let topo = healthy();
        let mut views = all_views(&topo);
        let mut split = topo.clone();
        set_slots(&mut split, 'a', "2731-5460 0-2730");
        views[0] = view(&split, 'a', 10, "");
        let r = check("127.0.0.1:7001", &views);
        assert!(r.agree && r.ok, "{r:#?}");
    }

    /// Slot 5519 moving from b (7002) to g, an empty master on 7007.
    fn with_empty_master() -> Topo {
        let mut topo = healthy();
        topo.push(('g', 7007, "master", None, String::new()));
        topo
    }

    #[test]
    fn stuck_slot_migrating_and_importing() {
        let topo = with_empty_master();
        let views: Vec<NodeView> = topo
            .iter()
            .map(|n| match n.0 {
                'b' => view(&topo, 'b', 10, &format!("[5519->-{}]", id('g'))),
                'g' => view(&topo, 'g', 2, &format!("[5519-<-{}]", id('b'))),
                c => view(&topo, c, 10, ""),
            })
            .collect();
        let r = check("127.0.0.1:7001", &views);
        assert!(!r.ok && r.agree && r.uncovered.is_empty() && r.errors.is_empty());
        assert_eq!(r.open_slots.len(), 1);
        let o = &r.open_slots[0];
        assert_eq!(o.slot, 5519);
        assert_eq!(o.migrating, vec![id('b')]);
        assert_eq!(o.importing, vec![id('g')]);
        assert_eq!(o.owners, vec![id('b')]);
        assert_eq!(
            r.warnings,
            vec![
                "Node 127.0.0.1:7002 has slots in migrating state 5519.",
                "Node 127.0.0.1:7007 has slots in importing state 5519.",
                "The following slots are open: 5519.",
            ]
        );
        let g = r
            .masters
            .iter()
            .find(|m| m.id == id('g'))
            .expect("g listed");
        assert_eq!((g.slots, g.keys, g.replicas), (0, 2, 0));
        assert_eq!(r.total_keys, 32);

        let out = render(&r);
        assert!(has_line(
            &out,
            "[OK] All nodes agree about slots configuration."
        ));
        assert!(out.contains(
            ">>> Check for open slots...
[WARNING] Node 127.0.0.1:7002 has slots in migrating state 5519.
[WARNING] Node 127.0.0.1:7007 has slots in importing state 5519.
[WARNING] The following slots are open: 5519.
>>> Check slots coverage...
[OK] All 16384 slots covered.
"
        ));
        // Each warning is printed once, in its section.
        assert_eq!(out.matches("migrating state").count(), 1);
        assert!(has_line(&out, "   slots: (0 slots) master"));
    }

    #[test]
    fn importing_without_migrating_several_slots() {
        let topo = with_empty_master();
        let views: Vec<NodeView> = topo
            .iter()
            .map(|n| match n.0 {
                'g' => view(
                    &topo,
                    'g',
                    0,
                    &format!("[5519-<-{b}] [5520-<-{b}] [6000-<-{b}]", b = id('b')),
                ),
                c => view(&topo, c, 10, ""),
            })
            .collect();
        let r = check("127.0.0.1:7001", &views);
        assert!(!r.ok && r.agree);
        let slots: Vec<u16> = r.open_slots.iter().map(|o| o.slot).collect();
        assert_eq!(slots, [5519, 5520, 6000]);
        assert!(r.open_slots.iter().all(|o| o.migrating.is_empty()
            && o.importing == vec![id('g')]
            && o.owners == vec![id('b')]));
        assert_eq!(
            r.warnings,
            vec![
                "Node 127.0.0.1:7007 has slots in importing state 5519-5520,6000.",
                "The following slots are open: 5519-5520,6000.",
            ]
        );
    }

    #[test]
    fn migrating_on_both_sides_of_two_slots() {
        let topo = healthy();
        let views: Vec<NodeView> = topo
            .iter()
            .map(|n| match n.0 {
                'a' => view(&topo, 'a', 10, &format!("[100->-{}]", id('c'))),
                'b' => view(
                    &topo,
                    'b',
                    10,
                    &format!("[5519->-{}] [100-<-{}]", id('c'), id('a')),
                ),
                c => view(&topo, c, 10, ""),
            })
            .collect();
        let r = check("s", &views);
        assert_eq!(r.open_slots.len(), 2);
        assert_eq!(r.open_slots[0].migrating, vec![id('a')]);
        assert_eq!(r.open_slots[0].importing, vec![id('b')]);
        assert_eq!(
            r.warnings,
            vec![
                "Node 127.0.0.1:7001 has slots in migrating state 100.",
                "Node 127.0.0.1:7002 has slots in migrating state 5519.",
                "Node 127.0.0.1:7002 has slots in importing state 100.",
                "The following slots are open: 100,5519.",
            ]
        );
    }

    #[test]
    fn uncovered_slots() {
        let mut topo = healthy();
        set_slots(&mut topo, 'a', "0-5000 5400");
        let r = check("127.0.0.1:7001", &all_views(&topo));
        assert!(!r.ok && r.agree && r.open_slots.is_empty());
        assert_eq!(r.uncovered, vec![(5001, 5399), (5401, 5460)]);
        assert_eq!(
            r.errors,
            vec!["Not all 16384 slots are covered by nodes. Uncovered: 5001-5399,5401-5460."]
        );
        let out = render(&r);
        assert!(out.ends_with(
            ">>> Check slots coverage...
[ERR] Not all 16384 slots are covered by nodes.
   uncovered slots: 5001-5399,5401-5460
"
        ));
        assert_eq!(out.matches("Not all 16384").count(), 1);
        assert!(has_line(
            &out,
            "   slots:[0-5000],[5400] (5002 slots) master"
        ));
    }

    #[test]
    fn stale_view_disagrees() {
        // After moving 5519 from b to g, b and g know it; a still has the old map.
        let old = with_empty_master();
        let mut new = old.clone();
        set_slots(&mut new, 'b', "5461-5518 5520-10922");
        set_slots(&mut new, 'g', "5519");
        let views = vec![
            view(&old, 'a', 10, ""),
            view(&new, 'b', 10, ""),
            view(&new, 'c', 10, ""),
            view(&new, 'g', 1, ""),
        ];
        let r = check("127.0.0.1:7001", &views);
        assert!(!r.ok && !r.agree);
        assert!(r.open_slots.is_empty() && r.uncovered.is_empty());
        assert_eq!(r.disagreements.len(), 1);
        let d = &r.disagreements[0];
        assert_eq!(d.slots, vec![(5519, 5519)]);
        let claims: Vec<(&str, Option<&str>)> = d
            .claims
            .iter()
            .map(|c| (c.node.as_str(), c.owner.as_deref()))
            .collect();
        let (b, g) = (id('b'), id('g'));
        assert_eq!(
            claims,
            vec![
                ("127.0.0.1:7001", Some(b.as_str())),
                ("127.0.0.1:7002", Some(g.as_str())),
                ("127.0.0.1:7003", Some(g.as_str())),
                ("127.0.0.1:7007", Some(g.as_str())),
            ]
        );
        let msg = format!(
            "Nodes don't agree about slot 5519: 127.0.0.1:7001 says {b} (127.0.0.1:7002) owns it; \
             127.0.0.1:7002, 127.0.0.1:7003 and 127.0.0.1:7007 say {g} (127.0.0.1:7007) owns it."
        );
        assert_eq!(r.errors, vec![msg.clone()]);
        // The merged view takes b's and g's own lines.
        let bs = r.masters.iter().find(|m| m.id == b).expect("b listed");
        assert_eq!(bs.ranges, vec![(5461, 5518), (5520, 10922)]);

        let out = render(&r);
        assert!(out.contains(&format!(
            "[ERR] Nodes don't agree about configuration!\n   {msg}\n>>> Check for open slots...\n"
        )));
        assert_eq!(out.matches("Nodes don't agree about slot").count(), 1);
    }

    #[test]
    fn disagreement_groups_ranges_and_missing_owner() {
        let topo = healthy();
        let mut stale = topo.clone();
        // 7003 lost 0-99 and 200-299 from a (as if it missed a DELSLOTS/ADDSLOTS).
        set_slots(&mut stale, 'a', "100-199 300-5460");
        let views = vec![
            view(&topo, 'a', 1, ""),
            view(&topo, 'b', 1, ""),
            view(&stale, 'c', 1, ""),
        ];
        let r = check("x", &views);
        assert!(!r.agree && r.uncovered.is_empty());
        assert_eq!(r.disagreements.len(), 1);
        assert_eq!(r.disagreements[0].slots, vec![(0, 99), (200, 299)]);
        assert_eq!(
            r.errors,
            vec![format!(
                "Nodes don't agree about slots 0-99,200-299: 127.0.0.1:7001 and 127.0.0.1:7002 \
                 say {} (127.0.0.1:7001) owns them; 127.0.0.1:7003 says nobody owns them.",
                id('a')
            )]
        );
    }

    #[test]
    fn unreachable_master() {
        let topo = healthy();
        let mut views = all_views(&topo);
        views[2] = down("127.0.0.1:7003", "Connection refused (os error 111)");
        let r = check("127.0.0.1:7001", &views);
        assert!(!r.ok && r.agree && r.uncovered.is_empty());
        assert_eq!(
            r.errors,
            vec!["127.0.0.1:7003: Connection refused (os error 111)"]
        );
        let c = &r.masters[2];
        assert_eq!(c.id, id('c'));
        assert!(!c.reachable && !c.failing);
        assert_eq!((c.keys, c.slots, c.replicas), (0, 5461, 1));
        assert_eq!(r.total_keys, 20);
        let out = render(&r);
        assert!(has_line(
            &out,
            "127.0.0.1:7003 (cccccccc...) -> unreachable | 5461 slots | 1 replicas."
        ));
        assert!(has_line(
            &out,
            "[WARNING] 20 keys in 3 masters (1 unreachable, not counted)."
        ));
        assert!(has_line(
            &out,
            "[ERR] 127.0.0.1:7003: Connection refused (os error 111)"
        ));
        assert!(has_line(
            &out,
            "   slots:[10923-16383] (5461 slots) master, unreachable"
        ));
    }

    #[test]
    fn failing_master() {
        let mut topo = healthy();
        if let Some(c) = topo.iter_mut().find(|n| n.0 == 'c') {
            c.2 = "master,fail";
        }
        let mut pfail = healthy();
        if let Some(c) = pfail.iter_mut().find(|n| n.0 == 'c') {
            c.2 = "master,fail?";
        }
        let views = vec![
            view(&topo, 'a', 10, ""),
            view(&topo, 'b', 10, ""),
            down("127.0.0.1:7003", "timed out"),
            view(&pfail, 'd', 0, ""),
        ];
        let r = check("127.0.0.1:7001", &views);
        assert!(!r.ok);
        let c = &r.masters[2];
        assert!(c.failing && !c.reachable);
        assert_eq!(
            r.errors,
            vec![
                "127.0.0.1:7003: timed out".to_string(),
                format!(
                    "Node 127.0.0.1:7003 ({}) is failing: marked fail by 127.0.0.1:7001 and \
                     127.0.0.1:7002; fail? by 127.0.0.1:7004.",
                    id('c')
                ),
            ]
        );
        // 7005 and 7006 were never asked: warnings, they are replicas.
        assert_eq!(
            r.warnings,
            vec![
                format!(
                    "Replica 127.0.0.1:7005 ({}) was not asked about itself.",
                    id('e')
                ),
                format!(
                    "Replica 127.0.0.1:7006 ({}) was not asked about itself.",
                    id('f')
                ),
            ]
        );
        let out = render(&r);
        assert!(has_line(
            &out,
            "   slots:[10923-16383] (5461 slots) master, failing, unreachable"
        ));
        assert!(out.contains("[ERR] Node 127.0.0.1:7003 (cccc"));
    }

    #[test]
    fn multiple_owners() {
        // a took 5519 with ADDSLOTS while b still owns it: each describes itself as owner.
        let topo = healthy();
        let mut a_view = topo.clone();
        set_slots(&mut a_view, 'a', "0-5460 5519");
        set_slots(&mut a_view, 'b', "5461-5518 5520-10922");
        let views = vec![
            view(&a_view, 'a', 10, ""),
            view(&topo, 'b', 10, ""),
            view(&topo, 'c', 10, ""),
        ];
        let r = check("127.0.0.1:7001", &views);
        assert!(!r.ok && !r.agree);
        // No marker: not "open" (as redis-cli means it), but claimed twice.
        assert!(r.open_slots.is_empty());
        assert_eq!(r.several_owners.len(), 1);
        let g = &r.several_owners[0];
        assert_eq!(g.slots, vec![(5519, 5519)]);
        assert_eq!(g.owners, vec![id('a'), id('b')]);
        assert!(!g.failover);
        assert!(r.warnings.contains(&format!(
            "Slot 5519 is claimed by 2 owners: {} (127.0.0.1:7001), {} (127.0.0.1:7002).",
            id('a'),
            id('b')
        )));
        assert!(!r.warnings.iter().any(|w| w.contains("open")));
        assert_eq!(r.disagreements.len(), 1);
        assert_eq!(r.disagreements[0].slots, vec![(5519, 5519)]);
        assert_eq!(r.masters[0].ranges, vec![(0, 5460), (5519, 5519)]);
    }

    #[test]
    fn a_failover_gossip_has_not_finished_telling_is_no_open_slot() {
        // c is down and flagged fail; its replica f took over c's slots. a still lists
        // c as the owner; f describes itself as owner.
        let mut old = healthy();
        for n in &mut old {
            if n.0 == 'c' {
                n.2 = "master,fail";
            }
        }
        let mut new = old.clone();
        set_slots(&mut new, 'c', "");
        set_slots(&mut new, 'f', "10923-16383");
        for n in &mut new {
            if n.0 == 'f' {
                n.2 = "master";
                n.3 = None;
            }
        }
        let views = vec![
            view(&old, 'a', 10, ""),
            view(&old, 'b', 10, ""),
            down("127.0.0.1:7003", "connection refused"),
            view(&new, 'f', 10, ""),
        ];
        let r = check("127.0.0.1:7001", &views);
        assert!(!r.ok);
        assert!(r.open_slots.is_empty(), "{r:#?}");
        assert_eq!(r.several_owners.len(), 1);
        assert!(r.several_owners[0].failover);
        assert!(
            r.warnings.contains(&"Failover in progress: 127.0.0.1:7003 is failing and 127.0.0.1:7006 has taken over slots 10923-16383; gossip has not converged yet (the nodes disagree until it has).".to_string()),
            "{:#?}",
            r.warnings
        );
        assert!(!render(&r).contains("slots are open"), "{}", render(&r));
    }

    #[test]
    fn documentation_example_with_noaddr_and_handshake() {
        let doc = "\
07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,hostname4 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002,hostname2 master - 0 1426238316232 2 connected 5461-10922
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003,hostname3 master - 0 1426238318243 3 connected 10923-16383
6ec23923021cf3ffec47632106199cb7f496ce01 127.0.0.1:30005@31005 slave,fail 67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 0 1426238316232 5 disconnected
824fe116063bc5fcf9f4ffd895bc17aee7731ac3 :0@0 master,fail?,noaddr - 1426238316232 1426238316232 0 disconnected
5a9b3c2d1e0f5a9b3c2d1e0f5a9b3c2d1e0f5a9b 127.0.0.1:30009@31009 handshake - 1426238316232 0 0 disconnected
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001,hostname1 myself,master - 0 0 1 connected 0-5460 [5519->-292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f] [93-<-292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f]
";
        let r = check("127.0.0.1:30001", &[view_text("127.0.0.1:30001", 7, doc)]);
        assert!(!r.ok && r.agree && r.uncovered.is_empty());
        let addrs: Vec<&str> = r.masters.iter().map(|m| m.addr.as_str()).collect();
        assert_eq!(
            addrs,
            [
                ":0",
                "127.0.0.1:30001",
                "127.0.0.1:30002",
                "127.0.0.1:30003"
            ]
        );
        assert!(r.masters[0].failing && !r.masters[0].reachable);
        assert_eq!(r.masters[1].replicas, 1);
        assert_eq!(r.masters[2].replicas, 1);
        assert_eq!(r.total_keys, 7);
        assert_eq!(
            r.errors,
            vec![
                "Node :0 (824fe116063bc5fcf9f4ffd895bc17aee7731ac3) is failing: marked fail? by 127.0.0.1:30001.",
                "Master 127.0.0.1:30002 (67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1) was not asked about itself.",
                "Master 127.0.0.1:30003 (292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f) was not asked about itself.",
                "Node 127.0.0.1:30005 (6ec23923021cf3ffec47632106199cb7f496ce01) is failing: marked fail by 127.0.0.1:30001.",
            ]
        );
        assert_eq!(
            r.warnings,
            vec![
                "Replica 127.0.0.1:30004 (07c37dfeb235213a872192d90877d0cd55635b91) was not asked about itself.",
                "Node 127.0.0.1:30009 (5a9b3c2d1e0f5a9b3c2d1e0f5a9b3c2d1e0f5a9b) is in handshake state.",
                "Node 127.0.0.1:30001 has slots in migrating state 5519.",
                "Node 127.0.0.1:30001 has slots in importing state 93.",
                "The following slots are open: 93,5519.",
            ]
        );
        let o: Vec<(u16, &[String], &[String])> = r
            .open_slots
            .iter()
            .map(|o| (o.slot, &o.migrating[..], &o.importing[..]))
            .collect();
        assert_eq!(o.len(), 2);
        assert_eq!((o[0].0, o[0].1.len(), o[0].2.len()), (93, 0, 1));
        assert_eq!((o[1].0, o[1].1.len(), o[1].2.len()), (5519, 1, 0));
        assert_eq!(
            r.open_slots[0].owners,
            vec!["e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca"]
        );
    }

    #[test]
    fn nothing_reachable() {
        let r = check(
            "127.0.0.1:7001",
            &[down("127.0.0.1:7001", "Connection refused")],
        );
        assert!(!r.ok && r.agree && r.masters.is_empty());
        assert_eq!(r.uncovered, vec![(0, 16383)]);
        assert_eq!(r.errors[0], "127.0.0.1:7001: Connection refused");
        let out = render(&r);
        assert!(has_line(&out, "[OK] 0 keys in 0 masters."));
        assert!(has_line(&out, "   uncovered slots: 0-16383"));

        let r = check("127.0.0.1:7001", &[]);
        assert_eq!(r.errors[0], "No node was asked.");
        assert!(!r.ok);
    }

    #[test]
    fn keys_per_slot_average() {
        let topo = healthy();
        let views: Vec<NodeView> = topo
            .iter()
            .map(|n| view(&topo, n.0, if n.2 == "master" { 21000 } else { 0 }, ""))
            .collect();
        let out = render(&check("s", &views));
        assert!(has_line(&out, "[OK] 63000 keys in 3 masters."));
        assert!(has_line(&out, "3.85 keys per slot on average."), "{out}");
    }
}
