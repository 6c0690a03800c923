//! The stdlib scripts on the in-memory cluster, with no server: generated broken
//! states (open, uncovered, disputed slots, keys on the wrong master), then `fix`,
//! then what an operator checks: no open slot, every slot covered, all views agree,
//! every key exactly once.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

use slotsmith::cluster::check::check;
use slotsmith::cluster::memory::MemoryCluster;
use slotsmith::cluster::slot::key_in_slot;
use slotsmith::cluster::snapshot::{Snapshot, SnapshotNode, StoredKey};
use slotsmith::cluster::Cluster;
use slotsmith::script::host::RunOptions;
use slotsmith::script::path::ScriptPath;
use slotsmith::script::Runner;

/// A small deterministic generator (xorshift), so every case can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

const MASTERS: usize = 4;

/// The cluster as each node sees it.
struct World {
    ids: Vec<String>,
    /// owner[view][slot]: the master index that view believes owns the slot.
    owner: Vec<Vec<Option<usize>>>,
    migrating: Vec<BTreeMap<u16, usize>>,
    importing: Vec<BTreeMap<u16, usize>>,
    /// keys[node][slot]
    keys: Vec<BTreeMap<u16, Vec<String>>>,
}

impl World {
    fn healthy(seed: u64) -> World {
        let ids: Vec<String> = (0..MASTERS)
            .map(|i| format!("{:040x}", (seed << 8) + i as u64 + 1))
            .collect();
        let per = 16384 / MASTERS;
        let table: Vec<Option<usize>> = (0..16384)
            .map(|s| Some((s / per).min(MASTERS - 1)))
            .collect();
        World {
            ids,
            owner: vec![table; MASTERS],
            migrating: vec![BTreeMap::new(); MASTERS],
            importing: vec![BTreeMap::new(); MASTERS],
            keys: vec![BTreeMap::new(); MASTERS],
        }
    }

    fn put_keys(&mut self, node: usize, slot: u16, n: usize, tag: &str) {
        let t = key_in_slot(slot, "g");
        let list = self.keys[node].entry(slot).or_default();
        for i in 0..n {
            list.push(format!("{{{t}}}:{tag}{i}"));
        }
    }

    fn text(&self, me: usize) -> String {
        let mut out = String::new();
        for (i, id) in self.ids.iter().enumerate() {
            let flags = if i == me { "myself,master" } else { "master" };
            let port = 30001 + i;
            let mut line = format!(
                "{id} 127.0.0.1:{port}@{} {flags} - 0 0 {} connected",
                port + 10000,
                i + 1
            );
            let owned: Vec<u16> = (0..16384u16)
                .filter(|s| self.owner[me][*s as usize] == Some(i))
                .collect();
            for (a, b) in slotsmith::cluster::topology::ranges_of(&owned) {
                line.push_str(&if a == b {
                    format!(" {a}")
                } else {
                    format!(" {a}-{b}")
                });
            }
            if i == me {
                for (s, t) in &self.migrating[me] {
                    line.push_str(&format!(" [{s}->-{}]", self.ids[*t]));
                }
                for (s, f) in &self.importing[me] {
                    line.push_str(&format!(" [{s}-<-{}]", self.ids[*f]));
                }
            }
            out.push_str(&line);
            out.push('\n');
        }
        out
    }

    fn snapshot(&self) -> Snapshot {
        Snapshot {
            version: 1,
            seed: "127.0.0.1:30001".into(),
            nodes: (0..MASTERS)
                .map(|i| SnapshotNode {
                    addr: format!("127.0.0.1:{}", 30001 + i),
                    cluster_nodes: Some(self.text(i)),
                    error: None,
                    keys: self.keys[i].values().map(|k| k.len() as u64).sum(),
                    slots: self.keys[i]
                        .iter()
                        .filter(|(_, k)| !k.is_empty())
                        .map(|(s, k)| (*s, k.iter().map(|k| StoredKey::of(k.as_bytes())).collect()))
                        .collect(),
                })
                .collect(),
        }
    }

    fn all_keys(&self) -> BTreeSet<String> {
        self.keys
            .iter()
            .flat_map(|m| m.values().flatten().cloned())
            .collect()
    }
}

