//! The report of `check` in words: the sentences about slots (open, claimed twice,
//! disagreed about, uncovered, not served) that `check` adds to its warnings and
//! errors, and the whole report as text close to `redis-cli --cluster check`.

use super::{addr_key, CheckReport, OpenSlot};
use crate::cluster::topology::{format_ranges, ranges_of};
use crate::cluster::SLOTS;

/// The report as text close to `redis-cli --cluster check`.
pub fn render(report: &CheckReport) -> String {
    let disagreement = disagreement_errors(report);
    let open = open_slot_warnings(report);
    let jobs = super::migrations::warnings(report);
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
        if !open.contains(w) && !jobs.contains(w) {
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
    out.extend(super::migrations::render(report));
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
pub(super) fn several_owner_warnings(report: &CheckReport) -> Vec<String> {
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
pub(super) fn open_slot_warnings(report: &CheckReport) -> Vec<String> {
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
pub(super) fn disagreement_errors(report: &CheckReport) -> Vec<String> {
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
pub(super) fn coverage_errors(report: &CheckReport) -> Vec<String> {
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
pub(super) fn serving_errors(report: &CheckReport) -> Vec<String> {
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

/// The address of a node of the report, or its id when the report does not list it.
pub(super) fn addr_of(report: &CheckReport, id: &str) -> String {
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
pub(super) fn label(report: &CheckReport, id: &str) -> String {
    let addr = addr_of(report, id);
    if addr == id {
        id.to_string()
    } else {
        format!("{id} ({addr})")
    }
}

/// `a`, `a and b`, `a, b and c`.
pub(super) fn and_list(items: &[&str]) -> String {
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
