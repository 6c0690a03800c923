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

/// The plan for a human, in the order its commands would be sent: one line per
/// command, or per run of the same command over slots in a row to one node. A line is
/// either a command exactly as it would be sent, or a summary, which starts with a
/// count (`128 x`), puts `<slot>` where each command has its slot, and names the
/// slots (and keys) after it in parentheses. MIGRATE is always a summary: the plan
/// holds how many keys it moves and a few of their names, not the whole command.
pub fn render(plan: &[Planned]) -> String {
    let mut lines: Vec<(String, &str, String)> = Vec::new();
    let mut i = 0;
    while i < plan.len() {
        let first = &plan[i];
        let t = template(first);
        let mut j = i + 1;
        if let Some(t) = &t {
            while j < plan.len()
                && plan[j].node == first.node
                && template(&plan[j]).as_ref() == Some(t)
            {
                j += 1;
            }
        }
        if j - i == 1 {
            if let Some((k, text)) = pair_run(plan, i) {
                lines.push((format!("{}-{}.", i + 1, k), &first.node, text));
                i = k;
                continue;
            }
        }
        let numbers = if j - i == 1 {
            format!("{}.", i + 1)
        } else {
            format!("{}-{}.", i + 1, j)
        };
        lines.push((numbers, &first.node, line(&plan[i..j], t.as_deref())));
        i = j;
    }
    let wn = lines.iter().map(|l| l.0.len()).max().unwrap_or(0).max(6);
    let wa = lines.iter().map(|l| l.1.len()).max().unwrap_or(0);
    let mut out = String::new();
    for (numbers, node, text) in lines {
        out.push_str(&format!("  {numbers:>wn$} {node:<wa$}  {text}\n"));
    }
    out
}

/// A run of pairs from `plan[i]` on: the same two commands on one node for each slot
/// in turn (`STABLE` then `NODE`, slot after slot). Its end and its summary line, when
/// there are at least two pairs.
fn pair_run(plan: &[Planned], i: usize) -> Option<(usize, String)> {
    let (a, b) = (&plan[i], plan.get(i + 1)?);
    let (ta, tb) = (template(a)?, template(b)?);
    if migrate_head(a).is_some() || migrate_head(b).is_some() || ta == tb {
        return None;
    }
    let pair_at = |j: usize| -> bool {
        match (plan.get(j), plan.get(j + 1)) {
            (Some(x), Some(y)) => {
                x.node == a.node
                    && y.node == a.node
                    && x.slot.is_some()
                    && x.slot == y.slot
                    && template(x).as_ref() == Some(&ta)
                    && template(y).as_ref() == Some(&tb)
            }
            _ => false,
        }
    };
    let mut j = i;
    while pair_at(j) {
        j += 2;
    }
    let pairs = (j - i) / 2;
    if pairs < 2 {
        return None;
    }
    let slots: Vec<u16> = plan[i..j]
        .iter()
        .step_by(2)
        .filter_map(|p| p.slot)
        .collect();
    Some((
        j,
        format!("{pairs} x ({ta}; {tb})  ({})", slots_text(&slots)),
    ))
}

/// What commands of one run share: the command with `<slot>` for its slot (a MIGRATE:
/// its target and flags); `None` for a command that is never part of a run.
fn template(p: &Planned) -> Option<String> {
    let slot = p.slot?.to_string();
    if let Some(head) = migrate_head(p) {
        return Some(head.to_string());
    }
    let mut replaced = false;
    let words: Vec<String> = p
        .command
        .split(' ')
        .map(|w| match w.strip_suffix(';').unwrap_or(w) == slot {
            true => {
                replaced = true;
                w.replacen(&slot, "<slot>", 1)
            }
            false => w.to_string(),
        })
        .collect();
    replaced.then(|| words.join(" "))
}

/// `MIGRATE to DST [REPLACE] [COPY]` of a recorded MIGRATE, the part before its keys.
fn migrate_head(p: &Planned) -> Option<&str> {
    p.to.as_ref()?;
    let c = p.command.strip_prefix("MIGRATE to ").map(|_| &p.command)?;
    Some(c.split_once(" KEYS").map_or(c.as_str(), |(head, _)| head))
}

