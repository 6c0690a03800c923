//! Membership and roles: MEET, REPLICATE, FORGET, RESET, FAILOVER, CONFIG SET,
//! ADDSLOTSRANGE, and the wait until every node has joined. Mechanism only: the
//! bundled scripts (create, add-node, del-node, failover, forget) decide when.

use std::rc::Rc;
use std::time::{Duration, Instant};

use rhai::{Array, Dynamic, Engine, Map};

use super::def;
use crate::cluster::admin::{self, Admin, FailoverMode};
use crate::cluster::conn::split_addr;
use crate::script::host::{resolve_word, runtime_error, slot_arg, Host, RhaiResult};

/// The address of a node a primitive acts on: one of the cluster (a node map, an id,
/// an id prefix, "host:port"), or any "host:port" not in it yet (a node to meet, to
/// reset, to configure before it joins).
fn addr_arg(h: &Host, what: &str, node: &Dynamic) -> RhaiResult<String> {
    if let Some(word) = node.read_lock::<rhai::ImmutableString>() {
        if word.contains(':') {
            let nodes = h.topology()?;
            if let Ok(n) = resolve_word(&nodes, &word) {
                return Ok(n.addr());
            }
            split_addr(&word).map_err(|e| runtime_error(format!("{what}: {e}")))?;
            return Ok(word.to_string());
        }
    }
    Ok(h.locate(node)?.addr())
}

