//! Asking one lab node how it is: its `CLUSTER NODES`, `DBSIZE`, `CLUSTER INFO` and
//! server version, and reading the answers.

use super::server;
use crate::cluster::conn::args;
use crate::cluster::live::LiveCluster;
use crate::cluster::{ClusterError, NodeState, Reply};

/// What one node says about itself.
pub(super) struct Probe {
    /// Its `CLUSTER NODES` and `DBSIZE`.
    pub state: NodeState,
    /// `CLUSTER INFO`.
    pub info: String,
    /// The server's name and version (`INFO server`): `valkey 9.1.2`.
    pub server: String,
}

/// Ask one node for its `CLUSTER NODES`, `DBSIZE`, `CLUSTER INFO` and `INFO server`.
pub(super) async fn probe(cluster: &LiveCluster, addr: &str) -> Result<Probe, ClusterError> {
    let state = cluster.node_state(addr).await?;
    let info = cluster.pool().cmd(addr, &args(["CLUSTER", "INFO"])).await?;
    let about = cluster.pool().cmd(addr, &args(["INFO", "server"])).await?;
    Ok(Probe {
        state,
        info: text_of(info),
        server: server::name_and_version(&text_of(about)),
    })
}

pub(super) fn text_of(r: Reply) -> String {
    match r {
        Reply::Bulk(b) => String::from_utf8_lossy(&b).trim().to_string(),
        Reply::Status(s) => s,
        Reply::Int(i) => i.to_string(),
        other => format!("{other:?}"),
    }
}

pub(super) fn info_field<'a>(info: &'a str, name: &str) -> Option<&'a str> {
    info.lines().find_map(|l| {
        l.trim()
            .split_once(':')
            .filter(|(k, _)| *k == name)
            .map(|(_, v)| v.trim())
    })
}
