//! The atomic back-end of the engine, for servers that move slots themselves (Valkey 9:
//! `CLUSTER MIGRATESLOTS`): one command per source for all its ranges and targets,
//! then `CLUSTER GETSLOTMIGRATIONS` polled on every source until each job has ended.
//! An interruption cancels the jobs in flight (`CLUSTER CANCELSLOTMIGRATIONS` on every
//! source) and waits for them to end. No marker is set and the client moves no key: a
//! job that fails or is cancelled leaves its slots with the source.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::{Ctx, Pair};
use crate::cluster::conn::{args, Pool};
use crate::cluster::jobs::{self, SlotJob};
use crate::cluster::mover::{self, Migration, SlotMoved};
use crate::cluster::topology::{format_ranges, ranges_of};
use crate::cluster::{ClusterError, NodeInfo, Reply, Result};
use crate::progress::Progress;

/// How often the jobs are polled.
const POLL: Duration = Duration::from_millis(10);

/// How long a source may go unanswered, with no failover seen, before the run stops
/// watching its jobs (the server finishes or fails them on its own).
const SILENT_LIMIT: Duration = Duration::from_secs(30);

/// Whether a node moves slots itself: `COMMAND INFO CLUSTER|MIGRATESLOTS` describes
/// the command (a server without it answers with a nil).
pub async fn supports(pool: &Pool, addr: &str) -> Result<bool> {
    match pool
        .cmd(addr, &args(["COMMAND", "INFO", "CLUSTER|MIGRATESLOTS"]))
        .await?
    {
        Reply::Array(items) => Ok(items.iter().any(|i| matches!(i, Reply::Array(_)))),
        _ => Ok(false),
    }
}

/// Whether the pairs move atomically (see [`crate::cluster::mover::goes_atomic`]),
/// every source and target asked at once whether it moves slots itself.
pub(super) async fn chosen(ctx: &Ctx<'_>, pairs: &[Pair], migration: Migration) -> Result<bool> {
    if migration == Migration::Legacy {
        return mover::goes_atomic(migration, &[]);
    }
    let ends = mover::ends_of_pairs(pairs);
    let support = futures::future::join_all(
        ends.iter()
            .map(|n| async move { supports(ctx.nodes.pool(), &n.addr()).await }),
    )
    .await;
    let mut known = Vec::new();
    for (n, s) in ends.into_iter().zip(support) {
        known.push((n, s?));
    }
    mover::goes_atomic(migration, &known)
}

async fn jobs(ctx: &Ctx<'_>, addr: &str) -> Result<Vec<SlotJob>> {
    ctx.nodes.slot_migrations(addr).await
}

/// What one source's jobs did.
#[derive(Default)]
struct SourceDone {
    moved: Vec<u16>,
    failed: Vec<SlotJob>,
    cancelled: Vec<u16>,
}

