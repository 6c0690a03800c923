//! The model's own tests that need its insides.

use super::*;

#[test]
fn a_modeled_cancel_drops_the_targets_partial_keys_from_its_count() {
    use super::super::snapshot::{Snapshot, SnapshotNode, StoredKey};
    let (a, b) = ("a".repeat(40), "b".repeat(40));
    // Each node's own CLUSTER NODES (`myself` on its own line).
    let text = |me: &str| {
        let flag = |id: &str| if id == me { "myself,master" } else { "master" };
        format!(
            "{a} 127.0.0.1:7401@17401 {} - 0 0 1 connected 0-8191\n{b} 127.0.0.1:7402@17402 {} - 0 0 2 connected 8192-16383\n",
            flag(&a),
            flag(&b)
        )
    };
    let node = |addr: &str, me: &str, keys: Vec<&str>| SnapshotNode {
        addr: addr.into(),
        cluster_nodes: Some(text(me)),
        error: None,
        keys: keys.len() as u64,
        slots: [(
            100u16,
            keys.into_iter()
                .map(|k| StoredKey::Text(k.into()))
                .collect(),
        )]
        .into_iter()
        .collect(),
    };
    // The target holds the two keys of slot 100 it has received so far.
    let snap = Snapshot {
        version: 1,
        seed: "127.0.0.1:7401".into(),
        nodes: vec![
            node("127.0.0.1:7401", &a, vec!["x{0}", "y{0}"]),
            node("127.0.0.1:7402", &b, vec!["x{0}", "y{0}"]),
        ],
    };
    let m = MemoryCluster::new(Rc::new(snap));
    m.inner.borrow_mut().jobs.push((
        "127.0.0.1:7401".into(),
        SlotJob {
            name: "j".into(),
            operation: "EXPORT".into(),
            slots: vec![(100, 100)],
            source: a.clone(),
            target: b.clone(),
            state: "snapshotting".into(),
            ..SlotJob::default()
        },
    ));
    let keys = |addr: &str| {
        m.views()
            .unwrap()
            .iter()
            .find(|v| v.addr == addr)
            .map(|v| v.state.as_ref().unwrap().keys)
    };
    assert_eq!(keys("127.0.0.1:7402"), Some(2));
    assert!(m.cancel_slot_migrations("127.0.0.1:7401").unwrap());
    assert_eq!(m.countkeysinslot("127.0.0.1:7402", 100).unwrap(), 0);
    assert_eq!(keys("127.0.0.1:7402"), Some(0));
    assert_eq!(keys("127.0.0.1:7401"), Some(2));
}
