//! Throwaway local clusters of real `redis-server` processes on loopback (`slotsmith lab
//! up / break / status / down`). This is the one way clusters get started, by operators
//! who want to practise on something real and by the integration tests.

use std::collections::BTreeSet;
use std::fmt;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::time::{Duration, Instant};

use futures::future::join_all;
use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;

use crate::cluster::conn::{args, ConnOptions, TlsOptions};
use crate::cluster::live::LiveCluster;
use crate::cluster::slot::{key_in_slot, slot_of};
use crate::cluster::topology::format_ranges;
use crate::cluster::{
    merged_nodes, Cluster, ClusterError, MigrateOpts, NodeInfo, NodeState, Reply, SetSlot, SLOTS,
};

/// The base port of a lab when none is given: nodes on 7001, 7002, ...
pub const DEFAULT_PORT: u16 = 7001;
/// The slot `lab break stuck-slot` opens when none is given (the seed lab's slot).
pub const DEFAULT_STUCK_SLOT: u16 = 5519;
/// Every lab node listens here, and only here.
pub const HOST: &str = "127.0.0.1";

/// The cluster bus of a node listens on its port plus this.
const BUS_OFFSET: u16 = 10000;
/// How long the cluster may take to form before `up` gives up.
const CONVERGE: Duration = Duration::from_secs(30);
/// How long a freshly started `redis-server` may take to answer `PING`.
const START: Duration = Duration::from_secs(10);
/// How long a node may take to exit after SIGTERM before it gets SIGKILL.
const STOP: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(100);
/// Per-command timeout of the lab's own connections.
const CMD_TIMEOUT: Duration = Duration::from_secs(5);
/// SETs per pipeline when loading keys.
const LOAD_BATCH: usize = 1000;
/// The key the seed's stuck migration left behind (it hashes to slot 5519).
const SEED_KEY: &str = "user:loadtest_user_33:reservations";
const STATE_FILE: &str = "lab.json";

pub mod server;

/// What went wrong starting, breaking, inspecting or stopping a lab cluster.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// `redis-server` is not on the PATH.
    #[error("redis-server is not installed (apt-get install -y redis-server redis-tools)")]
    NotInstalled,
    /// The requested layout cannot be built.
    #[error("{0}")]
    Spec(String),
    /// A node port or cluster bus port cannot be bound on 127.0.0.1.
    #[error(
        "port {port} on 127.0.0.1 is already in use{what}; choose another base port with --port"
    )]
    PortInUse { port: u16, what: String },
    /// A lab with live processes already lives in that directory.
    #[error("a lab cluster already runs on port {port} (files in {}); stop it first with `slotsmith lab down --port {port}`", .dir.display())]
    AlreadyRunning { port: u16, dir: PathBuf },
    /// No lab state file where one was expected.
    #[error("no lab cluster on port {port} (no {}); start one with `slotsmith lab up --port {port}`", .dir.join(STATE_FILE).display())]
    NotFound { port: u16, dir: PathBuf },
    /// A `redis-server` did not come up.
    #[error("redis-server on port {port} did not start: {reason}")]
    Start { port: u16, reason: String },
    /// The cluster did not reach the expected shape in time.
    #[error("the lab cluster did not settle within {secs} s: {node} {problem}")]
    Converge {
        node: String,
        problem: String,
        secs: u64,
    },
    /// A node refused or did not answer a command (the message names both).
    #[error("{0}")]
    Cluster(#[from] ClusterError),
    /// The lab is not in a state where the requested fault makes sense.
    #[error("{0}")]
    Refused(String),
    /// The lab was started with a password and none was given.
    #[error("the lab on port {port} was started with a password; pass it with -a/--password or REDISCLI_AUTH")]
    PasswordNeeded { port: u16 },
    /// A file or directory of the lab could not be read or written.
    #[error("cannot {action} {}: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    /// `lab.json` exists but cannot be understood.
    #[error("the lab state file {} is damaged ({reason}); stop its nodes and remove the directory by hand", .path.display())]
    State { path: PathBuf, reason: String },
    /// A node survived SIGKILL.
    #[error("redis-server on port {port} (pid {pid}) is still running after SIGKILL")]
    Stop { port: u16, pid: u32 },
}

/// Where labs live: `$SLOTSMITH_LAB_DIR`, else `$XDG_DATA_HOME/slotsmith/lab`, else
/// `~/.local/share/slotsmith/lab`. Each lab is the sub-directory named by its base port.
pub fn lab_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("SLOTSMITH_LAB_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    crate::xdg::strict_dir(crate::xdg::Base::Data, "lab")
        .unwrap_or_else(|| std::env::temp_dir().join("slotsmith-lab"))
}

/// The directory of the lab whose base port is `port`, under [`lab_root`].
pub fn lab_dir(port: u16) -> PathBuf {
    lab_root().join(port.to_string())
}

/// What `up` should build.
#[derive(Debug, Clone)]
pub struct LabSpec {
    /// Base port: masters first, then replicas, then empty masters, one port each.
    pub port: u16,
    /// Masters that share the 16384 slots.
    pub masters: usize,
    /// Replicas per master.
    pub replicas: usize,
    /// Extra masters with no slots (targets for rebalance and faults).
    pub empty: usize,
    /// Nodes started in cluster mode but not joined to the cluster (to add later).
    pub spare: usize,
    /// Keys to load (`key:000000`, `key:000001`, ...).
    pub keys: u64,
    /// Bytes per value.
    pub value_size: usize,
    /// `requirepass` / `masterauth` of every node; with [`LabSpec::user`], that user's
    /// password instead.
    pub password: Option<String>,
    /// An ACL user (needs [`LabSpec::password`]): every node knows it with every right
    /// (`on >password ~* &* +@all`), replicas authenticate with it (`masteruser`), and
    /// the `default` user is switched off, so nothing gets in without this user.
    pub user: Option<String>,
    /// Serve TLS only (no plain-text port), on the cluster bus and for replication too.
    pub tls: Option<LabTls>,
    /// The lab's own directory (one sub-directory per node, and `lab.json`).
    pub dir: PathBuf,
    /// The server binary every node runs (see [`server::chosen`]).
    pub server: PathBuf,
}

impl LabSpec {
    /// The seed lab's shape on base `port`: 3 masters, 1 replica each, 1 empty master,
    /// no keys, 64-byte values, no password, in [`lab_dir`]`(port)`.
    pub fn new(port: u16) -> Self {
        LabSpec {
            port,
            masters: 3,
            replicas: 1,
            empty: 1,
            spare: 0,
            keys: 0,
            value_size: 64,
            password: None,
            user: None,
            tls: None,
            dir: lab_dir(port),
            server: server::chosen(None),
        }
    }

    /// Number of `redis-server` processes.
    pub fn node_count(&self) -> usize {
        self.masters * (1 + self.replicas) + self.empty + self.spare
    }

