//! Membership and roles in the model: MEET, REPLICATE, FORGET, RESET, FAILOVER and
//! slot assignment, applied to every node's copied view as the servers end up once
//! gossip has spread them, with the servers' refusals. A node outside the cluster is
//! taken into the model as it describes itself (asked through the base, which only
//! reads), and the views the model shows are those reached from the seed, as the
//! live cluster reads them. What the model cannot know (the values of CONFIG SET, a
//! node the base cannot ask) is recorded, not simulated.

use super::*;
use crate::cluster::admin::Admin;
use crate::cluster::conn::args;
use crate::cluster::topology::parse_cluster_nodes;
use crate::cluster::NodeState;

/// Make a node a master (`None`) or a replica of `master` in one view.
fn set_role(n: &mut NodeInfo, master: Option<&str>) {
    n.flags.retain(|f| f != "master" && f != "slave");
    let at = usize::from(n.is_myself());
    let role = if master.is_some() { "slave" } else { "master" };
    n.flags.insert(at.min(n.flags.len()), role.to_string());
    n.master_id = master.map(str::to_string);
}

/// Whether a view is the one of the node at `addr`.
fn is_at(v: &NodeView, addr: &str) -> bool {
    v.addr == addr
        || v.state
            .as_ref()
            .ok()
            .and_then(|s| s.myself())
            .is_some_and(|m| m.addr() == addr)
}

/// Which views the live cluster reaches from those of `start`, following the nodes
/// each names.
fn reach_from(views: &[NodeView], start: &[usize]) -> Vec<bool> {
    let mut seen = vec![false; views.len()];
    let mut todo = start.to_vec();
    while let Some(i) = todo.pop() {
        if i >= views.len() || seen[i] {
            continue;
        }
        seen[i] = true;
        let Ok(st) = &views[i].state else { continue };
        for n in &st.nodes {
            if n.is_myself() || n.noaddr() || n.handshake() || n.host.is_empty() {
                continue;
            }
            let a = n.addr();
            todo.extend((0..views.len()).filter(|j| !seen[*j] && is_at(&views[*j], &a)));
        }
    }
    seen
}

/// The views reached from the first (the seed's), as the live cluster discovers them:
/// a node nobody names any more (forgotten, or not met yet) is not among them.
pub(super) fn reached(views: Vec<NodeView>) -> Vec<NodeView> {
    // A seed that did not answer names nobody: then every view stays.
    if views.first().is_none_or(|v| v.state.is_err()) {
        return views;
    }
    let seen = reach_from(&views, &[0]);
    views
        .into_iter()
        .zip(seen)
        .filter_map(|(v, s)| s.then_some(v))
        .collect()
}

impl MemoryCluster {
    /// Make sure the model holds the view of the node at `addr`: one outside the
    /// cluster is asked through the base. False when it cannot be.
    fn adopt(&self, addr: &str) -> Result<bool> {
        self.load_views()?;
        let known = self
            .inner
            .borrow()
            .views
            .as_ref()
            .is_some_and(|views| views.iter().any(|v| is_at(v, addr)));
        if known {
            return Ok(true);
        }
        let Ok(state) = self.own_state(addr) else {
            return Ok(false);
        };
        self.with_views(|views| {
            views.push(NodeView {
                addr: addr.to_string(),
                state: Ok(state),
            });
            Ok(())
        })?;
        Ok(true)
    }

    /// `ADDSLOTS` or `ADDSLOTSRANGE` (as `command` says): the node takes `slots`, and
    /// every node that sees them unassigned learns it.
    pub(super) fn add_slots(&self, addr: &str, slots: &[u16], command: String) -> Result<()> {
        self.adopt(addr)?;
        self.with_views(|views| {
            let (nodes, id) = Self::own(views, addr)?;
            if let Some(s) = slots.iter().find(|s| owner_in(nodes, **s).is_some()) {
                return Err(err(
                    addr,
                    command.clone(),
                    format!("ERR Slot {s} is already busy"),
                ));
            }
            for v in views.iter_mut() {
                if let Ok(st) = v.state.as_mut() {
                    if !st.nodes.iter().any(|n| n.id == id) {
                        continue;
                    }
                    for s in slots {
                        if owner_in(&st.nodes, *s).is_none() {
                            set_owner(&mut st.nodes, *s, Some(&id));
                        }
                    }
                }
            }
            Ok(())
        })?;
        self.record(addr, command, None, 0, None);
        Ok(())
    }

