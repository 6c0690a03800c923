//! What went wrong starting, breaking, inspecting or stopping a lab cluster.

use std::path::PathBuf;

use super::state::STATE_FILE;
use crate::cluster::ClusterError;

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
    /// A fault's script refused (the lab is not in a state where the fault makes sense)
    /// or failed; one sentence, with where it happened for an edited copy.
    #[error("{0}")]
    Script(String),
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
