//! The ordered, batched steps of a legacy move of many slots, one definition for the
//! live bulk mover and the in-memory cluster (dry runs), so that a plan cannot drift
//! from what the live run sends. For each source/target pair (split in lanes when few
//! pairs move), batch by batch: `SETSLOT IMPORTING` on the target for the slots it
//! does not own, `SETSLOT MIGRATING` on the source for those it owns, the keys in
//! rounds of `GETKEYSINSLOT` + one `MIGRATE` of at most `pipeline` keys per slot
//! (and, where keys are sized, at most [`sizes::BATCH_BYTES`] per round, a key over
//! the limit sending its slot to the careful mover before any more of it moves),
//! `SETSLOT NODE` on the target (most slots made `STABLE` first, see
//! [`quiet_slots`]), then on the source, then on every other master that can be told
//! (not failing, not `noaddr`). A slot whose step fails leaves its batch and is
//! finished by the careful one-slot mover.

use std::collections::{BTreeSet, HashMap};

use super::{sizes, LeftAlone, MoveOpts, PairMoves};
use crate::cluster::{commands, Key, MigrateOpts, NodeInfo, NodeView, Result, SetSlot};

/// Slots handled together in one pipelined step when many pairs move at once.
pub const BATCH: usize = 256;

/// Keys a batch holds, about, when fewer pairs than `parallel` move: such a batch of
/// small keys takes about half a second on a loaded 2-core machine, which is what
/// Ctrl+C waits for, and a `kill -9` leaves that much open per pair. (A source holding
/// over 16 MB moves at most [`sizes::SIZED_BATCH`] slots at a time.)
pub const BATCH_KEYS: f64 = 32768.0;

/// The most slots in one batch.
pub const BATCH_MAX: usize = 2048;

/// Slots per batch for a call moving `pairs` pairs at most `parallel` at a time, whose
/// sources hold `keys_per_slot` keys per slot on average ([`keys_per_slot`]): `asked`
/// when the caller sets it (`--batch-slots`); [`BATCH`] when as many pairs as `parallel`
/// move, since the others' batches fill each pair's pauses; else as many slots as
/// hold [`BATCH_KEYS`] keys, from twice [`BATCH`] to [`BATCH_MAX`]. A few pairs (a
/// fix of hundreds of slots between two masters, a rebalance onto one new master)
/// then pay fewer rounds of SETSLOT pipelines, and a source waits less often between
/// its MIGRATEs for a batch's bookkeeping (the reads before a batch, the round trips
/// of its markers and claims): a 200k-key rebalance onto one new master, median of 8
/// alternating runs 0.631 s with 512-slot batches, 0.602 s with one batch per pair.
pub fn batch_size(
    pairs: usize,
    parallel: usize,
    asked: Option<usize>,
    keys_per_slot: f64,
) -> usize {
    if let Some(b) = asked {
        return b.max(1);
    }
    if pairs >= parallel.max(1) {
        return BATCH;
    }
    let by_keys = (BATCH_KEYS / keys_per_slot.max(1.0)) as usize;
    by_keys.clamp(2 * BATCH, BATCH_MAX)
}

/// The most keys per slot any source of `pairs` holds on average: its key count over
/// its slot count, in its own view.
pub fn keys_per_slot(views: &[NodeView], pairs: &[PairMoves]) -> f64 {
    views
        .iter()
        .filter_map(|v| v.state.as_ref().ok())
        .filter_map(|s| Some((s.myself()?, s.keys)))
        .filter(|(me, _)| pairs.iter().any(|p| p.src.id == me.id))
        .map(|(me, keys)| keys as f64 / me.slot_count().max(1) as f64)
        .fold(0.0, f64::max)
}

/// With fewer pairs than `parallel`, each pair's slots split into lanes (contiguous
/// runs) that move side by side: while the target settles one lane's batch, the
/// source already hands over the next lane's keys.
pub fn lanes(pairs: Vec<PairMoves>, parallel: usize) -> Vec<PairMoves> {
    let per_pair = (parallel.max(1) / pairs.len().max(1)).clamp(1, 2);
    if per_pair == 1 {
        return pairs;
    }
    let mut out = Vec::new();
    for p in pairs {
        let size = p.slots.len().div_ceil(per_pair).max(BATCH);
        for chunk in p.slots.chunks(size) {
            out.push(PairMoves {
                src: p.src.clone(),
                dst: p.dst.clone(),
                slots: chunk.to_vec(),
            });
        }
    }
    out
}