    /// One membership or role command, applied to the model.
    pub(super) fn apply_admin(&self, addr: &str, cmd: &Admin) -> Result<()> {
        let command = cmd.describe();
        match cmd {
            Admin::Meet { host, port } => return self.meet(addr, &format!("{host}:{port}")),
            // Settings are not part of the model.
            Admin::ConfigSet { .. } => return self.call(addr, &cmd.words()).map(|_| ()),
            _ => {}
        }
        if !self.adopt(addr)? {
            self.record(addr, format!("{command} (not simulated)"), None, 0, None);
            return Ok(());
        }
        let keys = self.keys_on(addr);
        let fail = |reason: &str| err(addr, command.clone(), reason.to_string());
        self.with_views(|views| {
            let (nodes, me) = Self::own(views, addr)?;
            let mine = nodes
                .iter()
                .find(|n| n.id == me)
                .cloned()
                .ok_or_else(|| ClusterError::State(format!("{addr} does not describe itself")))?;
            match cmd {
                Admin::Replicate { master } => {
                    if *master == me {
                        return Err(fail("ERR Can't replicate myself"));
                    }
                    let Some(m) = nodes.iter().find(|n| n.id == *master) else {
                        return Err(fail(&format!("ERR Unknown node {master}")));
                    };
                    if !m.is_master() {
                        return Err(fail("ERR I can only replicate a master, not a replica."));
                    }
                    if mine.is_master() && (mine.slot_count() > 0 || keys > 0) {
                        return Err(fail("ERR To set a master the node must be empty and without assigned slots."));
                    }
                    for st in views.iter_mut().filter_map(|v| v.state.as_mut().ok()) {
                        for n in st.nodes.iter_mut().filter(|n| n.id == me) {
                            set_role(n, Some(master));
                        }
                    }
                }
                Admin::Forget { id } => {
                    if *id == me {
                        return Err(fail("ERR I tried hard but I can't forget myself..."));
                    }
                    if mine.master_id.as_deref() == Some(id.as_str()) {
                        return Err(fail("ERR Can't forget my master!"));
                    }
                    if !nodes.iter().any(|n| n.id == *id) {
                        return Err(fail(&format!("ERR Unknown node {id}")));
                    }
                    nodes.retain(|n| n.id != *id);
                }
                Admin::Reset { .. } => {
                    if mine.is_master() && keys > 0 {
                        return Err(fail(
                            "ERR CLUSTER RESET can't be called with master nodes containing keys",
                        ));
                    }
                    nodes.retain(|n| n.id == me);
                    for n in nodes.iter_mut() {
                        set_role(n, None);
                        n.slots.clear();
                        n.migrating.clear();
                        n.importing.clear();
                    }
                }
                Admin::Failover(_) => {
                    let Some(old) = mine.master_id.clone().filter(|_| mine.is_replica()) else {
                        return Err(fail("ERR You should send CLUSTER FAILOVER to a replica"));
                    };
                    for st in views.iter_mut().filter_map(|v| v.state.as_mut().ok()) {
                        let slots = st
                            .nodes
                            .iter()
                            .find(|n| n.id == old)
                            .map(|n| n.slots.clone())
                            .unwrap_or_default();
                        for n in st.nodes.iter_mut() {
                            if n.id == me {
                                set_role(n, None);
                                n.slots = slots.clone();
                            } else if n.id == old || n.master_id.as_deref() == Some(old.as_str())
                            {
                                set_role(n, Some(&me));
                                if n.id == old {
                                    n.slots.clear();
                                }
                            }
                        }
                    }
                }
                Admin::Meet { .. } | Admin::ConfigSet { .. } => {}
            }
            Ok(())
        })?;
        let shown = match cmd {
            Admin::Reset { hard: true } => format!("{command} (its new node id: not simulated)"),
            _ => command,
        };
        self.record(addr, shown, None, 0, None);
        Ok(())
    }

