//! Reads: the topology, keys per slot, `check`, and slot arithmetic. Nothing here
//! changes the cluster.

use std::rc::Rc;

use rhai::{Array, Dynamic, Engine, Map};

use super::def;
use crate::cluster::check::{check, migrations};
use crate::cluster::conn::args;
use crate::cluster::jobs::SlotJob;
use crate::cluster::slot::slot_of;
use crate::cluster::{NodeInfo, Reply};
use crate::script::host::{key_value, node_map, runtime_error, slot_arg, Host, RhaiResult};

pub fn register(engine: &mut Engine, host: &Rc<Host>) {
    let h = host.clone();
    def(
        engine,
        "nodes",
        &["Array"],
        "Every node of the cluster as a map (id, host, port, addr, hostname, role, master_id,\nflags, link, epoch, slots, migrating, importing, failing), fresh from every node.",
        move || -> RhaiResult<Array> {
            Ok(h.topology()?.iter().map(|n| Dynamic::from(node_map(n))).collect())
        },
    );
    let h = host.clone();
    def(
        engine,
        "masters",
        &["Array"],
        "Every master (with or without slots) as a node map.",
        move || -> RhaiResult<Array> {
            Ok(h.topology()?
                .iter()
                .filter(|n| n.is_master())
                .map(|n| Dynamic::from(node_map(n)))
                .collect())
        },
    );
    let h = host.clone();
    def(
        engine,
        "replicas_of",
        &["node: Node", "Array"],
        "The replicas of a master, as node maps.",
        move |node: Dynamic| -> RhaiResult<Array> {
            let nodes = h.topology()?;
            let m = crate::script::host::resolve_in(&nodes, &node).map_err(|e| h.fail(e))?;
            Ok(nodes
                .iter()
                .filter(|n| n.master_id.as_deref() == Some(m.id.as_str()))
                .map(|n| Dynamic::from(node_map(n)))
                .collect())
        },
    );
    let h = host.clone();
    def(
        engine,
        "node",
        &["name: Node", "Map"],
        "One node's map, by id, unique id prefix (8+ characters), \"host:port\" or node map.",
        move |node: Dynamic| -> RhaiResult<Map> { Ok(node_map(&h.resolve(&node)?)) },
    );
    let h = host.clone();
    def(
        engine,
        "owner",
        &["slot: int", "Map"],
        "The master that owns a slot (node map), or () when no master does.",
        move |slot: i64| -> RhaiResult<Dynamic> {
            let slot = h.cl(slot_arg(slot))?;
            Ok(h.topology()?
                .iter()
                .find(|n| n.is_master() && n.owns(slot))
                .map(|n| Dynamic::from(node_map(n)))
                .unwrap_or(Dynamic::UNIT))
        },
    );
    let h = host.clone();
    def(
        engine,
        "countkeysinslot",
        &["node: Node", "slot: int", "int"],
        "How many keys of a slot one node holds (CLUSTER COUNTKEYSINSLOT).",
        move |node: Dynamic, slot: i64| -> RhaiResult<i64> {
            let slot = h.cl(slot_arg(slot))?;
            let n = h.locate(&node)?;
            Ok(h.cl(h.cluster.countkeysinslot(&n.addr(), slot))? as i64)
        },
    );
    let h = host.clone();
    def(
        engine,
        "getkeysinslot",
        &["node: Node", "slot: int", "count: int", "Array"],
        "Up to count key names of a slot held by one node (CLUSTER GETKEYSINSLOT).",
        move |node: Dynamic, slot: i64, count: i64| -> RhaiResult<Array> {
            let slot = h.cl(slot_arg(slot))?;
            if count <= 0 {
                return Err(runtime_error(format!(
                    "getkeysinslot: count must be positive, got {count}"
                )));
            }
            let n = h.locate(&node)?;
            Ok(
                h.cl(h.cluster.getkeysinslot(&n.addr(), slot, count as u64))?
                    .into_iter()
                    .map(key_value)
                    .collect(),
            )
        },
    );
    let h = host.clone();
    def(
        engine,
        "other_runs",
        &["Array"],
        "Other runs changing slots on this cluster now, from every master's CLIENT LIST:
slotsmith runs holding the lease, and clients whose last command was MIGRATE or
CLUSTER SETSLOT a moment ago. Each is #{node, client, name, cmd, idle, who}.",
        move || -> RhaiResult<Array> {
            let runs = h.cl(h.cluster.other_runs())?;
            runs.iter()
                .map(|r| {
                    let mut m = rhai::serde::to_dynamic(r)?
                        .try_cast::<Map>()
                        .unwrap_or_default();
                    m.insert("who".into(), r.who().into());
                    Ok(Dynamic::from(m))
                })
                .collect()
        },
    );
    let h = host.clone();
    def(
        engine,
        "moves_atomically",
        &["node: Node", "bool"],
        "Whether a node moves slots itself: atomic slot migration (CLUSTER MIGRATESLOTS,\nValkey 9 or later), which move_slots uses when every master involved has it.",
        move |node: Dynamic| -> RhaiResult<bool> {
            let n = h.locate(&node)?;
            h.cl(h.cluster.moves_atomically(&n.addr()))
        },
    );
    let h = host.clone();
    def(
        engine,
        "slot_migrations",
        &["node: Node", "Array"],
        "The atomic slot migration jobs one node reports (CLUSTER GETSLOTMIGRATIONS), newest\nfirst, each #{name, operation (\"EXPORT\" on the source, \"IMPORT\" on the target), slots\n(array of [start, end]), source, target (node ids), state, message, in_flight,\nunpaused (failed, and the slots may have moved anyway with lost writes), create_time,\nlast_update_time}. Empty on a server without atomic slot migration.",
        move |node: Dynamic| -> RhaiResult<Array> {
            let n = h.locate(&node)?;
            h.cl(h.cluster.slot_migrations(&n.addr()))?
                .iter()
                .map(|j| {
                    let mut m = rhai::serde::to_dynamic(j)?
                        .try_cast::<Map>()
                        .unwrap_or_default();
                    m.insert("in_flight".into(), j.in_flight().into());
                    m.insert("unpaused".into(), j.unpaused().into());
                    Ok(Dynamic::from(m))
                })
                .collect()
        },
    );
    let h = host.clone();
    def(
        engine,
        "check",
        &["Map"],
        "Ask every node in parallel and report: ok, agree, disagreements, open_slots, uncovered,\nmasters (id, addr, keys, slots, replicas), replicas, total_keys, warnings, errors, and\nmigrations: atomic slot migrations in flight (not ok: other moves must wait) or failed\nwithin the last hour, each #{name, slots, source, target, in_flight, unpaused, state, age,\nnodes, text}; unlisted: nodes that cannot list theirs (one sentence each).",
        move || -> RhaiResult<Dynamic> {
            let views = h.cl(h.cluster.views())?;
            let mut report = check(&h.cluster.seed(), &views);
            // Every node that answered is asked for its atomic slot migration jobs, at
            // once; one that cannot say is a warning naming it (a job may be in flight
            // there). A server without them has none.
            let asked: Vec<String> = views
                .iter()
                .filter(|v| v.state.is_ok())
                .map(|v| v.addr.clone())
                .collect();
            let mut jobs: Vec<(String, Vec<SlotJob>)> = Vec::new();
            let mut unlisted: Vec<String> = Vec::new();
            for (a, r) in asked.iter().zip(h.cluster.slot_migrations_of(&asked)) {
                match r {
                    Ok(j) => jobs.push((a.clone(), j)),
                    Err(e) => unlisted.push(crate::cluster::jobs::unlisted(a, &e)),
                }
            }
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            migrations::add(&mut report, &views, &jobs, now);
            migrations::add_unlisted(&mut report, unlisted);
            rhai::serde::to_dynamic(&report)
        },
    );
    let h = host.clone();
    def(
        engine,
        "jobs_refusal",
        &["what: String", "String"],
        "The sentence that refuses to move slots beside atomic slot migrations in flight on\nany master (`cannot {what}: A is sending slots 0-99 to B (atomic slot migration,\nstate); nothing was written ...`), the words moves refuse with; () when none is in\nflight. A master that cannot list its jobs is an error naming it.",
        move |what: &str| -> RhaiResult<Dynamic> {
            let nodes = h.topology()?;
            let ids: Vec<&str> = nodes
                .iter()
                .filter(|n| n.is_master())
                .map(|n| n.id.as_str())
                .collect();
            Ok(
                h.cl(crate::cluster::mover::jobs_refusal(h.cluster.as_ref(), &nodes, &ids, what))?
                    .map_or(Dynamic::UNIT, Dynamic::from),
            )
        },
    );
    let h = host.clone();
    def(
        engine,
        "check_text",
        &["report: Map", "String"],
        "The human report of a check() map, as redis-cli --cluster check prints it.",
        move |report: Dynamic| -> RhaiResult<String> {
            let report: crate::cluster::check::CheckReport = rhai::serde::from_dynamic(&report)
                .map_err(|e| runtime_error(format!("check_text: not a check() report: {e}")))?;
            let _ = &h;
            Ok(crate::cluster::check::render(&report))
        },
    );
    let h = host.clone();
    def(
        engine,
        "keys_per_slot",
        &["node: Node", "Map"],
        "How many keys one node holds in each slot, as a map slot -> count of the slots with keys\n(one pipelined COUNTKEYSINSLOT per slot).",
        move |node: Dynamic| -> RhaiResult<Map> {
            let n = h.locate(&node)?;
            Ok(count_map(h.cl(h.cluster.key_counts(&n.addr(), None))?))
        },
    );
    let h = host.clone();
    def(
        engine,
        "keys_per_slot",
        &["node: Node", "slots: Array", "Map"],
        "keys_per_slot for these slots only (an array of slot numbers): one pipelined\nCOUNTKEYSINSLOT per slot asked.",
        move |node: Dynamic, slots: rhai::Array| -> RhaiResult<Map> {
            let n = h.locate(&node)?;
            let slots: Vec<u16> = slots
                .iter()
                .map(|s| h.cl(slot_arg(s.as_int().unwrap_or(-1))))
                .collect::<RhaiResult<_>>()?;
            Ok(count_map(h.cl(h.cluster.key_counts(&n.addr(), Some(&slots)))?))
        },
    );
    let h = host.clone();
    def(
        engine,
        "slot_states",
        &["slots: Array", "Array"],
        "The state of each slot, as every master says of itself: #{slot, owners: [ids],\nmigrating: #{id: target}, importing: #{id: source}, keys: #{id: count}, down: [ids of\nfailing or unreachable masters involved], failovers: [#{was, now}], marked: #{owners,\nmigrating, importing}}. A marker naming a master that has since turned replica names\nits new master (failovers); `marked` keeps the markers as they are. Every master is\nasked once for its keys in all the slots.",
        move |slots: rhai::Array| -> RhaiResult<rhai::Array> {
            let slots: Vec<u16> = slots
                .iter()
                .map(|s| h.cl(slot_arg(s.as_int().unwrap_or(-1))))
                .collect::<RhaiResult<_>>()?;
            let states = h.cl(crate::cluster::slot_state::states(h.cluster.as_ref(), &slots))?;
            states.iter().map(rhai::serde::to_dynamic).collect()
        },
    );
    let h = host.clone();
    def(
        engine,
        "stray_keys",
        &["node: Node", "Map"],
        "Keys a node holds in slots it does not own (in its own view), as a map slot -> count:\nkeys that clients cannot reach, or that a migration left. Counts the owned slots first and\nstops there when they hold every key (DBSIZE), so a healthy master costs little.",
        move |node: Dynamic| -> RhaiResult<Map> {
            let me = h.locate(&node)?;
            let mut out = stray_keys(&h, &[me])?;
            Ok(out.pop().unwrap_or_default())
        },
    );
    let h = host.clone();
    def(
        engine,
        "stray_keys",
        &["nodes: Array", "Map"],
        "stray_keys of several nodes, all asked at once, as a map id -> (slot -> count).",
        move |nodes: Array| -> RhaiResult<Map> {
            let nodes: Vec<NodeInfo> = nodes
                .iter()
                .map(|n| h.locate(n))
                .collect::<RhaiResult<_>>()?;
            let counts = stray_keys(&h, &nodes)?;
            Ok(nodes
                .iter()
                .zip(counts)
                .map(|(n, c)| (n.id.as_str().into(), Dynamic::from(c)))
                .collect())
        },
    );
    let h = host.clone();
    def(
        engine,
        "common_keys",
        &["slot: int", "a: Node", "b: Node", "Array"],
        "Keys of slot held by both a and b, as #{key, same}: same is true when their DUMP payloads\n(values) are equal, false when they differ, () when a side cannot be read yet.",
        move |slot: i64, a: Dynamic, b: Dynamic| -> RhaiResult<Array> {
            let slot = h.cl(slot_arg(slot))?;
            let a = h.locate(&a)?;
            let b = h.locate(&b)?;
            Ok(h.cl(crate::cluster::mover::common_keys(h.cluster.as_ref(), slot, &a.addr(), &b.addr()))?
                .into_iter()
                .map(|(k, same)| {
                    let mut m = Map::new();
                    m.insert("key".into(), crate::script::host::key_value(k));
                    m.insert("same".into(), same.map(Dynamic::from).unwrap_or(Dynamic::UNIT));
                    Dynamic::from(m)
                })
                .collect())
        },
    );
    def(
        engine,
        "node_with_id",
        &["nodes: Array", "id: String", "Dynamic"],
        "The node map of `nodes` whose id is `id`, or () when there is none: the lookup a step\nover hundreds of slots makes for every slot, at native speed.",
        |nodes: &mut rhai::Array, id: &str| -> Dynamic {
            nodes
                .iter()
                .find(|n| {
                    n.read_lock::<Map>().is_some_and(|m| {
                        m.get("id").is_some_and(|v| {
                            v.read_lock::<rhai::ImmutableString>()
                                .is_some_and(|x| x.as_str() == id)
                        })
                    })
                })
                .cloned()
                .unwrap_or(Dynamic::UNIT)
        },
    );
    def(
        engine,
        "slot_of",
        &["key: String", "int"],
        "The hash slot of a key (CRC16 with hash tags, as Redis Cluster computes it).",
        |key: &str| -> i64 { slot_of(key.as_bytes()) as i64 },
    );
    def(
        engine,
        "slot_of",
        &["key: Blob", "int"],
        "The hash slot of a binary key.",
        |key: rhai::Blob| -> i64 { slot_of(&key) as i64 },
    );
    let h = host.clone();
    def(
        engine,
        "cluster_info",
        &["node: Node", "Map"],
        "CLUSTER INFO of one node as a map (cluster_state, cluster_slots_assigned, ...).",
        move |node: Dynamic| -> RhaiResult<Map> {
            let n = h.locate(&node)?;
            let reply = h.cl(h.cluster.call(&n.addr(), &args(["CLUSTER", "INFO"])))?;
            let text = match reply {
                Reply::Bulk(b) => String::from_utf8_lossy(&b).to_string(),
                Reply::Status(s) => s,
                other => {
                    return Err(runtime_error(format!(
                        "CLUSTER INFO on {}: unexpected reply {other:?}",
                        n.addr()
                    )))
                }
            };
            Ok(info_map(&text))
        },
    );
}

