//! Before a move writes anything: the cluster serves (no master says
//! `cluster_state:fail`, or only nodes that have just joined and are learning), every
//! master knows the nodes of the move, and none of them is in an atomic slot
//! migration.

use std::time::{Duration, Instant};

use crate::cluster::{merged_nodes, Cluster, ClusterError, NodeInfo, NodeView, Result};

/// How long a move waits for every master to know the nodes it involves.
pub const GOSSIP_WAIT: Duration = Duration::from_secs(10);

/// Before the first write of a move: no node says `cluster_state:fail` (every MIGRATE
/// would be refused), and every reachable master knows every node in `ids` (a node
/// that has just joined is learnt by gossip a moment later, and until then SETSLOT
/// naming it fails with "I don't know about node": wait for it, up to `wait`).
/// Returns the views it read.
pub fn ready(c: &dyn Cluster, ids: &[&str], wait: Duration) -> Result<Vec<NodeView>> {
    let deadline = Instant::now() + wait;
    let mut told = false;
    loop {
        let views = c.views()?;
        let nodes = merged_nodes(&views);
        let mut waiting_for: Vec<String> = Vec::new();
        match not_serving(&c.seed(), &views) {
            Some(NotServing::Down(why)) => {
                return Err(ClusterError::Refused(format!(
                    "cannot move slots: {why} Bring the failing node back or let a replica take over, then run this again; nothing was written for this move"
                )))
            }
            Some(NotServing::Joining(who)) if Instant::now() < deadline => {
                waiting_for.extend(who.iter().map(|a| format!("{a} says cluster_state:fail")));
            }
            Some(NotServing::Joining(who)) => {
                return Err(ClusterError::Refused(format!(
                    "cannot move slots: {} still say(s) cluster_state:fail after {} s although every slot is served; nothing was written for this move",
                    who.join(", "),
                    wait.as_secs()
                )))
            }
            None => {}
        }
        let addr = |id: &str| {
            nodes
                .iter()
                .find(|n| n.id == id)
                .map_or(id.to_string(), NodeInfo::addr)
        };
        let mut unknown: Vec<String> = Vec::new();
        for v in &views {
            let Ok(state) = &v.state else { continue };
            let Some(me) = state.myself() else { continue };
            if !me.is_master() {
                continue;
            }
            for id in ids {
                let known = state
                    .nodes
                    .iter()
                    .any(|n| n.id == *id && !n.handshake() && !n.noaddr());
                if !known {
                    unknown.push(format!("{} does not know {}", v.addr, addr(id)));
                }
            }
        }
        unknown.extend(waiting_for);
        // The in-memory cluster of a dry run keeps the epochs it was read with: the
        // live run waits for gossip itself.
        if !c.dry_run() {
            unknown.extend(epoch_lags(&views, ids, ids));
        }
        if unknown.is_empty() {
            refuse_jobs_in_flight(c, &nodes, ids)?;
            return Ok(views);
        }
        if Instant::now() >= deadline {
            return Err(ClusterError::Refused(format!(
                "cannot move slots yet: {} (gossip has not reached it within {} s); nothing was written: run this again in a moment, or CLUSTER MEET the nodes",
                unknown.join(", "),
                wait.as_secs()
            )));
        }
        if !told && !c.dry_run() {
            crate::progress::note(&format!(
                "waiting for the cluster to agree on the nodes of the move ({})...",
                unknown.join(", ")
            ));
            told = true;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The masters of `learners` whose highest known epoch is still below the config
/// epoch of one of the masters of `teachers`, as `A has not learnt B's config epoch N
/// yet (it knows M)`.
///
/// A target given a slot it imports bumps its config epoch above the highest epoch it
/// knows (its `cluster_current_epoch` and every config epoch it has seen). One that
/// does not yet know a source's latest epoch (the source was just given slots itself,
/// or bumped it) would claim the slot with a lower one, and a claim of the source
/// still in flight would then take the slot back on the target: the target would name
/// the source, the source the target, and no node would serve the slot. Gossip
/// teaches it in a moment; a move waits for that before it writes.
pub fn epoch_lags(views: &[NodeView], learners: &[&str], teachers: &[&str]) -> Vec<String> {
    let teachers: Vec<&NodeInfo> = views
        .iter()
        .filter_map(|v| v.state.as_ref().ok()?.myself())
        .filter(|me| teachers.contains(&me.id.as_str()) && me.is_master())
        .collect();
    let mut lags = Vec::new();
    for v in views {
        let Ok(state) = &v.state else { continue };
        let Some(me) = state.myself() else { continue };
        if !me.is_master() || !learners.contains(&me.id.as_str()) {
            continue;
        }
        let known = state
            .nodes
            .iter()
            .map(|n| n.epoch)
            .chain(state.current_epoch)
            .max()
            .unwrap_or(0);
        for t in teachers.iter().filter(|t| t.id != me.id && t.epoch > known) {
            let lag = format!(
                "{} has not learnt {}'s config epoch {} yet (it knows {known})",
                v.addr,
                t.addr(),
                t.epoch
            );
            if !lags.contains(&lag) {
                lags.push(lag);
            }
        }
    }
    lags
}

/// Refuse a move while one of its masters sends or receives an atomic slot migration:
/// the server refuses legacy markers then (`Slot export in progress`) and a second
/// overlapping atomic move, and its keys in flight are the job's.
fn refuse_jobs_in_flight(c: &dyn Cluster, nodes: &[NodeInfo], ids: &[&str]) -> Result<()> {
    match jobs_refusal(c, nodes, ids, "move slots now")? {
        Some(said) => Err(ClusterError::Refused(said)),
        None => Ok(()),
    }
}

/// The one refusal sentence for moving beside atomic slot migrations in flight on the
/// masters `ids` (`cannot {what}: A is sending slots 0-99 to B (atomic slot
/// migration, state); nothing was written for this move: ...`), or `None` when none
/// has a job in flight. A node that cannot list its jobs is an error naming it
/// ([`crate::cluster::jobs::unlisted`]). Scripts refuse with the same words.
pub fn jobs_refusal(
    c: &dyn Cluster,
    nodes: &[NodeInfo],
    ids: &[&str],
    what: &str,
) -> Result<Option<String>> {
    let addrs: Vec<String> = nodes
        .iter()
        .filter(|n| ids.contains(&n.id.as_str()))
        .map(NodeInfo::addr)
        .collect();
    let mut busy: Vec<String> = Vec::new();
    for (addr, jobs) in addrs.iter().zip(c.slot_migrations_of(&addrs)) {
        for j in jobs?.iter().filter(|j| j.in_flight()) {
            let (verb, other, dir) = if j.operation == "EXPORT" {
                ("is sending", &j.target, "to")
            } else {
                ("is receiving", &j.source, "from")
            };
            let other = nodes
                .iter()
                .find(|n| &n.id == other)
                .map_or_else(|| other.clone(), NodeInfo::addr);
            let said = format!(
                "{addr} {verb} slots {} {dir} {other} (atomic slot migration, {})",
                crate::cluster::topology::format_ranges(&j.slots),
                j.state
            );
            if !busy.contains(&said) {
                busy.push(said);
            }
        }
    }
    if busy.is_empty() {
        return Ok(None);
    }
    Ok(Some(format!(
        "cannot {what}: {}; nothing was written for this move: wait until it ends, or run slotsmith fix, which waits for it (--wait SECONDS) or cancels it (--cancel-migrations)",
        busy.join("; ")
    )))
}

/// Why masters say `cluster_state:fail`.
pub enum NotServing {
    /// A master holding slots is failing, or slots have no owner: the sentence of
    /// `check` that says so. Nothing can move.
    Down(String),
    /// Every slot is served, yet these masters say fail: nodes that have just joined
    /// and have not learnt every owner yet.
    Joining(Vec<String>),
}

/// Whether some master says `cluster_state:fail` (replicas do not serve writes), and why.
pub fn not_serving(seed: &str, views: &[NodeView]) -> Option<NotServing> {
    let failing: Vec<String> = views
        .iter()
        .filter(|v| {
            v.state
                .as_ref()
                .is_ok_and(|s| s.says_fail() && s.myself().is_some_and(NodeInfo::is_master))
        })
        .map(|v| v.addr.clone())
        .collect();
    if failing.is_empty() {
        return None;
    }
    let report = crate::cluster::check::check(seed, views);
    let down = report.masters.iter().any(|m| m.failing && m.slots > 0);
    if !down && report.uncovered.is_empty() {
        return Some(NotServing::Joining(failing));
    }
    let why = report
        .errors
        .iter()
        .find(|e| e.contains("cluster_state:fail"))
        .cloned()
        .unwrap_or_else(|| format!("{} say(s) cluster_state:fail.", failing.join(", ")));
    Some(NotServing::Down(why))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::topology::parse_cluster_nodes;
    use crate::cluster::NodeState;

    fn view(addr: &str, text: &str) -> NodeView {
        NodeView {
            addr: addr.into(),
            state: Ok(NodeState {
                nodes: parse_cluster_nodes(text).expect("parses"),
                keys: 0,
                cluster_state: Some("ok".into()),
                current_epoch: None,
            }),
        }
    }

    #[test]
    fn a_target_that_has_not_learnt_the_sources_epoch_waits() {
        // B was just given slots (epoch 7); A still knows it at epoch 3.
        let a = view(
            "127.0.0.1:7001",
            "aaaa 127.0.0.1:7001@17001 myself,master - 0 0 5 connected 0-99\n\
             bbbb 127.0.0.1:7002@17002 master - 0 0 3 connected 100-199\n",
        );
        let b = view(
            "127.0.0.1:7002",
            "aaaa 127.0.0.1:7001@17001 master - 0 0 5 connected 0-99\n\
             bbbb 127.0.0.1:7002@17002 myself,master - 0 0 7 connected 100-199\n",
        );
        let ab = ["aaaa", "bbbb"];
        let lags = epoch_lags(&[a.clone(), b.clone()], &ab, &ab);
        assert_eq!(
            lags,
            ["127.0.0.1:7001 has not learnt 127.0.0.1:7002's config epoch 7 yet (it knows 5)"]
        );
        // Only the nodes of the move count.
        assert!(epoch_lags(&[a.clone(), b.clone()], &["bbbb"], &ab).is_empty());
        // A current epoch as high as the source's is enough: the bump goes above it.
        let mut current = a.clone();
        if let Ok(s) = current.state.as_mut() {
            s.current_epoch = Some(7);
        }
        assert!(epoch_lags(&[current, b.clone()], &ab, &ab).is_empty());
        // Once gossip has taught it, nothing to wait for.
        let taught = view(
            "127.0.0.1:7001",
            "aaaa 127.0.0.1:7001@17001 myself,master - 0 0 5 connected 0-99\n\
             bbbb 127.0.0.1:7002@17002 master - 0 0 7 connected 100-199\n",
        );
        assert!(epoch_lags(&[taught, b], &ab, &ab).is_empty());
    }
}
