//! What the engine reads back while it moves: the pair's two masters right before
//! each batch, every node over and over beside the pairs, and what either says
//! against going on.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::{Ctx, Pair, Run};
use crate::cluster::mover::{self, LeftAlone};
use crate::cluster::{merged_nodes, ClusterError, NodeInfo, NodeView, Result};

/// Read every node's view, one round to the addresses known; a node that does not
/// answer is a view with its error.
async fn read_views(ctx: &Ctx<'_>, addrs: &[String]) -> Vec<NodeView> {
    futures::future::join_all(addrs.iter().map(|a| async move {
        NodeView {
            addr: a.clone(),
            state: ctx.nodes.node_state(a).await.map_err(|e| e.to_string()),
        }
    }))
    .await
}

/// What a view of the whole cluster says against going on: a cluster that stopped
/// serving, or a marker this run did not set (another tool moving slots).
fn against_going_on(ctx: &Ctx<'_>, views: &[NodeView], run: &Run) -> Result<()> {
    if let Some(mover::NotServing::Down(why)) = mover::not_serving(ctx.nodes.seed(), views) {
        return Err(ClusterError::Refused(format!(
            "the cluster stopped serving while slots moved: {why}"
        )));
    }
    let nodes = merged_nodes(views);
    // Ours: the slots of this call (its other pairs open and settle theirs while the
    // views are read) and any other slot this process has open.
    let ours: BTreeSet<u16> = ctx.stop.open_slots().into_iter().collect();
    for n in &nodes {
        let marks = n
            .migrating
            .iter()
            .map(|(s, to)| (s, "MIGRATING", "to", to))
            .chain(
                n.importing
                    .iter()
                    .map(|(s, from)| (s, "IMPORTING", "from", from)),
            );
        for (slot, what, dir, other) in marks {
            if !ours.contains(slot) && !run.asked.contains(slot) && !run.open_before.contains(slot)
            {
                let other = nodes
                    .iter()
                    .find(|o| &o.id == other)
                    .map_or(other.clone(), NodeInfo::addr);
                return Err(ClusterError::Refused(format!(
                    "another run is changing slots on this cluster: slot {slot} is {what} on {} ({dir} {other}), which this run did not set",
                    n.addr()
                )));
            }
        }
    }
    Ok(())
}

/// How long a batch waits for its target to learn the source's config epoch.
const EPOCH_WAIT: Duration = Duration::from_secs(10);

/// How often, at most, the watcher reads every node while slots move.
const WATCH_EVERY: Duration = Duration::from_millis(100);

/// Every node's view, read over and over while the pairs move (at most every
/// [`WATCH_EVERY`]), off the pairs' path: a source busy with its MIGRATEs answers
/// late, and no pair waits for it. What a read shows stops the run before any pair's
/// next batch; the latest read stands for the nodes other than a pair's two in that
/// pair's check of its next batch. Ends when `done` is notified.
pub(super) async fn watch(ctx: &Ctx<'_>, addrs: &[String], run: &Run, done: &tokio::sync::Notify) {
    let finished = done.notified();
    tokio::pin!(finished);
    loop {
        let started = Instant::now();
        tokio::select! {
            views = read_views(ctx, addrs) => {
                if let Err(e) = against_going_on(ctx, &views, run) {
                    run.stop(e);
                }
                *run.seen.lock().unwrap_or_else(|e| e.into_inner()) = std::sync::Arc::new(views);
            }
            () = &mut finished => return,
        }
        tokio::select! {
            () = tokio::time::sleep(WATCH_EVERY.saturating_sub(started.elapsed())) => {}
            () = &mut finished => return,
        }
    }
}

