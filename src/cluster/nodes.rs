//! Every node of one cluster over the network: the connections, the runtime they run
//! on and the run's journal, and the reads of each node's own state, asynchronous.
//! What the live cluster and its bulk mover share; the bulk mover needs nothing else
//! of the live cluster.

use std::sync::Arc;
use std::time::Duration;

use futures::future::join_all;

use super::commands;
use super::conn::{args, Pool};
use super::jobs::SlotJob;
use super::topology::parse_cluster_nodes;
use super::{ClusterError, Key, NodeState, NodeView, Reply, Result};
use crate::journal::Journal;

/// Commands per pipeline of the reads that ask about thousands of slots.
const PIPELINE_CHUNK: usize = 4096;

/// The nodes of a cluster reached through a seed node.
#[derive(Clone)]
pub struct Nodes {
    seed: String,
    pool: Pool,
    rt: tokio::runtime::Handle,
    journal: Option<Arc<Journal>>,
    /// The nodes but the seed that answered the last read of every view.
    answered: Arc<std::sync::Mutex<Vec<String>>>,
}

impl Nodes {
    pub fn new(seed: &str, pool: Pool, rt: tokio::runtime::Handle) -> Self {
        Nodes {
            seed: seed.to_string(),
            pool,
            rt,
            journal: None,
            answered: Arc::default(),
        }
    }

    /// Record every write in `journal`.
    pub fn with_journal(mut self, journal: Arc<Journal>) -> Self {
        self.journal = Some(journal);
        self
    }