    /// Every node port, in layout order.
    pub fn ports(&self) -> Vec<u16> {
        self.layout().iter().map(|n| n.port).collect()
    }

    /// The planned nodes: masters on `port..`, then replicas (round by round, one per
    /// master), then empty masters. Slots, ids and pids are not known yet.
    fn layout(&self) -> Vec<LabNode> {
        let mut out = Vec::with_capacity(self.node_count());
        let mut port = self.port;
        let mut next = || {
            let p = port;
            port = port.wrapping_add(1);
            p
        };
        let masters: Vec<u16> = (0..self.masters).map(|_| next()).collect();
        for &p in &masters {
            out.push(LabNode::planned(p, LabRole::Master, None));
        }
        for _ in 0..self.replicas {
            for &m in &masters {
                out.push(LabNode::planned(next(), LabRole::Replica, Some(m)));
            }
        }
        for _ in 0..self.empty {
            out.push(LabNode::planned(next(), LabRole::EmptyMaster, None));
        }
        for _ in 0..self.spare {
            out.push(LabNode::planned(next(), LabRole::Spare, None));
        }
        out
    }

    fn validate(&self) -> Result<(), LabError> {
        if let Some(user) = &self.user {
            if self.password.is_none() {
                return Err(LabError::Spec(format!(
                    "the ACL user \"{user}\" of a lab cluster needs a password"
                )));
            }
            let bad = |c: char| c.is_whitespace() || c.is_control() || c == '"' || c == '\'';
            if user.is_empty() || user == "default" || user.chars().any(bad) {
                return Err(LabError::Spec(format!(
                    "\"{user}\" cannot be the ACL user of a lab cluster: give a name other than \"default\", without spaces or quotes"
                )));
            }
        }
        if let Some(tls) = &self.tls {
            for (what, path) in [
                ("CA certificate", &tls.ca),
                ("certificate", &tls.cert),
                ("key", &tls.key),
            ] {
                if !path.is_file() {
                    return Err(LabError::Spec(format!(
                        "the TLS {what} of the lab, {}, is not a readable file",
                        path.display()
                    )));
                }
            }
        }
        if self.masters == 0 {
            return Err(LabError::Spec(
                "a lab cluster needs at least one master".into(),
            ));
        }
        if self.masters > usize::from(SLOTS) {
            return Err(LabError::Spec(format!(
                "a lab cluster can have at most {SLOTS} masters, not {}",
                self.masters
            )));
        }
        let last = u64::from(self.port) + self.node_count() as u64 - 1 + u64::from(BUS_OFFSET);
        if self.port == 0 || last > u64::from(u16::MAX) {
            return Err(LabError::Spec(format!(
                "base port {} does not leave room for {} nodes and their cluster bus ports (port + {BUS_OFFSET}); choose a base between 1 and {}",
                self.port,
                self.node_count(),
                u64::from(u16::MAX) - u64::from(BUS_OFFSET) - self.node_count() as u64 + 1
            )));
        }
        Ok(())
    }
}

/// The TLS files of a lab. Every node serves with `cert`/`key` (which must be valid for
/// 127.0.0.1, and usable as a client certificate too: nodes present it to each other on
/// the cluster bus, for replication and for `MIGRATE`), trusts `ca`, and the lab's own
/// connections present `cert`/`key` as their client certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabTls {
    /// The CA that signed `cert` (`--tls-ca-cert-file`; clients give it as `--cacert`).
    pub ca: PathBuf,
    /// PEM certificate of every node (`--tls-cert-file`).
    pub cert: PathBuf,
    /// PEM private key of `cert` (`--tls-key-file`).
    pub key: PathBuf,
    /// Whether clients must present a certificate signed by `ca`
    /// (`--tls-auth-clients yes`); otherwise it is optional.
    pub auth_clients: bool,
}

impl LabTls {
    /// The TLS options of a client of the lab: trust `ca`, present `cert`/`key`.
    pub fn options(&self) -> TlsOptions {
        TlsOptions {
            cacert: Some(self.ca.clone()),
            cert: Some(self.cert.clone()),
            key: Some(self.key.clone()),
            insecure: false,
        }
    }

    /// The same as `slotsmith` global options: `--tls --cacert CA --cert C --key K`.
    pub fn flags(&self) -> Vec<String> {
        vec![
            "--tls".into(),
            "--cacert".into(),
            self.ca.to_string_lossy().into_owned(),
            "--cert".into(),
            self.cert.to_string_lossy().into_owned(),
            "--key".into(),
            self.key.to_string_lossy().into_owned(),
        ]
    }
}

/// The role a lab node was started in (live roles can change after failovers; see
/// [`status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LabRole {
    /// A master that got a share of the slots.
    Master,
    /// A replica of one of the masters.
    Replica,
    /// A master that got no slots.
    EmptyMaster,
    /// Started in cluster mode, not joined to the cluster.
    Spare,
}

impl fmt::Display for LabRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LabRole::Master => "master",
            LabRole::Replica => "replica",
            LabRole::EmptyMaster => "empty master",
            LabRole::Spare => "spare (not in the cluster)",
        })
    }
}

/// One `redis-server` of a lab, as started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LabNode {
    pub port: u16,
    pub role: LabRole,
    /// For a replica, the port of its master.
    pub master: Option<u16>,
    /// Cluster node id.
    pub id: String,
    /// Process id of the daemonized `redis-server`.
    pub pid: u32,
    /// Slots it was given, as `0-5460` (empty for replicas and empty masters).
    #[serde(default)]
    pub slots: String,
}

impl LabNode {
    fn planned(port: u16, role: LabRole, master: Option<u16>) -> Self {
        LabNode {
            port,
            role,
            master,
            id: String::new(),
            pid: 0,
            slots: String::new(),
        }
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("{HOST}:{}", self.port)
    }
}

/// A lab cluster that `up` started or `open` found: what `lab.json` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Lab {
    /// Base port; names the lab.
    pub port: u16,
    pub nodes: Vec<LabNode>,
    /// Whether the nodes require a password (the password itself is not stored).
    #[serde(rename = "password")]
    pub has_password: bool,
    /// Keys loaded by `up`.
    #[serde(default)]
    pub keys: u64,
    /// The server binary the nodes run.
    #[serde(default = "default_server")]
    pub server: PathBuf,
    /// The ACL user the nodes require (the `default` user is off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// The TLS files, when the nodes serve TLS only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<LabTls>,
    /// The lab's directory (not stored; where `lab.json` was found).
    #[serde(skip)]
    pub dir: PathBuf,
    #[serde(skip)]
    secret: Option<String>,
}

/// The server of a lab recorded before labs named theirs.
fn default_server() -> PathBuf {
    PathBuf::from(server::DEFAULT)
}

