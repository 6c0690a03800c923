//! Snapshots: a cluster's topology (every node's own `CLUSTER NODES`) and the key
//! names per slot per master, saved to a JSON file, and a read-only cluster that
//! answers from such a file. Scripts run against it through the in-memory cluster,
//! with no server at all. Values are not saved: key names only.

use std::collections::BTreeMap;
use std::path::Path;

use super::mover::{MoveOpts, SlotMove, SlotMoved};
use super::topology::parse_cluster_nodes;
use super::{Cluster, ClusterError, Key, MigrateOpts, NodeState, NodeView, Reply, Result, SetSlot};

/// One node in a snapshot file.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SnapshotNode {
    pub addr: String,
    /// Its own `CLUSTER NODES`, or `None` when it could not be asked.
    pub cluster_nodes: Option<String>,
    pub error: Option<String>,
    pub keys: u64,
    /// Key names per slot (only slots with keys), exactly.
    pub slots: BTreeMap<u16, Vec<StoredKey>>,
}

/// A key name in a snapshot file, exactly: text when it is UTF-8, else its bytes in
/// hex (`{"hex": "ff00"}`), so that a snapshot reproduces every name.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(untagged)]
pub enum StoredKey {
    Text(String),
    Bytes { hex: String },
}

impl StoredKey {
    pub fn of(key: &[u8]) -> StoredKey {
        match std::str::from_utf8(key) {
            Ok(t) => StoredKey::Text(t.to_string()),
            Err(_) => StoredKey::Bytes {
                hex: key.iter().map(|b| format!("{b:02x}")).collect(),
            },
        }
    }

    pub fn bytes(&self) -> Key {
        match self {
            StoredKey::Text(t) => t.as_bytes().to_vec(),
            StoredKey::Bytes { hex } => (0..hex.len() / 2)
                .filter_map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
                .collect(),
        }
    }
}

/// The file `slotsmith snapshot save` writes.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Snapshot {
    pub version: u32,
    pub seed: String,
    pub nodes: Vec<SnapshotNode>,
}

fn raw_nodes_text(c: &dyn Cluster, addr: &str) -> Result<String> {
    match c.call(addr, &[b"CLUSTER".to_vec(), b"NODES".to_vec()])? {
        Reply::Bulk(b) => Ok(String::from_utf8_lossy(&b).to_string()),
        Reply::Status(s) => Ok(s),
        other => Err(ClusterError::State(format!(
            "CLUSTER NODES on {addr}: unexpected reply {other:?}"
        ))),
    }
}

impl Snapshot {
    /// Read a cluster: every node's view, and every master's key names per slot.
    pub fn take(c: &dyn Cluster) -> Result<Snapshot> {
        let mut nodes = Vec::new();
        for v in c.views()? {
            let mut node = SnapshotNode {
                addr: v.addr.clone(),
                cluster_nodes: None,
                error: None,
                keys: 0,
                slots: BTreeMap::new(),
            };
            match &v.state {
                Err(e) => node.error = Some(e.clone()),
                Ok(st) => {
                    node.cluster_nodes = Some(raw_nodes_text(c, &v.addr)?);
                    node.keys = st.keys;
                    if st.myself().is_some_and(|m| m.is_master()) {
                        for (slot, n) in c.key_counts(&v.addr, None)? {
                            let keys = c.getkeysinslot(&v.addr, slot, n)?;
                            node.slots
                                .insert(slot, keys.iter().map(|k| StoredKey::of(k)).collect());
                        }
                    }
                }
            }
            nodes.push(node);
        }
        Ok(Snapshot {
            version: 1,
            seed: c.seed(),
            nodes,
        })
    }

    pub fn save(&self, path: &Path) -> std::result::Result<(), String> {
        let text = serde_json::to_string(self).map_err(|e| e.to_string())?;
        std::fs::write(path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
    }

    pub fn load(path: &Path) -> std::result::Result<Snapshot, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read snapshot {}: {e}", path.display()))?;
        let snap: Snapshot = serde_json::from_str(&text)
            .map_err(|e| format!("{} is not a slotsmith snapshot: {e}", path.display()))?;
        for n in &snap.nodes {
            if let Some(text) = &n.cluster_nodes {
                parse_cluster_nodes(text)
                    .map_err(|e| format!("{}: node {}: {e}", path.display(), n.addr))?;
            }
        }
        Ok(snap)
    }

    fn node(&self, addr: &str) -> Result<&SnapshotNode> {
        self.nodes
            .iter()
            .find(|n| n.addr == addr)
            .ok_or_else(|| ClusterError::Connect {
                addr: addr.to_string(),
                reason: "not a node of the snapshot".into(),
            })
    }
}

