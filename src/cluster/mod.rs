//! The one interface to "a cluster" that the script API, `check` and `lab` talk to,
//! and its live implementation. Synchronous at its surface because Rhai is; the live
//! cluster runs tokio inside.

pub mod admin;
pub mod bulk;
pub mod check;
pub mod commands;
pub mod conn;
pub mod error;
pub mod fingerprint;
pub mod jobs;
pub mod keyname;
pub mod lease;
pub mod live;
pub mod load;
pub mod memory;
pub mod mover;
pub mod nodes;
pub mod slot;
pub mod slot_state;
pub mod snapshot;
pub mod stop;
pub mod topology;
pub mod values;

pub use error::ClusterError;
pub use stop::Stop;
pub use topology::{NodeInfo, SLOTS};

/// A key name. Keys are bytes in Redis; most are UTF-8 but nothing guarantees it.
pub type Key = Vec<u8>;

pub type Result<T> = std::result::Result<T, ClusterError>;

/// What one node said about the cluster, the input of `check`.
#[derive(Debug, Clone)]
pub struct NodeView {
    /// The address slotsmith asked.
    pub addr: String,
    /// Its own `CLUSTER NODES` and key count, or why it could not be asked.
    pub state: std::result::Result<NodeState, String>,
}

#[derive(Debug, Clone)]
pub struct NodeState {
    /// Its `CLUSTER NODES`, parsed; exactly one entry carries the `myself` flag.
    pub nodes: Vec<NodeInfo>,
    /// `DBSIZE`.
    pub keys: u64,
    /// Its `cluster_state` from `CLUSTER INFO` (`ok` or `fail`); `None` where unknown
    /// (a snapshot).
    pub cluster_state: Option<String>,
    /// Its `cluster_current_epoch` from `CLUSTER INFO`; `None` where unknown.
    pub current_epoch: Option<u64>,
}

impl NodeState {
    pub fn myself(&self) -> Option<&NodeInfo> {
        self.nodes.iter().find(|n| n.is_myself())
    }

    /// Whether the node says it does not serve queries (`cluster_state:fail`).
    pub fn says_fail(&self) -> bool {
        self.cluster_state.as_deref() == Some("fail")
    }
}

/// Options of one `MIGRATE`.
#[derive(Debug, Clone, Copy)]
pub struct MigrateOpts {
    /// MIGRATE's own timeout, in milliseconds.
    pub timeout_ms: u64,
    pub replace: bool,
    pub copy: bool,
}

impl Default for MigrateOpts {
    fn default() -> Self {
        MigrateOpts {
            timeout_ms: 5000,
            replace: false,
            copy: false,
        }
    }
}

/// The forms of `CLUSTER SETSLOT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetSlot {
    Importing(String),
    Migrating(String),
    Stable,
    Node(String),
}

impl SetSlot {
    /// The words after `CLUSTER SETSLOT <slot>`.
    pub fn args(&self) -> Vec<String> {
        match self {
            SetSlot::Importing(id) => vec!["IMPORTING".into(), id.clone()],
            SetSlot::Migrating(id) => vec!["MIGRATING".into(), id.clone()],
            SetSlot::Stable => vec!["STABLE".into()],
            SetSlot::Node(id) => vec!["NODE".into(), id.clone()],
        }
    }
}

/// A reply to a raw command, independent of the client library.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    Nil,
    Int(i64),
    Bulk(Vec<u8>),
    Status(String),
    Array(Vec<Reply>),
    Double(f64),
    Map(Vec<(Reply, Reply)>),
}