impl Lab {
    /// Read the lab on base `port` from [`lab_dir`]`(port)/lab.json`.
    pub fn open(port: u16) -> Result<Lab, LabError> {
        Lab::open_dir(&lab_dir(port))
    }

    /// Read the lab whose directory is `dir`.
    pub fn open_dir(dir: &Path) -> Result<Lab, LabError> {
        let path = dir.join(STATE_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LabError::NotFound {
                    port: port_of_dir(dir).unwrap_or(0),
                    dir: dir.to_path_buf(),
                })
            }
            Err(source) => {
                return Err(LabError::Io {
                    action: "read",
                    path,
                    source,
                })
            }
        };
        let mut lab: Lab = serde_json::from_str(&text).map_err(|e| LabError::State {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        lab.dir = dir.to_path_buf();
        Ok(lab)
    }

    /// The same lab, talking to its nodes with `password` (needed when
    /// [`Lab::has_password`]).
    pub fn with_password(mut self, password: Option<String>) -> Self {
        if password.is_some() {
            self.secret = password;
        }
        self
    }

    /// `127.0.0.1:<base port>`, the address to give `slotsmith -c`.
    pub fn seed(&self) -> String {
        format!("{HOST}:{}", self.port)
    }

    /// Every node port, in layout order.
    pub fn ports(&self) -> Vec<u16> {
        self.nodes.iter().map(|n| n.port).collect()
    }

    /// The node started on `port`.
    pub fn node(&self, port: u16) -> Option<&LabNode> {
        self.nodes.iter().find(|n| n.port == port)
    }

    /// How to reach the nodes: the user, the password if one was given, and TLS.
    pub fn conn_options(&self) -> ConnOptions {
        ConnOptions {
            user: self.user.clone(),
            password: self.secret.clone(),
            tls: self.tls.as_ref().map(LabTls::options),
            timeout: CMD_TIMEOUT,
        }
    }

    /// The `slotsmith` global options that reach this lab, with `password` standing in
    /// for the password: `-c SEED [--user U] [-a PASSWORD] [--tls --cacert ...]`.
    pub fn flags(&self, password: &str) -> Vec<String> {
        let mut out = vec!["-c".to_string(), self.seed()];
        if let Some(user) = &self.user {
            out.extend(["--user".to_string(), user.clone()]);
        }
        if self.has_password {
            out.extend(["-a".to_string(), password.to_string()]);
        }
        if let Some(tls) = &self.tls {
            out.extend(tls.flags());
        }
        out
    }

    /// A live cluster on the lab's seed node.
    pub fn cluster(&self, rt: &Handle) -> Result<LiveCluster, LabError> {
        if self.has_password && self.secret.is_none() {
            return Err(LabError::PasswordNeeded { port: self.port });
        }
        Ok(LiveCluster::new(
            &self.seed(),
            self.conn_options(),
            rt.clone(),
            crate::interrupt::stop(),
        ))
    }

    /// What to try after `up`: the exact commands.
    pub fn next_steps(&self) -> String {
        let count = |r: LabRole| self.nodes.iter().filter(|n| n.role == r).count();
        let (first, last) = (
            self.nodes.first().map_or(self.port, |n| n.port),
            self.nodes.last().map_or(self.port, |n| n.port),
        );
        let auth = if self.has_password {
            " -a PASSWORD"
        } else {
            ""
        };
        let port = self.port;
        let client = self.flags("PASSWORD").join(" ");
        format!(
            "Lab cluster up on {HOST}:{first}-{last}: {}, {}, {}, {} (files in {}).\n\
             Try next:\n  \
             slotsmith {client} check\n  \
             slotsmith lab break stuck-slot --port {port}{auth}\n  \
             slotsmith lab status --port {port}{auth}\n  \
             slotsmith lab down --port {port}\n",
            plural(count(LabRole::Master) as u64, "master"),
            plural(count(LabRole::Replica) as u64, "replica"),
            plural(count(LabRole::EmptyMaster) as u64, "empty master"),
            plural(self.keys, "key"),
            self.dir.display(),
        )
    }

    /// Each node's process, role, slots and keys, and the cluster state.
    pub fn status(&self, rt: &Handle) -> Result<LabStatus, LabError> {
        let cluster = self.cluster(rt)?;
        let asked = rt.block_on(join_all(self.nodes.iter().map(|n| {
            let cluster = cluster.clone();
            let addr = n.addr();
            async move { probe(&cluster, &addr).await }
        })));
        let mut state = None;
        let mut nodes = Vec::new();
        for (n, answer) in self.nodes.iter().zip(asked) {
            let pid = current_pid(&self.dir, n);
            let alive = running(pid, n.port);
            let mut row = NodeStatus {
                port: n.port,
                pid,
                alive,
                role: "-".into(),
                slots: 0,
                keys: None,
                server: None,
                open: Vec::new(),
                error: None,
            };
            match answer {
                Ok(Probe {
                    state: st,
                    info,
                    server,
                    ..
                }) => {
                    row.server = Some(server);
                    if state.is_none() {
                        state = info_field(&info, "cluster_state").map(str::to_string);
                    }
                    row.keys = Some(st.keys);
                    if let Some(me) = st.myself() {
                        row.role = me.role().to_string();
                        row.slots = me.slot_count();
                        row.open = open_markers(me, &st.nodes);
                    }
                }
                Err(e) => row.error = Some(e.to_string()),
            }
            nodes.push(row);
        }
        Ok(LabStatus {
            port: self.port,
            dir: self.dir.clone(),
            cluster_state: state.unwrap_or_else(|| "unreachable".into()),
            nodes,
        })
    }

    /// Put the lab into a broken state to practise on; returns what was done.
    pub fn break_fault(&self, fault: Fault, rt: &Handle) -> Result<String, LabError> {
        match fault {
            Fault::StuckSlot { slot } => self.stuck_slot(slot, rt),
        }
    }

    /// Stop one node (SIGTERM, then SIGKILL after 5 s), leaving the others running.
    /// Returns whether it was running.
    pub fn stop_node(&self, port: u16) -> Result<bool, LabError> {
        let node = self.node(port).ok_or_else(|| {
            LabError::Refused(format!(
                "port {port} is not a node of the lab on port {} (its nodes: {})",
                self.port,
                join_ports(&self.ports())
            ))
        })?;
        let pid = current_pid(&self.dir, node);
        if !running(pid, port) {
            return Ok(false);
        }
        let mut report = DownReport::default();
        stop_all(&[(port, pid)], &mut report)?;
        Ok(true)
    }

    /// Stop every node and remove the lab's directory.
    pub fn down(&self) -> Result<DownReport, LabError> {
        down_dir(&self.dir)
    }

    fn stuck_slot(&self, slot: u16, rt: &Handle) -> Result<String, LabError> {
        if slot >= SLOTS {
            return Err(LabError::Refused(format!(
                "slot {slot} does not exist; slots are 0 to {}",
                SLOTS - 1
            )));
        }
        let cluster = self.cluster(rt)?;
        let views = cluster.views()?;
        let mut open = Vec::new();
        for v in &views {
            if let Some(me) = v.state.as_ref().ok().and_then(NodeState::myself) {
                if me.migrating.contains_key(&slot) {
                    open.push(format!("{} is migrating it", v.addr));
                }
                if me.importing.contains_key(&slot) {
                    open.push(format!("{} is importing it", v.addr));
                }
            }
        }
        if !open.is_empty() {
            return Err(LabError::Refused(format!(
                "slot {slot} is already open ({}); close it first with `slotsmith -c {} fix`",
                open.join(", "),
                self.seed()
            )));
        }
        let nodes = merged_nodes(&views);
        let owners: Vec<&NodeInfo> = nodes
            .iter()
            .filter(|n| n.is_master() && n.owns(slot))
            .collect();
        let src = match owners.as_slice() {
            [one] if !one.failing() => *one,
            [one] => {
                return Err(LabError::Refused(format!(
                    "slot {slot} belongs to {}, which is failing; bring it back before breaking the slot",
                    one.addr()
                )))
            }
            [] => {
                return Err(LabError::Refused(format!(
                    "slot {slot} has no owner; cover it first with `slotsmith -c {} fix`",
                    self.seed()
                )))
            }
            many => {
                return Err(LabError::Refused(format!(
                    "slot {slot} is claimed by several masters ({}); fix that first",
                    many.iter().map(|n| n.addr()).collect::<Vec<_>>().join(", ")
                )))
            }
        };
        let others = || {
            nodes
                .iter()
                .filter(|n| n.is_master() && !n.failing() && n.id != src.id)
        };
        let dst = others()
            .find(|n| n.slot_count() == 0)
            .or_else(|| others().next())
            .ok_or_else(|| {
                LabError::Refused(format!(
                    "the lab has no other healthy master to migrate slot {slot} to"
                ))
            })?;
        let (src_addr, dst_addr) = (src.addr(), dst.addr());

        // Make sure the slot has keys on the source, one of which stays behind.
        let tag = key_in_slot(slot, "lab");
        let mut written: Vec<String> = Vec::new();
        if slot_of(SEED_KEY.as_bytes()) == slot {
            written.push(SEED_KEY.to_string());
        }
        written.extend((1..=3).map(|i| format!("{{{tag}}}:item:{i}")));
        for key in &written {
            cluster.call(
                &src_addr,
                &args([
                    "SET",
                    key.as_str(),
                    &format!("written by lab break stuck-slot ({key})"),
                ]),
            )?;
        }
        let stay = written[0].clone();

        cluster.setslot(&dst_addr, slot, &SetSlot::Importing(src.id.clone()))?;
        cluster.setslot(&src_addr, slot, &SetSlot::Migrating(dst.id.clone()))?;
        let count = cluster.countkeysinslot(&src_addr, slot)?;
        let mut keys = cluster.getkeysinslot(&src_addr, slot, count.max(1))?;
        keys.sort();
        keys.retain(|k| k.as_slice() != stay.as_bytes());
        cluster.migrate(&src_addr, &dst_addr, &keys, MigrateOpts::default())?;

        let seed = self.seed();
        let client = self.flags("PASSWORD").join(" ");
        Ok(format!(
            "Slot {slot} is now stuck half-way, as an interrupted reshard leaves it: \
             {src_addr} is MIGRATING it to {dst_addr}, which is IMPORTING it; \
             {moved} moved to {dst_addr}, 1 left behind on {src_addr} ({stay}).\n\
             See it:  slotsmith {client} check   (or redis-cli --cluster check {seed})\n\
             Fix it:  slotsmith {client} fix   (or complete {slot} / cancel {slot})\n",
            moved = plural(keys.len() as u64, "key"),
        ))
    }

    fn write_state(&self) -> Result<(), LabError> {
        let path = self.dir.join(STATE_FILE);
        let tmp = self.dir.join(format!("{STATE_FILE}.tmp"));
        let text = serde_json::to_string_pretty(self).map_err(|e| LabError::State {
            path: path.clone(),
            reason: e.to_string(),
        })?;
        std::fs::write(&tmp, text + "\n").map_err(|source| LabError::Io {
            action: "write",
            path: tmp.clone(),
            source,
        })?;
        std::fs::rename(&tmp, &path).map_err(|source| LabError::Io {
            action: "write",
            path,
            source,
        })
    }
}