/// One line of the plan: a run of commands (one or more) that share `template`.
fn line(run: &[Planned], template: Option<&str>) -> String {
    let first = &run[0];
    let slots: Vec<u16> = run.iter().filter_map(|p| p.slot).collect();
    if let Some(head) = migrate_head(first) {
        let keys: u64 = run.iter().map(|p| p.keys).sum();
        // A lone MIGRATE names its keys (a few of them when there are many).
        let names = match run {
            [one] => one
                .command
                .split_once(" KEYS ")
                .and_then(|(_, rest)| rest.rsplit_once(" (").map(|(names, _)| names))
                .filter(|n| !n.is_empty())
                .map(|n| format!(": {n}"))
                .unwrap_or_default(),
            _ => String::new(),
        };
        return format!(
            "{} x {head} KEYS <keys>  ({}; {keys} {}{names})",
            run.len(),
            slots_text(&slots),
            if keys == 1 { "key" } else { "keys" }
        );
    }
    match (run.len(), template) {
        (1, _) | (_, None) => exact(&first.command),
        (n, Some(t)) => format!("{n} x {t}  ({})", slots_text(&slots)),
    }
}

/// A single command as it would be sent. The plan records ADDSLOTS and DELSLOTS with
/// their slots as ranges, which the server would not accept: a few slots are spelt
/// out, more are summarised.
fn exact(command: &str) -> String {
    for verb in ["CLUSTER ADDSLOTS ", "CLUSTER DELSLOTS "] {
        let Some(list) = command.strip_prefix(verb) else {
            continue;
        };
        let mut slots: Vec<u16> = Vec::new();
        for part in list.split(',') {
            let (a, b) = part.split_once('-').unwrap_or((part, part));
            match (a.parse::<u16>(), b.parse::<u16>()) {
                (Ok(a), Ok(b)) if a <= b => slots.extend(a..=b),
                _ => return command.to_string(),
            }
        }
        if slots.len() <= 16 {
            let words: Vec<String> = slots.iter().map(u16::to_string).collect();
            return format!("{verb}{}", words.join(" "));
        }
        return format!("{verb}<slot>...  ({})", slots_text(&slots));
    }
    command.to_string()
}

/// `slot 5519`, `slots 0-127`, or, when they are scattered, how many and the first
/// few ranges.
fn slots_text(slots: &[u16]) -> String {
    const SHOWN: usize = 8;
    let ranges = ranges_of(slots);
    let count: usize = ranges.iter().map(|(a, b)| (b - a) as usize + 1).sum();
    match (count, ranges.len()) {
        (1, _) => format!("slot {}", format_ranges(&ranges)),
        (_, n) if n <= SHOWN => format!("slots {}", format_ranges(&ranges)),
        (_, n) => format!(
            "{count} slots: {} and {} more ranges",
            format_ranges(&ranges[..SHOWN]),
            n - SHOWN
        ),
    }
}

impl MemoryCluster {
    /// The id of every node by its address, for summaries (the first node listed at
    /// an address, as a search of the views would find it).
    pub fn ids(&self) -> BTreeMap<String, String> {
        let mut ids = BTreeMap::new();
        for n in self
            .views()
            .map(|v| crate::cluster::merged_nodes(&v))
            .unwrap_or_default()
        {
            ids.entry(n.addr()).or_insert(n.id);
        }
        ids
    }

    /// The address of a node id, for the plan's readers.
    pub fn addr_of(&self, id: &str) -> Option<String> {
        self.address_of(id).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(node: &str, command: &str, slot: Option<u16>) -> Planned {
        Planned {
            node: node.into(),
            command: command.into(),
            slot,
            keys: 0,
            to: None,
        }
    }

    fn migrate(slot: u16, keys: u64, names: &str) -> Planned {
        Planned {
            node: "a:1".into(),
            command: format!("MIGRATE to b:2 KEYS {names} ({keys} keys)"),
            slot: Some(slot),
            keys,
            to: Some("b:2".into()),
        }
    }

    #[test]
    fn pairs_of_commands_slot_after_slot_are_one_summary() {
        let mut plan = Vec::new();
        for s in 1..=3u16 {
            plan.push(cmd("b:2", &format!("CLUSTER SETSLOT {s} STABLE"), Some(s)));
            plan.push(cmd(
                "b:2",
                &format!("CLUSTER SETSLOT {s} NODE idb"),
                Some(s),
            ));
        }
        plan.push(cmd("b:2", "CLUSTER SETSLOT 4 NODE idb", Some(4)));
        let out = render(&plan);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 2, "{out}");
        assert!(
            lines[0].contains(
                "1-6. b:2  3 x (CLUSTER SETSLOT <slot> STABLE; CLUSTER SETSLOT <slot> NODE idb)  (slots 1-3)"
            ),
            "{out}"
        );
        assert!(
            lines[1].contains("7. b:2  CLUSTER SETSLOT 4 NODE idb"),
            "{out}"
        );
    }

