//! What a move did: keys and slots moved, keys settled or overwritten, slots left
//! open or alone, per-slot key counts; and how it is said to the operator.

use super::SlotMove;
use crate::cluster::keyname::KeyName;

/// What a key move did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct KeysMoved {
    pub keys: u64,
    /// Keys that existed on the target with a different value and were overwritten
    /// (only with `replace`).
    pub overwritten: Vec<KeyName>,
    /// Keys that existed on both sides with the same value; the target's copy stays.
    pub identical: Vec<KeyName>,
}

/// What a slot move did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SlotMoved {
    pub slots: u64,
    pub keys: u64,
    pub overwritten: Vec<KeyName>,
    pub identical: Vec<KeyName>,
    pub seconds: f64,
    /// True when an interruption stopped it before every slot was moved.
    pub interrupted: bool,
    /// Slots it left open (a marker set, keys possibly on both sides): `fix` settles them.
    pub open: Vec<u16>,
    /// Slots it did not touch because their state changed since they were planned.
    pub left_alone: Vec<LeftAlone>,
    /// Keys moved, per slot moved (slots as text, as a script's map keys are).
    #[serde(serialize_with = "slots_as_text")]
    pub slot_keys: std::collections::BTreeMap<u16, u64>,
}

fn slots_as_text<S: serde::Serializer>(
    m: &std::collections::BTreeMap<u16, u64>,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_map(m.iter().map(|(k, v)| (k.to_string(), v)))
}

impl SlotMoved {
    /// What a move of `asked` slots that stopped part-way did and left, with what to
    /// run next.
    pub fn progress(&self, asked: usize) -> String {
        let mut out = format!("moved {} of {asked} slots ({} keys)", self.slots, self.keys);
        if !self.left_alone.is_empty() {
            out.push_str(&format!(
                "; left alone {}",
                crate::cluster::topology::n_slots(self.left_alone.len())
            ));
        }
        if self.open.is_empty() {
            out.push_str("; no slot is left open");
        } else {
            out.push_str(&format!(
                "; {} left open ({}): run `slotsmith fix` to settle them",
                crate::cluster::topology::n_slots(self.open.len()),
                crate::cluster::topology::format_ranges(&crate::cluster::topology::ranges_of(
                    &self.open
                ))
            ));
        }
        out
    }
}

impl SlotMoved {
    /// For a move that stopped part-way: per source and target, the slots it moved,
    /// those it left open, and those it did not move (still with their source), as one
    /// line each. `addr` names a node id.
    pub fn ranges_report(&self, moves: &[SlotMove], addr: &dyn Fn(&str) -> String) -> Vec<String> {
        let mut pairs: Vec<(&str, &str, Vec<u16>)> = Vec::new();
        for m in moves {
            match pairs
                .iter_mut()
                .find(|(s, d, _)| *s == m.src && *d == m.dst)
            {
                Some((_, _, v)) => v.push(m.slot),
                None => pairs.push((&m.src, &m.dst, vec![m.slot])),
            }
        }
        let text = |v: &[u16]| {
            crate::cluster::topology::format_ranges(&crate::cluster::topology::ranges_of(v))
        };
        pairs
            .into_iter()
            .map(|(src, dst, slots)| {
                let (mut moved, mut open, mut not) = (Vec::new(), Vec::new(), Vec::new());
                for s in slots {
                    if self.slot_keys.contains_key(&s) {
                        moved.push(s);
                    } else if self.open.contains(&s) {
                        open.push(s);
                    } else {
                        not.push(s);
                    }
                }
                let mut parts = Vec::new();
                if !moved.is_empty() {
                    parts.push(format!("moved {}", text(&moved)));
                }
                if !open.is_empty() {
                    parts.push(format!("left open {}", text(&open)));
                }
                if !not.is_empty() {
                    parts.push(format!(
                        "not moved {} (still with {})",
                        text(&not),
                        addr(src)
                    ));
                }
                format!("{} -> {}: {}", addr(src), addr(dst), parts.join("; "))
            })
            .collect()
    }
}

/// A slot a move did not touch, and why.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LeftAlone {
    pub slot: u16,
    pub why: String,
    /// Left alone for a key over `--max-key-size`, not for a change since the plan.
    pub big_key: bool,
}

impl SlotMoved {
    /// Add another move's counts to this one.
    pub fn add(&mut self, other: SlotMoved) {
        self.slots += other.slots;
        self.keys += other.keys;
        self.overwritten.extend(other.overwritten);
        self.identical.extend(other.identical);
        self.interrupted |= other.interrupted;
        self.open.extend(other.open);
        self.left_alone.extend(other.left_alone);
        self.slot_keys.extend(other.slot_keys);
    }
}
