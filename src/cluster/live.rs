//! The live cluster: real nodes over the network. Async inside (one connection per
//! node, every node asked at once), synchronous at the surface through the tokio
//! runtime handle, because Rhai functions are synchronous.

use std::time::Duration;

use futures::future::join_all;

use super::commands;
use super::conn::{args, ConnOptions, Pool};
use super::jobs::SlotJob;
use super::lease::{self, Lease, OtherRun};
use super::nodes::{protocol, Nodes};
use super::{
    Cluster, ClusterError, Key, MigrateOpts, NodeState, NodeView, Reply, Result, SetSlot, Stop,
};

/// A cluster reached through a seed node.
#[derive(Clone)]
pub struct LiveCluster {
    nodes: Nodes,
    /// Held from the first write that changes slots (see [`super::lease`]).
    lease: Option<std::sync::Arc<Lease>>,
}

impl LiveCluster {
    /// The cluster of `seed`, its waits abandoned once `stop` says they are overdue.
    pub fn new(seed: &str, opts: ConnOptions, rt: tokio::runtime::Handle, stop: Stop) -> Self {
        LiveCluster {
            nodes: Nodes::new(seed, Pool::new(opts, stop), rt),
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
        let views = self.nodes.views().await?;
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
                .pool()
                .pipeline(addr, &cmds, self.pool().options().timeout)
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
        let addrs = self.pool().connected();
        let unname = args(["CLIENT", "SETNAME", ""]);
        let _ = self.block_on(join_all(addrs.iter().map(|a| self.pool().cmd(a, &unname))));
    }

    /// Before `addr` claims `slot` (its `BUMPEPOCH` must outrank every other claim):
    /// wait until it knows the config epoch of every master that claims the slot
    /// now ([`super::mover::epoch_lags`]), at most [`super::mover::GOSSIP_WAIT`].
    fn learn_rivals_epochs(&self, addr: &str, slot: u16) -> Result<()> {
        let deadline = std::time::Instant::now() + super::mover::GOSSIP_WAIT;
        loop {
            let views = self.block_on(self.nodes.views())?;
            let own: Vec<&super::NodeInfo> = views
                .iter()
                .filter_map(|v| v.state.as_ref().ok()?.myself())
                .filter(|me| me.is_master())
                .collect();
            let Some(me) = own.iter().find(|n| n.addr() == addr) else {
                return Ok(());
            };
            let rivals: Vec<&str> = own
                .iter()
                .filter(|n| n.id != me.id && n.owns(slot))
                .map(|n| n.id.as_str())
                .collect();
            let lags = super::mover::epoch_lags(&views, &[&me.id], &rivals);
            if lags.is_empty() {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                return Err(ClusterError::Refused(format!(
                    "cannot give slot {slot} to {addr} yet: {} (gossip has not reached it within {} s); nothing was written for the slot: run this again in a moment",
                    lags.join(", "),
                    super::mover::GOSSIP_WAIT.as_secs()
                )));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Record every write in `journal`.
    pub fn with_journal(mut self, journal: std::sync::Arc<crate::journal::Journal>) -> Self {
        self.nodes = self.nodes.with_journal(journal);
        self
    }

    pub fn journal(&self) -> Option<&crate::journal::Journal> {
        self.nodes.journal()
    }

    fn logged<T>(&self, node: &str, command: &str, r: Result<T>) -> Result<T> {
        self.nodes.logged(node, command, r)
    }

    /// Its nodes over the network, what the bulk mover works with.
    pub fn nodes(&self) -> &Nodes {
        &self.nodes
    }

    pub fn pool(&self) -> &Pool {
        self.nodes.pool()
    }

    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.nodes.handle()
    }

    fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.nodes.block_on(f)
    }

    /// One node's own `CLUSTER NODES`, `DBSIZE` and `cluster_state`.
    pub async fn node_state(&self, addr: &str) -> Result<NodeState> {
        self.nodes.node_state(addr).await
    }

    async fn ok(&self, addr: &str, words: Vec<Vec<u8>>) -> Result<()> {
        self.pool().cmd(addr, &words).await.map(|_| ())
    }
}

impl Cluster for LiveCluster {
    fn seed(&self) -> String {
        self.nodes.seed().to_string()
    }

    fn views(&self) -> Result<Vec<NodeView>> {
        self.block_on(self.nodes.views())
    }

    fn countkeysinslot(&self, addr: &str, slot: u16) -> Result<u64> {
        let r = self.block_on(self.pool().cmd(addr, &commands::countkeysinslot(slot)))?;
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
        let r = self.block_on(self.pool().cmd(addr, &commands::getkeysinslot(slot, count)))?;
        super::nodes::keys_of(addr, r)
    }

    fn keys_in_slots(&self, addr: &str, asks: &[(u16, u64)]) -> Result<Vec<Vec<Key>>> {
        self.block_on(self.nodes.keys_in_slots(addr, asks))
    }

    fn migrate(&self, src: &str, dst: &str, keys: &[Key], opts: MigrateOpts) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        self.ensure_lease()?;
        let words = commands::migrate(dst, keys, opts, self.pool().options())?;
        let timeout = self.pool().options().timeout + Duration::from_millis(opts.timeout_ms);
        let r = self.block_on(self.pool().cmd_timeout(src, &words, timeout));
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
        let words = commands::setslot(slot, action);
        let command = super::conn::describe(&words);
        let r = self.block_on(self.ok(addr, words));
        self.logged(addr, &command, r)
    }

    fn addslots(&self, addr: &str, slots: &[u16]) -> Result<()> {
        self.ensure_lease()?;
        let words = commands::addslots(slots);
        let command = format!(
            "CLUSTER ADDSLOTS {}",
            super::topology::format_ranges(&super::topology::ranges_of(slots))
        );
        let r = self.block_on(self.ok(addr, words));
        self.logged(addr, &command, r)
    }

    fn delslots(&self, addr: &str, slots: &[u16]) -> Result<()> {
        self.ensure_lease()?;
        let words = commands::delslots(slots);
        let command = format!(
            "CLUSTER DELSLOTS {}",
            super::topology::format_ranges(&super::topology::ranges_of(slots))
        );
        let r = self.block_on(self.ok(addr, words));
        self.logged(addr, &command, r)
    }

    fn addslots_range(&self, addr: &str, start: u16, end: u16) -> Result<()> {
        self.ensure_lease()?;
        let words = args([
            "CLUSTER".to_string(),
            "ADDSLOTSRANGE".into(),
            start.to_string(),
            end.to_string(),
        ]);
        let command = super::conn::describe(&words);
        match self.block_on(self.ok(addr, words)) {
            // A server before Redis 7 has no ADDSLOTSRANGE: every slot in one ADDSLOTS.
            Err(ClusterError::Command { reason, .. }) if super::jobs::unsupported(&reason) => {
                self.addslots(addr, &(start..=end).collect::<Vec<u16>>())
            }
            r => self.logged(addr, &command, r),
        }
    }

    fn forget_everywhere(&self, id: &str) -> Result<Vec<super::admin::Forgot>> {
        self.ensure_lease()?;
        let views = self.views()?;
        let words = super::admin::Admin::Forget { id: id.to_string() }.words();
        let command = super::conn::describe(&words);
        let targets = super::admin::forget_targets(&views, id);
        // All at once: a node forgets another for 60 s only, then learns it again from
        // any node that still knows it.
        let replies = self.block_on(join_all(targets.iter().map(|(addr, can)| {
            let words = &words;
            async move {
                match can {
                    Ok(()) => Some(self.pool().cmd(addr, words).await),
                    Err(_) => None,
                }
            }
        })));
        Ok(targets
            .into_iter()
            .zip(replies)
            .map(|((node, can), reply)| {
                let error = match (can, reply) {
                    (Err(why), _) => Some(why),
                    (Ok(()), Some(r)) => {
                        self.logged(&node, &command, r).err().map(|e| e.to_string())
                    }
                    (Ok(()), None) => None,
                };
                super::admin::Forgot { node, error }
            })
            .collect())
    }

    fn call(&self, addr: &str, args: &[Vec<u8>]) -> Result<Reply> {
        if super::conn::is_read(args) {
            return self.block_on(self.pool().cmd(addr, args));
        }
        if super::conn::changes_slots(args) {
            self.ensure_lease()?;
        }
        let r = self.block_on(self.pool().cmd(addr, args));
        self.logged(addr, &super::conn::describe(args), r)
    }

    fn call_each(&self, addrs: &[String], args: &[Vec<u8>]) -> Vec<Result<Reply>> {
        let read = super::conn::is_read(args);
        if !read && super::conn::changes_slots(args) {
            if let Err(e) = self.ensure_lease() {
                return addrs.iter().map(|_| Err(e.clone())).collect();
            }
        }
        let replies = self.block_on(join_all(addrs.iter().map(|a| self.pool().cmd(a, args))));
        if read {
            return replies;
        }
        let command = super::conn::describe(args);
        addrs
            .iter()
            .zip(replies)
            .map(|(a, r)| self.logged(a, &command, r))
            .collect()
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
        self.block_on(self.nodes.key_counts(addr, slots))
    }

    fn key_counts_of(&self, asks: &[(String, Vec<u16>)]) -> Vec<Result<Vec<(u16, u64)>>> {
        self.block_on(join_all(
            asks.iter()
                .map(|(addr, slots)| self.nodes.key_counts(addr, slots)),
        ))
    }

    fn record_plan(&self, plan: &str) {
        if let Some(j) = self.journal() {
            j.plan(plan);
        }
    }

    fn slot_loads_of(
        &self,
        asks: &[(String, Vec<u16>)],
        sample: u64,
    ) -> Vec<Result<super::load::Loads>> {
        self.block_on(join_all(
            asks.iter()
                .map(|(addr, slots)| self.nodes.slot_loads(addr, slots, sample)),
        ))
    }

    fn canonical_values(&self, addr: &str, keys: &[Key]) -> Result<Vec<Option<Vec<u8>>>> {
        self.block_on(async {
            let mut out = Vec::with_capacity(keys.len());
            for k in keys {
                out.push(self.nodes.canonical_value(addr, k).await);
            }
            Ok(out)
        })
    }

    fn dataset_bytes(&self, addr: &str) -> Result<Option<u64>> {
        self.block_on(self.nodes.dataset_bytes(addr))
    }

    fn key_sizes(&self, addr: &str, keys: &[Key]) -> Result<Vec<u64>> {
        // ASKING lets an importing node answer for keys of the slot it imports.
        self.block_on(self.nodes.key_sizes(addr, keys, true, true))
    }

    fn dump(&self, addr: &str, keys: &[Key]) -> Result<Vec<Option<Vec<u8>>>> {
        // ASKING lets an importing node answer for keys of the slot it imports.
        let cmds: Vec<Vec<Vec<u8>>> = keys
            .iter()
            .flat_map(|k| [args(["ASKING"]), vec![b"DUMP".to_vec(), k.clone()]])
            .collect();
        let replies = self.block_on(self.pool().pipeline(
            addr,
            &cmds,
            self.pool().options().timeout,
        ))?;
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
        self.learn_rivals_epochs(addr, slot)?;
        let state = self.block_on(self.node_state(addr))?;
        let assigned = state.nodes.iter().any(|n| n.owns(slot));
        let (cmds, command) = commands::claim(slot, assigned);
        let r = (|| {
            let replies = self.block_on(self.pool().pipeline(
                addr,
                &cmds,
                self.pool().options().timeout,
            ))?;
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
        super::bulk::move_slots(self, &self.nodes, moves, opts)
    }

    fn other_runs(&self) -> Result<Vec<OtherRun>> {
        self.block_on(self.look(None))
    }

    fn moves_atomically(&self, addr: &str) -> Result<bool> {
        self.block_on(super::bulk::supports_atomic(self.pool(), addr))
    }

    fn release_lease(&self) {
        self.release();
    }

    /// A node that cannot say (an error reply, no reply) is one sentence naming it
    /// ([`super::jobs::unlisted`]), the same for check, moves and scripts.
    fn slot_migrations(&self, addr: &str) -> Result<Vec<SlotJob>> {
        self.block_on(self.nodes.slot_migrations(addr))
            .map_err(|e| ClusterError::Refused(super::jobs::unlisted(addr, &e)))
    }

    fn slot_migrations_of(&self, addrs: &[String]) -> Vec<Result<Vec<SlotJob>>> {
        self.block_on(join_all(addrs.iter().map(|a| async move {
            self.nodes
                .slot_migrations(a)
                .await
                .map_err(|e| ClusterError::Refused(super::jobs::unlisted(a, &e)))
        })))
    }

    fn cancel_slot_migrations(&self, addr: &str) -> Result<bool> {
        self.ensure_lease()?;
        self.block_on(self.nodes.cancel_slot_migrations(addr))
    }
}