    #[test]
    fn runs_are_summaries_and_lone_commands_are_verbatim_in_the_order_sent() {
        let mut plan: Vec<Planned> = (0..128)
            .map(|s| {
                cmd(
                    "b:2",
                    &format!("CLUSTER SETSLOT {s} IMPORTING ida"),
                    Some(s),
                )
            })
            .collect();
        plan.push(migrate(0, 2, "k1 k2"));
        plan.push(migrate(3, 1, "k3"));
        plan.push(cmd("b:2", "CLUSTER SETSLOT 0 NODE idb", Some(0)));
        plan.push(migrate(5519, 1, "user:1"));
        plan.push(cmd("b:2", "CLUSTER SETSLOT 1 IMPORTING ida", Some(1)));
        let out = render(&plan);
        let lines: Vec<&str> = out.lines().map(str::trim_start).collect();
        assert_eq!(
            lines,
            [
                "1-128. b:2  128 x CLUSTER SETSLOT <slot> IMPORTING ida  (slots 0-127)",
                "129-130. a:1  2 x MIGRATE to b:2 KEYS <keys>  (slots 0,3; 3 keys)",
                "131. b:2  CLUSTER SETSLOT 0 NODE idb",
                "132. a:1  1 x MIGRATE to b:2 KEYS <keys>  (slot 5519; 1 key: user:1)",
                "133. b:2  CLUSTER SETSLOT 1 IMPORTING ida",
            ],
            "{out}"
        );
        // No line is a command the server would refuse: a range where a slot goes.
        assert!(!out.contains("SETSLOT 0-"), "{out}");
    }

    #[test]
    fn claims_collapse_and_slot_lists_are_spelt_out_or_summarised() {
        let claim = |s: u16| {
            cmd(
                "a:1",
                &format!(
                    "MULTI; CLUSTER DELSLOTS {s}; CLUSTER ADDSLOTS {s}; CLUSTER BUMPEPOCH; EXEC"
                ),
                Some(s),
            )
        };
        let plan = vec![
            claim(7),
            claim(8),
            cmd("a:1", "CLUSTER ADDSLOTS 1-3,9", None),
            cmd("a:1", "CLUSTER DELSLOTS 0-99", None),
            cmd("a:1", "CLUSTER MIGRATESLOTS SLOTSRANGE 0 99 NODE idb", None),
        ];
        let out = render(&plan);
        let lines: Vec<&str> = out.lines().map(str::trim_start).collect();
        assert_eq!(
            lines,
            [
                "1-2. a:1  2 x MULTI; CLUSTER DELSLOTS <slot>; CLUSTER ADDSLOTS <slot>; CLUSTER BUMPEPOCH; EXEC  (slots 7-8)",
                "3. a:1  CLUSTER ADDSLOTS 1 2 3 9",
                "4. a:1  CLUSTER DELSLOTS <slot>...  (slots 0-99)",
                "5. a:1  CLUSTER MIGRATESLOTS SLOTSRANGE 0 99 NODE idb",
            ],
            "{out}"
        );
    }

    #[test]
    fn scattered_slots_name_the_first_ranges_and_how_many_more() {
        let slots: Vec<u16> = (0..20).map(|i| i * 2).collect();
        assert_eq!(
            slots_text(&slots),
            "20 slots: 0,2,4,6,8,10,12,14 and 12 more ranges"
        );
        assert_eq!(slots_text(&[5]), "slot 5");
        assert_eq!(slots_text(&[1, 2, 3]), "slots 1-3");
    }
}