/// A fault `lab break` can put a lab into. More will follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The classic interrupted migration of the seed lab: the slot's owner is
    /// `MIGRATING` it to an (empty, if there is one) master that is `IMPORTING` it, with
    /// the slot's keys split between the two and one key left behind.
    StuckSlot { slot: u16 },
}

impl Fault {
    /// The names `lab break` accepts.
    pub const NAMES: &'static [&'static str] = &["stuck-slot"];

    /// The fault named `name` (see [`Fault::NAMES`]); `slot` overrides its default slot.
    pub fn parse(name: &str, slot: Option<u16>) -> Result<Fault, LabError> {
        match name {
            "stuck-slot" => Ok(Fault::StuckSlot {
                slot: slot.unwrap_or(DEFAULT_STUCK_SLOT),
            }),
            other => Err(LabError::Spec(format!(
                "unknown fault \"{other}\"; known faults: {}",
                Fault::NAMES.join(", ")
            ))),
        }
    }
}

impl FromStr for Fault {
    type Err = LabError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fault::parse(s, None)
    }
}

/// One node in [`LabStatus`].
#[derive(Debug, Clone, Serialize)]
pub struct NodeStatus {
    pub port: u16,
    pub pid: u32,
    /// Whether the process is running.
    pub alive: bool,
    /// `master` / `replica` as the node says now, `-` when it does not answer.
    pub role: String,
    pub slots: usize,
    /// `DBSIZE`, when the node answers.
    pub keys: Option<u64>,
    /// The server and its version, when the node answers: `redis 7.0.15`.
    pub server: Option<String>,
    /// Its open slots: `5519->127.0.0.1:7007` (migrating), `5519<-127.0.0.1:7002` (importing).
    pub open: Vec<String>,
    /// Why it could not be asked.
    pub error: Option<String>,
}

/// What `lab status` reports.
#[derive(Debug, Clone, Serialize)]
pub struct LabStatus {
    pub port: u16,
    pub dir: PathBuf,
    /// `cluster_state` of the first node that answers (`unreachable` if none does).
    pub cluster_state: String,
    pub nodes: Vec<NodeStatus>,
}

