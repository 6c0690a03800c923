//! Which protocol a move of many slots uses: the server's own atomic slot migration
//! (`CLUSTER MIGRATESLOTS`) or the legacy one, how the choice is said, and what an
//! atomic move sends.

use super::PairMoves;
use crate::cluster::{ClusterError, NodeInfo, Result};

/// Which protocol `move_slots` moves with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Migration {
    /// Atomic when every master involved supports it, legacy otherwise.
    #[default]
    Auto,
    /// The server's own atomic slot migration (`CLUSTER MIGRATESLOTS`, Valkey 9+).
    Atomic,
    /// IMPORTING/MIGRATING markers, `MIGRATE` and `SETSLOT NODE`, on every server.
    Legacy,
}

impl std::str::FromStr for Migration {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "auto" => Ok(Migration::Auto),
            "atomic" => Ok(Migration::Atomic),
            "legacy" => Ok(Migration::Legacy),
            other => Err(format!(
                "the migration must be auto, atomic or legacy, not \"{other}\""
            )),
        }
    }
}

/// Whether a move goes atomic, from what its masters (sources and targets) are:
/// each with whether it moves slots itself. Never with `legacy`; with `auto` when every
/// one does and none has a slot open by the legacy protocol (the server refuses an
/// atomic move while one is); with `atomic` then or never, saying why. The live and
/// the in-memory cluster decide alike.
pub fn goes_atomic(migration: Migration, ends: &[(&NodeInfo, bool)]) -> Result<bool> {
    if migration == Migration::Legacy {
        return Ok(false);
    }
    let lacking: Vec<String> = ends
        .iter()
        .filter(|(_, s)| !s)
        .map(|(n, _)| n.addr())
        .collect();
    let marked: Vec<String> = ends
        .iter()
        .filter(|(n, _)| !n.migrating.is_empty() || !n.importing.is_empty())
        .map(|(n, _)| n.addr())
        .collect();
    if migration == Migration::Atomic {
        if !lacking.is_empty() {
            return Err(ClusterError::State(format!(
                "{} cannot move slots atomically (no CLUSTER MIGRATESLOTS: atomic slot migration needs Valkey 9 or later); use --migration legacy or auto",
                lacking.join(", ")
            )));
        }
        if !marked.is_empty() {
            return Err(ClusterError::State(format!(
                "{} has a slot open by the legacy protocol, and the server refuses an atomic move until it is settled: run slotsmith fix first",
                marked.join(", ")
            )));
        }
    }
    let atomic = lacking.is_empty() && marked.is_empty();
    crate::progress::note(if atomic {
        ">>> Moving with atomic slot migration (CLUSTER MIGRATESLOTS, one per source)"
    } else {
        ">>> Moving with the legacy protocol (IMPORTING/MIGRATING, MIGRATE, SETSLOT NODE)"
    });
    Ok(atomic)
}

/// `CLUSTER MIGRATESLOTS SLOTSRANGE a b [c d ...] NODE target [SLOTSRANGE ... NODE ...]`
/// for one source's pairs (contiguous slots merged), word by word, as it is sent.
pub fn migrateslots_args(pairs: &[&PairMoves]) -> Vec<String> {
    let mut words = vec!["CLUSTER".to_string(), "MIGRATESLOTS".to_string()];
    for p in pairs {
        words.push("SLOTSRANGE".into());
        for (a, b) in crate::cluster::topology::ranges_of(&p.slots) {
            words.push(a.to_string());
            words.push(b.to_string());
        }
        words.push("NODE".into());
        words.push(p.dst.id.clone());
    }
    words
}

/// The same command as the journal and a dry run show it: exactly as sent.
pub fn migrateslots_text(pairs: &[&PairMoves]) -> String {
    migrateslots_args(pairs).join(" ")
}

/// The pairs of an atomic move without the slots their target already owns and
/// their source no longer claims (an earlier move took them there; the server refuses
/// to migrate a slot its source does not serve), and those slots. Pairs left with no
/// slot are dropped. A slot both ends claim is refused: which copy of its keys is
/// right is for `fix` to settle, not for a move to guess.
pub fn not_yet_moved(pairs: Vec<PairMoves>) -> Result<(Vec<PairMoves>, Vec<u16>)> {
    let mut already = Vec::new();
    let mut out = Vec::new();
    for mut p in pairs {
        let mut todo = Vec::with_capacity(p.slots.len());
        for &s in &p.slots {
            match (p.src.owns(s), p.dst.owns(s)) {
                (false, true) => already.push(s),
                (true, true) => {
                    return Err(ClusterError::State(format!(
                        "slot {s} is claimed by both {} and {}: run slotsmith fix first",
                        p.src.addr(),
                        p.dst.addr()
                    )))
                }
                _ => todo.push(s),
            }
        }
        p.slots = todo;
        if !p.slots.is_empty() {
            out.push(p);
        }
    }
    Ok((out, already))
}

/// The distinct sources and targets of some pairs.
pub fn ends_of_pairs(pairs: &[PairMoves]) -> Vec<&NodeInfo> {
    let mut ends: Vec<&NodeInfo> = Vec::new();
    for p in pairs {
        for n in [&p.src, &p.dst] {
            if !ends.iter().any(|e| e.id == n.id) {
                ends.push(n);
            }
        }
    }
    ends
}