/// The pairs as they move ([`lanes`]) and the slots per batch ([`batch_size`]), for
/// sources read in `views`.
pub fn batched(
    pairs: Vec<PairMoves>,
    opts: &MoveOpts,
    views: &[NodeView],
) -> (Vec<PairMoves>, usize) {
    let per_slot = keys_per_slot(views, &pairs);
    let lanes = lanes(pairs, opts.parallel);
    let batch = batch_size(lanes.len(), opts.parallel, opts.batch, per_slot);
    (lanes, batch)
}

/// The masters told each batch's new owner (besides the pair's own two): those that
/// are not failing and have an address (a `noaddr` node cannot be reached).
pub fn told(nodes: &[NodeInfo]) -> Vec<String> {
    nodes
        .iter()
        .filter(|n| n.is_master() && !n.failing() && !n.noaddr())
        .map(NodeInfo::addr)
        .collect()
}

/// The slots of a batch the target is made `STABLE` on right before its `SETSLOT
/// NODE`, of the `done` ones it `imported`: every one but the first and the last.
///
/// A target given a slot it imports bumps its config epoch unless it is already the
/// highest, and broadcasts a PONG to every node, whose whole slot table each receiver
/// walks: 4096 slots onto a node of a 7-node cluster made 24,576 PONGs and kept both
/// cores busy. So only the first imported slot (the bump, before the target claims
/// any other slot of the batch, so that its claim outranks the source's everywhere)
/// and the last (one broadcast that carries the whole batch) take that path; `STABLE`
/// drops the importing marker of the others without a broadcast.
pub fn quiet_slots(done: &[u16], imported: &[u16]) -> BTreeSet<u16> {
    let marked: Vec<u16> = done
        .iter()
        .copied()
        .filter(|s| imported.contains(s))
        .collect();
    match marked.as_slice() {
        [_, middle @ .., _] => middle.iter().copied().collect(),
        _ => BTreeSet::new(),
    }
}

/// The commands of [`Sender::assign`], in order: per slot, `STABLE` first when quiet,
/// then `NODE owner`.
pub fn assign_commands(slots: &[u16], owner: &str, quiet: &BTreeSet<u16>) -> Vec<Vec<Vec<u8>>> {
    let mut cmds = Vec::with_capacity(slots.len() + quiet.len());
    for &s in slots {
        if quiet.contains(&s) {
            cmds.push(commands::setslot(s, &SetSlot::Stable));
        }
        cmds.push(commands::setslot(s, &SetSlot::Node(owner.to_string())));
    }
    cmds
}

