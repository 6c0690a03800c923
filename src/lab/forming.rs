//! `lab up`: start every node, form the cluster with the bundled `create` and
//! `add-node` (through `stdlib/lab/form.rhai`, one way of forming a cluster for
//! operators, the lab and the tests), load keys.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use futures::future::join_all;
use tokio::runtime::Handle;

use super::probe::text_of;
use super::processes::{current_pid, down_dir, read_pid, running, start_failure, start_node};
use super::spec::BUS_OFFSET;
use super::{server, Lab, LabError, LabNode, LabRole, LabSpec, HOST};
use crate::cluster::conn::args;
use crate::cluster::live::LiveCluster;
use crate::cluster::slot::slot_of;
use crate::cluster::topology::format_ranges;
use crate::cluster::{Cluster, ClusterError, SLOTS};
use crate::script::host::RunOptions;
use crate::script::path::ScriptPath;

/// How long the cluster may take to form before `up` gives up.
const CONVERGE: Duration = Duration::from_secs(30);
/// How long a freshly started `redis-server` may take to answer `PING`.
const START: Duration = Duration::from_secs(10);

const POLL: Duration = Duration::from_millis(100);

/// SETs per pipeline when loading keys.
const LOAD_BATCH: usize = 1000;

/// Start a lab: one `redis-server` per node, the cluster formed by the bundled
/// `create` and `add-node`, and `spec.keys` keys loaded.
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

    // Spare nodes are started, not joined.
    let spares: Vec<LabNode> = nodes
        .iter()
        .filter(|n| n.role == LabRole::Spare)
        .cloned()
        .collect();
    nodes.retain(|n| n.role != LabRole::Spare);
    let owner = form(&lab, &mut nodes, spec, rt)?;
    lab.nodes = nodes;
    load_keys(&lab, &cluster, &owner, spec, rt)?;
    wait_for_replicas(&lab, &cluster, rt)?;
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

/// Form the cluster of `nodes` (masters, replicas, empty masters) with the bundled
/// `create` and `add-node` (`stdlib/lab/form.rhai`), and record each master's slots and
/// each replica's master as `create` planned them. Returns the owner of every slot, as
/// an index into `nodes`.
fn form(
    lab: &Lab,
    nodes: &mut [LabNode],
    spec: &LabSpec,
    rt: &Handle,
) -> Result<Vec<usize>, LabError> {
    let addrs = |keep: &dyn Fn(&LabNode) -> bool| -> rhai::Array {
        nodes
            .iter()
            .filter(|n| keep(n))
            .map(|n| n.addr().into())
            .collect()
    };
    let mut args = rhai::Map::new();
    args.insert(
        "nodes".into(),
        addrs(&|n| matches!(n.role, LabRole::Master | LabRole::Replica)).into(),
    );
    args.insert("replicas".into(), (spec.replicas as i64).into());
    args.insert(
        "empty".into(),
        addrs(&|n| n.role == LabRole::EmptyMaster).into(),
    );
    args.insert("ms".into(), (CONVERGE.as_millis() as i64).into());
    let opts = RunOptions {
        yes: true,
        quiet: true,
        ..RunOptions::default()
    };
    let formed = lab.run_script("lab/form", args, rt, ScriptPath::default(), opts)?;
    let plan: FormedPlan = rhai::serde::from_dynamic(&formed)
        .map_err(|e| LabError::Script(format!("lab/form returned an unexpected plan: {e}")))?;
    let mut owner = vec![0usize; usize::from(SLOTS)];
    for m in &plan.masters {
        let i = nodes.iter().position(|n| n.addr() == m.addr);
        let (Some(i), Ok(a), Ok(b)) = (i, u16::try_from(m.start), u16::try_from(m.end)) else {
            return Err(LabError::Script(format!(
                "lab/form made {} a master with slots {}-{}, not a node of the lab",
                m.addr, m.start, m.end
            )));
        };
        nodes[i].role = LabRole::Master;
        nodes[i].master = None;
        nodes[i].slots = format_ranges(&[(a, b)]);
        for slot in owner
            .iter_mut()
            .take(usize::from(b) + 1)
            .skip(usize::from(a))
        {
            *slot = i;
        }
    }
    for r in &plan.replicas {
        let master = nodes.iter().find(|n| n.addr() == r.master).map(|n| n.port);
        let Some(n) = nodes.iter_mut().find(|n| n.addr() == r.addr) else {
            return Err(LabError::Script(format!(
                "lab/form made {} a replica, not a node of the lab",
                r.addr
            )));
        };
        n.role = LabRole::Replica;
        n.master = master;
        n.slots.clear();
    }
    Ok(owner)
}

/// What `stdlib/lab/form.rhai` returns: the plan `create` formed the cluster with.
#[derive(serde::Deserialize)]
struct FormedPlan {
    masters: Vec<FormedMaster>,
    replicas: Vec<FormedReplica>,
}

#[derive(serde::Deserialize)]
struct FormedMaster {
    addr: String,
    start: i64,
    end: i64,
}

#[derive(serde::Deserialize)]
struct FormedReplica {
    addr: String,
    master: String,
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

/// Wait until every replica has every key its master was given (`WAIT` on each master
/// with replicas): a lab is compared node by node as soon as it is up.
fn wait_for_replicas(lab: &Lab, cluster: &LiveCluster, rt: &Handle) -> Result<(), LabError> {
    let waits = lab
        .nodes
        .iter()
        .filter(|m| m.role == LabRole::Master)
        .filter_map(|m| {
            let replicas = lab
                .nodes
                .iter()
                .filter(|r| r.master == Some(m.port))
                .count();
            (replicas > 0).then(|| (m.addr(), replicas))
        })
        .map(|(addr, replicas)| async move {
            let words = args([
                "WAIT".to_string(),
                replicas.to_string(),
                CONVERGE.as_millis().to_string(),
            ]);
            let got = cluster
                .pool()
                .cmd_timeout(&addr, &words, CONVERGE + Duration::from_secs(5))
                .await?;
            Ok::<_, ClusterError>((addr, replicas, got))
        });
    for r in rt.block_on(join_all(waits)) {
        let (addr, replicas, got) = r?;
        if !matches!(got, crate::cluster::Reply::Int(n) if n >= replicas as i64) {
            return Err(LabError::Converge {
                node: addr,
                problem: format!("its {replicas} replica(s) did not acknowledge every key"),
                secs: CONVERGE.as_secs(),
            });
        }
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
