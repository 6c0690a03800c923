//! A lab as it was started: its nodes, how to reach them, and `lab.json`, the file that
//! records it in the lab's directory.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::runtime::Handle;

use super::place::port_of_dir;
use super::{lab_dir, plural, server, LabError, LabTls, HOST};
use crate::cluster::conn::ConnOptions;
use crate::cluster::live::LiveCluster;

/// Per-command timeout of the lab's own connections.
const CMD_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) const STATE_FILE: &str = "lab.json";

/// The role a lab node was started in (live roles can change after failovers; see
/// `lab status`).
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
    pub(super) fn planned(port: u16, role: LabRole, master: Option<u16>) -> Self {
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
    pub(super) secret: Option<String>,
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

    pub(super) fn write_state(&self) -> Result<(), LabError> {
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