/// Whoever sends the steps: the live cluster (each step one pipeline to one node) or
/// the in-memory one (each command applied to the model and recorded in the plan).
#[allow(async_fn_in_trait)]
pub trait Sender {
    /// `CLUSTER SETSLOT slot <action>` on `node` for every slot. The slots whose
    /// command failed, but for a reply that contains `ok_if` (when not empty); an
    /// error when the node could not be asked at all.
    async fn setslot(
        &self,
        node: &str,
        slots: &[u16],
        action: &SetSlot,
        ok_if: &str,
    ) -> Result<Vec<u16>>;
    /// [`assign_commands`] on the target `node`: the slots whose commands failed.
    async fn assign(
        &self,
        node: &str,
        slots: &[u16],
        owner: &str,
        quiet: &BTreeSet<u16>,
    ) -> Result<Vec<u16>>;
    /// `CLUSTER GETKEYSINSLOT slot count` on `src` for every slot: its keys, or
    /// `None` where the command failed.
    async fn keys(&self, src: &str, slots: &[u16], count: u64) -> Result<Vec<Option<Vec<Key>>>>;
    /// [`Sender::setslot`] of `marked` on `src`, then [`Sender::keys`] of `listed`
    /// (the live cluster sends both in one pipeline): the slots whose marker failed,
    /// and the keys.
    async fn mark_and_list(
        &self,
        src: &str,
        marked: &[u16],
        action: &SetSlot,
        listed: &[u16],
        count: u64,
    ) -> Result<(Vec<u16>, Vec<Option<Vec<Key>>>)> {
        let failed = self.setslot(src, marked, action, "").await?;
        let keys = self.keys(src, listed, count).await?;
        Ok((failed, keys))
    }
    /// One `MIGRATE` of each slot's keys from `src` to `dst`: whether each succeeded.
    async fn migrate(
        &self,
        src: &str,
        dst: &str,
        batch: &[(u16, Vec<Key>)],
        opts: MigrateOpts,
    ) -> Result<Vec<bool>>;
    /// The bytes of `node`'s dataset ([`crate::cluster::Cluster::dataset_bytes`]).
    async fn dataset(&self, node: &str) -> Result<Option<u64>>;
    /// `MEMORY USAGE` of keys on the source `node` (0 where not known).
    async fn sizes(&self, node: &str, keys: &[Key]) -> Result<Vec<u64>>;
    /// `COUNTKEYSINSLOT` on `node` for every slot: the slots it holds keys of.
    async fn counts(&self, node: &str, slots: &[u16]) -> Result<Vec<(u16, u64)>>;
}

/// What one batch did.
#[derive(Debug, Default)]
pub struct Batch {
    /// Slots settled with their new owner.
    pub done: Vec<u16>,
    /// Slots the careful mover finishes from the state the batch left them in.
    pub careful: Vec<u16>,
    /// Slots left alone for a key over the limit, none of their keys moved and their
    /// markers taken back.
    pub skipped: Vec<LeftAlone>,
}

/// Take back the markers a batch set on `slots`, none of whose keys it moved (a key
/// over the limit): `STABLE` on the source, then on the target for the slots it holds
/// no key of. A key a client created on the target by `ASK` meanwhile makes the source
/// `MIGRATING` again, and its slot goes to the careful mover, as does one whose
/// command failed. The slots closed, and those for the careful mover.
async fn take_back(
    s: &impl Sender,
    pair: &PairMoves,
    slots: &[u16],
) -> Result<(Vec<u16>, Vec<u16>)> {
    let (src, dst) = (pair.src.addr(), pair.dst.addr());
    let mut careful = s.setslot(&src, slots, &SetSlot::Stable, "").await?;
    let stable: Vec<u16> = slots
        .iter()
        .copied()
        .filter(|x| !careful.contains(x))
        .collect();
    let busy: Vec<u16> = s
        .counts(&dst, &stable)
        .await?
        .into_iter()
        .map(|(x, _)| x)
        .collect();
    let migrating = SetSlot::Migrating(pair.dst.id.clone());
    s.setslot(&src, &busy, &migrating, "").await?;
    careful.extend(&busy);
    let empty: Vec<u16> = stable.into_iter().filter(|x| !busy.contains(x)).collect();
    let failed = s.setslot(&dst, &empty, &SetSlot::Stable, "").await?;
    careful.extend(&failed);
    let closed = empty.into_iter().filter(|x| !failed.contains(x)).collect();
    Ok((closed, careful))
}

/// Each slot with its listed keys; a slot without a reply has `None` (the careful
/// mover finishes it), never "no keys", which would let it be settled with keys left.
fn aligned(slots: &[u16], keys: Vec<Option<Vec<Key>>>) -> Vec<(u16, Option<Vec<Key>>)> {
    let mut keys = keys.into_iter();
    slots.iter().map(|&x| (x, keys.next().flatten())).collect()
}

/// Whether the keys of `src` are sized before they move ([`sizes::matter`]); a
/// source that cannot say is sized.
pub async fn sized(s: &impl Sender, src: &str, opts: &MoveOpts) -> bool {
    s.dataset(src)
        .await
        .map_or(true, |d| sizes::matter(d, opts))
}

