//! Moving keys and slots between masters, over any [`Cluster`]: the safe migration
//! protocol (importing, migrating, keys in batches, owner everywhere), resumable from
//! any half-done state, with BUSYKEY settled by comparing `DUMP` payloads.
//! Which slot goes where is the scripts' business, not this module's.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

mod moved;
mod protocol;
mod ready;
pub mod sizes;
pub mod steps;

pub use moved::*;
pub use protocol::*;
pub use ready::*;

use super::keyname::{shown, KeyName};
use super::{
    merged_nodes, Cluster, ClusterError, Key, MigrateOpts, NodeInfo, Result, SetSlot, Stop,
};

/// How to move keys.
#[derive(Debug, Clone)]
pub struct MoveOpts {
    /// Keys per `MIGRATE`.
    pub pipeline: u64,
    pub migrate: MigrateOpts,
    /// Source/target pairs moved at the same time by `move_slots`.
    pub parallel: usize,
    /// Which protocol `move_slots` uses.
    pub migration: Migration,
    /// The caller's stop check: a move takes no new slot once it is asked for, and
    /// notes there the slots it holds open.
    pub stop: Stop,
    /// A key bigger than this is not moved, nor any key of its slot ([`sizes`]).
    pub max_key_bytes: u64,
    /// The most a `MIGRATE` timeout grows to for big keys, in ms.
    pub timeout_max_ms: u64,
    /// Slots per batch of the legacy protocol; `None`: [`steps::batch_size`] decides.
    pub batch: Option<usize>,
}

impl MoveOpts {
    /// The defaults (100 keys per MIGRATE, 4 pairs at once, the protocol chosen per
    /// move) with the caller's stop check.
    pub fn new(stop: Stop) -> Self {
        MoveOpts {
            pipeline: 100,
            migrate: MigrateOpts::default(),
            parallel: 4,
            migration: Migration::Auto,
            stop,
            max_key_bytes: sizes::MAX_KEY_MB << 20,
            timeout_max_ms: sizes::TIMEOUT_MAX_MS,
            batch: None,
        }
    }
}

/// One slot to move, nodes by id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotMove {
    pub slot: u16,
    pub src: String,
    pub dst: String,
}

/// Replies worth retrying after a pause.
fn transient(e: &ClusterError) -> bool {
    e.server_reply().is_some_and(|r| {
        ["TRYAGAIN", "LOADING", "CLUSTERDOWN", "NOREPLICAS"]
            .iter()
            .any(|code| r.starts_with(code) || r.contains(&format!("error: {code}")))
    })
}

fn ioerr(e: &ClusterError) -> bool {
    e.server_reply().is_some_and(|r| r.starts_with("IOERR"))
}

fn busykey(e: &ClusterError) -> bool {
    e.server_reply().is_some_and(|r| r.contains("BUSYKEY"))
}

/// Milliseconds this process has spent waiting to retry, over every slot.
static RETRY_WAITED_MS: AtomicU64 = AtomicU64::new(0);

/// The most a whole run waits for retries: a cluster that keeps answering
/// `CLUSTERDOWN` must not turn a move into hours of backoff.
const RETRY_BUDGET: Duration = Duration::from_secs(20);

/// Start a new retry budget (each command run, each REPL input).
pub fn reset_retry_budget() {
    RETRY_WAITED_MS.store(0, Ordering::SeqCst);
}

/// Wait `delay` before a retry, unless the run's retry budget is spent or an
/// interruption was asked for outside a step that must not be cut in half (then
/// false: give up).
fn backoff(delay: Duration, stop: &Stop) -> bool {
    let waited = RETRY_WAITED_MS.fetch_add(delay.as_millis() as u64, Ordering::SeqCst);
    if Duration::from_millis(waited) + delay > RETRY_BUDGET {
        return false;
    }
    let give_up = || stop.gives_up();
    let until = Instant::now() + delay;
    while Instant::now() < until {
        if give_up() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20).min(until - Instant::now()));
    }
    !give_up()
}

/// A `MIGRATE` that failed on the way: the target or the source timed out
/// (`IOERR`, or no reply in time), or the connection broke.
fn failed_on_the_way(e: &ClusterError) -> bool {
    ioerr(e) || matches!(e, ClusterError::Timeout { .. } | ClusterError::Io { .. })
}