/// Move the pairs' slots with one `CLUSTER MIGRATESLOTS` per source.
pub(super) async fn move_pairs(
    ctx: &Ctx<'_>,
    pairs: &[Pair],
    progress: &Progress,
) -> Result<SlotMoved> {
    let started = Instant::now();
    let asked: usize = pairs.iter().map(|p| p.slots.len()).sum();
    let (pairs, already) = mover::not_yet_moved(pairs.to_vec())?;
    let pairs = &pairs[..];
    let mut by_source: BTreeMap<String, Vec<&Pair>> = BTreeMap::new();
    let mut by_target: BTreeMap<String, Vec<u16>> = BTreeMap::new();
    for p in pairs {
        by_source.entry(p.src.addr()).or_default().push(p);
        by_target
            .entry(p.dst.addr())
            .or_default()
            .extend(p.slots.iter().copied());
    }
    // Keys per slot before the move, for the report; and keys a target already holds
    // in slots it is to receive, all nodes asked at once.
    let asks: Vec<(String, Vec<u16>)> = by_source
        .iter()
        .map(|(src, ps)| {
            let slots = ps.iter().flat_map(|p| p.slots.iter().copied()).collect();
            (src.clone(), slots)
        })
        .chain(by_target)
        .collect();
    let counts = futures::future::join_all(
        asks.iter()
            .map(|(addr, slots)| ctx.nodes.key_counts(addr, slots)),
    )
    .await;
    let mut slot_keys: BTreeMap<u16, u64> = BTreeMap::new();
    for (i, ((addr, _), c)) in asks.iter().zip(counts).enumerate() {
        let c = c?;
        if i < by_source.len() {
            slot_keys.extend(c);
            continue;
        }
        // A failed or cancelled import deletes whatever its target holds in those
        // slots: keys there before the move (stray keys) would be lost with it.
        if let Some((slot, n)) = c.iter().find(|(_, n)| *n > 0) {
            return Err(ClusterError::State(format!(
                "{addr} holds {n} key(s) of slot {slot}, which it does not own, and an atomic move that failed or was cancelled would delete them: run slotsmith fix first"
            )));
        }
    }
    // Start every source's jobs; the ones it had before are not this call's.
    let started_jobs = futures::future::join_all(by_source.iter().map(|(src, ps)| async move {
        let before: BTreeSet<String> = jobs(ctx, src).await?.into_iter().map(|j| j.name).collect();
        let cmd: Vec<Vec<u8>> = mover::migrateslots_args(ps)
            .into_iter()
            .map(String::into_bytes)
            .collect();
        let shown = mover::migrateslots_text(ps);
        let r = ctx.nodes.pool().cmd(src, &cmd).await;
        ctx.nodes.log(
            src,
            shown,
            &r.as_ref()
                .err()
                .map(|e| vec![e.to_string()])
                .unwrap_or_default(),
        );
        r.map(|_| before)
    }))
    .await;
    let mut watching: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut refused: Option<ClusterError> = None;
    for ((src, _), r) in by_source.iter().zip(started_jobs) {
        match r {
            Ok(before) => {
                watching.insert(src.clone(), before);
            }
            Err(e) => {
                refused.get_or_insert(e);
            }
        }
    }
    // What each source was asked to send where, to tell this call's jobs from others.
    let sent_to: BTreeMap<String, Vec<(String, BTreeSet<u16>)>> = by_source
        .iter()
        .map(|(src, ps)| {
            let to = ps
                .iter()
                .map(|p| (p.dst.id.clone(), p.slots.iter().copied().collect()))
                .collect();
            (src.clone(), to)
        })
        .collect();
    // Poll until every job of this call has ended; cancel them on an interruption.
    let mut cancelled = false;
    let mut done: BTreeMap<String, SourceDone> = BTreeMap::new();
    // Per source, this call's jobs by name, as last seen.
    let mut seen: BTreeMap<String, BTreeMap<String, SlotJob>> = BTreeMap::new();
    let mut counted = 0u64;
    // Sources that stopped answering: since when; and why the run stopped watching one.
    let mut silent: BTreeMap<String, Instant> = BTreeMap::new();
    let mut lost: Vec<String> = Vec::new();
    loop {
        if ctx.stop.requested() && !cancelled {
            cancelled = true;
            for src in watching.keys() {
                // Journaled there; a source that does not answer is watched below.
                let _ = ctx.nodes.cancel_slot_migrations(src).await;
            }
        }
        let polled = futures::future::join_all(
            watching
                .iter()
                .map(|(src, before)| async move { (src.clone(), before, jobs(ctx, src).await) }),
        )
        .await;
        let mut all_ended = true;
        let mut gone: Vec<String> = Vec::new();
        for (src, before, r) in polled {
            let listed = match r {
                Ok(listed) => {
                    silent.remove(&src);
                    listed
                }
                Err(e) => {
                    // Not answering: a failover may be under way. Keep the jobs
                    // already seen to end; stop watching once the source's fate is known.
                    all_ended = false;
                    let since = *silent.entry(src.clone()).or_insert_with(Instant::now);
                    if let Some(why) = source_lost(ctx, pairs, &src, since, cancelled, &e).await {
                        lost.push(why);
                        gone.push(src);
                    }
                    continue;
                }
            };
            // This call's jobs: new since it started, to one of its targets, with only
            // slots it asked that target for (a job another client started meanwhile on
            // the same source is not this call's).
            let mine: Vec<SlotJob> = listed
                .into_iter()
                .filter(|j| {
                    j.operation == "EXPORT"
                        && !before.contains(&j.name)
                        && sent_to[&src].iter().any(|(target, slots)| {
                            *target == j.target && j.slot_list().iter().all(|s| slots.contains(s))
                        })
                })
                .collect();
            // Every job of this call the source has listed, as last seen: a source
            // that gave away its last slot may turn replica and list none of them
            // any more (Valkey), and a job that ended stays ended.
            let jobs_seen = seen.entry(src.clone()).or_default();
            let listed_now: Vec<String> = mine.iter().map(|j| j.name.clone()).collect();
            for j in mine {
                jobs_seen.insert(j.name.clone(), j);
            }
            let vanished: Vec<String> = jobs_seen
                .iter()
                .filter(|(name, j)| !j.ended() && !listed_now.contains(name))
                .map(|(name, _)| name.clone())
                .collect();
            if !vanished.is_empty() {
                // In flight when last seen, listed no more: the owners of its slots
                // tell how it ended.
                let nodes = read_nodes(ctx).await;
                for name in vanished {
                    if let Some(j) = jobs_seen.get_mut(&name) {
                        let moved = j.slot_list().into_iter().all(|s| target_owns(&nodes, j, s));
                        j.state = if moved { "success" } else { "failed" }.to_string();
                        if !moved {
                            j.message = format!(
                                "{src} no longer lists the job and its target does not own all its slots"
                            );
                        }
                    }
                }
            }
            let d = done.entry(src).or_default();
            *d = SourceDone::default();
            for j in jobs_seen.values() {
                if !j.ended() {
                    all_ended = false;
                    continue;
                }
                match j.state.as_str() {
                    "success" => d.moved.extend(j.slot_list()),
                    "cancelled" => d.cancelled.extend(j.slot_list()),
                    _ => d.failed.push(j.clone()),
                }
            }
        }
        for src in gone {
            watching.remove(&src);
            silent.remove(&src);
        }
        if watching.is_empty() {
            break;
        }
        let moved: u64 = done.values().map(|d| d.moved.len() as u64).sum();
        if moved > counted {
            progress.done(moved - counted, 0);
            counted = moved;
        }
        if all_ended {
            break;
        }
        tokio::time::sleep(POLL).await;
    }
    // A job that failed after the source resumed writes may have moved its slots
    // anyway: who owns them is read back from the nodes, and said loudly.
    let unpaused: Vec<&SlotJob> = done
        .values()
        .flat_map(|d| d.failed.iter())
        .filter(|j| j.unpaused())
        .collect();
    let failed = done.values().any(|d| !d.failed.is_empty());
    let nodes_now = if unpaused.is_empty() && !failed {
        Vec::new()
    } else {
        read_nodes(ctx).await
    };
    let mut out = SlotMoved::default();
    for s in &already {
        out.slot_keys.insert(*s, 0);
    }
    out.slots = already.len() as u64;
    let mut failures: Vec<String> = Vec::new();
    for (src, d) in &done {
        let mut moved = d.moved.clone();
        for j in &d.failed {
            if j.unpaused() {
                let warning = jobs::unpaused_warning(j, &nodes_now);
                crate::progress::say(&format!("[WARNING] {warning}"));
                moved.extend(
                    j.slot_list()
                        .into_iter()
                        .filter(|s| target_owns(&nodes_now, j, *s)),
                );
                failures.push(warning);
            } else {
                failures.push(jobs::failure_text(j, src, &nodes_now));
            }
        }
        for s in &moved {
            let k = slot_keys.get(s).copied().unwrap_or(0);
            out.slot_keys.insert(*s, k);
            out.keys += k;
        }
        out.slots += moved.len() as u64;
    }
    out.interrupted = cancelled && (out.slots as usize) < asked;
    out.seconds = started.elapsed().as_secs_f64();
    let cause = refused
        .or_else(|| lost.first().map(|l| ClusterError::State(l.clone())))
        .or_else(|| failures.first().map(|f| ClusterError::State(f.clone())));
    match cause {
        Some(cause) => Err(ClusterError::Stopped {
            cause: Box::new(cause),
            progress: out.progress(asked),
        }),
        None => Ok(out),
    }
}