impl fmt::Display for LabStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "lab on port {} ({}): cluster_state:{}",
            self.port,
            self.dir.display(),
            self.cluster_state
        )?;
        writeln!(
            f,
            "{:<6} {:>8} {:<5} {:<8} {:>6} {:>9}  {:<14} OPEN",
            "PORT", "PID", "ALIVE", "ROLE", "SLOTS", "KEYS", "SERVER"
        )?;
        for n in &self.nodes {
            let keys = n.keys.map_or("-".to_string(), |k| k.to_string());
            let server = n.server.as_deref().unwrap_or("-");
            let mut tail = n.open.join(" ");
            if let Some(e) = &n.error {
                tail = e.clone();
            }
            writeln!(
                f,
                "{:<6} {:>8} {:<5} {:<8} {:>6} {:>9}  {:<14} {}",
                n.port,
                n.pid,
                if n.alive { "yes" } else { "no" },
                n.role,
                n.slots,
                keys,
                server,
                tail
            )?;
        }
        Ok(())
    }
}

/// What `down` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DownReport {
    pub dir: PathBuf,
    /// Nodes that exited on SIGTERM.
    pub stopped: Vec<u16>,
    /// Nodes that needed SIGKILL.
    pub killed: Vec<u16>,
    /// Whether the lab's directory was there and is now removed.
    pub removed: bool,
}

impl fmt::Display for DownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.removed && self.stopped.is_empty() && self.killed.is_empty() {
            return write!(
                f,
                "no lab cluster in {}; nothing to stop",
                self.dir.display()
            );
        }
        let mut all: Vec<u16> = self.stopped.iter().chain(&self.killed).copied().collect();
        all.sort_unstable();
        write!(f, "stopped {}", plural(all.len() as u64, "node"))?;
        if !all.is_empty() {
            write!(f, " ({})", join_ports(&all))?;
        }
        if !self.killed.is_empty() {
            write!(f, ", {} of them with SIGKILL", self.killed.len())?;
        }
        if self.removed {
            write!(f, " and removed {}", self.dir.display())?;
        }
        Ok(())
    }
}

/// Start a lab: one `redis-server` per node, the cluster formed with slotsmith's own
/// primitives, and `spec.keys` keys loaded.
pub fn up(spec: &LabSpec, rt: &Handle) -> Result<Lab, LabError> {
    spec.validate()?;
    server::check(&spec.server)?;
    let planned = spec.layout();

    if spec.dir.exists() {
        if let Ok(old) = Lab::open_dir(&spec.dir) {
            let alive = old
                .nodes
                .iter()
                .any(|n| running(current_pid(&old.dir, n), n.port));
            if alive {
                return Err(LabError::AlreadyRunning {
                    port: spec.port,
                    dir: spec.dir.clone(),
                });
            }
        }
        // A dead lab (or the remains of a failed start): clear it away.
        down_dir(&spec.dir)?;
    }
    for n in &planned {
        check_free(n.port, "")?;
        check_free(
            n.port + BUS_OFFSET,
            &format!(" (the cluster bus port of node {})", n.port),
        )?;
    }

    match start_and_form(spec, planned, rt) {
        Ok(lab) => Ok(lab),
        Err(e) => {
            // Leave nothing behind; the first error is the one worth reporting.
            let _ = down_dir(&spec.dir);
            Err(e)
        }
    }
}

/// Read the lab on base `port` (see [`Lab::open`]).
pub fn open(port: u16) -> Result<Lab, LabError> {
    Lab::open(port)
}

/// Stop the lab on base `port` and remove its directory. Idempotent: a lab that is
/// already gone, or whose nodes already died, is not an error.
pub fn down(port: u16) -> Result<DownReport, LabError> {
    down_dir(&lab_dir(port))
}

/// The status of the lab on base `port` (no password; see [`Lab::status`]).
pub fn status(port: u16, rt: &Handle) -> Result<LabStatus, LabError> {
    Lab::open(port)?.status(rt)
}

/// Break the lab on base `port` (no password; see [`Lab::break_fault`]).
pub fn break_fault(port: u16, fault: Fault, rt: &Handle) -> Result<String, LabError> {
    Lab::open(port)?.break_fault(fault, rt)
}

/// Stop every node of the lab in `dir` (from `lab.json` and the nodes' pid files) and
/// remove the directory. Only processes that are `redis-server` on the lab's ports are
/// signalled, and only the lab's own files are removed.
pub fn down_dir(dir: &Path) -> Result<DownReport, LabError> {
    let mut report = DownReport {
        dir: dir.to_path_buf(),
        ..DownReport::default()
    };
    if !dir.exists() {
        return Ok(report);
    }
    let mut targets: BTreeSet<(u16, u32)> = BTreeSet::new();
    let lab = Lab::open_dir(dir).ok();
    if let Some(lab) = &lab {
        for n in &lab.nodes {
            targets.insert((n.port, n.pid));
        }
    }
    let node_dirs = node_dirs(dir)?;
    for (port, path) in &node_dirs {
        if let Some(pid) = read_pid(&path.join("redis.pid")) {
            targets.insert((*port, pid));
        }
    }
    let live: Vec<(u16, u32)> = targets
        .into_iter()
        .filter(|&(port, pid)| running(pid, port))
        .collect();
    stop_all(&live, &mut report)?;

    for (_, path) in &node_dirs {
        std::fs::remove_dir_all(path).map_err(|source| LabError::Io {
            action: "remove",
            path: path.clone(),
            source,
        })?;
    }
    for name in [STATE_FILE.to_string(), format!("{STATE_FILE}.tmp")] {
        let path = dir.join(name);
        if path.exists() {
            std::fs::remove_file(&path).map_err(|source| LabError::Io {
                action: "remove",
                path,
                source,
            })?;
        }
    }
    // Not remove_dir_all: anything else in there is not ours to delete.
    std::fs::remove_dir(dir).map_err(|source| LabError::Io {
        action: "remove the lab directory (it holds files the lab did not create)",
        path: dir.to_path_buf(),
        source,
    })?;
    report.removed = true;
    Ok(report)
}

