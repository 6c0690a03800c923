//! The live cluster: real nodes over the network. Async inside (one connection per
//! node, every node asked at once), synchronous at the surface through the tokio
//! runtime handle, because Rhai functions are synchronous.

use std::time::Duration;

use futures::future::join_all;

use super::conn::{args, ConnOptions, Pool};
use super::jobs::SlotJob;
use super::lease::{self, Lease, OtherRun};
use super::topology::parse_cluster_nodes;
use super::{Cluster, ClusterError, Key, MigrateOpts, NodeState, NodeView, Reply, Result, SetSlot};

/// A cluster reached through a seed node.
#[derive(Clone)]
pub struct LiveCluster {
    seed: String,
    pool: Pool,
    rt: tokio::runtime::Handle,
    journal: Option<std::sync::Arc<crate::journal::Journal>>,
    /// Held from the first write that changes slots (see [`super::lease`]).
    lease: Option<std::sync::Arc<Lease>>,
}

impl LiveCluster {
    pub fn new(seed: &str, opts: ConnOptions, rt: tokio::runtime::Handle) -> Self {
        LiveCluster {
            seed: seed.to_string(),
            pool: Pool::new(opts),
            rt,
            journal: None,
            lease: None,
        }
    }

    /// Before the first write that changes slots, announce this run on every master
    /// and stop if another run is changing slots (see [`super::lease`]).
    pub fn with_lease(mut self, script: &str) -> Self {
        self.lease = Some(std::sync::Arc::new(Lease::new(script)));
        self
    }

    /// Name this run on every reachable master (when `announce`), then read their
    /// client lists: the other runs changing slots now.
    async fn look(&self, announce: Option<&str>) -> Result<Vec<OtherRun>> {
        let views = self.views_async().await?;
        let masters: Vec<String> = super::merged_nodes(&views)
            .iter()
            .filter(|n| n.is_master() && !n.failing() && !n.noaddr())
            .map(|n| n.addr())
            .collect();
        let asks = masters.iter().map(|addr| async move {
            let mut cmds = Vec::new();
            if let Some(name) = announce {
                cmds.push(args(["CLIENT", "SETNAME", name]));
            }
            cmds.push(args(["CLIENT", "ID"]));
            cmds.push(args(["CLIENT", "LIST", "TYPE", "normal"]));
            let replies = self
                .pool
                .pipeline(addr, &cmds, self.pool.options().timeout)
                .await?;
            let mut it = replies.into_iter().skip(usize::from(announce.is_some()));
            let own = match it.next() {
                Some(Ok(Reply::Int(id))) => Some(id as u64),
                _ => None,
            };
            let list = match it.next() {
                Some(Ok(Reply::Bulk(b))) => String::from_utf8_lossy(&b).to_string(),
                Some(Ok(Reply::Status(s))) => s,
                _ => String::new(),
            };
            Ok::<_, ClusterError>(lease::others_on(
                addr,
                &lease::parse_client_list(&list),
                own,
            ))
        });
        // A master that cannot be asked (down, or an ACL without CLIENT) is not looked
        // at: the moves themselves refuse what they cannot do.
        Ok(join_all(asks)
            .await
            .into_iter()
            .filter_map(std::result::Result::ok)
            .flatten()
            .collect())
    }

    /// Take the lease before the first write that changes slots; refuse when another
    /// run is changing slots.
    fn ensure_lease(&self) -> Result<()> {
        let Some(lease) = &self.lease else {
            return Ok(());
        };
        if lease.held() {
            return Ok(());
        }
        let others = self.block_on(self.look(Some(lease.name())))?;
        lease.set_held(true);
        if !others.is_empty() {
            self.release();
            return Err(ClusterError::Refused(lease::refusal(&others)));
        }
        Ok(())
    }

    /// Give the lease back (the REPL, after each line that wrote): other runs may
    /// change slots again.
    pub fn release(&self) {
        let Some(lease) = &self.lease else {
            return;
        };
        if !lease.held() {
            return;
        }
        lease.set_held(false);
        let addrs = self.pool.connected();
        let unname = args(["CLIENT", "SETNAME", ""]);
        let _ = self.block_on(join_all(addrs.iter().map(|a| self.pool.cmd(a, &unname))));
    }

    /// Record every write in `journal`.
    pub fn with_journal(mut self, journal: std::sync::Arc<crate::journal::Journal>) -> Self {
        self.journal = Some(journal);
        self
    }

