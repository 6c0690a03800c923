//! Replicas in the model: they follow their masters' view of the owners.

use std::collections::{BTreeMap, HashMap};

use crate::cluster::NodeView;

/// A replica learns who owns which slot from its master (by gossip, a moment after
/// the master does): in the copy, every replica's view of the owners is its master's.
/// The plan never writes to replicas, so without this a dry run would end with the
/// replicas disagreeing where the live run ends agreed. Servers that move slots
/// themselves (Valkey 9) also replicate every `CLUSTER SETSLOT` to the master's
/// replicas before answering: there a replica's own markers are its master's too
/// (`replicates(master address)` says which masters do).
pub(super) fn replicas_follow_masters(views: &mut [NodeView], replicates: impl Fn(&str) -> bool) {
    // Master id -> (node id, slots) as that master sees them.
    type Table = Vec<(String, Vec<(u16, u16)>)>;
    type Markers = (BTreeMap<u16, String>, BTreeMap<u16, String>);
    let mut owners: HashMap<String, Table> = HashMap::new();
    let mut markers: HashMap<String, Markers> = HashMap::new();
    for v in views.iter() {
        let Ok(st) = v.state.as_ref() else { continue };
        let Some(me) = st.myself().filter(|me| me.is_master()) else {
            continue;
        };
        owners.insert(
            me.id.clone(),
            st.nodes
                .iter()
                .map(|n| (n.id.clone(), n.slots.clone()))
                .collect(),
        );
        if replicates(&v.addr) {
            markers.insert(me.id.clone(), (me.migrating.clone(), me.importing.clone()));
        }
    }
    for v in views.iter_mut() {
        let Ok(st) = v.state.as_mut() else { continue };
        let Some(master) = st
            .myself()
            .filter(|me| me.is_replica())
            .and_then(|me| me.master_id.clone())
        else {
            continue;
        };
        let Some(table) = owners.get(&master) else {
            continue;
        };
        for n in &mut st.nodes {
            if let Some((_, slots)) = table.iter().find(|(id, _)| *id == n.id) {
                n.slots = slots.clone();
            }
            if let (true, Some((migrating, importing))) = (n.is_myself(), markers.get(&master)) {
                n.migrating = migrating.clone();
                n.importing = importing.clone();
            }
        }
    }
}
