//! The plan of a dry run as the operator reads it: a summary (slots that change
//! owner, keys per pair) and the commands by node.

use super::*;

/// What a plan does, for the operator.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PlanSummary {
    pub commands: usize,
    /// Slots whose owner the plan changes (SETSLOT NODE sent to the new owner, or a claim).
    pub slots_moved: usize,
    /// Keys MIGRATE moves, per `src -> dst`.
    pub keys_moved: BTreeMap<String, u64>,
}

/// Count what a plan does.
pub fn summarize(plan: &[Planned], id_of: impl Fn(&str) -> Option<String>) -> PlanSummary {
    let mut keys_moved: BTreeMap<String, u64> = BTreeMap::new();
    let mut slots = std::collections::BTreeSet::new();
    for p in plan {
        if let Some(to) = &p.to {
            *keys_moved.entry(format!("{} -> {to}", p.node)).or_default() += p.keys;
        }
        if let Some(rest) = p.command.strip_prefix("CLUSTER MIGRATESLOTS ") {
            // SLOTSRANGE start end [start end ...] NODE id, for each target.
            let mut bounds: Vec<u16> = Vec::new();
            let mut in_ranges = false;
            for w in rest.split_whitespace() {
                match w {
                    "SLOTSRANGE" => in_ranges = true,
                    "NODE" => in_ranges = false,
                    _ if in_ranges => bounds.extend(w.parse::<u16>().ok()),
                    _ => {}
                }
            }
            for pair in bounds.chunks(2) {
                if let [a, b] = pair {
                    slots.extend(*a..=*b);
                }
            }
        }
        if let Some(s) = p.slot {
            let node_cmd = format!("CLUSTER SETSLOT {s} NODE ");
            if p.command.starts_with("MULTI;") {
                slots.insert(s);
            } else if let Some(owner) = p.command.strip_prefix(&node_cmd) {
                if id_of(&p.node).as_deref() == Some(owner) {
                    slots.insert(s);
                }
            }
        }
    }
    PlanSummary {
        commands: plan.len(),
        slots_moved: slots.len(),
        keys_moved,
    }
}

/// The plan for a human: grouped by node in the order nodes are first written to,
/// each command numbered by its place in the whole plan; runs of the same command
/// over consecutive slots collapse to ranges.
pub fn render(plan: &[Planned]) -> String {
    let mut order: Vec<&str> = Vec::new();
    for p in plan {
        if !order.contains(&p.node.as_str()) {
            order.push(&p.node);
        }
    }
    let template = |p: &Planned| match (p.slot, &p.to) {
        (Some(_), Some(to)) => format!("MIGRATE to {to}"),
        (Some(s), None) => p.command.replacen(&s.to_string(), "{}", 1),
        (None, _) => p.command.clone(),
    };
    let mut out = String::new();
    for node in order {
        out.push_str(&format!("{node}\n"));
        let mine: Vec<(usize, &Planned)> = plan
            .iter()
            .enumerate()
            .filter(|(_, p)| p.node == node)
            .collect();
        let mut i = 0;
        while i < mine.len() {
            let (n, first) = mine[i];
            let t = template(first);
            let mut j = i + 1;
            while j < mine.len()
                && first.slot.is_some()
                && mine[j].1.slot.is_some()
                && template(mine[j].1) == t
            {
                j += 1;
            }
            let run: Vec<&Planned> = mine[i..j].iter().map(|(_, p)| *p).collect();
            let slots: Vec<u16> = run.iter().filter_map(|p| p.slot).collect();
            let line = if run.len() == 1 {
                first.command.clone()
            } else if first.to.is_some() {
                let keys: u64 = run.iter().map(|p| p.keys).sum();
                format!(
                    "{t} KEYS of slots {} ({keys} keys, {} commands)",
                    format_ranges(&ranges_of(&slots)),
                    run.len()
                )
            } else {
                t.replacen(
                    "{}",
                    &format!(
                        "{} ({} slots)",
                        format_ranges(&ranges_of(&slots)),
                        slots.len()
                    ),
                    1,
                )
            };
            out.push_str(&format!("  {:>5}. {line}\n", n + 1));
            i = j;
        }
    }
    out
}

impl MemoryCluster {
    /// The id of the node at an address, for summaries.
    pub fn id_at(&self, addr: &str) -> Option<String> {
        let views = self.views().ok()?;
        crate::cluster::merged_nodes(&views)
            .into_iter()
            .find(|n| n.addr() == addr)
            .map(|n| n.id)
    }

    /// The address of a node id, for the plan's readers.
    pub fn addr_of(&self, id: &str) -> Option<String> {
        self.address_of(id).ok()
    }
}