/// A host for CLUSTER MEET: an IP address as given, a name resolved to one (servers
/// before Redis 7 accept only addresses); IPv4 first.
fn meet_host(host: &str, port: u16) -> Result<String, String> {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    if bare.parse::<std::net::IpAddr>().is_ok() {
        return Ok(bare.to_string());
    }
    use std::net::ToSocketAddrs;
    let addrs: Vec<std::net::SocketAddr> = (bare, port)
        .to_socket_addrs()
        .map_err(|e| format!("meet: host \"{host}\" does not resolve: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .map(|a| a.ip().to_string())
        .ok_or_else(|| format!("meet: host \"{host}\" resolves to no address"))
}

/// A `CONFIG SET` value from a script: a string, a number or a bool.
fn config_value(v: &Dynamic) -> RhaiResult<String> {
    if v.is_string() || v.is_int() || v.is_float() || v.is_bool() {
        Ok(v.to_string())
    } else {
        Err(runtime_error(format!(
            "set_config: value must be a string, a number or a bool, got {}",
            v.type_name()
        )))
    }
}

pub fn register(engine: &mut Engine, host: &Rc<Host>) {
    let h = host.clone();
    def(
        engine,
        "meet",
        &["node: Node", "host: String", "port: int", "()"],
        "CLUSTER MEET host port on node: it greets the node at host:port, and gossip then\nintroduces each to the other's cluster. node may be any \"host:port\", in the cluster or\nnot; a host name is resolved to its address. wait_for_join(ms) waits for the outcome.",
        move |node: Dynamic, host: &str, port: i64| -> RhaiResult<()> {
            let port = u16::try_from(port)
                .ok()
                .filter(|p| *p > 0)
                .ok_or_else(|| runtime_error(format!("meet: port must be 1 to 65535, got {port}")))?;
            if host.is_empty() {
                return Err(runtime_error("meet: host is empty"));
            }
            let host = meet_host(host, port).map_err(runtime_error)?;
            let addr = addr_arg(&h, "meet", &node)?;
            h.cl(h.cluster.admin(&addr, &Admin::Meet { host, port }))
        },
    );
    let h = host.clone();
    def(
        engine,
        "replicate",
        &["node: Node", "master: Node", "()"],
        "CLUSTER REPLICATE on node: it becomes a replica of master (a master of the cluster).\nThe server refuses a node that holds slots or keys.",
        move |node: Dynamic, master: Dynamic| -> RhaiResult<()> {
            let m = h.locate(&master)?;
            if !m.is_master() {
                return Err(runtime_error(format!(
                    "replicate: master {} is a replica; give a master",
                    m.addr()
                )));
            }
            let addr = addr_arg(&h, "replicate", &node)?;
            if addr == m.addr() {
                return Err(runtime_error(format!(
                    "replicate: node and master are the same node, {addr}"
                )));
            }
            h.cl(h.cluster.admin(&addr, &Admin::Replicate { master: m.id }))
        },
    );
    let h = host.clone();
    def(
        engine,
        "forget",
        &["node: Node", "Map"],
        "CLUSTER FORGET on every other node that knows node (a node map, an id or prefix,\n\"host:port\"), all at once (a node forgets for 60 s only). Returns #{forgot: [addrs],\nfailed: [#{node, error}] (refusals, and nodes that could not be asked), ok}.",
        move |node: Dynamic| -> RhaiResult<Map> {
            let id = match h.locate(&node) {
                Ok(n) => n.id,
                // A full id nobody lists any more is still one to forget where known.
                Err(e) => match node.read_lock::<rhai::ImmutableString>() {
                    Some(w) if w.len() == 40 && w.chars().all(|c| c.is_ascii_hexdigit()) => {
                        w.to_string()
                    }
                    _ => return Err(e),
                },
            };
            let done = h.cl(h.cluster.forget_everywhere(&id))?;
            let forgot: Array = done
                .iter()
                .filter(|f| f.error.is_none())
                .map(|f| Dynamic::from(f.node.clone()))
                .collect();
            let failed: Array = done
                .iter()
                .filter_map(|f| {
                    let e = f.error.clone()?;
                    let mut m = Map::new();
                    m.insert("node".into(), f.node.clone().into());
                    m.insert("error".into(), e.into());
                    Some(Dynamic::from(m))
                })
                .collect();
            let mut out = Map::new();
            out.insert("ok".into(), failed.is_empty().into());
            out.insert("forgot".into(), forgot.into());
            out.insert("failed".into(), failed.into());
            Ok(out)
        },
    );
    let h = host.clone();
    def(
        engine,
        "reset",
        &["node: Node", "mode: String", "()"],
        "CLUSTER RESET SOFT|HARD on node (mode \"soft\" or \"hard\"): it forgets every other\nnode and its slots and turns master; hard also takes a new id and epoch 0. The server\nrefuses a master that holds keys. node may be any \"host:port\".",
        move |node: Dynamic, mode: &str| -> RhaiResult<()> {
            let hard = match mode.to_ascii_lowercase().as_str() {
                "soft" => false,
                "hard" => true,
                _ => {
                    return Err(runtime_error(format!(
                        "reset: mode must be \"soft\" or \"hard\", got \"{mode}\""
                    )))
                }
            };
            let addr = addr_arg(&h, "reset", &node)?;
            h.cl(h.cluster.admin(&addr, &Admin::Reset { hard }))
        },
    );
    let h = host.clone();
    def(
        engine,
        "failover",
        &["node: Node", "mode: String", "()"],
        "CLUSTER FAILOVER [FORCE|TAKEOVER] on a replica (mode \"\", \"force\" or \"takeover\"):\nit takes its master's place. Returns once the replica accepted; wait with\nwait_until(|| node(n).role == \"master\", ms). Without a mode, the master\nmust know it as its replica first (wait_for_join after replicate).",
        move |node: Dynamic, mode: &str| -> RhaiResult<()> {
            let mode: FailoverMode = mode
                .parse()
                .map_err(|e| runtime_error(format!("failover: {e}")))?;
            let n = h.resolve(&node)?;
            if n.is_master() {
                return Err(runtime_error(format!(
                    "failover: {} is a master; CLUSTER FAILOVER goes to one of its replicas",
                    n.addr()
                )));
            }
            h.cl(h.cluster.admin(&n.addr(), &Admin::Failover(mode)))
        },
    );
    let h = host.clone();
    def(
        engine,
        "set_config",
        &["node: Node", "name: String", "value: String|int|bool", "()"],
        "CONFIG SET name value on node (the value of a password setting is masked in the\njournal and output). node may be any \"host:port\".",
        move |node: Dynamic, name: &str, value: Dynamic| -> RhaiResult<()> {
            if name.trim().is_empty() {
                return Err(runtime_error("set_config: name is empty"));
            }
            let value = config_value(&value)?;
            let addr = addr_arg(&h, "set_config", &node)?;
            let name = name.to_string();
            h.cl(h.cluster.admin(&addr, &Admin::ConfigSet { name, value }))
        },
    );
    let h = host.clone();
    def(
        engine,
        "addslots_range",
        &["node: Node", "start: int", "end: int", "()"],
        "CLUSTER ADDSLOTSRANGE start end on node (both included); ADDSLOTS of every slot on\na server without it. node may be any \"host:port\".",
        move |node: Dynamic, start: i64, end: i64| -> RhaiResult<()> {
            let s = slot_arg(start).map_err(|e| runtime_error(format!("addslots_range: start: {e}")))?;
            let e = slot_arg(end).map_err(|e| runtime_error(format!("addslots_range: end: {e}")))?;
            if s > e {
                return Err(runtime_error(format!(
                    "addslots_range: start {s} is after end {e}"
                )));
            }
            let addr = addr_arg(&h, "addslots_range", &node)?;
            h.cl(h.cluster.addslots_range(&addr, s, e))
        },
    );
    let h = host.clone();
    def(
        engine,
        "wait_for_join",
        &["timeout_ms: int", "bool"],
        "Wait until every node knows every other node (none in handshake, none without an\naddress) and all agree on each node's role and on the slots: true, or false once\ntimeout_ms has passed (-v says what was still missing).",
        move |timeout_ms: i64| -> RhaiResult<bool> {
            if timeout_ms < 0 {
                return Err(runtime_error(format!(
                    "wait_for_join: timeout_ms must not be negative, got {timeout_ms}"
                )));
            }
            let deadline = Instant::now() + Duration::from_millis(timeout_ms as u64);
            loop {
                let views = h.cl(h.cluster.views())?;
                let why = match admin::joined(&views) {
                    Ok(()) => return Ok(true),
                    Err(why) => why,
                };
                if Instant::now() >= deadline {
                    if h.opts.verbose {
                        eprintln!("wait_for_join: not joined after {timeout_ms} ms: {why}");
                    }
                    return Ok(false);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meet_takes_addresses_as_given_and_resolves_names() {
        assert_eq!(meet_host("10.0.0.7", 7000).unwrap(), "10.0.0.7");
        assert_eq!(meet_host("[::1]", 7000).unwrap(), "::1");
        assert_eq!(meet_host("localhost", 7000).unwrap(), "127.0.0.1");
    }
}