/// Right before a batch's first write: every node's view read now, but for the
/// nodes busy with this run's MIGRATEs (another pair's source answers only when its
/// MIGRATEs are done), which `others`, the watcher's latest read, stands for. A busy
/// node is a master this run is moving slots away from; every other node, a replica
/// that a failover may have just promoted included, is read fresh. Returns the
/// batch's slots that are still as they were planned (the others are left alone and
/// named), or why the whole call must stop: a marker this run did not set, a
/// failover of the pair's nodes, a cluster that no longer serves.
pub(super) async fn recheck(
    ctx: &Ctx<'_>,
    pair: &Pair,
    batch: &[u16],
    run: &Run,
    addrs: &[String],
    others: &[NodeView],
) -> Result<Vec<u16>> {
    let ends = [pair.src.addr(), pair.dst.addr()];
    let busy = run.busy_nodes();
    let mut fresh: Vec<String> = ends.to_vec();
    fresh.extend(
        addrs
            .iter()
            .filter(|a| !ends.contains(a) && !busy.contains(*a))
            .cloned(),
    );
    let mut views = read_views(ctx, &fresh).await;
    if views
        .iter()
        .filter(|v| ends.contains(&v.addr))
        .all(|v| v.state.is_ok())
    {
        views.extend(others.iter().filter(|v| !fresh.contains(&v.addr)).cloned());
    } else {
        // An end that does not answer: what the others say of it now decides
        // (a failover under way, a node down).
        views = ctx.nodes.views().await?;
    }
    // The target must know the source's latest config epoch before it is given the
    // batch ([`mover::epoch_lags`]): the source may have been a target a moment ago.
    let deadline = Instant::now() + EPOCH_WAIT;
    loop {
        let lags = mover::epoch_lags(&views, &[&pair.dst.id], &[&pair.src.id]);
        if lags.is_empty() {
            break;
        }
        if ctx.stop.requested() {
            // Interrupted while waiting: nothing of this batch moves.
            return Ok(Vec::new());
        }
        if Instant::now() >= deadline {
            return Err(ClusterError::Refused(format!(
                "cannot go on moving slots from {} to {}: {} (gossip has not reached it within {} s); nothing was written for the slots not moved yet",
                ends[0],
                ends[1],
                lags.join(", "),
                EPOCH_WAIT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
        // The two ends read again; each replaces every view of the same node (the
        // seed may be listed under the address it was given as well), and one that
        // does not answer this time keeps its last view.
        for fresh in read_views(ctx, &ends).await {
            let Some(id) = fresh
                .state
                .as_ref()
                .ok()
                .and_then(|s| s.myself())
                .map(|me| me.id.clone())
            else {
                continue;
            };
            for v in views.iter_mut() {
                let same = v.addr == fresh.addr
                    || v.state
                        .as_ref()
                        .ok()
                        .and_then(|s| s.myself())
                        .is_some_and(|me| me.id == id);
                if same {
                    *v = fresh.clone();
                }
            }
        }
    }
    against_going_on(ctx, &views, run)?;
    let nodes = merged_nodes(&views);
    for (end, planned) in [("source", &pair.src), ("target", &pair.dst)] {
        let now = nodes.iter().find(|n| n.id == planned.id);
        if !now.is_some_and(NodeInfo::is_master) {
            // Who serves the shard now, from every node as it is now (the
            // watcher's views of the busy nodes may predate the failover).
            let fresh = match ctx.nodes.views().await {
                Ok(v) => merged_nodes(&v),
                Err(_) => nodes.clone(),
            };
            let what = match mover::serving_master(&fresh, &planned.id) {
                Some(m) => format!("is now a replica of {} (a failover happened)", m.addr()),
                None => "is no longer a master of the cluster".to_string(),
            };
            return Err(ClusterError::Refused(format!(
                "the {end} {} {what}",
                planned.addr()
            )));
        }
    }
    let (Some(src), Some(dst)) = (
        nodes.iter().find(|n| n.id == pair.src.id),
        nodes.iter().find(|n| n.id == pair.dst.id),
    ) else {
        return Ok(Vec::new());
    };
    let mut keep = Vec::with_capacity(batch.len());
    for &slot in batch {
        let state = |src: &NodeInfo, dst: &NodeInfo| {
            (
                src.owns(slot),
                src.migrating.get(&slot).cloned(),
                dst.owns(slot),
                dst.importing.get(&slot).cloned(),
            )
        };
        let why = if state(src, dst) != state(&pair.src, &pair.dst) {
            Some(describe_slot(&nodes, slot))
        } else {
            mover::check_move(&nodes, slot, src, dst)
                .err()
                .map(|e| e.to_string())
        };
        match why {
            None => keep.push(slot),
            Some(why) => run
                .left_alone
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(LeftAlone {
                    slot,
                    why: format!("changed since it was planned: {why}"),
                    big_key: false,
                }),
        }
    }
    Ok(keep)
}

/// Who owns a slot now and which markers it has, for the operator.
fn describe_slot(nodes: &[NodeInfo], slot: u16) -> String {
    let addr = |id: &String| {
        nodes
            .iter()
            .find(|n| &n.id == id)
            .map_or(id.clone(), NodeInfo::addr)
    };
    let owners: Vec<String> = nodes
        .iter()
        .filter(|n| n.is_master() && n.owns(slot))
        .map(NodeInfo::addr)
        .collect();
    let mut parts = vec![if owners.is_empty() {
        "no owner".to_string()
    } else {
        format!("owned by {}", owners.join(" and "))
    }];
    for n in nodes {
        if let Some(to) = n.migrating.get(&slot) {
            parts.push(format!("MIGRATING on {} to {}", n.addr(), addr(to)));
        }
        if let Some(from) = n.importing.get(&slot) {
            parts.push(format!("IMPORTING on {} from {}", n.addr(), addr(from)));
        }
    }
    parts.join(", ")
}