    pub fn journal(&self) -> Option<&crate::journal::Journal> {
        self.journal.as_deref()
    }

    /// Journal one write and pass its result on.
    fn logged<T>(&self, node: &str, command: &str, r: Result<T>) -> Result<T> {
        if let Some(j) = &self.journal {
            j.record(
                node,
                command,
                r.as_ref().map(|_| ()).map_err(|e| e.to_string()),
            );
        }
        r
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    pub fn handle(&self) -> &tokio::runtime::Handle {
        &self.rt
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// One node's own `CLUSTER NODES`, `DBSIZE` and `cluster_state`, in one round trip.
    /// How many keys one node holds in each of `slots`, where it holds any: one
    /// pipelined `COUNTKEYSINSLOT` per slot.
    pub async fn key_counts_async(&self, addr: &str, slots: &[u16]) -> Result<Vec<(u16, u64)>> {
        let mut out = Vec::new();
        let timeout = self.pool.options().timeout * 4;
        for chunk in slots.chunks(4096) {
            let cmds: Vec<Vec<Vec<u8>>> = chunk
                .iter()
                .map(|s| {
                    vec![
                        b"CLUSTER".to_vec(),
                        b"COUNTKEYSINSLOT".to_vec(),
                        slot_words(*s),
                    ]
                })
                .collect();
            let replies = self.pool.pipeline(addr, &cmds, timeout).await?;
            for (s, r) in chunk.iter().zip(replies) {
                match r? {
                    Reply::Int(n) if n > 0 => out.push((*s, n as u64)),
                    _ => {}
                }
            }
        }
        Ok(out)
    }

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
        let cluster_state = match it.next() {
            Some(Ok(Reply::Bulk(b))) => info_field(&String::from_utf8_lossy(&b), "cluster_state"),
            Some(Ok(Reply::Status(s))) => info_field(&s, "cluster_state"),
            _ => None,
        };
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
        })
    }

    /// Every node's own view: the seed first, then each node the views name,
    /// concurrently, until no new node turns up.
    pub async fn views_async(&self) -> Result<Vec<NodeView>> {
        let seed_state = self.node_state(&self.seed).await?;
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
                let wait = if flagged(a) {
                    FAILED_NODE_WAIT
                } else {
                    // node_state's own timeouts apply.
                    Duration::from_secs(3600)
                };
                async move {
                    match tokio::time::timeout(wait, self.node_state(a)).await {
                        Ok(r) => r,
                        Err(_) => Err(ClusterError::Timeout {
                            addr: a.clone(),
                            command: "CLUSTER NODES (a node flagged fail)".into(),
                            ms: wait.as_millis() as u64,
                        }),
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

    /// One node's atomic slot migration jobs (none on a server without them).
    /// `CLUSTER CANCELSLOTMIGRATIONS` on one node, journaled: false when it had no job
    /// in flight (`No migrations ongoing`: they had already ended).
    pub async fn cancel_slot_migrations_async(&self, addr: &str) -> Result<bool> {
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

    pub async fn slot_migrations_async(&self, addr: &str) -> Result<Vec<SlotJob>> {
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

    async fn ok(&self, addr: &str, words: Vec<Vec<u8>>) -> Result<()> {
        self.pool.cmd(addr, &words).await.map(|_| ())
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

fn protocol(addr: &str, command: &str, reason: &str) -> ClusterError {
    ClusterError::Command {
        addr: addr.to_string(),
        command: command.to_string(),
        reason: reason.to_string(),
    }
}

/// The `MIGRATE` argument list for moving `keys` from a node to `dst`.
pub fn migrate_args(
    dst: &str,
    keys: &[Key],
    opts: MigrateOpts,
    conn: &ConnOptions,
) -> Result<Vec<Vec<u8>>> {
    let (host, port) = super::conn::split_addr(dst)?;
    let mut a = args([
        "MIGRATE".to_string(),
        host,
        port.to_string(),
        String::new(),
        "0".into(),
        opts.timeout_ms.to_string(),
    ]);
    if opts.copy {
        a.push(b"COPY".to_vec());
    }
    if opts.replace {
        a.push(b"REPLACE".to_vec());
    }
    match (&conn.user, &conn.password) {
        (Some(user), Some(pw)) => a.extend(args(["AUTH2", user.as_str(), pw.as_str()])),
        (None, Some(pw)) => a.extend(args(["AUTH", pw.as_str()])),
        _ => {}
    }
    a.push(b"KEYS".to_vec());
    a.extend(keys.iter().cloned());
    Ok(a)
}

fn slot_words(slot: u16) -> Vec<u8> {
    slot.to_string().into_bytes()
}

impl Cluster for LiveCluster {
    fn seed(&self) -> String {
        self.seed.clone()
    }

    fn views(&self) -> Result<Vec<NodeView>> {
        self.block_on(self.views_async())
    }

    fn countkeysinslot(&self, addr: &str, slot: u16) -> Result<u64> {
        let r = self.block_on(self.pool.cmd(
            addr,
            &[
                b"CLUSTER".to_vec(),
                b"COUNTKEYSINSLOT".to_vec(),
                slot_words(slot),
            ],
        ))?;
        match r {
            Reply::Int(n) => Ok(n.max(0) as u64),
            _ => Err(protocol(
                addr,
                "CLUSTER COUNTKEYSINSLOT",
                "unexpected reply",
            )),
        }
    }

    fn getkeysinslot(&self, addr: &str, slot: u16, count: u64) -> Result<Vec<Key>> {
        let r = self.block_on(self.pool.cmd(
            addr,
            &[
                b"CLUSTER".to_vec(),
                b"GETKEYSINSLOT".to_vec(),
                slot_words(slot),
                count.to_string().into_bytes(),
            ],
        ))?;
        match r {
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

    fn migrate(&self, src: &str, dst: &str, keys: &[Key], opts: MigrateOpts) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        self.ensure_lease()?;
        let words = migrate_args(dst, keys, opts, self.pool.options())?;
        let timeout = self.pool.options().timeout + Duration::from_millis(opts.timeout_ms);
        let r = self.block_on(self.pool.cmd_timeout(src, &words, timeout));
        let r = self.logged(src, &super::conn::describe(&words), r);
        r.map(|_| ()).map_err(|e| match e {
            // Name both ends: the operator needs to know where the keys were going.
            ClusterError::Command { reason, .. } => ClusterError::Command {
                addr: src.to_string(),
                command: format!("MIGRATE {src} -> {dst}"),
                reason,
            },
            other => other,
        })
    }

    fn setslot(&self, addr: &str, slot: u16, action: &SetSlot) -> Result<()> {
        self.ensure_lease()?;
        let mut words = vec![b"CLUSTER".to_vec(), b"SETSLOT".to_vec(), slot_words(slot)];
        words.extend(action.args().into_iter().map(String::into_bytes));
        let command = super::conn::describe(&words);
        let r = self.block_on(self.ok(addr, words));
        self.logged(addr, &command, r)
    }

    fn addslots(&self, addr: &str, slots: &[u16]) -> Result<()> {
        self.ensure_lease()?;
        let mut words = vec![b"CLUSTER".to_vec(), b"ADDSLOTS".to_vec()];
        words.extend(slots.iter().map(|s| slot_words(*s)));
        let command = format!(
            "CLUSTER ADDSLOTS {}",
            super::topology::format_ranges(&super::topology::ranges_of(slots))
        );
        let r = self.block_on(self.ok(addr, words));
        self.logged(addr, &command, r)
    }

    fn delslots(&self, addr: &str, slots: &[u16]) -> Result<()> {
        self.ensure_lease()?;
        let mut words = vec![b"CLUSTER".to_vec(), b"DELSLOTS".to_vec()];
        words.extend(slots.iter().map(|s| slot_words(*s)));
        let command = format!(
            "CLUSTER DELSLOTS {}",
            super::topology::format_ranges(&super::topology::ranges_of(slots))
        );
        let r = self.block_on(self.ok(addr, words));
        self.logged(addr, &command, r)
    }

    fn call(&self, addr: &str, args: &[Vec<u8>]) -> Result<Reply> {
        if super::conn::is_read(args) {
            return self.block_on(self.pool.cmd(addr, args));
        }
        if super::conn::changes_slots(args) {
            self.ensure_lease()?;
        }
        let r = self.block_on(self.pool.cmd(addr, args));
        self.logged(addr, &super::conn::describe(args), r)
    }

    fn key_counts(&self, addr: &str, slots: Option<&[u16]>) -> Result<Vec<(u16, u64)>> {
        let all: Vec<u16>;
        let slots = match slots {
            Some(s) => s,
            None => {
                all = (0..super::SLOTS).collect();
                &all
            }
        };
        self.block_on(self.key_counts_async(addr, slots))
    }

    fn key_counts_of(&self, asks: &[(String, Vec<u16>)]) -> Vec<Result<Vec<(u16, u64)>>> {
        self.block_on(join_all(
            asks.iter()
                .map(|(addr, slots)| self.key_counts_async(addr, slots)),
        ))
    }

    fn dump(&self, addr: &str, keys: &[Key]) -> Result<Vec<Option<Vec<u8>>>> {
        // ASKING lets an importing node answer for keys of the slot it imports.
        let cmds: Vec<Vec<Vec<u8>>> = keys
            .iter()
            .flat_map(|k| [args(["ASKING"]), vec![b"DUMP".to_vec(), k.clone()]])
            .collect();
        let replies =
            self.block_on(self.pool.pipeline(addr, &cmds, self.pool.options().timeout))?;
        replies
            .into_iter()
            .skip(1)
            .step_by(2)
            .map(|r| match r {
                Ok(Reply::Bulk(b)) => Ok(Some(b)),
                Ok(_) => Ok(None),
                // A MIGRATING node answers ASK for a key it no longer has.
                Err(e) if e.server_reply().is_some_and(|t| t.starts_with("ASK")) => Ok(None),
                Err(e) => Err(e),
            })
            .collect()
    }

    fn claim_slot(&self, addr: &str, slot: u16) -> Result<()> {
        self.ensure_lease()?;
        let state = self.block_on(self.node_state(addr))?;
        let assigned = state.nodes.iter().any(|n| n.owns(slot));
        let mut cmds = vec![args(["MULTI"])];
        if assigned {
            cmds.push(vec![
                b"CLUSTER".to_vec(),
                b"DELSLOTS".to_vec(),
                slot_words(slot),
            ]);
        }
        cmds.push(vec![
            b"CLUSTER".to_vec(),
            b"ADDSLOTS".to_vec(),
            slot_words(slot),
        ]);
        cmds.push(args(["CLUSTER", "BUMPEPOCH"]));
        cmds.push(args(["EXEC"]));
        let command = format!(
            "MULTI; {}CLUSTER ADDSLOTS {slot}; CLUSTER BUMPEPOCH; EXEC",
            if assigned {
                format!("CLUSTER DELSLOTS {slot}; ")
            } else {
                String::new()
            }
        );
        let r = (|| {
            let replies =
                self.block_on(self.pool.pipeline(addr, &cmds, self.pool.options().timeout))?;
            for r in replies {
                r.map_err(|e| match e {
                    ClusterError::Command { reason, .. } => ClusterError::Command {
                        addr: addr.to_string(),
                        command: command.clone(),
                        reason,
                    },
                    other => other,
                })?;
            }
            Ok(())
        })();
        self.logged(addr, &command, r)
    }

    fn move_slots(
        &self,
        moves: &[super::mover::SlotMove],
        opts: &super::mover::MoveOpts,
    ) -> Result<super::mover::SlotMoved> {
        self.ensure_lease()?;
        super::bulk::move_slots(self, moves, opts)
    }

    fn other_runs(&self) -> Result<Vec<OtherRun>> {
        self.block_on(self.look(None))
    }

    fn moves_atomically(&self, addr: &str) -> Result<bool> {
        self.block_on(super::bulk::supports_atomic(&self.pool, addr))
    }

    fn release_lease(&self) {
        self.release();
    }

    /// A node that cannot say (an error reply, no reply) is one sentence naming it
    /// ([`super::jobs::unlisted`]), the same for check, moves and scripts.
    fn slot_migrations(&self, addr: &str) -> Result<Vec<SlotJob>> {
        self.block_on(self.slot_migrations_async(addr))
            .map_err(|e| ClusterError::Refused(super::jobs::unlisted(addr, &e)))
    }

    fn slot_migrations_of(&self, addrs: &[String]) -> Vec<Result<Vec<SlotJob>>> {
        self.block_on(join_all(addrs.iter().map(|a| async move {
            self.slot_migrations_async(a)
                .await
                .map_err(|e| ClusterError::Refused(super::jobs::unlisted(a, &e)))
        })))
    }

    fn cancel_slot_migrations(&self, addr: &str) -> Result<bool> {
        self.ensure_lease()?;
        self.block_on(self.cancel_slot_migrations_async(addr))
    }
}
