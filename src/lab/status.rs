//! `lab status`: each node's process, role, slots, keys and open slots, and the
//! cluster state.

use std::fmt;
use std::path::PathBuf;

use futures::future::join_all;
use serde::Serialize;
use tokio::runtime::Handle;

use super::probe::{info_field, probe, Probe};
use super::processes::{current_pid, running};
use super::{Lab, LabError};
use crate::cluster::NodeInfo;

impl Lab {
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