/// Break the world in one of several ways around a random slot.
fn break_it(w: &mut World, rng: &mut Rng) -> String {
    let slot = rng.below(16384) as u16;
    let a = w.owner[0][slot as usize].unwrap_or(0);
    let b = (a + 1 + rng.below(MASTERS as u64 - 1) as usize) % MASTERS;
    let (ka, kb) = (rng.below(4) as usize, rng.below(4) as usize);
    let kind = rng.below(6);
    match kind {
        // Interrupted migration, both markers, keys split.
        0 => {
            w.migrating[a].insert(slot, b);
            w.importing[b].insert(slot, a);
            w.put_keys(a, slot, ka, "a");
            w.put_keys(b, slot, kb, "b");
        }
        // Only the migrating marker survived.
        1 => {
            w.migrating[a].insert(slot, b);
            w.put_keys(a, slot, ka, "a");
            w.put_keys(b, slot, kb, "b");
        }
        // Only the importing marker.
        2 => {
            w.importing[b].insert(slot, a);
            w.put_keys(a, slot, ka, "a");
            w.put_keys(b, slot, kb, "b");
        }
        // Nobody owns it; keys here and there.
        3 => {
            for v in w.owner.iter_mut() {
                v[slot as usize] = None;
            }
            w.put_keys(a, slot, ka, "a");
            w.put_keys(b, slot, kb, "b");
        }
        // Two masters claim it (b's view and b itself say b).
        4 => {
            w.owner[b][slot as usize] = Some(b);
            w.put_keys(a, slot, ka, "a");
            w.put_keys(b, slot, kb, "b");
        }
        // Keys on a master that does not own the slot.
        _ => {
            w.put_keys(a, slot, ka, "a");
            w.put_keys(b, slot, kb.max(1), "b");
        }
    }
    format!("kind {kind} slot {slot} a {a} b {b} keys {ka}/{kb}")
}

/// Every key the in-memory cluster holds, with how many copies.
fn keys_now(c: &dyn Cluster) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for i in 0..MASTERS {
        let addr = format!("127.0.0.1:{}", 30001 + i);
        for (slot, n) in c.key_counts(&addr, None).unwrap() {
            for k in c.getkeysinslot(&addr, slot, n).unwrap() {
                *out.entry(String::from_utf8(k).unwrap()).or_default() += 1;
            }
        }
    }
    out
}

#[test]
fn fix_settles_generated_broken_states_in_memory() {
    let path = ScriptPath::new(&[]);
    let fix = path.load("fix").unwrap();
    let opts = RunOptions {
        yes: true,
        quiet: true,
        ..RunOptions::default()
    };
    for case in 1..=60u64 {
        let mut rng = Rng(case.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        let mut w = World::healthy(case);
        // A few healthy keys elsewhere, and one to three faults.
        for _ in 0..5 {
            let s = rng.below(16384) as u16;
            let o = w.owner[0][s as usize].unwrap();
            w.put_keys(o, s, 2, "h");
        }
        let faults: Vec<String> = (0..1 + rng.below(3))
            .map(|_| break_it(&mut w, &mut rng))
            .collect();
        let before = w.all_keys();
        let snap: Rc<dyn Cluster> = Rc::new(w.snapshot());
        let memory = Rc::new(MemoryCluster::new(snap));
        let runner = Runner::new(memory.clone(), opts.clone(), path.clone());
        let outcome = runner.run(&fix, &["--force".into()]);
        let report = check(&memory.seed(), &memory.views().unwrap());
        let keys = keys_now(memory.as_ref());
        let context = format!(
            "case {case}: {faults:?}; outcome {:?}; report {:?}",
            outcome.as_ref().map(|o| o.code),
            report
        );
        assert!(outcome.is_ok(), "{context}\n{:?}", outcome.err());
        assert_eq!(outcome.as_ref().map(|o| o.code).ok(), Some(0), "{context}");
        assert!(!memory.plan().is_empty(), "fix wrote nothing: {context}");
        assert!(report.open_slots.is_empty(), "open slots left: {context}");
        assert!(report.uncovered.is_empty(), "uncovered: {context}");
        assert!(report.agree, "views disagree: {context}");
        assert_eq!(
            keys.keys().cloned().collect::<BTreeSet<_>>(),
            before,
            "keys lost or invented: {context}"
        );
        assert!(
            keys.values().all(|n| *n == 1),
            "a key on two masters: {context}"
        );
        // Every key sits on the master that owns its slot.
        let owners = slotsmith::cluster::merged_nodes(&memory.views().unwrap());
        for i in 0..MASTERS {
            let addr = format!("127.0.0.1:{}", 30001 + i);
            let me = owners.iter().find(|n| n.addr() == addr).unwrap();
            for (slot, _) in memory.key_counts(&addr, None).unwrap() {
                assert!(
                    me.owns(slot),
                    "keys of {slot} on {addr}, which does not own it: {context}"
                );
            }
        }
    }
}