    /// A node's key count in the model (0 where unknown).
    fn keys_on(&self, addr: &str) -> u64 {
        let inner = self.inner.borrow();
        let base = inner
            .views
            .as_ref()
            .and_then(|views| views.iter().find(|v| is_at(v, addr)))
            .and_then(|v| v.state.as_ref().ok())
            .map_or(0, |s| s.keys);
        let delta = inner.delta.get(addr).copied().unwrap_or(0);
        (base as i64 + delta).max(0) as u64
    }

    /// `CLUSTER MEET` sent to `addr` for the node at `other`: once gossip has spread
    /// it, every node on either side knows every node of the other, as it describes
    /// itself. A node the
    /// base cannot ask is recorded, not simulated.
    fn meet(&self, addr: &str, other: &str) -> Result<()> {
        let (host, port) = crate::cluster::conn::split_addr(other)?;
        let command = Admin::Meet { host, port }.describe();
        if !self.adopt(addr)? || !self.adopt(other)? {
            self.record(addr, format!("{command} (not simulated)"), None, 0, None);
            return Ok(());
        }
        self.with_views(|views| {
            // Both sides, and everyone each side knows, learn each other.
            let ends: Vec<usize> = (0..views.len())
                .filter(|i| is_at(&views[*i], addr) || is_at(&views[*i], other))
                .collect();
            let group = reach_from(views, &ends);
            let known: Vec<NodeView> = views
                .iter()
                .zip(&group)
                .filter(|(_, g)| **g)
                .map(|(v, _)| v.clone())
                .collect();
            let all = super::super::merged_nodes(&known);
            let members = views.iter_mut().zip(&group).filter(|(_, g)| **g);
            for st in members.filter_map(|(v, _)| v.state.as_mut().ok()) {
                for n in &all {
                    if !st.nodes.iter().any(|m| m.id == n.id) {
                        st.nodes.push(n.clone());
                    }
                }
            }
            Ok(())
        })?;
        self.record(addr, command, None, 0, None);
        Ok(())
    }