fn read_only(addr: &str, what: &str) -> ClusterError {
    ClusterError::State(format!(
        "{what} on {addr}: a snapshot is read-only (run it with --dry-run)"
    ))
}

impl Cluster for Snapshot {
    fn seed(&self) -> String {
        self.seed.clone()
    }

    fn views(&self) -> Result<Vec<NodeView>> {
        Ok(self
            .nodes
            .iter()
            .map(|n| NodeView {
                addr: n.addr.clone(),
                state: match (&n.cluster_nodes, &n.error) {
                    (Some(text), _) => parse_cluster_nodes(text)
                        .map(|nodes| NodeState {
                            nodes,
                            keys: n.keys,
                            cluster_state: None,
                            current_epoch: None,
                        })
                        .map_err(|e| e.to_string()),
                    (None, e) => Err(e.clone().unwrap_or_else(|| "not asked".into())),
                },
            })
            .collect())
    }

    fn countkeysinslot(&self, addr: &str, slot: u16) -> Result<u64> {
        Ok(self
            .node(addr)?
            .slots
            .get(&slot)
            .map_or(0, |k| k.len() as u64))
    }

    fn getkeysinslot(&self, addr: &str, slot: u16, count: u64) -> Result<Vec<Key>> {
        Ok(self
            .node(addr)?
            .slots
            .get(&slot)
            .map(|k| {
                k.iter()
                    .take(count as usize)
                    .map(StoredKey::bytes)
                    .collect()
            })
            .unwrap_or_default())
    }

    fn migrate(&self, src: &str, _dst: &str, _keys: &[Key], _opts: MigrateOpts) -> Result<()> {
        Err(read_only(src, "MIGRATE"))
    }

    fn setslot(&self, addr: &str, _slot: u16, _action: &SetSlot) -> Result<()> {
        Err(read_only(addr, "CLUSTER SETSLOT"))
    }

    fn addslots(&self, addr: &str, _slots: &[u16]) -> Result<()> {
        Err(read_only(addr, "CLUSTER ADDSLOTS"))
    }

    fn delslots(&self, addr: &str, _slots: &[u16]) -> Result<()> {
        Err(read_only(addr, "CLUSTER DELSLOTS"))
    }

    fn call(&self, addr: &str, args: &[Vec<u8>]) -> Result<Reply> {
        let words: Vec<String> = args
            .iter()
            .take(2)
            .map(|a| String::from_utf8_lossy(a).to_ascii_uppercase())
            .collect();
        match words
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
            .as_slice()
        {
            ["CLUSTER", "NODES"] => Ok(Reply::Bulk(
                self.node(addr)?
                    .cluster_nodes
                    .clone()
                    .unwrap_or_default()
                    .into_bytes(),
            )),
            ["DBSIZE", ..] => Ok(Reply::Int(self.node(addr)?.keys as i64)),
            ["PING", ..] => Ok(Reply::Status("PONG".into())),
            _ => Err(ClusterError::State(format!(
                "{} on {addr}: a snapshot holds only the topology and key names",
                super::conn::describe(args)
            ))),
        }
    }

    fn key_counts(&self, addr: &str, slots: Option<&[u16]>) -> Result<Vec<(u16, u64)>> {
        Ok(self
            .node(addr)?
            .slots
            .iter()
            .filter(|(s, _)| slots.is_none_or(|w| w.contains(s)))
            .map(|(s, k)| (*s, k.len() as u64))
            .collect())
    }

    fn dump(&self, addr: &str, _keys: &[Key]) -> Result<Vec<Option<Vec<u8>>>> {
        Err(ClusterError::State(format!(
            "DUMP on {addr}: a snapshot holds key names, not values"
        )))
    }

    fn claim_slot(&self, addr: &str, _slot: u16) -> Result<()> {
        Err(read_only(addr, "claim_slot"))
    }

    fn move_slots(&self, moves: &[SlotMove], _opts: &MoveOpts) -> Result<SlotMoved> {
        Err(read_only(
            &moves.first().map(|m| m.src.clone()).unwrap_or_default(),
            "move_slots",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::StoredKey;

    #[test]
    fn key_names_are_stored_exactly() {
        for key in [b"user:1".to_vec(), vec![0xff, 0x00, b'x'], b"".to_vec()] {
            let stored = StoredKey::of(&key);
            let text = serde_json::to_string(&stored).unwrap();
            let back: StoredKey = serde_json::from_str(&text).unwrap();
            assert_eq!(back.bytes(), key, "{text}");
        }
        assert_eq!(
            serde_json::to_string(&StoredKey::of(&[0xff, 0x01])).unwrap(),
            r#"{"hex":"ff01"}"#
        );
    }
}
