//! `lab up`: start every node, form the cluster with slotsmith's own connections
//! (config epochs, slots, MEET, REPLICATE), wait until every node agrees, load keys.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use futures::future::join_all;
use tokio::runtime::Handle;

use super::probe::{info_field, probe, text_of, Probe};
use super::processes::{current_pid, down_dir, read_pid, running, start_failure, start_node};
use super::spec::BUS_OFFSET;
use super::{server, Lab, LabError, LabNode, LabRole, LabSpec, HOST};
use crate::cluster::conn::args;
use crate::cluster::live::LiveCluster;
use crate::cluster::slot::slot_of;
use crate::cluster::topology::format_ranges;
use crate::cluster::{Cluster, ClusterError, SLOTS};

/// How long the cluster may take to form before `up` gives up.
const CONVERGE: Duration = Duration::from_secs(30);
/// How long a freshly started `redis-server` may take to answer `PING`.
const START: Duration = Duration::from_secs(10);

const POLL: Duration = Duration::from_millis(100);

/// SETs per pipeline when loading keys.
const LOAD_BATCH: usize = 1000;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_deterministic_and_sized() {
        assert_eq!(value_of(7, 20), b"value-000007:value-0".to_vec());
        assert_eq!(value_of(7, 0), Vec::<u8>::new());
    }
}
