//! What every registered primitive shares: the cluster it acts on, the run's options,
//! and the conversions between cluster types and Rhai values (node maps, keys).
//! Owns no policy: the scripts decide what to do with what it returns.

use std::cell::RefCell;
use std::rc::Rc;

use rhai::{Array, Blob, Dynamic, EvalAltResult, Map, Position};

use crate::cluster::{Cluster, ClusterError, Key, NodeInfo};

/// How this run may interact with the operator.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `--yes`: do not ask before changing the cluster.
    pub yes: bool,
    /// `--json`: stdout holds one JSON document, so `print` goes to stderr.
    pub json: bool,
    pub verbose: bool,
    pub quiet: bool,
    /// Rhai operations a script may run before it is stopped (0: no limit).
    pub max_operations: u64,
    /// The command line that started this run (secrets masked), to say how to run it
    /// again; `None` in the REPL.
    pub command: Option<String>,
}

/// The state behind every primitive of one engine.
pub struct Host {
    pub cluster: Rc<dyn Cluster>,
    pub opts: RunOptions,
    /// The last cluster error a primitive raised, so the caller can tell a
    /// connection failure (exit 2) from a script failure (exit 1).
    pub last_error: RefCell<Option<ClusterError>>,
    /// Whether the script asked to change the cluster (`confirm`): a dry run that
    /// then planned nothing says so.
    pub asked: std::cell::Cell<bool>,
    /// The phase the script said it is in (`phase`), and when it began.
    pub phase: RefCell<Option<(String, std::time::Instant)>>,
    /// The last topology read, to find nodes named by exact id or address without
    /// asking every node again (a node keeps its address).
    known: RefCell<Vec<NodeInfo>>,
    /// The process's interruptions, handed to every move a primitive makes.
    pub stop: crate::cluster::Stop,
}

pub type RhaiResult<T> = Result<T, Box<EvalAltResult>>;

impl Host {
    pub fn new(cluster: Rc<dyn Cluster>, opts: RunOptions) -> Self {
        Host {
            cluster,
            opts,
            last_error: RefCell::new(None),
            asked: std::cell::Cell::new(false),
            phase: RefCell::new(None),
            known: RefCell::new(Vec::new()),
            stop: crate::interrupt::stop(),
        }
    }

    /// Turn a cluster error into a script error, remembering it.
    pub fn fail(&self, e: ClusterError) -> Box<EvalAltResult> {
        let msg = e.to_string();
        *self.last_error.borrow_mut() = Some(e);
        runtime_error(msg)
    }

    /// Run a cluster call, converting its error.
    pub fn cl<T>(&self, r: crate::cluster::Result<T>) -> RhaiResult<T> {
        r.map_err(|e| self.fail(e))
    }

    /// Every node, as each describes itself where reachable.
    pub fn topology(&self) -> RhaiResult<Vec<NodeInfo>> {
        let views = self.cl(self.cluster.views())?;
        let nodes = crate::cluster::merged_nodes(&views);
        // Kept without markers: `locate` is for ids, addresses, roles and owned
        // slots, and copying hundreds of markers per call would cost more than the
        // call itself.
        self.known.replace(
            nodes
                .iter()
                .map(|n| NodeInfo {
                    migrating: Default::default(),
                    importing: Default::default(),
                    ..n.clone()
                })
                .collect(),
        );
        Ok(nodes)
    }

    /// A node a primitive acts on, for its address, id, role and owned slots (not its
    /// markers): from the last topology read when it is named there by exact id or
    /// address, else as [`Host::resolve`] finds it. Saves reading every node's view for
    /// each call of a per-slot primitive.
    pub fn locate(&self, node: &Dynamic) -> RhaiResult<NodeInfo> {
        if let Ok(word) = node_word(node) {
            let known = self.known.borrow();
            if let Some(n) = known
                .iter()
                .find(|n| !n.handshake() && (n.id == word || n.addr() == word))
            {
                return Ok(n.clone());
            }
        }
        self.resolve(node)
    }

