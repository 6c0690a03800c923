//! What `lab up` should build: the layout of masters, replicas, empty masters and
//! spare nodes on consecutive ports, with its password, ACL user and TLS files.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::state::{LabNode, LabRole};
use super::{lab_dir, server, LabError};
use crate::cluster::conn::TlsOptions;
use crate::cluster::SLOTS;

/// The cluster bus of a node listens on its port plus this.
pub(super) const BUS_OFFSET: u16 = 10000;

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
    pub(super) fn layout(&self) -> Vec<LabNode> {
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

    pub(super) fn validate(&self) -> Result<(), LabError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lab::LabRole;

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
}
