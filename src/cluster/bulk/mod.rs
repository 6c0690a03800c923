//! The fast slot mover of the live cluster. Round trips and the servers' CPU, not
//! bytes, dominate moving thousands of slots, so every step is pipelined per node over
//! a batch of slots, in the order [`crate::cluster::mover::steps`] defines for the
//! live and the in-memory cluster alike: IMPORTING on the target, MIGRATING on the
//! source, GETKEYSINSLOT and MIGRATE, then SETSLOT NODE on the target and the source;
//! the other masters are told beside the pair's next batches. Several source/target
//! pairs run at once. A slot that hits anything unusual (BUSYKEY, a transient error) is
//! finished afterwards by the careful one-slot mover.
//!
//! Right before each batch's first write, every node is read back but those busy
//! with this run's MIGRATEs, which a watcher reads over and over beside the pairs: a
//! slot whose state changed since it was planned is left alone and named; a marker this run did not
//! set (another tool moving slots), a failover of the pair's nodes or a cluster that
//! stopped serving stops the run before the next batch. Whatever way it ends, it says
//! which slots it leaves open.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use futures::stream::{self, StreamExt};

use super::mover::{self, sizes, steps, LeftAlone, MoveOpts, SlotMove, SlotMoved};
use super::nodes::Nodes;
use super::{merged_nodes, Cluster, ClusterError, NodeInfo, NodeView, Result, Stop};
use crate::progress::Progress;

mod atomic;
mod send;
mod watch;

pub use atomic::supports as supports_atomic;

use send::Live;
use watch::{recheck, watch};

/// The pairs in waves that run one after the other; the pairs of a wave run side by
/// side. No node is a source in one pair of a wave and a target in another: `MIGRATE`
/// blocks its source until the target answers, so A -> B beside B -> A would wait on
/// each other until the MIGRATE timeout.
fn waves(pairs: &[Pair]) -> Vec<Vec<usize>> {
    let mut waves: Vec<Vec<usize>> = Vec::new();
    for (i, p) in pairs.iter().enumerate() {
        let fits = |w: &Vec<usize>| {
            w.iter()
                .all(|&j| pairs[j].dst.id != p.src.id && pairs[j].src.id != p.dst.id)
        };
        match waves.iter_mut().find(|w| fits(w)) {
            Some(w) => w.push(i),
            None => waves.push(vec![i]),
        }
    }
    waves
}

/// One source/target pair and the slots it moves.
type Pair = mover::PairMoves;

/// What a pair did.
#[derive(Default)]
struct PairDone {
    slots: u64,
    /// Slots to finish with the careful mover.
    careful: Vec<u16>,
}

/// What every pair of one call shares: why the call stops, what it counted.
struct Run {
    /// Slots open before the call started (the moves may resume them); any other
    /// marker that appears, on a slot this call does not move, was set by someone else.
    open_before: BTreeSet<u16>,
    /// Every slot this call moves.
    asked: BTreeSet<u16>,
    /// Slots per batch.
    batch: usize,
    /// The first reason to stop taking new batches, for every pair.
    stop: Mutex<Option<ClusterError>>,
    keys: AtomicU64,
    left_alone: Mutex<Vec<LeftAlone>>,
    /// Nodes with a MIGRATE pipeline of this run in flight, and how many.
    busy: Mutex<std::collections::HashMap<String, usize>>,
    /// The watcher's latest read of every node (before its first: the call's).
    seen: Mutex<std::sync::Arc<Vec<NodeView>>>,
    /// Keys moved per slot, for the slots moved.
    slot_keys: Mutex<std::collections::BTreeMap<u16, u64>>,
}

/// A node marked busy with a MIGRATE pipeline of this run while this lives.
struct Busy<'a> {
    run: &'a Run,
    addr: String,
}

impl<'a> Busy<'a> {
    fn new(run: &'a Run, addr: &str) -> Self {
        *run.busy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(addr.to_string())
            .or_default() += 1;
        Busy {
            run,
            addr: addr.to_string(),
        }
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        let mut busy = self.run.busy.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = busy.get_mut(&self.addr) {
            *n -= 1;
            if *n == 0 {
                busy.remove(&self.addr);
            }
        }
    }
}