/// Everything a script or a command can do to a cluster. Nodes are named by
/// `host:port`; resolving ids and prefixes is the caller's job (see `topology`).
pub trait Cluster {
    /// The address slotsmith was pointed at.
    fn seed(&self) -> String;
    /// Every known node's own view, asked in parallel. Fails only when the seed
    /// cannot be asked; other unreachable nodes appear with an error state.
    fn views(&self) -> Result<Vec<NodeView>>;
    fn countkeysinslot(&self, addr: &str, slot: u16) -> Result<u64>;
    fn getkeysinslot(&self, addr: &str, slot: u16, count: u64) -> Result<Vec<Key>>;
    /// [`Cluster::getkeysinslot`] of many (slot, count) of one node, in one round
    /// trip where the cluster can.
    fn keys_in_slots(&self, addr: &str, asks: &[(u16, u64)]) -> Result<Vec<Vec<Key>>> {
        asks.iter()
            .map(|(slot, count)| self.getkeysinslot(addr, *slot, *count))
            .collect()
    }
    /// `MIGRATE dst_host dst_port "" 0 timeout [COPY] [REPLACE] [AUTH..] KEYS k...`
    /// sent to `src`.
    fn migrate(&self, src: &str, dst: &str, keys: &[Key], opts: MigrateOpts) -> Result<()>;
    fn setslot(&self, addr: &str, slot: u16, action: &SetSlot) -> Result<()>;
    fn addslots(&self, addr: &str, slots: &[u16]) -> Result<()>;
    fn delslots(&self, addr: &str, slots: &[u16]) -> Result<()>;
    /// Any command on one node.
    fn call(&self, addr: &str, args: &[Vec<u8>]) -> Result<Reply>;
    /// [`Cluster::call`] of one command on each node, replies in order; a live
    /// cluster asks them all at once.
    fn call_each(&self, addrs: &[String], args: &[Vec<u8>]) -> Vec<Result<Reply>> {
        addrs.iter().map(|a| self.call(a, args)).collect()
    }
    /// How many keys one node holds in each of `slots` (every slot when `None`), for
    /// the slots where it holds any.
    fn key_counts(&self, addr: &str, slots: Option<&[u16]>) -> Result<Vec<(u16, u64)>>;
    /// [`Cluster::key_counts`] of several nodes, each for its own slots, in order; a
    /// live cluster asks them all at once.
    fn key_counts_of(&self, asks: &[(String, Vec<u16>)]) -> Vec<Result<Vec<(u16, u64)>>> {
        asks.iter()
            .map(|(addr, slots)| self.key_counts(addr, Some(slots)))
            .collect()
    }
    /// The load of several nodes ([`load::Loads`]), each for its own slots, in order,
    /// bytes estimated from `sample` keys per slot (0: keys only); a live cluster asks
    /// them all at once, each pipelined.
    fn slot_loads_of(&self, asks: &[(String, Vec<u16>)], sample: u64) -> Vec<Result<load::Loads>> {
        asks.iter()
            .map(|(addr, slots)| {
                let keys = self.key_counts(addr, Some(slots))?;
                let mut out = load::Loads {
                    keys_from: "countkeysinslot".into(),
                    sample,
                    ..load::Loads::default()
                };
                for (slot, n) in keys {
                    let mut bytes = None;
                    if sample > 0 {
                        let sampled = self.getkeysinslot(addr, slot, sample)?;
                        let mut sum = 0u64;
                        for k in &sampled {
                            let usage = [b"MEMORY".to_vec(), b"USAGE".to_vec(), k.clone()];
                            if let Ok(Reply::Int(b)) = self.call(addr, &usage) {
                                sum += b.max(0) as u64;
                            }
                        }
                        bytes = Some(load::estimate(sum, sampled.len() as u64, n));
                    }
                    out.slots.push(load::SlotLoad {
                        slot,
                        keys: n,
                        bytes,
                    });
                }
                Ok(out)
            })
            .collect()
    }
    /// The bytes of a node's dataset (no key it holds is bigger); `None` where it is
    /// not known, and then no key is sized ([`mover::sizes`]).
    fn dataset_bytes(&self, _addr: &str) -> Result<Option<u64>> {
        Ok(None)
    }
    /// `MEMORY USAGE` of keys on a node that owns, migrates or imports their slot (0
    /// for a key it does not hold, or where sizes are not known).
    fn key_sizes(&self, _addr: &str, keys: &[Key]) -> Result<Vec<u64>> {
        Ok(vec![0; keys.len()])
    }
    /// Values of keys on one node in a form equal for equal values however stored
    /// ([`values`]), for keys whose `DUMP` payloads differ; `None` where the key is not
    /// there or cannot be read so.
    fn canonical_values(&self, _addr: &str, keys: &[Key]) -> Result<Vec<Option<Vec<u8>>>> {
        Ok(vec![None; keys.len()])
    }
    /// `DUMP` payloads of keys on one node (`None` where the key does not exist).
    fn dump(&self, addr: &str, keys: &[Key]) -> Result<Vec<Option<Vec<u8>>>>;
    /// Make one node the owner of a slot atomically and make its claim win:
    /// `MULTI; CLUSTER DELSLOTS s (when it sees the slot assigned); CLUSTER ADDSLOTS s;
    /// CLUSTER BUMPEPOCH; EXEC`.
    fn claim_slot(&self, addr: &str, slot: u16) -> Result<()>;
    /// Move many slots with the safe protocol, as fast as the implementation can.
    /// Stops taking new slots once the caller's stop check (`opts.stop`) is asked
    /// for, finishing the ones in flight.
    fn move_slots(
        &self,
        moves: &[mover::SlotMove],
        opts: &mover::MoveOpts,
    ) -> Result<mover::SlotMoved>;
    /// One membership or role command on one node (see [`admin::Admin`]).
    fn admin(&self, addr: &str, cmd: &admin::Admin) -> Result<()> {
        self.call(addr, &cmd.words()).map(|_| ())
    }
    /// `CLUSTER ADDSLOTSRANGE start end`, or `ADDSLOTS` of every slot where the
    /// server lacks it.
    fn addslots_range(&self, addr: &str, start: u16, end: u16) -> Result<()> {
        self.addslots(addr, &(start..=end).collect::<Vec<u16>>())
    }
    /// `CLUSTER FORGET id` on every other node that knows it (a live cluster tells them
    /// all at once: a node forgets for 60 s only); what each did, the nodes that could
    /// not be asked among them.
    fn forget_everywhere(&self, id: &str) -> Result<Vec<admin::Forgot>> {
        let views = self.views()?;
        let forget = admin::Admin::Forget { id: id.to_string() };
        Ok(admin::forget_targets(&views, id)
            .into_iter()
            .map(|(node, can)| {
                let error = match can {
                    Ok(()) => self.admin(&node, &forget).err().map(|e| e.to_string()),
                    Err(why) => Some(why),
                };
                admin::Forgot { node, error }
            })
            .collect())
    }
    /// Record in the run's journal the plan it is about to carry out, as JSON text (a live cluster
    /// that keeps a journal; nothing otherwise).
    fn record_plan(&self, _plan: &str) {}
    /// Whether writes only change an in-memory copy.
    fn dry_run(&self) -> bool {
        false
    }
    /// Give back the lease this run took for changing slots (see [`lease`]).
    fn release_lease(&self) {}
    /// Other runs changing slots on this cluster right now (see [`lease`]).
    fn other_runs(&self) -> Result<Vec<lease::OtherRun>> {
        Ok(Vec::new())
    }
    /// Whether a node moves slots itself (`CLUSTER MIGRATESLOTS`, Valkey 9+).
    fn moves_atomically(&self, _addr: &str) -> Result<bool> {
        Ok(false)
    }
    /// The atomic slot migration jobs one node reports (`CLUSTER GETSLOTMIGRATIONS`),
    /// newest first; none on a server without atomic slot migration.
    fn slot_migrations(&self, _addr: &str) -> Result<Vec<jobs::SlotJob>> {
        Ok(Vec::new())
    }
    /// [`Cluster::slot_migrations`] of several nodes, in order; a live cluster asks
    /// them all at once.
    fn slot_migrations_of(&self, addrs: &[String]) -> Vec<Result<Vec<jobs::SlotJob>>> {
        addrs.iter().map(|a| self.slot_migrations(a)).collect()
    }
    /// `CLUSTER CANCELSLOTMIGRATIONS` on one node: cancel the jobs it is sending.
    /// False when it had none in flight.
    fn cancel_slot_migrations(&self, _addr: &str) -> Result<bool> {
        Ok(false)
    }
}

/// The merged topology: every node as it describes itself when reachable (so its
/// own migrating/importing markers are present), otherwise as the first reachable
/// node that knows it describes it.
pub fn merged_nodes(views: &[NodeView]) -> Vec<NodeInfo> {
    let mut out: Vec<NodeInfo> = Vec::new();
    for v in views {
        if let Ok(state) = &v.state {
            if let Some(me) = state.myself() {
                if !out.iter().any(|n| n.id == me.id) {
                    out.push(me.clone());
                }
            }
        }
    }
    for v in views {
        if let Ok(state) = &v.state {
            for n in &state.nodes {
                if !out.iter().any(|o| o.id == n.id) {
                    let mut n = n.clone();
                    n.flags.retain(|f| f != "myself");
                    out.push(n);
                }
            }
        }
    }
    for n in &mut out {
        n.flags.retain(|f| f != "myself");
    }
    out.sort_by(|a, b| (a.host.as_str(), a.port).cmp(&(b.host.as_str(), b.port)));
    out
}