    /// Find a node from a node map, an id, a unique id prefix (8+ chars) or `host:port`.
    /// A node that is still in handshake (it was just met) is waited for, up to 5 s:
    /// until the handshake ends it has no id the others know.
    pub fn resolve(&self, node: &Dynamic) -> RhaiResult<NodeInfo> {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        loop {
            let nodes = self.topology()?;
            match resolve_in(&nodes, node) {
                Ok(n) => return Ok(n),
                Err(e) => {
                    let word = node_word(node).unwrap_or_default();
                    let joining = nodes.iter().any(|n| n.handshake() && n.addr() == word);
                    if !joining || std::time::Instant::now() >= deadline {
                        return Err(self.fail(e));
                    }
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
            }
        }
    }
}

/// A Rhai runtime error with a message.
pub fn runtime_error(msg: impl Into<String>) -> Box<EvalAltResult> {
    Box::new(EvalAltResult::ErrorRuntime(
        Dynamic::from(msg.into()),
        Position::NONE,
    ))
}

/// What the caller wrote to name a node, for resolution and error messages.
fn node_word(node: &Dynamic) -> Result<String, ClusterError> {
    if let Some(map) = node.read_lock::<Map>() {
        for field in ["id", "addr"] {
            if let Some(v) = map.get(field) {
                if let Some(s) = v.read_lock::<rhai::ImmutableString>() {
                    return Ok(s.to_string());
                }
            }
        }
        return Err(ClusterError::State(
            "a node map needs an \"id\" or an \"addr\" field".into(),
        ));
    }
    if let Some(s) = node.read_lock::<rhai::ImmutableString>() {
        return Ok(s.to_string());
    }
    Err(ClusterError::State(format!(
        "expected a node (a node map, an id, an id prefix or \"host:port\"), got {}",
        node.type_name()
    )))
}

/// Resolve a node name against a list of nodes.
pub fn resolve_in(nodes: &[NodeInfo], node: &Dynamic) -> Result<NodeInfo, ClusterError> {
    let word = node_word(node)?;
    resolve_word(nodes, &word)
}

/// Resolve `id`, unique id prefix (8+ characters) or `host:port`.
pub fn resolve_word(nodes: &[NodeInfo], word: &str) -> Result<NodeInfo, ClusterError> {
    // A node in handshake has a temporary id that nobody else will know.
    let known = || nodes.iter().filter(|n| !n.handshake());
    if word.contains(':') {
        return known()
            .find(|n| {
                n.addr() == word
                    || n.hostname
                        .as_deref()
                        .map(|h| format!("{h}:{}", n.port))
                        .as_deref()
                        == Some(word)
            })
            .cloned()
            .ok_or_else(|| ClusterError::State(format!("no node at {word} in this cluster")));
    }
    if let Some(n) = known().find(|n| n.id == word) {
        return Ok(n.clone());
    }
    if word.len() < 8 {
        return Err(ClusterError::State(format!(
            "node id prefix \"{word}\" is too short: give at least 8 characters, a full id or host:port"
        )));
    }
    let matches: Vec<&NodeInfo> = known().filter(|n| n.id.starts_with(word)).collect();
    match matches.as_slice() {
        [one] => Ok((*one).clone()),
        [] => Err(ClusterError::State(format!(
            "no node with id {word} in this cluster"
        ))),
        many => Err(ClusterError::State(format!(
            "node id prefix \"{word}\" is ambiguous: it matches {}",
            many.iter().map(|n| n.addr()).collect::<Vec<_>>().join(", ")
        ))),
    }
}

/// A node as the map scripts see.
pub fn node_map(n: &NodeInfo) -> Map {
    let mut m = Map::new();
    m.insert("id".into(), n.id.clone().into());
    m.insert("host".into(), n.host.clone().into());
    m.insert("port".into(), (n.port as i64).into());
    m.insert("addr".into(), n.addr().into());
    m.insert(
        "hostname".into(),
        n.hostname
            .clone()
            .map(Dynamic::from)
            .unwrap_or(Dynamic::UNIT),
    );
    m.insert("role".into(), n.role().into());
    m.insert(
        "master_id".into(),
        n.master_id
            .clone()
            .map(Dynamic::from)
            .unwrap_or(Dynamic::UNIT),
    );
    m.insert(
        "flags".into(),
        n.flags
            .iter()
            .cloned()
            .map(Dynamic::from)
            .collect::<Array>()
            .into(),
    );
    m.insert("link".into(), n.link.clone().into());
    m.insert("epoch".into(), (n.epoch as i64).into());
    m.insert(
        "slots".into(),
        n.slots
            .iter()
            .map(|(a, b)| Dynamic::from(vec![Dynamic::from(*a as i64), Dynamic::from(*b as i64)]))
            .collect::<Array>()
            .into(),
    );
    let markers = |mm: &std::collections::BTreeMap<u16, String>| -> Map {
        mm.iter()
            .map(|(s, id)| (s.to_string().into(), Dynamic::from(id.clone())))
            .collect()
    };
    m.insert("migrating".into(), markers(&n.migrating).into());
    m.insert("importing".into(), markers(&n.importing).into());
    m.insert("failing".into(), n.failing().into());
    m
}

/// A key as a script sees it: a string when it is UTF-8, else a blob.
pub fn key_value(k: Key) -> Dynamic {
    match String::from_utf8(k) {
        Ok(s) => s.into(),
        Err(e) => Dynamic::from_blob(e.into_bytes()),
    }
}

/// One key or an array of keys (strings or blobs) from a script.
pub fn keys_arg(v: &Dynamic) -> Result<Vec<Key>, ClusterError> {
    let one = |d: &Dynamic| -> Result<Key, ClusterError> {
        if let Some(s) = d.read_lock::<rhai::ImmutableString>() {
            return Ok(s.as_bytes().to_vec());
        }
        if let Some(b) = d.read_lock::<Blob>() {
            return Ok(b.clone());
        }
        Err(ClusterError::State(format!(
            "a key must be a string or a blob, got {}",
            d.type_name()
        )))
    };
    if let Some(arr) = v.read_lock::<Array>() {
        return arr.iter().map(one).collect();
    }
    Ok(vec![one(v)?])
}

/// Check a script's slot number.
pub fn slot_arg(slot: i64) -> Result<u16, ClusterError> {
    if (0..crate::cluster::SLOTS as i64).contains(&slot) {
        Ok(slot as u16)
    } else {
        Err(ClusterError::State(format!(
            "slot {slot} is out of range: slots are 0 to 16383"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::topology::parse_cluster_nodes;

    fn nodes() -> Vec<NodeInfo> {
        parse_cluster_nodes(
            "abcdef0123456789abcdef0123456789abcdef01 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-8191\n\
             abcdef0199999999abcdef0123456789abcdef02 127.0.0.1:7002@17002 master - 0 0 2 connected 8192-16383\n\
             1234567890123456789012345678901234567890 127.0.0.1:7003@17003 slave abcdef0123456789abcdef0123456789abcdef01 0 0 1 connected\n",
        )
        .expect("parses")
    }

    #[test]
    fn nodes_resolve_by_id_prefix_and_address_with_clear_errors() {
        let n = nodes();
        assert_eq!(resolve_word(&n, "127.0.0.1:7002").unwrap().port, 7002);
        assert_eq!(resolve_word(&n, "12345678").unwrap().port, 7003);
        assert_eq!(
            resolve_word(&n, "abcdef0123456789abcdef0123456789abcdef01")
                .unwrap()
                .port,
            7001
        );
        let e = resolve_word(&n, "abcdef01").unwrap_err().to_string();
        assert_eq!(
            e,
            "node id prefix \"abcdef01\" is ambiguous: it matches 127.0.0.1:7001, 127.0.0.1:7002"
        );
        let e = resolve_word(&n, "abc").unwrap_err().to_string();
        assert!(e.contains("too short"), "{e}");
        let e = resolve_word(&n, "ffffffff").unwrap_err().to_string();
        assert_eq!(e, "no node with id ffffffff in this cluster");
        let e = resolve_word(&n, "127.0.0.1:9").unwrap_err().to_string();
        assert_eq!(e, "no node at 127.0.0.1:9 in this cluster");
        assert!(slot_arg(16384).is_err() && slot_arg(-1).is_err() && slot_arg(0).is_ok());
    }
}