impl Run {
    /// The nodes with a MIGRATE pipeline of this run in flight.
    fn busy_nodes(&self) -> Vec<String> {
        self.busy
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    fn stopped(&self) -> bool {
        self.stop
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    fn stop(&self, e: ClusterError) {
        self.stop
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_or_insert(e);
    }
}

/// Where the bulk mover's writes go (its nodes, journaled), and the caller's stop check.
struct Ctx<'a> {
    nodes: &'a Nodes,
    stop: &'a Stop,
}

/// Move a pair's slots batch after batch, until they are all moved, the call stops
/// or an interruption is asked for.
async fn move_pair(
    ctx: &Ctx<'_>,
    pair: &Pair,
    cluster: &Around<'_>,
    opts: &MoveOpts,
    progress: &Progress,
    run: &Run,
) -> PairDone {
    let sender = Live { ctx, run, progress };
    // The other masters are told each batch's new owner beside the pair's next
    // batches, never holding them up (they learn it by gossip anyway).
    let (tell, mut told) = tokio::sync::mpsc::unbounded_channel::<Vec<u16>>();
    let telling = async {
        while let Some(done) = told.recv().await {
            steps::tell_others(&sender, pair, &done, cluster.masters).await;
        }
    };
    let moving = async {
        let mut out = PairDone::default();
        let sized = steps::sized(&sender, &pair.src.addr(), opts).await;
        for batch in pair.slots.chunks(sizes::batch(run.batch, sized)) {
            if opts.stop.requested() || run.stopped() {
                break;
            }
            let seen = run.seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
            let batch = match recheck(ctx, pair, batch, run, cluster.nodes, &seen).await {
                Ok(b) => b,
                Err(e) => {
                    run.stop(e);
                    break;
                }
            };
            opts.stop.opened(&batch);
            match steps::move_batch(&sender, pair, &batch, sized, opts).await {
                Ok(steps::Batch {
                    done,
                    careful,
                    skipped,
                }) => {
                    opts.stop.settled(&done);
                    let closed: Vec<u16> = skipped.iter().map(|l| l.slot).collect();
                    opts.stop.settled(&closed);
                    run.left_alone
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend(skipped);
                    {
                        let mut per_slot = run.slot_keys.lock().unwrap_or_else(|e| e.into_inner());
                        for s in &done {
                            per_slot.entry(*s).or_default();
                        }
                    }
                    out.slots += done.len() as u64;
                    progress.done(done.len() as u64, 0);
                    out.careful.extend(careful);
                    let _ = tell.send(done);
                }
                Err(e) => {
                    // The careful mover resumes every slot of this batch from its
                    // state; the pair takes no new batch.
                    out.careful.extend(batch);
                    run.stop(e);
                    break;
                }
            }
        }
        drop(tell);
        out
    };
    let (out, ()) = futures::join!(moving, telling);
    out
}

/// The rest of the cluster, for every pair of a call.
struct Around<'a> {
    /// The masters' addresses, told each batch's new owner ([`steps::told`]).
    masters: &'a [String],
    /// Every node's address, watched beside each batch.
    nodes: &'a [String],
}

/// Finish one slot of a pair with the careful mover, from whatever state the batch
/// left it in. A slot the batch got to the end of is done. After a failover of one
/// end, the shard's new master stands in for it (not a source that gave its last slot
/// to the target and turned its replica: that is no failover).
fn finish_slot(
    cluster: &dyn Cluster,
    pair: &Pair,
    slot: u16,
    opts: &MoveOpts,
    notes: &mut Vec<String>,
) -> Result<SlotMoved> {
    let now = cluster
        .views()
        .map(|v| merged_nodes(&v))
        .unwrap_or_default();
    if steps::settled_at(&now, slot, &pair.dst.id) {
        opts.stop.settled(&[slot]);
        return Ok(SlotMoved {
            slots: 1,
            slot_keys: [(slot, 0)].into(),
            ..SlotMoved::default()
        });
    }
    let mut substituted = false;
    let mut current = |planned: &NodeInfo, other: &NodeInfo| match mover::serving_master(
        &now,
        &planned.id,
    ) {
        Some(m) if m.id != planned.id && m.id != other.id => {
            substituted = true;
            let note = format!(
                "{} is now a replica of {} (a failover happened): finishing its slots in flight with {}",
                planned.addr(),
                m.addr(),
                m.addr()
            );
            if !notes.contains(&note) {
                crate::progress::say(&format!("[WARNING] {note}"));
                notes.push(note);
            }
            m.id.clone()
        }
        _ => planned.id.clone(),
    };
    let src = current(&pair.src, &pair.dst);
    let dst = current(&pair.dst, &pair.src);
    // A new master may still hold keys whose move had not reached it by replication:
    // never let them overwrite the target's copies unasked.
    let mut opts = opts.clone();
    if substituted {
        opts.migrate.replace = false;
    }
    mover::move_slot(cluster, slot, &src, &dst, &opts)
}