/// Start every node, form the cluster, load the keys and write `lab.json`.
fn start_and_form(spec: &LabSpec, mut nodes: Vec<LabNode>, rt: &Handle) -> Result<Lab, LabError> {
    for n in &nodes {
        let node_dir = spec.dir.join(n.port.to_string());
        std::fs::create_dir_all(&node_dir).map_err(|source| LabError::Io {
            action: "create",
            path: node_dir,
            source,
        })?;
    }
    for n in &nodes {
        start_node(&spec.dir, n.port, spec)?;
    }
    let mut lab = Lab {
        port: spec.port,
        nodes: Vec::new(),
        has_password: spec.password.is_some(),
        keys: 0,
        server: spec.server.clone(),
        user: spec.user.clone(),
        tls: spec.tls.clone(),
        dir: spec.dir.clone(),
        secret: spec.password.clone(),
    };
    let cluster = lab.cluster(rt)?;

    // Every node answers PING; then its pid file exists and it knows its id.
    for n in &mut nodes {
        let addr = n.addr();
        let deadline = Instant::now() + START;
        loop {
            match cluster.call(&addr, &args(["PING"])) {
                Ok(_) => break,
                Err(e) if Instant::now() >= deadline => {
                    return Err(LabError::Start {
                        port: n.port,
                        reason: start_failure(&spec.dir, n.port, &e),
                    })
                }
                Err(_) => std::thread::sleep(POLL),
            }
        }
        n.pid = read_pid(&spec.dir.join(n.port.to_string()).join("redis.pid")).unwrap_or(0);
        n.id = text_of(cluster.call(&addr, &args(["CLUSTER", "MYID"]))?);
    }
    lab.nodes = nodes.clone();
    lab.write_state()?;

    // Slots: even shares over the masters, the first ones take the remainder.
    let masters: Vec<usize> = (0..nodes.len())
        .filter(|&i| nodes[i].role == LabRole::Master)
        .collect();
    let share = usize::from(SLOTS) / masters.len();
    let extra = usize::from(SLOTS) % masters.len();
    let mut owner = vec![0usize; usize::from(SLOTS)];
    let mut start = 0usize;
    for (k, &i) in masters.iter().enumerate() {
        let len = share + usize::from(k < extra);
        let end = start + len - 1;
        for slot in &mut owner[start..=end] {
            *slot = i;
        }
        nodes[i].slots = format_ranges(&[(start as u16, end as u16)]);
        start = end + 1;
    }
    // Spare nodes are started, not joined.
    let spares: Vec<LabNode> = nodes
        .iter()
        .filter(|n| n.role == LabRole::Spare)
        .cloned()
        .collect();
    nodes.retain(|n| n.role != LabRole::Spare);
    for (epoch, n) in nodes.iter().enumerate() {
        // Distinct config epochs, as redis-cli --cluster create does.
        cluster.call(
            &n.addr(),
            &args([
                "CLUSTER".to_string(),
                "SET-CONFIG-EPOCH".into(),
                (epoch + 1).to_string(),
            ]),
        )?;
    }
    for n in nodes.iter().filter(|n| !n.slots.is_empty()) {
        let (a, b) = n.slots.split_once('-').unwrap_or((&n.slots, &n.slots));
        cluster.call(&n.addr(), &args(["CLUSTER", "ADDSLOTSRANGE", a, b]))?;
    }
    let meet = |from: &str, port: u16| {
        let words = [
            "CLUSTER".to_string(),
            "MEET".into(),
            HOST.into(),
            port.to_string(),
        ];
        cluster.call(from, &args(words))
    };
    // Replicas first: each meets its master and replicates it as soon as it knows it,
    // so every node that meets a replica later learns its role in the handshake.
    for n in &nodes {
        if let Some(m) = n.master {
            meet(&n.addr(), m)?;
        }
    }
    let master_of = |n: &LabNode| {
        n.master
            .and_then(|p| nodes.iter().find(|m| m.port == p))
            .cloned()
    };
    let replicas: Vec<String> = nodes
        .iter()
        .filter(|n| n.role == LabRole::Replica)
        .map(LabNode::addr)
        .collect();
    // Tell each replica to replicate as soon as it knows its master.
    wait_until(rt, &cluster, &replicas, |addr, p| {
        let me = nodes.iter().find(|n| n.addr() == addr)?;
        let master = master_of(me)?;
        let myself = p.state.myself()?;
        if myself.master_id.as_deref() == Some(master.id.as_str()) {
            return None;
        }
        match p.state.nodes.iter().find(|v| v.id == master.id) {
            Some(v) if !v.handshake() && !v.noaddr() => {
                let told = cluster
                    .call(addr, &args(["CLUSTER", "REPLICATE", master.id.as_str()]))
                    // Meeting the master again tells it the new role at once, instead
                    // of at the next ping (up to half the node timeout).
                    .and_then(|_| meet(addr, master.port));
                match told {
                    Ok(_) => Some(format!("was just told to replicate {}", master.addr())),
                    Err(e) => Some(e.to_string()),
                }
            }
            _ => Some(format!("does not know its master {} yet", master.addr())),
        }
    })?;
    // The first node meets everyone; every other pair meets too, so nobody waits for
    // gossip to introduce them (a MEET with a handshake already under way is a no-op).
    for (i, a) in nodes.iter().enumerate() {
        for b in &nodes[i + 1..] {
            meet(&a.addr(), b.port)?;
        }
    }
    let addrs: Vec<String> = nodes.iter().map(LabNode::addr).collect();
    wait_until(rt, &cluster, &addrs, |addr, p| settled(addr, p, &nodes))?;

    lab.nodes = nodes;
    load_keys(&lab, &cluster, &owner, spec, rt)?;
    lab.nodes.extend(spares);
    lab.keys = spec.keys;
    lab.write_state()?;
    Ok(lab)
}

fn check_free(port: u16, what: &str) -> Result<(), LabError> {
    match TcpListener::bind((HOST, port)) {
        Ok(_) => Ok(()),
        Err(_) => Err(LabError::PortInUse {
            port,
            what: what.to_string(),
        }),
    }
}

/// Launch one daemonized `redis-server` in `<dir>/<port>/`, with the password, ACL
/// user and TLS of `spec`.
fn start_node(dir: &Path, port: u16, spec: &LabSpec) -> Result<(), LabError> {
    let node_dir = dir.join(port.to_string());
    let path = |name: &str| node_dir.join(name).to_string_lossy().to_string();
    let mut cmd = Command::new(&spec.server);
    match &spec.tls {
        None => cmd.args(["--port", &port.to_string()]),
        // TLS only: no plain-text port; the bus (port + 10000) and replication use TLS.
        Some(tls) => cmd
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--tls-cert-file", &tls.cert.to_string_lossy()])
            .args(["--tls-key-file", &tls.key.to_string_lossy()])
            .args(["--tls-ca-cert-file", &tls.ca.to_string_lossy()])
            .args(["--tls-cluster", "yes", "--tls-replication", "yes"])
            .args([
                "--tls-auth-clients",
                if tls.auth_clients { "yes" } else { "optional" },
            ]),
    };
    cmd.args(["--bind", HOST])
        .args([
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
        ])
        .args(["--dir", &node_dir.to_string_lossy()])
        .args(["--daemonize", "yes"])
        .args([
            "--pidfile",
            &path("redis.pid"),
            "--logfile",
            &path("redis.log"),
        ])
        .args([
            "--save",
            "",
            "--appendonly",
            "no",
            "--cluster-node-timeout",
            "5000",
        ])
        // Replicas sync at once instead of after the default 5 s wait for more of them.
        .args(["--repl-diskless-sync-delay", "0"]);
    match (&spec.user, &spec.password) {
        // The `user` directive takes the rest of the line: one argument per ACL rule.
        (Some(user), Some(pw)) => cmd
            .args(["--user", user, "on", &format!(">{pw}"), "~*", "&*", "+@all"])
            .args(["--user", "default", "off"])
            .args(["--masteruser", user, "--masterauth", pw]),
        (None, Some(pw)) => cmd.args(["--requirepass", pw, "--masterauth", pw]),
        _ => &mut cmd,
    };
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| server::not_runnable(&spec.server, &e))?;
    if !out.status.success() {
        let mut text = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if text.is_empty() {
            text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        return Err(LabError::Start {
            port,
            reason: last_lines(&text, 3),
        });
    }
    Ok(())
}