/// Move one batch of a pair's slots ([`Batch`]). `sized`: the source's keys are sized
/// first ([`sized`]); a slot holding a key over the limit is found before any of its
/// keys moves, and its markers taken back at once when this batch set them (else the
/// careful mover, which names it, does). An error is a node that could not be asked
/// at all.
pub async fn move_batch(
    s: &impl Sender,
    pair: &PairMoves,
    batch: &[u16],
    sized: bool,
    opts: &MoveOpts,
) -> Result<Batch> {
    let (src, dst) = (pair.src.addr(), pair.dst.addr());
    let mut careful: Vec<u16> = Vec::new();
    // The target may already own a slot (an earlier run finished it there).
    let to_import: Vec<u16> = batch
        .iter()
        .copied()
        .filter(|s| !pair.dst.owns(*s))
        .collect();
    let importing = SetSlot::Importing(pair.src.id.clone());
    careful.extend(s.setslot(&dst, &to_import, &importing, "").await?);
    let to_migrate: Vec<u16> = batch
        .iter()
        .copied()
        .filter(|x| pair.src.owns(*x) && !careful.contains(x))
        .collect();
    let migrating = SetSlot::Migrating(pair.dst.id.clone());
    let listed: Vec<u16> = batch
        .iter()
        .copied()
        .filter(|x| !careful.contains(x))
        .collect();
    let limit = opts.pipeline.max(1);
    // The first round's keys are listed in the same pipeline as the markers; those
    // of a slot whose marker failed are dropped with it.
    let (failed, first_keys) = s
        .mark_and_list(
            &src,
            &to_migrate,
            &migrating,
            &listed,
            sizes::listed(limit, sized, true),
        )
        .await?;
    careful.extend(failed);
    let first_keys: Vec<(u16, Option<Vec<Key>>)> = aligned(&listed, first_keys)
        .into_iter()
        .filter(|(x, _)| !careful.contains(x))
        .collect();
    let mut active: Vec<u16> = first_keys.iter().map(|(x, _)| *x).collect();
    let mut first_keys = Some(first_keys);
    // Each key's size, when sizes matter ([`sizes`]).
    let mut known: HashMap<Key, u64> = HashMap::new();
    let mut skipped: Vec<LeftAlone> = Vec::new();
    let mut first_round = true;
    while !active.is_empty() {
        let count = sizes::listed(limit, sized, first_round);
        let listed: Vec<(u16, Option<Vec<Key>>)> = match first_keys.take() {
            Some(k) => k,
            None => aligned(&active, s.keys(&src, &active, count).await?),
        };
        let mut with_keys: Vec<(u16, Vec<Key>)> = Vec::new();
        for (slot, keys) in listed {
            match keys {
                Some(k) if !k.is_empty() => with_keys.push((slot, k)),
                Some(_) => {}
                None => careful.push(slot),
            }
        }
        if sized {
            let unknown: Vec<Key> = with_keys
                .iter()
                .flat_map(|(_, k)| k)
                .filter(|k| !known.contains_key(*k))
                .cloned()
                .collect();
            if !unknown.is_empty() {
                let measured = s.sizes(&src, &unknown).await?;
                known.extend(unknown.into_iter().zip(measured));
            }
            // A slot with a key over the limit moves no further key here.
            let mut big: Vec<(u16, String)> = Vec::new();
            with_keys.retain(|(slot, keys)| {
                match keys.iter().find(|k| known[*k] > opts.max_key_bytes) {
                    Some(k) => {
                        big.push((*slot, sizes::why_too_big(k, known[k], opts)));
                        false
                    }
                    None => true,
                }
            });
            // Markers this batch set on a slot none of whose keys it moved yet are taken
            // back at once (a slot left MIGRATING would send new keys to the target);
            // any other goes to the careful mover, which names it.
            let fresh = |x: u16| {
                first_round
                    && pair.src.owns(x)
                    && !pair.dst.owns(x)
                    && !pair.src.migrating.contains_key(&x)
                    && !pair.dst.importing.contains_key(&x)
            };
            let back: Vec<u16> = big.iter().map(|b| b.0).filter(|x| fresh(*x)).collect();
            careful.extend(big.iter().map(|b| b.0).filter(|x| !back.contains(x)));
            if !back.is_empty() {
                let (closed, rest) = take_back(s, pair, &back).await?;
                careful.extend(rest);
                skipped.extend(big.into_iter().filter(|b| closed.contains(&b.0)).map(
                    |(slot, why)| LeftAlone {
                        slot,
                        why: sizes::stays(&why, &src),
                        big_key: true,
                    },
                ));
            }
        }
        first_round = false;
        if with_keys.is_empty() {
            break;
        }
        // This round: per slot, the keys that fit the round's bytes; a slot with keys
        // left (or as many as were asked for) comes round again.
        let mut spent = 0u64;
        let mut round: Vec<(u16, Vec<Key>)> = Vec::with_capacity(with_keys.len());
        let mut again: Vec<u16> = Vec::new();
        for (slot, mut keys) in with_keys {
            let weights: Vec<u64> = keys
                .iter()
                .map(|k| known.get(k).copied().unwrap_or(0))
                .collect();
            let n = sizes::take(&weights, limit, spent);
            spent += weights[..n].iter().sum::<u64>();
            if n < keys.len() || keys.len() as u64 >= count {
                // Fewer keys than asked for were all the slot had: once MIGRATING, a
                // source creates no key in the slot (a command on a key it lacks is
                // sent to the target with ASK or TRYAGAIN).
                again.push(slot);
            }
            if n > 0 {
                keys.truncate(n);
                round.push((slot, keys));
            }
        }
        // Never REPLACE on the first try: a key on both sides is compared (and an
        // overwrite reported) by the careful mover.
        let first_try = MigrateOpts {
            replace: false,
            timeout_ms: sizes::timeout_ms(opts, spent),
            ..opts.migrate
        };
        let moved = s.migrate(&src, &dst, &round, first_try).await?;
        let failed: Vec<u16> = round
            .iter()
            .zip(moved)
            .filter(|(_, ok)| !ok)
            .map(|((slot, _), _)| *slot)
            .collect();
        careful.extend(&failed);
        active = again.into_iter().filter(|x| !failed.contains(x)).collect();
    }

    let done: Vec<u16> = batch
        .iter()
        .copied()
        .filter(|x| !careful.contains(x) && !skipped.iter().any(|l| l.slot == *x))
        .collect();
    // Target first: once it owns the slot, the source can let go.
    let quiet = quiet_slots(&done, &to_import);
    let failed = s.assign(&dst, &done, &pair.dst.id, &quiet).await?;
    careful.extend(failed.iter().copied());
    let done: Vec<u16> = done.into_iter().filter(|x| !failed.contains(x)).collect();
    // A source that gave away its last slot may already be a replica.
    let owner = SetSlot::Node(pair.dst.id.clone());
    let failed = s.setslot(&src, &done, &owner, "only with masters").await?;
    careful.extend(failed.iter().copied());
    let done: Vec<u16> = done.into_iter().filter(|x| !failed.contains(x)).collect();
    Ok(Batch {
        done,
        careful,
        skipped,
    })
}

/// Tell the masters of `told` but the pair's two the new owner of a batch's slots.
/// They learn it by gossip anyway (its epoch is higher): telling them is for speed,
/// and one that misses it does not stop the move.
pub async fn tell_others(s: &impl Sender, pair: &PairMoves, done: &[u16], told: &[String]) {
    if done.is_empty() {
        return;
    }
    let (src, dst) = (pair.src.addr(), pair.dst.addr());
    let owner = SetSlot::Node(pair.dst.id.clone());
    futures::future::join_all(
        told.iter()
            .filter(|a| **a != src && **a != dst)
            .map(|a| s.setslot(a, done, &owner, "only with masters")),
    )
    .await;
}

/// Whether `dst` owns `slot` in its own view, no other master claims it and no master
/// has a marker on it: the move of the slot is complete.
pub fn settled_at(nodes: &[NodeInfo], slot: u16, dst: &str) -> bool {
    nodes
        .iter()
        .any(|n| n.id == dst && n.is_master() && n.owns(slot))
        && nodes.iter().filter(|n| n.is_master()).all(|n| {
            (n.id == dst || !n.owns(slot))
                && !n.migrating.contains_key(&slot)
                && !n.importing.contains_key(&slot)
        })
}