/// A short name for an error, to tell the same failure on slot after slot.
fn error_kind(e: &ClusterError) -> String {
    match e {
        ClusterError::Command { addr, reason, .. } => {
            format!("{addr} {}", reason.split(' ').next().unwrap_or_default())
        }
        ClusterError::Connect { addr, .. }
        | ClusterError::Timeout { addr, .. }
        | ClusterError::Io { addr, .. }
        | ClusterError::Abandoned { addr, .. } => format!("{addr} unreachable"),
        other => other.to_string(),
    }
}

/// The same error on this many slots in a row stops the careful mover.
const SAME_ERROR_STREAK: usize = 3;

/// Move many slots fast; see the module docs. `cluster` is the cluster of `nodes`,
/// for the careful one-slot mover.
pub fn move_slots(
    cluster: &dyn Cluster,
    nodes: &Nodes,
    moves: &[SlotMove],
    opts: &MoveOpts,
) -> Result<SlotMoved> {
    let started = Instant::now();
    let ids = mover::ends_of(moves);
    let views = mover::ready(cluster, &ids, mover::GOSSIP_WAIT)?;
    crate::progress::detail(&format!(
        "-- move_slots: ready to write after {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    ));
    let known = merged_nodes(&views);
    let pairs = mover::pairs_of(&known, moves)?;
    let ctx = Ctx {
        nodes,
        stop: &opts.stop,
    };
    let progress = Progress::new(moves.len() as u64);
    let atomic = nodes.block_on(async {
        match atomic::chosen(&ctx, &pairs, opts.migration).await? {
            true => atomic::move_pairs(&ctx, &pairs, &progress).await.map(Some),
            false => Ok(None),
        }
    });
    if let Some(result) = atomic.transpose() {
        progress.finish();
        return result;
    }
    let (pairs, batch) = steps::batched(pairs, opts, &views);
    let masters = steps::told(&known);
    let addrs: Vec<String> = views.iter().map(|v| v.addr.clone()).collect();
    let around = Around {
        masters: &masters,
        nodes: &addrs,
    };
    let run = Run {
        open_before: known
            .iter()
            .flat_map(|n| n.migrating.keys().chain(n.importing.keys()).copied())
            .collect(),
        asked: moves.iter().map(|m| m.slot).collect(),
        batch,
        stop: Mutex::new(None),
        keys: AtomicU64::new(0),
        left_alone: Mutex::new(Vec::new()),
        slot_keys: Mutex::new(std::collections::BTreeMap::new()),
        seen: Mutex::new(std::sync::Arc::new(views.clone())),
        busy: Mutex::new(std::collections::HashMap::new()),
    };
    let done = tokio::sync::Notify::new();
    let moving = async {
        let mut results: Vec<(usize, PairDone)> = Vec::new();
        for wave in waves(&pairs) {
            results.extend(
                stream::iter(wave)
                    .map(|i| {
                        let (ctx, cluster, progress, run) = (&ctx, &around, &progress, &run);
                        let p = &pairs[i];
                        async move { (i, move_pair(ctx, p, cluster, opts, progress, run).await) }
                    })
                    .buffer_unordered(opts.parallel.max(1))
                    .collect::<Vec<_>>()
                    .await,
            );
        }
        done.notify_one();
        results
    };
    let (results, ()) =
        nodes.block_on(async { futures::join!(moving, watch(&ctx, around.nodes, &run, &done)) });
    progress.finish();
    crate::progress::detail(&format!(
        "-- move_slots: batches done after {:.0} ms",
        started.elapsed().as_secs_f64() * 1000.0
    ));

    let mut total = SlotMoved::default();
    let mut careful_error: Option<ClusterError> = None;
    let mut streak: (String, usize) = (String::new(), 0);
    let mut notes: Vec<String> = Vec::new();
    for (i, done) in results {
        total.slots += done.slots;
        let pair = &pairs[i];
        for slot in done.careful {
            if opts.stop.requested() || streak.1 >= SAME_ERROR_STREAK {
                break;
            }
            match finish_slot(cluster, pair, slot, opts, &mut notes) {
                Ok(r) => {
                    run.keys.fetch_add(r.keys, Ordering::Relaxed);
                    total.slots += r.slots;
                    total.overwritten.extend(r.overwritten);
                    total.identical.extend(r.identical);
                    for (s, k) in r.slot_keys {
                        *run.slot_keys
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .entry(s)
                            .or_default() += k;
                    }
                    streak = (String::new(), 0);
                }
                Err(e) if mover::too_big(&e).is_some() => {
                    run.left_alone
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .extend(mover::too_big(&e));
                }
                Err(e) => {
                    let kind = error_kind(&e);
                    streak = if streak.0 == kind {
                        (kind, streak.1 + 1)
                    } else {
                        (kind, 1)
                    };
                    careful_error.get_or_insert(e);
                }
            }
        }
    }
    total.keys = run.keys.load(Ordering::Relaxed);
    total.slot_keys = run
        .slot_keys
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    total.left_alone = run
        .left_alone
        .into_inner()
        .unwrap_or_else(|e| e.into_inner());
    total.open = opts
        .stop
        .open_slots()
        .into_iter()
        .filter(|s| run.asked.contains(s))
        .collect();
    total.interrupted = opts.stop.requested() && total.slots < moves.len() as u64;
    total.seconds = started.elapsed().as_secs_f64();
    let stop = run.stop.into_inner().unwrap_or_else(|e| e.into_inner());
    // A refusal (another run, a failover, a cluster down) explains the careful
    // mover's failures that follow it; otherwise the careful mover's first error.
    // A stop that the careful mover made good (every slot moved or left alone) is no
    // failure; an interruption is reported by the caller, not as an error.
    let all_done = total.slots as usize + total.left_alone.len() == moves.len();
    let cause = match (stop, careful_error) {
        // Keys that differ on both sides are named first.
        (_, Some(c @ ClusterError::Conflict { .. })) => Some(c),
        (Some(s), _) if s.is_refusal() => Some(s),
        (_, Some(c)) => Some(c),
        (s, None) => s.filter(|_| !total.interrupted && !all_done),
    };
    match cause {
        Some(cause) => Err(ClusterError::Stopped {
            cause: Box::new(cause),
            progress: total.progress(moves.len()),
        }),
        None => Ok(total),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::topology::parse_cluster_nodes;

    fn pair(nodes: &[NodeInfo], src: usize, dst: usize) -> Pair {
        Pair {
            src: nodes[src].clone(),
            dst: nodes[dst].clone(),
            slots: vec![0],
        }
    }

    #[test]
    fn opposite_moves_never_run_side_by_side() {
        let nodes = parse_cluster_nodes(
            "a000000000000000000000000000000000000000 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-5460\n\
             b000000000000000000000000000000000000000 127.0.0.1:7002@17002 master - 0 0 2 connected 5461-10922\n\
             c000000000000000000000000000000000000000 127.0.0.1:7003@17003 master - 0 0 3 connected 10923-16383\n\
             d000000000000000000000000000000000000000 127.0.0.1:7004@17004 master - 0 0 4 connected\n",
        )
        .unwrap();
        // A rebalance onto one node: one wave.
        let fill = [pair(&nodes, 0, 3), pair(&nodes, 1, 3), pair(&nodes, 2, 3)];
        assert_eq!(waves(&fill), vec![vec![0, 1, 2]]);
        // A -> B and B -> A (a fix of slots open both ways): one after the other.
        let both = [pair(&nodes, 0, 1), pair(&nodes, 1, 0), pair(&nodes, 2, 3)];
        assert_eq!(waves(&both), vec![vec![0, 2], vec![1]]);
    }
}