    /// A node's own `CLUSTER NODES` and `DBSIZE`, asked through the base.
    fn own_state(&self, addr: &str) -> Result<NodeState> {
        let text = match self.base.call(addr, &args(["CLUSTER", "NODES"]))? {
            Reply::Bulk(b) => String::from_utf8_lossy(&b).to_string(),
            Reply::Status(s) => s,
            _ => return Err(ClusterError::State(format!("{addr}: no CLUSTER NODES"))),
        };
        let keys = match self.base.call(addr, &args(["DBSIZE"]))? {
            Reply::Int(n) => n.max(0) as u64,
            _ => 0,
        };
        let mut nodes =
            parse_cluster_nodes(&text).map_err(|e| ClusterError::State(format!("{addr}: {e}")))?;
        let (host, port) = crate::cluster::conn::split_addr(addr)?;
        for n in nodes.iter_mut().filter(|n| n.is_myself()) {
            if n.host.is_empty() || n.port == 0 {
                n.host = host.clone();
                n.port = port;
            }
        }
        Ok(NodeState {
            nodes,
            keys,
            cluster_state: None,
            current_epoch: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::admin::{self, FailoverMode};
    use crate::cluster::snapshot::{Snapshot, SnapshotNode};

    const A: &str = "127.0.0.1:7401";
    const B: &str = "127.0.0.1:7402";
    const C: &str = "127.0.0.1:7403";

    /// a: master of slots 0-8191; b: an empty master; c: a's replica.
    fn model() -> (MemoryCluster, [String; 3]) {
        let ids = ["a".repeat(40), "b".repeat(40), "c".repeat(40)];
        let [a, b, c] = &ids;
        let text = |me: &str| {
            let mine = |id: &str| if id == me { "myself," } else { "" };
            format!(
                "{a} {A}@17401 {}master - 0 0 1 connected 0-8191\n{b} {B}@17402 {}master - 0 0 2 connected\n{c} {C}@17403 {}slave {a} 0 0 1 connected\n",
                mine(a),
                mine(b),
                mine(c)
            )
        };
        let node = |addr: &str, me: &str| SnapshotNode {
            addr: addr.into(),
            cluster_nodes: Some(text(me)),
            error: None,
            keys: 0,
            slots: Default::default(),
        };
        let snap = Snapshot {
            version: 1,
            seed: A.into(),
            nodes: vec![node(A, a), node(B, b), node(C, c)],
        };
        (MemoryCluster::new(Rc::new(snap)), ids.clone())
    }

    const D: &str = "127.0.0.1:7404";

    /// [`model`] and a node d on its own, which none of them knows.
    fn model_with_spare() -> MemoryCluster {
        let (m, _) = model();
        let mut snap = Snapshot {
            version: 1,
            seed: A.into(),
            nodes: Vec::new(),
        };
        for v in m.base.views().unwrap() {
            let st = v.state.unwrap();
            let text: String = st.nodes.iter().map(line).collect();
            snap.nodes.push(SnapshotNode {
                addr: v.addr,
                cluster_nodes: Some(text),
                error: None,
                keys: 0,
                slots: Default::default(),
            });
        }
        snap.nodes.push(SnapshotNode {
            addr: D.into(),
            cluster_nodes: Some(format!(
                "{} {D}@17404 myself,master - 0 0 0 connected\n",
                "d".repeat(40)
            )),
            error: None,
            keys: 0,
            slots: Default::default(),
        });
        MemoryCluster::new(Rc::new(snap))
    }

    /// One `CLUSTER NODES` line of a node.
    fn line(n: &NodeInfo) -> String {
        let slots: Vec<String> = n.slots.iter().map(|(a, b)| format!("{a}-{b}")).collect();
        format!(
            "{} {}@1{} {} {} 0 0 1 connected {}\n",
            n.id,
            n.addr(),
            n.port,
            n.flags.join(","),
            n.master_id.as_deref().unwrap_or("-"),
            slots.join(" ")
        )
    }

    /// `addr`'s view of node `id`.
    fn seen(m: &MemoryCluster, addr: &str, id: &str) -> Option<NodeInfo> {
        let views = m.views().unwrap();
        let v = views.iter().find(|v| v.addr == addr)?;
        v.state
            .as_ref()
            .ok()?
            .nodes
            .iter()
            .find(|n| n.id == id)
            .cloned()
    }

    #[test]
    fn roles_slots_and_membership_change_in_every_view() {
        let (m, [a, b, c]) = model();
        m.addslots_range(B, 8192, 16383).unwrap();
        for addr in [A, B, C] {
            assert_eq!(
                seen(&m, addr, &b).unwrap().slots,
                vec![(8192, 16383)],
                "{addr}"
            );
        }
        let busy = m.addslots_range(C, 0, 1).unwrap_err().to_string();
        assert!(busy.contains("ERR Slot 0 is already busy"), "{busy}");
        let full = m
            .admin(B, &Admin::Replicate { master: a.clone() })
            .unwrap_err()
            .to_string();
        assert!(full.contains("must be empty"), "{full}");

        m.admin(C, &Admin::Failover(FailoverMode::Force)).unwrap();
        for addr in [A, B, C] {
            let new = seen(&m, addr, &c).unwrap();
            let old = seen(&m, addr, &a).unwrap();
            assert!(
                new.is_master() && new.slots == vec![(0, 8191)],
                "{addr}: {new:?}"
            );
            assert!(old.is_replica() && old.master_id.as_deref() == Some(c.as_str()));
            assert!(old.slots.is_empty());
        }
        let twice = m
            .admin(C, &Admin::Failover(FailoverMode::Default))
            .unwrap_err()
            .to_string();
        assert!(twice.contains("to a replica"), "{twice}");
        let master = m
            .admin(A, &Admin::Forget { id: c.clone() })
            .unwrap_err()
            .to_string();
        assert!(master.contains("Can't forget my master"), "{master}");

        // Everyone forgets b: its own view is no longer reached either.
        let done = m.forget_everywhere(&b).unwrap();
        assert_eq!(
            done,
            vec![
                admin::Forgot {
                    node: A.into(),
                    error: None
                },
                admin::Forgot {
                    node: C.into(),
                    error: None
                },
            ]
        );
        assert!(seen(&m, A, &b).is_none() && seen(&m, C, &b).is_none());
        assert!(m.views().unwrap().iter().all(|v| v.addr != B));

        m.admin(A, &Admin::Reset { hard: false }).unwrap();
        let own = seen(&m, A, &a).unwrap();
        assert!(own.is_master() && own.master_id.is_none());
        assert!(seen(&m, A, &c).is_none());

        let plan: Vec<String> = m.plan().into_iter().map(|p| p.command).collect();
        assert_eq!(
            plan,
            [
                "CLUSTER ADDSLOTSRANGE 8192 16383",
                "CLUSTER FAILOVER FORCE",
                format!("CLUSTER FORGET {b}").as_str(),
                format!("CLUSTER FORGET {b}").as_str(),
                "CLUSTER RESET SOFT",
            ]
        );
    }

    #[test]
    fn a_replica_follows_and_what_cannot_be_modeled_is_recorded() {
        let (m, [a, b, _]) = model();
        let to_replica = m
            .admin(A, &Admin::Replicate { master: b.clone() })
            .unwrap_err()
            .to_string();
        assert!(to_replica.contains("must be empty"), "{to_replica}");
        m.admin(B, &Admin::Replicate { master: a.clone() }).unwrap();
        let now = seen(&m, C, &b).unwrap();
        assert!(now.is_replica() && now.master_id.as_deref() == Some(a.as_str()));
        let own = seen(&m, B, &b).unwrap();
        assert_eq!(own.flags, ["myself", "slave"]);

        // A node the snapshot cannot describe, and a setting: recorded, not simulated.
        m.admin(
            A,
            &Admin::Meet {
                host: "127.0.0.1".into(),
                port: 7409,
            },
        )
        .unwrap();
        m.admin(
            B,
            &Admin::ConfigSet {
                name: "masterauth".into(),
                value: "s3cret".into(),
            },
        )
        .unwrap();
        let plan: Vec<String> = m.plan().into_iter().map(|p| p.command).collect();
        assert_eq!(
            plan,
            [
                format!("CLUSTER REPLICATE {a}").as_str(),
                "CLUSTER MEET 127.0.0.1 7409 (not simulated)",
                "CONFIG SET masterauth *** (not simulated)",
            ]
        );
    }

    #[test]
    fn a_node_on_its_own_takes_slots_then_joins_on_meet() {
        let m = model_with_spare();
        let (a, b, d) = ("a".repeat(40), "b".repeat(40), "d".repeat(40));
        let seen_by_a = |m: &MemoryCluster| m.views().unwrap().len();
        assert_eq!(seen_by_a(&m), 3, "nobody names the spare yet");
        m.addslots_range(D, 8192, 16383).unwrap();
        assert!(seen(&m, A, &b).unwrap().slots.is_empty());
        m.admin(
            A,
            &Admin::Meet {
                host: "127.0.0.1".into(),
                port: 7404,
            },
        )
        .unwrap();
        assert_eq!(seen_by_a(&m), 4);
        for addr in [A, B, C, D] {
            assert_eq!(seen(&m, addr, &d).unwrap().slots, vec![(8192, 16383)]);
            assert!(seen(&m, addr, &a).is_some(), "{addr}");
        }
        assert_eq!(admin::joined(&m.views().unwrap()), Ok(()));
        let plan: Vec<String> = m.plan().into_iter().map(|p| p.command).collect();
        assert_eq!(
            plan,
            [
                "CLUSTER ADDSLOTSRANGE 8192 16383",
                "CLUSTER MEET 127.0.0.1 7404"
            ]
        );
    }
}