    /// The address slotsmith was pointed at.
    pub fn seed(&self) -> &str {
        &self.seed
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub fn handle(&self) -> &tokio::runtime::Handle {
        &self.rt
    }

    pub fn journal(&self) -> Option<&Journal> {
        self.journal.as_deref()
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Journal one write and pass its result on.
    pub fn logged<T>(&self, node: &str, command: &str, r: Result<T>) -> Result<T> {
        if let Some(j) = &self.journal {
            j.record(
                node,
                command,
                r.as_ref().map(|_| ()).map_err(|e| e.to_string()),
            );
        }
        r
    }

    /// Journal one line for a pipeline of writes: each failure, or success.
    pub fn log(&self, node: &str, command: String, failures: &[String]) {
        if let Some(j) = &self.journal {
            let reply = match failures {
                [] => Ok(()),
                [one] => Err(one.clone()),
                [first, ..] => Err(format!("{} failed, the first: {first}", failures.len())),
            };
            j.record(node, &command, reply);
        }
    }

    /// How many keys one node holds in each of `slots`, where it holds any: one
    /// pipelined `COUNTKEYSINSLOT` per slot.
    pub async fn key_counts(&self, addr: &str, slots: &[u16]) -> Result<Vec<(u16, u64)>> {
        let timeout = self.pool.options().timeout * 4;
        // Every chunk in flight at once on the node's one connection (a count is a
        // small, fast reply): the node is not kept waiting for each chunk's round trip.
        let chunks = join_all(slots.chunks(PIPELINE_CHUNK).map(|chunk| async move {
            let cmds: Vec<Vec<Vec<u8>>> = chunk
                .iter()
                .map(|s| commands::countkeysinslot(*s))
                .collect();
            let replies = self.pool.pipeline(addr, &cmds, timeout).await?;
            let mut out = Vec::new();
            for (s, r) in chunk.iter().zip(replies) {
                match r? {
                    Reply::Int(n) if n > 0 => out.push((*s, n as u64)),
                    _ => {}
                }
            }
            Ok::<_, ClusterError>(out)
        }))
        .await;
        let mut out = Vec::new();
        for c in chunks {
            out.extend(c?);
        }
        Ok(out)
    }

    /// `CLUSTER GETKEYSINSLOT slot count` of many slots of one node, pipelined: each
    /// slot's keys, or the first error.
    pub async fn keys_in_slots(&self, addr: &str, asks: &[(u16, u64)]) -> Result<Vec<Vec<Key>>> {
        // One chunk after the other: each listing may be big, and has its own timeout.
        let mut out = Vec::with_capacity(asks.len());
        let timeout = self.pool.options().timeout * 4;
        for chunk in asks.chunks(PIPELINE_CHUNK) {
            let cmds: Vec<Vec<Vec<u8>>> = chunk
                .iter()
                .map(|(s, n)| commands::getkeysinslot(*s, *n))
                .collect();
            for r in self.pool.pipeline(addr, &cmds, timeout).await? {
                out.push(keys_of(addr, r?)?);
            }
        }
        Ok(out)
    }

    /// One node's own `CLUSTER NODES`, `DBSIZE` and `cluster_state`, in one round trip.
    pub async fn node_state(&self, addr: &str) -> Result<NodeState> {
        let replies = self
            .pool
            .pipeline(
                addr,
                &[
                    args(["CLUSTER", "NODES"]),
                    args(["DBSIZE"]),
                    args(["CLUSTER", "INFO"]),
                ],
                self.pool.options().timeout,
            )
            .await?;
        let mut it = replies.into_iter();
        let text = match it.next() {
            Some(Ok(Reply::Bulk(b))) => String::from_utf8_lossy(&b).to_string(),
            Some(Ok(Reply::Status(s))) => s,
            Some(Err(e)) => return Err(e),
            _ => return Err(protocol(addr, "CLUSTER NODES", "unexpected reply")),
        };
        let keys = match it.next() {
            Some(Ok(Reply::Int(n))) => n.max(0) as u64,
            Some(Err(e)) => return Err(e),
            _ => return Err(protocol(addr, "DBSIZE", "unexpected reply")),
        };
        let info = match it.next() {
            Some(Ok(Reply::Bulk(b))) => String::from_utf8_lossy(&b).to_string(),
            Some(Ok(Reply::Status(s))) => s,
            _ => String::new(),
        };
        let cluster_state = info_field(&info, "cluster_state");
        let current_epoch = info_field(&info, "cluster_current_epoch").and_then(|e| e.parse().ok());
        let mut nodes = parse_cluster_nodes(&text)
            .map_err(|e| protocol(addr, "CLUSTER NODES", &e.to_string()))?;
        // A node that has not met anyone yet does not know its own IP.
        if let Ok((host, port)) = super::conn::split_addr(addr) {
            for n in nodes
                .iter_mut()
                .filter(|n| n.is_myself() && n.host.is_empty())
            {
                n.host = host.clone();
                if n.port == 0 {
                    n.port = port;
                }
            }
        }
        Ok(NodeState {
            nodes,
            keys,
            cluster_state,
            current_epoch,
        })
    }

    /// Every node's own view: the seed first, then each node the views name,
    /// concurrently, until no new node turns up.
    ///
    /// The nodes that answered the last read are asked beside the seed, in the same
    /// round trip; each answer is used only if the views name that node again, in
    /// the order they name it, so the result is the one the rounds would give.
    pub async fn views(&self) -> Result<Vec<NodeView>> {
        let ahead: Vec<String> = self
            .answered
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut early: std::collections::HashMap<String, tokio::task::JoinHandle<_>> = ahead
            .into_iter()
            .map(|a| {
                let me = self.clone();
                let addr = a.clone();
                (a, tokio::spawn(async move { me.node_state(&addr).await }))
            })
            .collect();
        let seed_state = match self.node_state(&self.seed).await {
            Ok(s) => s,
            Err(e) => {
                early.values().for_each(|h| h.abort());
                return Err(e);
            }
        };
        let mut views = vec![NodeView {
            addr: self.seed.clone(),
            state: Ok(seed_state),
        }];
        loop {
            let known: Vec<String> = views.iter().map(|v| v.addr.clone()).collect();
            let mut todo: Vec<String> = Vec::new();
            for v in &views {
                if let Ok(state) = &v.state {
                    for n in &state.nodes {
                        if n.is_myself() || n.noaddr() || n.handshake() || n.host.is_empty() {
                            continue;
                        }
                        let a = n.addr();
                        if !known.contains(&a)
                            && !todo.contains(&a)
                            && !self.is_seed_alias(&a, &views)
                        {
                            todo.push(a);
                        }
                    }
                }
            }
            if todo.is_empty() {
                break;
            }
            // A node the others flag as failed gets a short wait: the cluster has
            // already decided it is down, and a stopped node never answers.
            let flagged = |addr: &str| {
                views.iter().any(|v| {
                    v.state.as_ref().is_ok_and(|s| {
                        s.nodes
                            .iter()
                            .any(|n| n.addr() == addr && n.has_flag("fail"))
                    })
                })
            };
            let states = join_all(todo.iter().map(|a| {
                let already = early.remove(a);
                let wait = if flagged(a) {
                    FAILED_NODE_WAIT
                } else {
                    // node_state's own timeouts apply.
                    Duration::from_secs(3600)
                };
                async move {
                    let timed_out = || ClusterError::Timeout {
                        addr: a.clone(),
                        command: "CLUSTER NODES (a node flagged fail)".into(),
                        ms: wait.as_millis() as u64,
                    };
                    // An answer asked for ahead is waited for from this round on, as
                    // long as a node found now would be.
                    if let Some(mut h) = already {
                        return match tokio::time::timeout(wait, &mut h).await {
                            Ok(Ok(r)) => r,
                            Ok(Err(e)) => Err(ClusterError::State(format!("reading {a}: {e}"))),
                            Err(_) => {
                                h.abort();
                                Err(timed_out())
                            }
                        };
                    }
                    match tokio::time::timeout(wait, self.node_state(a)).await {
                        Ok(r) => r,
                        Err(_) => Err(timed_out()),
                    }
                }
            }))
            .await;
            for (addr, st) in todo.into_iter().zip(states) {
                views.push(NodeView {
                    addr,
                    state: st.map_err(|e| e.to_string()),
                });
            }
        }
        // Nodes no view names any more are not waited for.
        early.values().for_each(|h| h.abort());
        *self.answered.lock().unwrap_or_else(|e| e.into_inner()) = views[1..]
            .iter()
            .filter(|v| v.state.is_ok())
            .map(|v| v.addr.clone())
            .collect();
        Ok(views)
    }

    /// The seed may be named `localhost:7001` while the others call it `127.0.0.1:7001`.
    fn is_seed_alias(&self, addr: &str, views: &[NodeView]) -> bool {
        let seed_id = views
            .first()
            .and_then(|v| v.state.as_ref().ok())
            .and_then(|s| s.myself())
            .map(|m| m.id.clone());
        views.iter().any(|v| {
            v.state.as_ref().ok().is_some_and(|s| {
                s.nodes
                    .iter()
                    .any(|n| n.addr() == addr && Some(&n.id) == seed_id.as_ref())
            })
        })
    }

    /// `CLUSTER CANCELSLOTMIGRATIONS` on one node, journaled: false when it had no job
    /// in flight (`No migrations ongoing`: they had already ended).
    pub async fn cancel_slot_migrations(&self, addr: &str) -> Result<bool> {
        let words = args(["CLUSTER", "CANCELSLOTMIGRATIONS"]);
        let r = match self.pool.cmd(addr, &words).await {
            Ok(_) => Ok(true),
            Err(ClusterError::Command { reason, .. })
                if reason.contains("No migrations ongoing") =>
            {
                Ok(false)
            }
            Err(e) => Err(e),
        };
        self.logged(addr, "CLUSTER CANCELSLOTMIGRATIONS", r)
    }

    /// One node's atomic slot migration jobs (none on a server without them).
    pub async fn slot_migrations(&self, addr: &str) -> Result<Vec<SlotJob>> {
        match self
            .pool
            .cmd(addr, &args(["CLUSTER", "GETSLOTMIGRATIONS"]))
            .await
        {
            Ok(r) => Ok(super::jobs::jobs_of(r)),
            Err(ClusterError::Command { reason, .. }) if super::jobs::unsupported(&reason) => {
                Ok(Vec::new())
            }
            Err(e) => Err(e),
        }
    }
}

/// How long reading the topology waits for a node the others flag as failed.
const FAILED_NODE_WAIT: Duration = Duration::from_millis(500);

/// One `name:value` field of an `INFO`-style reply.
pub fn info_field(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let (k, v) = l.trim_end().split_once(':')?;
        (k == name).then(|| v.to_string())
    })
}

pub(super) fn protocol(addr: &str, command: &str, reason: &str) -> ClusterError {
    ClusterError::Command {
        addr: addr.to_string(),
        command: command.to_string(),
        reason: reason.to_string(),
    }
}

/// The keys of a `CLUSTER GETKEYSINSLOT` reply.
pub fn keys_of(addr: &str, reply: Reply) -> Result<Vec<Key>> {
    match reply {
        Reply::Array(items) => Ok(items
            .into_iter()
            .filter_map(|i| match i {
                Reply::Bulk(b) => Some(b),
                Reply::Status(s) => Some(s.into_bytes()),
                _ => None,
            })
            .collect()),
        _ => Err(protocol(addr, "CLUSTER GETKEYSINSLOT", "unexpected reply")),
    }
}