/// `field:value` lines as a map; integers become ints.
pub fn info_map(text: &str) -> Map {
    text.lines()
        .filter_map(|l| l.trim().split_once(':'))
        .map(|(k, v)| {
            let v = v.trim();
            let val = v
                .parse::<i64>()
                .map(Dynamic::from)
                .unwrap_or_else(|_| v.to_string().into());
            (k.into(), val)
        })
        .collect()
}

/// Key counts per slot as a script map: slot (text) -> count.
fn count_map(counts: Vec<(u16, u64)>) -> Map {
    counts
        .into_iter()
        .map(|(s, c)| (s.to_string().into(), Dynamic::from(c as i64)))
        .collect()
}

/// Keys each node holds in slots it does not own (in its own view, as the last
/// topology read keeps it), as slot -> count. The owned slots are counted first, every
/// node at once; only a node whose DBSIZE (read after the count: a write or a delete
/// in between makes them differ) says there are more has its other slots counted.
fn stray_keys(h: &Host, nodes: &[NodeInfo]) -> RhaiResult<Vec<Map>> {
    let owned: Vec<(String, Vec<u16>)> = nodes
        .iter()
        .map(|n| {
            (
                n.addr(),
                (0..crate::cluster::SLOTS).filter(|s| n.owns(*s)).collect(),
            )
        })
        .collect();
    let in_owned: Vec<u64> = h
        .cluster
        .key_counts_of(&owned)
        .into_iter()
        .map(|r| h.cl(r).map(|c| c.iter().map(|(_, n)| n).sum()))
        .collect::<RhaiResult<_>>()?;
    let mut rest: Vec<(String, Vec<u16>)> = Vec::new();
    let mut which: Vec<usize> = Vec::new();
    let addrs: Vec<String> = nodes.iter().map(NodeInfo::addr).collect();
    let sizes = h.cluster.call_each(&addrs, &args(["DBSIZE"]));
    for ((i, n), size) in nodes.iter().enumerate().zip(sizes) {
        let dbsize = match h.cl(size)? {
            crate::cluster::Reply::Int(k) => k.max(0) as u64,
            _ => u64::MAX,
        };
        if in_owned[i] != dbsize {
            rest.push((
                n.addr(),
                (0..crate::cluster::SLOTS).filter(|s| !n.owns(*s)).collect(),
            ));
            which.push(i);
        }
    }
    let mut out = vec![Map::new(); nodes.len()];
    // Keys a node receives in an atomic slot migration in flight are the job's: the
    // node takes the slots with them when it ends, or drops them if it fails.
    let addrs: Vec<String> = which.iter().map(|&i| nodes[i].addr()).collect();
    let jobs = h.cluster.slot_migrations_of(&addrs);
    for ((i, counts), jobs) in which
        .into_iter()
        .zip(h.cluster.key_counts_of(&rest))
        .zip(jobs)
    {
        let importing: Vec<crate::cluster::jobs::SlotJob> = h
            .cl(jobs)?
            .into_iter()
            .filter(|j| j.operation == "IMPORT" && j.in_flight())
            .collect();
        let counts = h
            .cl(counts)?
            .into_iter()
            .filter(|(s, _)| !importing.iter().any(|j| j.has_slot(*s)))
            .collect();
        out[i] = count_map(counts);
    }
    Ok(out)
}