/// Why a node did not answer: the end of its log, else the connection error.
fn start_failure(dir: &Path, port: u16, err: &ClusterError) -> String {
    let log = dir.join(port.to_string()).join("redis.log");
    match std::fs::read_to_string(&log) {
        Ok(text) if !text.trim().is_empty() => {
            format!("{} (from {})", last_lines(&text, 3), log.display())
        }
        _ => err.to_string(),
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
}

/// What one node says while the lab waits for it.
struct Probe {
    /// Its `CLUSTER NODES` and `DBSIZE`.
    state: NodeState,
    /// `CLUSTER INFO`.
    info: String,
    /// `INFO replication`.
    replication: String,
    /// The server's name and version (`INFO server`): `valkey 9.1.2`.
    server: String,
}

/// Ask one node for its `CLUSTER NODES`, `DBSIZE`, `CLUSTER INFO` and `INFO replication`.
async fn probe(cluster: &LiveCluster, addr: &str) -> Result<Probe, ClusterError> {
    let state = cluster.node_state(addr).await?;
    let info = cluster.pool().cmd(addr, &args(["CLUSTER", "INFO"])).await?;
    let replication = cluster
        .pool()
        .cmd(addr, &args(["INFO", "replication"]))
        .await?;
    let about = cluster.pool().cmd(addr, &args(["INFO", "server"])).await?;
    Ok(Probe {
        state,
        info: text_of(info),
        replication: text_of(replication),
        server: server::name_and_version(&text_of(about)),
    })
}

/// Poll every node until `problem` finds nothing wrong with any of them, or give up
/// after [`CONVERGE`] naming the first node that still has a problem.
fn wait_until<F>(
    rt: &Handle,
    cluster: &LiveCluster,
    addrs: &[String],
    problem: F,
) -> Result<(), LabError>
where
    F: Fn(&str, &Probe) -> Option<String>,
{
    let deadline = Instant::now() + CONVERGE;
    loop {
        let answers = rt.block_on(join_all(addrs.iter().map(|a| probe(cluster, a))));
        // Every node is looked at on every round (`problem` may act on each).
        let problems: Vec<(String, String)> = addrs
            .iter()
            .zip(answers)
            .filter_map(|(addr, answer)| match answer {
                Ok(p) => problem(addr, &p).map(|text| (addr.clone(), text)),
                Err(e) => Some((addr.clone(), format!("does not answer ({e})"))),
            })
            .collect();
        match problems.into_iter().next() {
            None => return Ok(()),
            Some((node, problem)) if Instant::now() >= deadline => {
                return Err(LabError::Converge {
                    node,
                    problem,
                    secs: CONVERGE.as_secs(),
                })
            }
            Some(_) => std::thread::sleep(POLL),
        }
    }
}

/// After `CLUSTER REPLICATE`: is the cluster up, does this node see every node with
/// the planned role, master and slots, and, for a replica, is its link to the master up?
fn settled(addr: &str, p: &Probe, nodes: &[LabNode]) -> Option<String> {
    match info_field(&p.info, "cluster_state") {
        Some("ok") => {}
        other => return Some(format!("reports cluster_state:{}", other.unwrap_or("?"))),
    }
    let st = &p.state;
    for n in nodes {
        let Some(v) = st.nodes.iter().find(|v| v.id == n.id) else {
            return Some(format!("does not know {}", n.addr()));
        };
        if v.failing() {
            return Some(format!("sees {} as failing", n.addr()));
        }
        if v.link != "connected" && !v.is_myself() {
            return Some(format!("has no link to {}", n.addr()));
        }
        match n.master.and_then(|p| nodes.iter().find(|m| m.port == p)) {
            Some(m) if !v.is_replica() || v.master_id.as_deref() != Some(m.id.as_str()) => {
                return Some(format!(
                    "does not see {} as a replica of {} yet",
                    n.addr(),
                    m.addr()
                ))
            }
            None if !v.is_master() => return Some(format!("sees {} as a replica", n.addr())),
            _ => {}
        }
        let seen = format_ranges(&v.slots);
        if seen != n.slots {
            return Some(format!(
                "sees {} with slots \"{seen}\", expected \"{}\"",
                n.addr(),
                n.slots
            ));
        }
    }
    let me = nodes.iter().find(|n| n.addr() == addr);
    if me.is_some_and(|n| n.role == LabRole::Replica) {
        match info_field(&p.replication, "master_link_status") {
            Some("up") => {}
            _ => return Some("has not finished its first sync with its master".into()),
        }
    }
    None
}

/// Load `spec.keys` keys with pipelined SETs, each straight to its slot's master.
fn load_keys(
    lab: &Lab,
    cluster: &LiveCluster,
    owner: &[usize],
    spec: &LabSpec,
    rt: &Handle,
) -> Result<(), LabError> {
    const CHUNK: u64 = 50_000;
    let mut next = 0u64;
    while next < spec.keys {
        let end = (next + CHUNK).min(spec.keys);
        let mut per_node: Vec<Vec<Vec<Vec<u8>>>> = vec![Vec::new(); lab.nodes.len()];
        for i in next..end {
            let key = format!("key:{i:06}");
            let node = owner[usize::from(slot_of(key.as_bytes()))];
            per_node[node].push(vec![
                b"SET".to_vec(),
                key.into_bytes(),
                value_of(i, spec.value_size),
            ]);
        }
        let jobs = per_node
            .iter()
            .enumerate()
            .filter(|(_, c)| !c.is_empty())
            .map(|(i, cmds)| {
                let addr = lab.nodes[i].addr();
                async move {
                    for batch in cmds.chunks(LOAD_BATCH) {
                        let replies = cluster
                            .pool()
                            .pipeline(&addr, batch, Duration::from_secs(30))
                            .await?;
                        if let Some(Err(e)) = replies.into_iter().find(Result::is_err) {
                            return Err(e);
                        }
                    }
                    Ok::<(), ClusterError>(())
                }
            });
        for r in rt.block_on(join_all(jobs)) {
            r?;
        }
        next = end;
    }
    Ok(())
}

/// A deterministic value of `size` bytes for key number `i`.
fn value_of(i: u64, size: usize) -> Vec<u8> {
    let unit = format!("value-{i:06}:");
    unit.bytes().cycle().take(size).collect()
}

fn text_of(r: Reply) -> String {
    match r {
        Reply::Bulk(b) => String::from_utf8_lossy(&b).trim().to_string(),
        Reply::Status(s) => s,
        Reply::Int(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines().find_map(|l| {
        l.trim()
            .split_once(':')
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.trim())
    })
}

/// A node's open slots, naming the other side by address when known.
fn open_markers(me: &NodeInfo, all: &[NodeInfo]) -> Vec<String> {
    let name = |id: &String| {
        all.iter()
            .find(|n| &n.id == id)
            .map_or_else(|| id.chars().take(8).collect(), NodeInfo::addr)
    };
    me.migrating
        .iter()
        .map(|(s, id)| format!("{s}->{}", name(id)))
        .chain(
            me.importing
                .iter()
                .map(|(s, id)| format!("{s}<-{}", name(id))),
        )
        .collect()
}

/// `1 master`, `3 masters`.
fn plural(n: u64, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

fn join_ports(ports: &[u16]) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

fn port_of_dir(dir: &Path) -> Option<u16> {
    dir.file_name()?.to_str()?.parse().ok()
}

/// The sub-directories of a lab that are node directories (named by a port and holding
/// a node's files).
fn node_dirs(dir: &Path) -> Result<Vec<(u16, PathBuf)>, LabError> {
    let entries = std::fs::read_dir(dir).map_err(|source| LabError::Io {
        action: "read",
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(port) = port_of_dir(&path) else {
            continue;
        };
        let ours = ["nodes.conf", "redis.log", "redis.pid"]
            .iter()
            .any(|f| path.join(f).exists())
            || std::fs::read_dir(&path).is_ok_and(|mut d| d.next().is_none());
        if path.is_dir() && ours {
            out.push((port, path));
        }
    }
    Ok(out)
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The node's pid: its pid file when present (fresher), else `lab.json`.
fn current_pid(dir: &Path, node: &LabNode) -> u32 {
    read_pid(&dir.join(node.port.to_string()).join("redis.pid")).unwrap_or(node.pid)
}

/// Whether `pid` is a live `redis-server` serving `port` (so a recycled pid is never
/// signalled).
fn running(pid: u32, port: u16) -> bool {
    if pid == 0 || !signal(pid, 0) {
        return false;
    }
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    if !Path::new("/proc/self").exists() {
        return true; // no procfs to look closer: trust the pid
    }
    let stat = std::fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
    let zombie = stat
        .rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
    if zombie {
        return false;
    }
    let cmdline = std::fs::read(proc_dir.join("cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline);
    server::is_server_title(&cmdline) && cmdline.contains(&port.to_string())
}

/// Send `sig` to `pid`; true when the process exists and accepted it.
fn signal(pid: u32, sig: libc::c_int) -> bool {
    match libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) takes two integers and touches none of our memory.
        Ok(p) if p > 0 => unsafe { libc::kill(p, sig) == 0 },
        _ => false,
    }
}

/// SIGTERM every node, wait up to [`STOP`], SIGKILL the rest, and wait for them too.
fn stop_all(nodes: &[(u16, u32)], report: &mut DownReport) -> Result<(), LabError> {
    for &(_, pid) in nodes {
        signal(pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + STOP;
    while Instant::now() < deadline && nodes.iter().any(|&(port, pid)| running(pid, port)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for &(port, pid) in nodes {
        if running(pid, port) {
            signal(pid, libc::SIGKILL);
            report.killed.push(port);
        } else {
            report.stopped.push(port);
        }
    }
    let deadline = Instant::now() + STOP;
    for &(port, pid) in nodes {
        while running(pid, port) {
            if Instant::now() >= deadline {
                return Err(LabError::Stop { port, pid });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layout_matches_the_seed_lab() {
        let spec = LabSpec::new(7001);
        let nodes = spec.layout();
        let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
        assert_eq!(ports, (7001..=7007).collect::<Vec<_>>());
        assert_eq!(nodes[0].role, LabRole::Master);
        assert_eq!(nodes[3].role, LabRole::Replica);
        assert_eq!(nodes[3].master, Some(7001));
        assert_eq!(nodes[5].master, Some(7003));
        assert_eq!(nodes[6].role, LabRole::EmptyMaster);
    }

    #[test]
    fn two_replicas_go_round_by_round() {
        let spec = LabSpec {
            masters: 2,
            replicas: 2,
            empty: 0,
            ..LabSpec::new(7100)
        };
        let masters: Vec<Option<u16>> = spec.layout().iter().map(|n| n.master).collect();
        assert_eq!(
            masters,
            vec![None, None, Some(7100), Some(7101), Some(7100), Some(7101)]
        );
    }

    #[test]
    fn bad_specs_are_refused_with_a_sentence() {
        let none = LabSpec {
            masters: 0,
            ..LabSpec::new(7001)
        };
        assert!(none
            .validate()
            .unwrap_err()
            .to_string()
            .contains("at least one master"));
        let user = LabSpec {
            user: Some("operator".into()),
            ..LabSpec::new(7001)
        };
        assert!(user
            .validate()
            .unwrap_err()
            .to_string()
            .contains("needs a password"));
        let tls = LabSpec {
            tls: Some(LabTls {
                ca: "/nonexistent/ca.crt".into(),
                cert: "/nonexistent/node.crt".into(),
                key: "/nonexistent/node.key".into(),
                auth_clients: true,
            }),
            ..LabSpec::new(7001)
        };
        assert!(tls
            .validate()
            .unwrap_err()
            .to_string()
            .contains("/nonexistent/ca.crt"));
        let high = LabSpec::new(60000);
        assert!(high
            .validate()
            .unwrap_err()
            .to_string()
            .contains("cluster bus"));
    }

    #[test]
    fn values_are_deterministic_and_sized() {
        assert_eq!(value_of(7, 20), b"value-000007:value-0".to_vec());
        assert_eq!(value_of(7, 0), Vec::<u8>::new());
    }

    #[test]
    fn faults_parse_by_name() {
        assert_eq!(
            "stuck-slot".parse::<Fault>().unwrap(),
            Fault::StuckSlot { slot: 5519 }
        );
        assert_eq!(
            Fault::parse("stuck-slot", Some(42)).unwrap(),
            Fault::StuckSlot { slot: 42 }
        );
        assert!(Fault::parse("nope", None)
            .unwrap_err()
            .to_string()
            .contains("unknown fault"));
    }

    #[test]
    fn the_seed_key_is_in_slot_5519() {
        assert_eq!(slot_of(SEED_KEY.as_bytes()), DEFAULT_STUCK_SLOT);
    }

    #[test]
    fn down_of_a_missing_lab_is_a_no_op() {
        let dir = std::env::temp_dir().join("slotsmith-lab-test-missing-dir-xyz");
        let report = down_dir(&dir).unwrap();
        assert!(!report.removed);
        assert!(report.to_string().contains("nothing to stop"));
    }
}