/// `MIGRATE` with retries on transient errors, and smaller batches on a failure on
/// the way ([`failed_on_the_way`]), down to one key; one key that still fails so (an
/// `IOERR` after the retries, a timeout or a broken connection twice) is named
/// ([`ClusterError::KeyNotMoved`]).
fn migrate_retrying(
    c: &dyn Cluster,
    src: &str,
    dst: &str,
    keys: &[Key],
    opts: MigrateOpts,
    stop: &Stop,
) -> Result<()> {
    let mut delay = Duration::from_millis(50);
    let mut attempt = 0;
    loop {
        let sent = Instant::now();
        match c.migrate(src, dst, keys, opts) {
            Ok(()) => return Ok(()),
            Err(e) if failed_on_the_way(&e) && keys.len() > 1 => {
                let (a, b) = keys.split_at(keys.len() / 2);
                migrate_retrying(c, src, dst, a, opts, stop)?;
                return migrate_retrying(c, src, dst, b, opts, stop);
            }
            // A key that took its whole timeout (or lost its connection) is tried once
            // more; a quick IOERR (a connection reset) up to 6 times, as any transient.
            Err(e)
                if failed_on_the_way(&e)
                    && (attempt >= 6
                        || (attempt >= 1
                            && (!ioerr(&e)
                                || sent.elapsed() >= Duration::from_millis(opts.timeout_ms)))) =>
            {
                return Err(ClusterError::KeyNotMoved {
                    slot: crate::cluster::slot::slot_of(&keys[0]),
                    why: format!(
                        "key {} could not be moved from {src} to {dst} ({e}; MIGRATE timeout {} ms, --migrate-timeout-max raises it)",
                        shown(&keys[0]),
                        opts.timeout_ms
                    ),
                    too_big: false,
                })
            }
            Err(e)
                if (transient(&e) || failed_on_the_way(&e)) && attempt < 6 && backoff(delay, stop) =>
            {
                attempt += 1;
                delay *= 2;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Move every key of `slot` that `src` holds to `dst`. The nodes must already serve
/// the move: `src` owns, migrates or imports the slot; `dst` owns or imports it.
/// Keys on both sides with equal `DUMP` payloads are settled silently; different
/// values fail with [`ClusterError::Conflict`] unless `opts.migrate.replace`. Where
/// sizes matter ([`sizes`]), every key is sized first: one over the limit fails with
/// [`ClusterError::KeyNotMoved`] before any key moves; each `MIGRATE` carries at most
/// [`sizes::BATCH_BYTES`] (a bigger key alone) with a timeout grown to its bytes.
pub fn move_keys(
    c: &dyn Cluster,
    slot: u16,
    src: &str,
    dst: &str,
    opts: &MoveOpts,
) -> Result<KeysMoved> {
    let mut report = KeysMoved::default();
    let mut stalled = 0;
    let mut last_first: Option<Key> = None;
    let sized = c
        .dataset_bytes(src)
        .map_or(true, |d| sizes::matter(d, opts));
    let mut known: std::collections::HashMap<Key, u64> = std::collections::HashMap::new();
    let mut count = sizes::listed(opts.pipeline, sized, true);
    loop {
        let listed = c.getkeysinslot(src, slot, count)?;
        count = sizes::listed(opts.pipeline, sized, false);
        if listed.is_empty() {
            return Ok(report);
        }
        let weights: Vec<u64> = if sized {
            let unknown: Vec<Key> = listed
                .iter()
                .filter(|k| !known.contains_key(*k))
                .cloned()
                .collect();
            if !unknown.is_empty() {
                let measured = c.key_sizes(src, &unknown)?;
                known.extend(unknown.into_iter().zip(measured));
            }
            let weights: Vec<u64> = listed.iter().map(|k| known[k]).collect();
            if let Some((key, bytes)) = sizes::over_limit(&listed, &weights, opts) {
                return Err(ClusterError::KeyNotMoved {
                    slot,
                    why: sizes::why_too_big(key, bytes, opts),
                    too_big: true,
                });
            }
            weights
        } else {
            vec![0; listed.len()]
        };
        let n = sizes::take(&weights, opts.pipeline, 0);
        let keys = &listed[..n];
        // A batch that leaves the same keys behind again and again would loop forever.
        if last_first.as_ref() == keys.first() {
            stalled += 1;
            if stalled >= 3 {
                return Err(ClusterError::State(format!(
                    "slot {slot}: keys on {src} do not leave for {dst} (still {} after 3 tries)",
                    shown(&keys[0])
                )));
            }
        } else {
            stalled = 0;
        }
        last_first = keys.first().cloned();
        let grown = MoveOpts {
            migrate: MigrateOpts {
                timeout_ms: sizes::timeout_ms(opts, weights[..n].iter().sum()),
                ..opts.migrate
            },
            ..opts.clone()
        };
        // Without REPLACE first, so a key on both sides is compared and reported, never
        // overwritten silently; settle_busy applies `replace` to exactly those keys.
        let first = MigrateOpts {
            replace: false,
            ..grown.migrate
        };
        match migrate_retrying(c, src, dst, keys, first, &opts.stop) {
            Ok(()) => report.keys += keys.len() as u64,
            Err(e) if busykey(&e) => settle_busy(c, slot, src, dst, keys, &grown, &mut report)?,
            Err(e) => return Err(e),
        }
    }
}

/// Some keys of a batch exist on the target: compare values, then move the rest.
fn settle_busy(
    c: &dyn Cluster,
    slot: u16,
    src: &str,
    dst: &str,
    keys: &[Key],
    opts: &MoveOpts,
    report: &mut KeysMoved,
) -> Result<()> {
    let here = c.dump(src, keys)?;
    let there = c.dump(dst, keys)?;
    let (mut same, mut differ, mut plain) = (Vec::new(), Vec::new(), Vec::new());
    for ((k, a), b) in keys.iter().zip(here).zip(there) {
        match (a, b) {
            (Some(a), Some(b)) if a == b => same.push(k.clone()),
            (Some(_), Some(_)) => differ.push(k.clone()),
            (Some(_), None) => plain.push(k.clone()),
            (None, _) => {} // already moved by the failed MIGRATE
        }
    }
    // Other bytes may still be the same value (a big hash or set restored from a
    // MIGRATE that timed out iterates in another order): compare the elements.
    if !differ.is_empty() {
        let here = c.canonical_values(src, &differ)?;
        let there = c.canonical_values(dst, &differ)?;
        let mut still = Vec::new();
        for ((k, a), b) in differ.into_iter().zip(here).zip(there) {
            match (a, b) {
                (Some(a), Some(b)) if a == b => same.push(k),
                _ => still.push(k),
            }
        }
        differ = still;
    }
    if !differ.is_empty() && !opts.migrate.replace {
        return Err(ClusterError::Conflict {
            slot,
            src: src.to_string(),
            dst: dst.to_string(),
            keys: differ.iter().cloned().map(KeyName).collect(),
        });
    }
    let replace = MigrateOpts {
        replace: true,
        ..opts.migrate
    };
    let busy: Vec<Key> = same.iter().chain(differ.iter()).cloned().collect();
    if !busy.is_empty() {
        migrate_retrying(c, src, dst, &busy, replace, &opts.stop)?;
    }
    if !plain.is_empty() {
        migrate_retrying(c, src, dst, &plain, opts.migrate, &opts.stop)?;
    }
    report.keys += (busy.len() + plain.len()) as u64;
    report.identical.extend(same.into_iter().map(KeyName));
    report.overwritten.extend(differ.into_iter().map(KeyName));
    Ok(())
}

/// Keys of `slot` held by both `a` and `b`, each with whether their values are equal
/// (`None` when a side cannot be read: a node that neither owns nor imports the slot
/// redirects `DUMP`; the move itself compares them once the node imports the slot).
pub fn common_keys(
    c: &dyn Cluster,
    slot: u16,
    a: &str,
    b: &str,
) -> Result<Vec<(Key, Option<bool>)>> {
    let all = |addr: &str| -> Result<Vec<Key>> {
        let n = c.countkeysinslot(addr, slot)?;
        if n == 0 {
            return Ok(Vec::new());
        }
        c.getkeysinslot(addr, slot, n)
    };
    let on_b: std::collections::HashSet<Key> = all(b)?.into_iter().collect();
    if on_b.is_empty() {
        return Ok(Vec::new());
    }
    let both: Vec<Key> = all(a)?.into_iter().filter(|k| on_b.contains(k)).collect();
    let mut out = Vec::new();
    for chunk in both.chunks(1000) {
        let values = match (c.dump(a, chunk), c.dump(b, chunk)) {
            (Ok(x), Ok(y)) => {
                let mut same: Vec<Option<bool>> =
                    x.into_iter().zip(y).map(|(x, y)| Some(x == y)).collect();
                // Other bytes may still be the same value (see settle_busy).
                let differ: Vec<usize> = (0..chunk.len())
                    .filter(|&i| same[i] == Some(false))
                    .collect();
                if !differ.is_empty() {
                    let keys: Vec<Key> = differ.iter().map(|&i| chunk[i].clone()).collect();
                    let here = c.canonical_values(a, &keys)?;
                    let there = c.canonical_values(b, &keys)?;
                    for ((i, x), y) in differ.into_iter().zip(here).zip(there) {
                        same[i] = Some(x.is_some() && x == y);
                    }
                }
                same
            }
            (Err(e), _) | (_, Err(e))
                if e.server_reply().is_some_and(|r| r.starts_with("MOVED")) =>
            {
                vec![None; chunk.len()]
            }
            (Err(e), _) | (_, Err(e)) => return Err(e),
        };
        out.extend(chunk.iter().cloned().zip(values));
    }
    Ok(out)
}

/// The ids of every source and target of some moves, each once.
pub fn ends_of(moves: &[SlotMove]) -> Vec<&str> {
    let mut ids: Vec<&str> = Vec::new();
    for m in moves {
        for id in [m.src.as_str(), m.dst.as_str()] {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    ids
}

/// The master serving the shard of node `id` now: itself while it is a master, its
/// master once it has turned replica (a failover happened).
pub fn serving_master<'a>(nodes: &'a [NodeInfo], id: &str) -> Option<&'a NodeInfo> {
    let n = nodes.iter().find(|n| n.id == id)?;
    if n.is_master() {
        return Some(n);
    }
    let m = n.master_id.as_deref()?;
    nodes.iter().find(|o| o.id == m && o.is_master())
}

/// Every node's own description of itself (markers included), by id.
fn own_view<'a>(nodes: &'a [NodeInfo], id: &str) -> Result<&'a NodeInfo> {
    nodes
        .iter()
        .find(|n| n.id == id)
        .ok_or_else(|| ClusterError::State(format!("node {id} is not in the cluster")))
}

/// Tell every master that `owner` owns `slot`: the new owner first, then the old
/// owners, then the rest. A node that has already turned replica is skipped.
pub fn set_owner_everywhere(
    c: &dyn Cluster,
    nodes: &[NodeInfo],
    slot: u16,
    owner: &NodeInfo,
) -> Result<()> {
    let old: Vec<&NodeInfo> = nodes
        .iter()
        .filter(|n| n.is_master() && n.owns(slot) && n.id != owner.id)
        .collect();
    let mut order: Vec<&NodeInfo> = vec![owner];
    order.extend(old.iter().copied());
    order.extend(nodes.iter().filter(|n| {
        n.is_master()
            && n.id != owner.id
            && !old.iter().any(|o| o.id == n.id)
            && !n.failing()
            && !n.noaddr()
    }));
    let told_first = 1 + old.len();
    for (i, n) in order.into_iter().enumerate() {
        match c.setslot(&n.addr(), slot, &SetSlot::Node(owner.id.clone())) {
            Ok(()) => {}
            // A source that gave away its last slot may already be a replica.
            Err(e)
                if e.server_reply()
                    .is_some_and(|r| r.contains("only with masters")) => {}
            // Another master that cannot be reached learns the owner by gossip when it
            // comes back; the new and old owners must hear it now.
            Err(e) if i >= told_first && e.is_connection() => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Make the node at `addr` the owner of `slot` and make its claim win
/// ([`Cluster::claim_slot`]), unless another master serves the slot with keys: once
/// the claim wins (BUMPEPOCH), that master learns so by gossip and drops them.
pub fn claim(c: &dyn Cluster, addr: &str, slot: u16) -> Result<()> {
    let views = c.views()?;
    let nodes = merged_nodes(&views);
    let claimant = views
        .iter()
        .find(|v| v.addr == addr)
        .and_then(|v| v.state.as_ref().ok())
        .and_then(|s| s.myself())
        .map(|me| me.id.clone())
        .or_else(|| {
            nodes
                .iter()
                .find(|n| n.addr() == addr)
                .map(|n| n.id.clone())
        });
    for v in &views {
        let Some(me) = v.state.as_ref().ok().and_then(|s| s.myself()) else {
            continue;
        };
        if !me.is_master() || Some(&me.id) == claimant.as_ref() || !me.owns(slot) {
            continue;
        }
        let keys = c.countkeysinslot(&v.addr, slot)?;
        if keys > 0 {
            return Err(ClusterError::Refused(format!(
                "slot {slot}: {} serves it and holds {keys} of its keys: claiming it for {addr} would make {} drop them; move its keys to {addr} first",
                v.addr, v.addr
            )));
        }
        // A key written there between this check and the claim would be dropped too,
        // unless new keys already go to the claimant (ASK).
        if claimant.is_some() && me.migrating.get(&slot) != claimant.as_ref() {
            return Err(ClusterError::Refused(format!(
                "slot {slot}: {} serves it: claiming it for {addr} would make {} drop any key written meanwhile; set it MIGRATING to {addr} first",
                v.addr, v.addr
            )));
        }
    }
    c.claim_slot(addr, slot)
}

/// Refuse a move that would make a third master lose the slot: once the target takes
/// the slot (SETSLOT NODE bumps its epoch), any other master that owned it learns so
/// by gossip and deletes its keys in it. A move is safe when the source owns the slot
/// (or is already migrating it to the target, or the target already owns it, when an
/// earlier run stopped half-way) and no other master claims it.
pub fn check_move(nodes: &[NodeInfo], slot: u16, src: &NodeInfo, dst: &NodeInfo) -> Result<()> {
    if let Some(other) = nodes
        .iter()
        .find(|n| n.is_master() && n.owns(slot) && n.id != src.id && n.id != dst.id)
    {
        return Err(ClusterError::State(format!(
            "slot {slot} belongs to {}, not to {}: moving it from {} would make {} drop its keys; name the owner as the source, or run fix if the nodes disagree",
            other.addr(),
            src.addr(),
            src.addr(),
            other.addr()
        )));
    }
    let resumable = src.owns(slot) || dst.owns(slot) || src.migrating.get(&slot) == Some(&dst.id);
    if !resumable {
        return Err(ClusterError::State(format!(
            "slot {slot} has no owner among the masters: run fix to cover it before moving it"
        )));
    }
    Ok(())
}

/// One source/target pair of a batch of moves, and its slots in the order given.
#[derive(Clone)]
pub struct PairMoves {
    pub src: NodeInfo,
    pub dst: NodeInfo,
    pub slots: Vec<u16>,
}

/// Check every move against the cluster (known masters, distinct ends, no slot twice,
/// [`check_move`]) and group them by source/target pair, pairs in order of first
/// appearance. Every mover of many slots starts here, so they refuse the same moves.
pub fn pairs_of(nodes: &[NodeInfo], moves: &[SlotMove]) -> Result<Vec<PairMoves>> {
    let find = |id: &str| -> Result<&NodeInfo> {
        let n = nodes
            .iter()
            .find(|n| n.id == id)
            .ok_or_else(|| ClusterError::State(format!("node {id} is not in the cluster")))?;
        if !n.is_master() {
            return Err(ClusterError::State(format!(
                "{} is a replica; slots move between masters",
                n.addr()
            )));
        }
        Ok(n)
    };
    let mut pairs: Vec<PairMoves> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for m in moves {
        if m.src == m.dst {
            return Err(ClusterError::State(format!(
                "slot {}: source and target are the same node",
                m.slot
            )));
        }
        if !seen.insert(m.slot) {
            return Err(ClusterError::State(format!(
                "slot {} is listed twice in the moves",
                m.slot
            )));
        }
        let (src, dst) = (find(&m.src)?, find(&m.dst)?);
        check_move(nodes, m.slot, src, dst)?;
        match pairs
            .iter_mut()
            .find(|p| p.src.id == m.src && p.dst.id == m.dst)
        {
            Some(p) => p.slots.push(m.slot),
            None => pairs.push(PairMoves {
                src: src.clone(),
                dst: dst.clone(),
                slots: vec![m.slot],
            }),
        }
    }
    Ok(pairs)
}

/// Whether a failed `SETSLOT MIGRATING` may be undone on the target: only when the
/// source answered with a refusal (an error reply: it did not apply it), and its own
/// markers, read again after the error (`source`, `None` when it could not be read),
/// show no `MIGRATING` for the slot. A timeout or a lost connection may have come
/// after the source applied it: clearing the target's `IMPORTING` then would leave the
/// slot half-open, so it stays for `fix` to settle.
fn may_undo_importing(err: &ClusterError, source: Option<&NodeInfo>, slot: u16) -> bool {
    matches!(err, ClusterError::Command { .. })
        && source.is_some_and(|s| !s.migrating.contains_key(&slot))
}

/// After the source refused `MIGRATING` (Valkey does while it sends an atomic
/// migration, `Slot export in progress`): the target's `IMPORTING` from it is cleared
/// again when the target holds no key of the slot, so the refused move leaves no
/// marker behind. With keys there, it is an interrupted migration that `fix` settles.
/// Nothing is undone unless [`may_undo_importing`]. Whether the marker was cleared.
fn undo_importing(
    c: &dyn Cluster,
    slot: u16,
    src: &NodeInfo,
    dst: &NodeInfo,
    err: &ClusterError,
) -> bool {
    let Ok(views) = c.views() else { return false };
    let own = |id: &str| {
        views.iter().find_map(|v| {
            let me = v.state.as_ref().ok()?.myself()?.clone();
            (me.id == id).then_some(me)
        })
    };
    if !may_undo_importing(err, own(&src.id).as_ref(), slot) {
        return false;
    }
    let Some(me) = own(&dst.id) else { return false };
    if me.importing.get(&slot) != Some(&src.id) {
        return false;
    }
    c.countkeysinslot(&dst.addr(), slot).unwrap_or(1) == 0
        && c.setslot(&dst.addr(), slot, &SetSlot::Stable).is_ok()
}

/// Take back the markers of a slot whose keys did not leave `src`: when `dst` holds
/// none of its keys, `SETSLOT STABLE` on the source, then on the target if it still
/// holds none. The source answers only after a `MIGRATE` still running there, whose
/// key may then be on the target, as may a key a client created there by `ASK` in
/// between: the source is then made `MIGRATING` again, so that both are served and
/// `fix` settles the slot. Whether both markers were taken back.
fn take_back(c: &dyn Cluster, slot: u16, src: &NodeInfo, dst: &NodeInfo) -> bool {
    let empty = || c.countkeysinslot(&dst.addr(), slot).ok() == Some(0);
    if !empty() || c.setslot(&src.addr(), slot, &SetSlot::Stable).is_err() {
        return false;
    }
    if !empty() {
        let _ = c.setslot(&src.addr(), slot, &SetSlot::Migrating(dst.id.clone()));
        return false;
    }
    c.setslot(&dst.addr(), slot, &SetSlot::Stable).is_ok()
}

/// A slot a move leaves alone because one of its keys is over the limit (nothing of it
/// moved), from the careful mover's error.
pub fn too_big(e: &ClusterError) -> Option<LeftAlone> {
    match e {
        ClusterError::KeyNotMoved {
            slot,
            why,
            too_big: true,
        } => Some(LeftAlone {
            slot: *slot,
            why: why.clone(),
            big_key: true,
        }),
        _ => None,
    }
}

/// The whole safe migration of one slot from `src` to `dst`, resuming from wherever
/// an earlier attempt stopped: `IMPORTING` on the target unless it already owns the
/// slot, `MIGRATING` on the source while it owns it, every key in batches, then
/// `SETSLOT NODE dst` on the target first, the source next, every other master last.
pub fn move_slot(
    c: &dyn Cluster,
    slot: u16,
    src_id: &str,
    dst_id: &str,
    opts: &MoveOpts,
) -> Result<SlotMoved> {
    let started = Instant::now();
    if src_id == dst_id {
        return Err(ClusterError::State(format!(
            "move_slot {slot}: source and target are the same node ({src_id})"
        )));
    }
    let nodes = merged_nodes(&ready(c, &[src_id, dst_id], GOSSIP_WAIT)?);
    let src = own_view(&nodes, src_id)?.clone();
    let dst = own_view(&nodes, dst_id)?.clone();
    for n in [&src, &dst] {
        if !n.is_master() {
            return Err(ClusterError::State(format!(
                "move_slot {slot}: {} is a replica; slots move between masters",
                n.addr()
            )));
        }
    }
    check_move(&nodes, slot, &src, &dst)?;
    let live = !c.dry_run();
    if live {
        opts.stop.opened(&[slot]);
    }
    if !dst.owns(slot) && dst.importing.get(&slot) != Some(&src.id) {
        c.setslot(&dst.addr(), slot, &SetSlot::Importing(src.id.clone()))?;
    }
    if src.owns(slot) && src.migrating.get(&slot) != Some(&dst.id) {
        if let Err(e) = c.setslot(&src.addr(), slot, &SetSlot::Migrating(dst.id.clone())) {
            if undo_importing(c, slot, &src, &dst, &e) && live {
                opts.stop.settled(&[slot]);
            }
            return Err(e);
        }
    }
    let moved = match move_keys(c, slot, &src.addr(), &dst.addr(), opts) {
        Ok(m) => m,
        Err(ClusterError::KeyNotMoved { slot, why, too_big }) => {
            let closed = src.owns(slot) && take_back(c, slot, &src, &dst);
            if closed && live {
                opts.stop.settled(&[slot]);
            }
            let what = if closed {
                sizes::stays(&why, &src.addr())
            } else {
                format!("{why}: the slot is left open with keys on both sides (`slotsmith fix` settles it; `slotsmith cancel` takes its keys back whatever their size)")
            };
            return Err(ClusterError::KeyNotMoved {
                slot,
                why: what,
                too_big,
            });
        }
        Err(e) => return Err(e),
    };
    set_owner_everywhere(c, &nodes, slot, &dst)?;
    if live {
        opts.stop.settled(&[slot]);
    }
    Ok(SlotMoved {
        slots: 1,
        slot_keys: [(slot, moved.keys)].into(),
        keys: moved.keys,
        overwritten: moved.overwritten,
        identical: moved.identical,
        seconds: started.elapsed().as_secs_f64(),
        ..SlotMoved::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::topology::parse_cluster_nodes;

    fn pair(text: &str, slots: Vec<u16>) -> PairMoves {
        let nodes = parse_cluster_nodes(text).expect("parses");
        PairMoves {
            src: nodes[0].clone(),
            dst: nodes[1].clone(),
            slots,
        }
    }

    #[test]
    fn an_atomic_move_skips_slots_already_moved_and_refuses_slots_both_ends_claim() {
        // The source serves 0-9, the target already 10-11; 12 belongs to neither.
        let text = "\
aaaa 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-9
bbbb 127.0.0.1:7002@17002 master - 0 0 2 connected 10-11
";
        let (todo, already) = not_yet_moved(vec![pair(text, vec![8, 9, 10, 11])]).unwrap();
        assert_eq!(already, vec![10, 11]);
        assert_eq!(todo.len(), 1);
        assert_eq!(todo[0].slots, vec![8, 9]);
        // Both claim 5: which copy is right is fix's to settle.
        let both = "\
aaaa 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-9
bbbb 127.0.0.1:7002@17002 master - 0 0 2 connected 5
";
        let err = not_yet_moved(vec![pair(both, vec![5])])
            .err()
            .expect("refused");
        assert!(
            err.to_string()
                .contains("slot 5 is claimed by both 127.0.0.1:7001 and 127.0.0.1:7002"),
            "{err}"
        );
    }

    #[test]
    fn importing_is_undone_only_after_a_refusal_the_source_did_not_apply() {
        let refused = ClusterError::Command {
            addr: "127.0.0.1:7000".into(),
            command: "CLUSTER SETSLOT".into(),
            reason: "ERR Slot export in progress".into(),
        };
        let timeout = ClusterError::Timeout {
            addr: "127.0.0.1:7000".into(),
            command: "CLUSTER SETSLOT".into(),
            ms: 2000,
        };
        let io = ClusterError::Io {
            addr: "127.0.0.1:7000".into(),
            command: "CLUSTER SETSLOT".into(),
            reason: "reset".into(),
        };
        let node = |line: &str| {
            super::super::topology::parse_cluster_nodes(line).expect("parses")[0].clone()
        };
        let clean = node("aaaa 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-100\n");
        let migrating =
            node("aaaa 127.0.0.1:7000@17000 myself,master - 0 0 1 connected 0-100 [7->-bbbb]\n");
        assert_eq!(
            migrating.migrating.get(&7).map(String::as_str),
            Some("bbbb")
        );
        assert!(may_undo_importing(&refused, Some(&clean), 7));
        // The source did apply it after all, or cannot say: the marker stays.
        assert!(!may_undo_importing(&refused, Some(&migrating), 7));
        assert!(!may_undo_importing(&refused, None, 7));
        assert!(may_undo_importing(&refused, Some(&migrating), 8));
        // No reply: it may have been applied.
        assert!(!may_undo_importing(&timeout, Some(&clean), 7));
        assert!(!may_undo_importing(&io, Some(&clean), 7));
    }
}
