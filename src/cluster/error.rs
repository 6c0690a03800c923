//! Errors of the cluster layer. Every message names the node and, where there is
//! one, the command; none ever contains a password.

/// What went wrong talking to a cluster.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    /// The node could not be reached or refused the handshake (auth, TLS).
    #[error("cannot connect to {addr}: {reason}")]
    Connect { addr: String, reason: String },
    /// The node answered the command with an error.
    #[error("{command} on {addr}: {reason}")]
    Command {
        addr: String,
        command: String,
        reason: String,
    },
    /// The node did not answer in time.
    #[error("{command} on {addr}: no reply within {ms} ms")]
    Timeout {
        addr: String,
        command: String,
        ms: u64,
    },
    /// The connection broke while the command was in flight.
    #[error("{command} on {addr}: connection lost ({reason})")]
    Io {
        addr: String,
        command: String,
        reason: String,
    },
    /// The command was still waiting for its reply when an interruption's grace
    /// period ran out.
    #[error("{command} on {addr}: abandoned, no reply {secs} s after the interruption")]
    Abandoned {
        addr: String,
        command: String,
        secs: u64,
    },
    /// The operation will not run in the cluster's present state (it is down, another
    /// run is moving slots, a node does not know another yet). Nothing was written for
    /// it; the sentence says what to do.
    #[error("{0}")]
    Refused(String),
    /// A move of many slots stopped part-way: why, and what it did and left.
    #[error("{cause}; {progress}")]
    Stopped {
        cause: Box<ClusterError>,
        /// `moved 100 of 4096 slots; 128 slots left open (0-127): run ...`
        progress: String,
    },
    /// The same keys exist on both sides of a move with different values.
    #[error("slot {slot}: {} on both {src} and {dst} with different values: {}{}; nothing was overwritten (--replace keeps the copy from {src})", plural(keys.len()), keys.iter().take(10).map(|k| k.to_string()).collect::<Vec<_>>().join(", "), if keys.len() > 10 { format!(" and {} more", keys.len() - 10) } else { String::new() })]
    Conflict {
        slot: u16,
        src: String,
        dst: String,
        keys: Vec<super::keyname::KeyName>,
    },
    /// A key of a slot could not be moved: over the size limit (`too_big`, found
    /// before any key of the slot moved), or it failed alone after retries. The
    /// sentence names the key and what became of the slot.
    #[error("slot {slot}: {why}")]
    KeyNotMoved {
        slot: u16,
        why: String,
        too_big: bool,
    },
    /// The cluster is not in a state the operation can work with, or the caller
    /// named something that does not exist (an unknown node, a bad slot).
    #[error("{0}")]
    State(String),
}

impl ClusterError {
    /// Errors that mean "could not talk to the cluster" (exit code 2), as opposed
    /// to a node refusing a command.
    pub fn is_connection(&self) -> bool {
        matches!(
            self,
            ClusterError::Connect { .. } | ClusterError::Timeout { .. } | ClusterError::Io { .. }
        )
    }

    /// A refusal to act in the cluster's present state (nothing written for it), as
    /// opposed to a failure part-way.
    pub fn is_refusal(&self) -> bool {
        matches!(self, ClusterError::Refused(_))
    }

    /// The error text Redis sent, for a command error (e.g. `BUSYKEY ...`).
    pub fn server_reply(&self) -> Option<&str> {
        match self {
            ClusterError::Command { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

fn plural(n: usize) -> String {
    if n == 1 {
        "1 key exists".into()
    } else {
        format!("{n} keys exist")
    }
}