/// Why the run stops watching a source that does not answer (`error`, silent since
/// `since`), or `None` to keep polling it: its replica took over (a failover: the
/// slots stay with that shard unless the job had finished), it stayed away for
/// [`SILENT_LIMIT`], or the run was interrupted. What the other nodes say decides.
async fn source_lost(
    ctx: &Ctx<'_>,
    pairs: &[Pair],
    src: &str,
    since: Instant,
    interrupted: bool,
    error: &ClusterError,
) -> Option<String> {
    let mine: Vec<&Pair> = pairs.iter().filter(|p| p.src.addr() == src).collect();
    let first = mine.first()?;
    let slots: Vec<u16> = mine.iter().flat_map(|p| p.slots.iter().copied()).collect();
    let in_flight = format!(
        "while its atomic migration of slots {} was in flight",
        format_ranges(&ranges_of(&slots))
    );
    let nodes = read_nodes(ctx).await;
    let fate = match jobs::source_fate(&nodes, &first.src.id, &slots) {
        Some(f) if f.contains("failover") => Some(f),
        _ if interrupted => Some(format!("did not answer after the interruption ({error})")),
        _ if since.elapsed() >= SILENT_LIMIT => Some(format!(
            "has not answered for {} s ({error})",
            SILENT_LIMIT.as_secs()
        )),
        _ => None,
    }?;
    Some(format!(
        "the source {src} {fate} {in_flight}: the slots stay with its shard unless the job had finished; run slotsmith check to see the jobs, then slotsmith fix"
    ))
}

/// Every node as the nodes say now; none when they cannot be read.
async fn read_nodes(ctx: &Ctx<'_>) -> Vec<NodeInfo> {
    ctx.nodes
        .views()
        .await
        .map(|v| crate::cluster::merged_nodes(&v))
        .unwrap_or_default()
}

/// Whether the job's target is a master that owns `slot` among `nodes`.
fn target_owns(nodes: &[NodeInfo], job: &SlotJob, slot: u16) -> bool {
    nodes
        .iter()
        .any(|n| n.id == job.target && n.is_master() && n.owns(slot))
}
