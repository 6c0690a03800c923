//! Moves in the model, as the live engine makes them: one `CLUSTER MIGRATESLOTS` per
//! source when the live run would be atomic, else the legacy protocol's steps as the
//! live bulk mover takes them ([`crate::cluster::mover::steps`]).

use super::*;
use crate::cluster::mover::{sizes, steps};

/// Move slots as the live engine does, so a dry run shows the same plan: atomic
/// (one `CLUSTER MIGRATESLOTS` per source) when the live run would be, else the
/// legacy protocol's steps in the order the live mover sends them (per pair, in
/// batches: every IMPORTING, every MIGRATING, the keys, then SETSLOT NODE on the
/// target, the source and the other masters).
pub(super) fn move_in_phases(
    c: &MemoryCluster,
    moves: &[SlotMove],
    opts: &MoveOpts,
) -> Result<SlotMoved> {
    let started = std::time::Instant::now();
    let ids = mover::ends_of(moves);
    let views = mover::ready(c, &ids, mover::GOSSIP_WAIT)?;
    let nodes = crate::cluster::merged_nodes(&views);
    let total = SlotMoved::default();
    let mut grouped = mover::pairs_of(&nodes, moves)?;
    let ends = mover::ends_of_pairs(&grouped);
    let mut known = Vec::new();
    if opts.migration != mover::Migration::Legacy {
        for n in ends {
            known.push((n, c.moves_atomically(&n.addr())?));
        }
    }
    if mover::goes_atomic(opts.migration, &known)? {
        // One CLUSTER MIGRATESLOTS per source, as the live cluster sends it; the
        // model then reaches its end state by the steps of the legacy protocol,
        // unrecorded.
        let (sent, _) = mover::not_yet_moved(grouped.clone())?;
        let mut by_source: BTreeMap<String, Vec<&mover::PairMoves>> = BTreeMap::new();
        for p in &sent {
            by_source.entry(p.src.addr()).or_default().push(p);
        }
        for (src, ps) in by_source {
            let slots: Vec<u16> = ps.iter().flat_map(|p| p.slots.iter().copied()).collect();
            let keys: u64 = c
                .key_counts(&src, Some(&slots))?
                .iter()
                .map(|(_, k)| k)
                .sum();
            let command = mover::migrateslots_text(&ps);
            let to = (ps.len() == 1).then(|| ps[0].dst.addr());
            c.record(&src, command, None, keys, to);
            // The jobs as both ends will list them once they have succeeded.
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let mut inner = c.inner.borrow_mut();
            for p in &ps {
                let job = SlotJob {
                    name: format!("dry-run-{}", inner.jobs.len() / 2 + 1),
                    operation: "EXPORT".into(),
                    slots: ranges_of(&p.slots),
                    source: p.src.id.clone(),
                    target: p.dst.id.clone(),
                    state: "success".into(),
                    message: String::new(),
                    create_time: now,
                    last_update_time: now,
                };
                let import = SlotJob {
                    operation: "IMPORT".into(),
                    ..job.clone()
                };
                inner.jobs.push((src.clone(), job));
                inner.jobs.push((p.dst.addr(), import));
            }
        }
        c.inner.borrow_mut().muted = true;
        // Only what was sent moves (slots already with their target stay as they are).
        grouped = sent;
    }
    let r = move_pairs(c, grouped, &views, opts, started, total);
    c.inner.borrow_mut().muted = false;
    r
}

/// How the model takes the steps of a move: each command applied and recorded in the
/// plan, in the order the live cluster pipelines them.
struct Model<'a> {
    c: &'a MemoryCluster,
    /// Keys moved per slot by the steps' MIGRATEs.
    keys: RefCell<BTreeMap<u16, u64>>,
}

/// Whether an error is one command's reply, as a node answers it (the slot goes to the
/// careful mover, as live), rather than a node the model cannot reach (the move stops).
fn replied(e: &ClusterError) -> bool {
    matches!(e, ClusterError::Command { .. })
}

impl Model<'_> {
    /// One SETSLOT: whether it succeeded (or failed with `ok_if`).
    fn setslot_one(&self, node: &str, slot: u16, action: &SetSlot, ok_if: &str) -> Result<bool> {
        match self.c.setslot(node, slot, action) {
            Ok(()) => Ok(true),
            Err(e) if !ok_if.is_empty() && e.server_reply().is_some_and(|t| t.contains(ok_if)) => {
                Ok(true)
            }
            Err(e) if replied(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }
}

impl steps::Sender for Model<'_> {
    async fn setslot(
        &self,
        node: &str,
        slots: &[u16],
        action: &SetSlot,
        ok_if: &str,
    ) -> Result<Vec<u16>> {
        let mut failed = Vec::new();
        for &s in slots {
            if !self.setslot_one(node, s, action, ok_if)? {
                failed.push(s);
            }
        }
        Ok(failed)
    }

    async fn assign(
        &self,
        node: &str,
        slots: &[u16],
        owner: &str,
        quiet: &std::collections::BTreeSet<u16>,
    ) -> Result<Vec<u16>> {
        let mut failed = Vec::new();
        for &s in slots {
            // Both commands go in the same pipeline: the NODE is sent even when the
            // STABLE before it failed.
            let stable = !quiet.contains(&s) || self.setslot_one(node, s, &SetSlot::Stable, "")?;
            let owned = self.setslot_one(node, s, &SetSlot::Node(owner.to_string()), "")?;
            if !(stable && owned) {
                failed.push(s);
            }
        }
        Ok(failed)
    }

    async fn keys(&self, src: &str, slots: &[u16], count: u64) -> Result<Vec<Option<Vec<Key>>>> {
        self.c.touch_many(src, slots);
        let mut out = Vec::with_capacity(slots.len());
        for &s in slots {
            out.push(match self.c.getkeysinslot(src, s, count) {
                Ok(k) => Some(k),
                Err(e) if replied(&e) => None,
                Err(e) => return Err(e),
            });
        }
        Ok(out)
    }

    async fn migrate(
        &self,
        src: &str,
        dst: &str,
        batch: &[(u16, Vec<Key>)],
        opts: MigrateOpts,
    ) -> Result<Vec<bool>> {
        let slots: Vec<u16> = batch.iter().map(|(s, _)| *s).collect();
        self.c.touch_many(dst, &slots);
        let mut out = Vec::with_capacity(batch.len());
        for (s, k) in batch {
            out.push(match self.c.migrate(src, dst, k, opts) {
                Ok(()) => {
                    *self.keys.borrow_mut().entry(*s).or_default() += k.len() as u64;
                    true
                }
                Err(e) if replied(&e) => false,
                Err(e) => return Err(e),
            });
        }
        Ok(out)
    }

    async fn dataset(&self, node: &str) -> Result<Option<u64>> {
        self.c.dataset_bytes(node)
    }

    async fn sizes(&self, node: &str, keys: &[Key]) -> Result<Vec<u64>> {
        self.c.key_sizes(node, keys)
    }

    async fn counts(&self, node: &str, slots: &[u16]) -> Result<Vec<(u16, u64)>> {
        self.c.key_counts(node, Some(slots))
    }
}

/// The legacy protocol's steps over the pairs, batch by batch, as the live bulk mover
/// takes them ([`steps`]); then the slots a step failed on, with the careful mover.
fn move_pairs(
    c: &MemoryCluster,
    pairs: Vec<mover::PairMoves>,
    views: &[NodeView],
    opts: &MoveOpts,
    started: std::time::Instant,
    mut total: SlotMoved,
) -> Result<SlotMoved> {
    let (lanes, batch) = steps::batched(pairs, opts, views);
    let told = steps::told(&crate::cluster::merged_nodes(views));
    let model = Model {
        c,
        keys: RefCell::new(BTreeMap::new()),
    };
    let mut careful: Vec<(usize, u16)> = Vec::new();
    let mut done_slots: Vec<u16> = Vec::new();
    futures::executor::block_on(async {
        for (i, pair) in lanes.iter().enumerate() {
            let sized = steps::sized(&model, &pair.src.addr(), opts).await;
            for chunk in pair.slots.chunks(sizes::batch(batch, sized)) {
                if opts.stop.requested() {
                    total.interrupted = true;
                    break;
                }
                let b = steps::move_batch(&model, pair, chunk, sized, opts).await?;
                steps::tell_others(&model, pair, &b.done, &told).await;
                done_slots.extend(&b.done);
                careful.extend(b.careful.into_iter().map(|s| (i, s)));
                total.left_alone.extend(b.skipped);
            }
        }
        Ok::<(), ClusterError>(())
    })?;
    let mut slot_keys = model.keys.into_inner();
    total.keys += slot_keys.values().sum::<u64>();
    total.slots += done_slots.len() as u64;
    for s in done_slots {
        slot_keys.entry(s).or_default();
    }
    total.slot_keys.extend(slot_keys);
    for (i, slot) in careful {
        if opts.stop.requested() {
            total.interrupted = true;
            break;
        }
        let pair = &lanes[i];
        let now = crate::cluster::merged_nodes(&c.views()?);
        if steps::settled_at(&now, slot, &pair.dst.id) {
            total.slots += 1;
            total.slot_keys.entry(slot).or_default();
            continue;
        }
        let r = match mover::move_slot(c, slot, &pair.src.id, &pair.dst.id, opts) {
            Ok(r) => r,
            Err(e) => match mover::too_big(&e) {
                Some(alone) => {
                    total.left_alone.push(alone);
                    continue;
                }
                None => return Err(e),
            },
        };
        total.slots += r.slots;
        total.keys += r.keys;
        total.overwritten.extend(r.overwritten);
        total.identical.extend(r.identical);
        for (s, k) in r.slot_keys {
            *total.slot_keys.entry(s).or_default() += k;
        }
    }
    total.seconds = started.elapsed().as_secs_f64();
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::conn::{describe, ConnOptions};
    use crate::cluster::mover::steps::Sender;
    use crate::cluster::snapshot::{Snapshot, SnapshotNode, StoredKey};
    use crate::cluster::{commands, Stop};

    const A: &str = "127.0.0.1:7401";
    const B: &str = "127.0.0.1:7402";
    const C: &str = "127.0.0.1:7403";

    /// A holds 0-8191, B the rest, C nothing; D is known to all but has no address
    /// (`noaddr`), so nobody can tell it anything. `keys` are A's, by slot.
    fn snapshot(keys: &BTreeMap<u16, Vec<String>>) -> Snapshot {
        let ids = [
            "a".repeat(40),
            "b".repeat(40),
            "c".repeat(40),
            "d".repeat(40),
        ];
        let text = |me: usize| {
            let flag = |i: usize| if i == me { "myself,master" } else { "master" };
            format!(
                "{} {A}@17401 {} - 0 0 1 connected 0-8191\n{} {B}@17402 {} - 0 0 2 connected 8192-16383\n{} {C}@17403 {} - 0 0 3 connected\n{} :0@0 master,noaddr - 0 0 4 disconnected\n",
                ids[0],
                flag(0),
                ids[1],
                flag(1),
                ids[2],
                flag(2),
                ids[3]
            )
        };
        let node = |i: usize, addr: &str, slots: BTreeMap<u16, Vec<StoredKey>>| SnapshotNode {
            addr: addr.into(),
            cluster_nodes: Some(text(i)),
            error: None,
            keys: slots.values().map(|k| k.len() as u64).sum(),
            slots,
        };
        let stored = keys
            .iter()
            .map(|(s, k)| (*s, k.iter().map(|k| StoredKey::Text(k.clone())).collect()))
            .collect();
        Snapshot {
            version: 1,
            seed: A.into(),
            nodes: vec![
                node(0, A, stored),
                node(1, B, BTreeMap::new()),
                node(2, C, BTreeMap::new()),
            ],
        }
    }

    /// What the live cluster sends for each step, as `(node, command)` (a MIGRATE as
    /// `MIGRATE <slot> <n> keys to <addr>`), while the model takes the step.
    struct Wire<'a> {
        model: Model<'a>,
        sent: RefCell<Vec<(String, String)>>,
        /// Sizes of keys, where the test gives them (the snapshot knows none).
        weights: HashMap<String, u64>,
    }

    impl<'a> Wire<'a> {
        fn new(c: &'a MemoryCluster, weights: HashMap<String, u64>) -> Wire<'a> {
            Wire {
                model: Model {
                    c,
                    keys: RefCell::new(BTreeMap::new()),
                },
                sent: RefCell::new(Vec::new()),
                weights,
            }
        }

        fn send(&self, node: &str, words: &[Vec<u8>]) {
            self.sent
                .borrow_mut()
                .push((node.to_string(), describe(words)));
        }
    }

    impl Sender for Wire<'_> {
        async fn setslot(
            &self,
            node: &str,
            slots: &[u16],
            action: &SetSlot,
            ok_if: &str,
        ) -> Result<Vec<u16>> {
            for s in slots {
                self.send(node, &commands::setslot(*s, action));
            }
            self.model.setslot(node, slots, action, ok_if).await
        }

        async fn assign(
            &self,
            node: &str,
            slots: &[u16],
            owner: &str,
            quiet: &std::collections::BTreeSet<u16>,
        ) -> Result<Vec<u16>> {
            for c in steps::assign_commands(slots, owner, quiet) {
                self.send(node, &c);
            }
            self.model.assign(node, slots, owner, quiet).await
        }

        async fn keys(
            &self,
            src: &str,
            slots: &[u16],
            count: u64,
        ) -> Result<Vec<Option<Vec<Key>>>> {
            self.model.keys(src, slots, count).await
        }

        async fn migrate(
            &self,
            src: &str,
            dst: &str,
            batch: &[(u16, Vec<Key>)],
            opts: MigrateOpts,
        ) -> Result<Vec<bool>> {
            let conn = ConnOptions {
                user: None,
                password: None,
                tls: None,
                timeout: std::time::Duration::from_secs(1),
            };
            for (slot, keys) in batch {
                let words = commands::migrate(dst, keys, opts, &conn)?;
                let text = |w: &[u8]| String::from_utf8_lossy(w).to_string();
                let at = words.iter().position(|w| w == b"KEYS").expect("KEYS");
                let sent = words[at + 1..].len();
                assert!(words[at + 1..].iter().all(|k| slot_of(k) == *slot));
                self.sent.borrow_mut().push((
                    src.to_string(),
                    format!(
                        "MIGRATE {slot} {sent} keys to {}:{}",
                        text(&words[1]),
                        text(&words[2])
                    ),
                ));
            }
            self.model.migrate(src, dst, batch, opts).await
        }

        async fn dataset(&self, node: &str) -> Result<Option<u64>> {
            self.model.dataset(node).await
        }

        async fn sizes(&self, node: &str, keys: &[Key]) -> Result<Vec<u64>> {
            let known = self.model.sizes(node, keys).await?;
            Ok(keys
                .iter()
                .zip(known)
                .map(|(k, n)| {
                    let k = String::from_utf8_lossy(k).to_string();
                    self.weights.get(&k).copied().unwrap_or(n)
                })
                .collect())
        }

        async fn counts(&self, node: &str, slots: &[u16]) -> Result<Vec<(u16, u64)>> {
            self.model.counts(node, slots).await
        }
    }

    /// The dry run's plan, in the same words as [`Wire`].
    fn planned(plan: &[Planned]) -> Vec<(String, String)> {
        plan.iter()
            .map(|p| {
                let command = match (&p.to, p.slot) {
                    (Some(to), Some(slot)) => format!("MIGRATE {slot} {} keys to {to}", p.keys),
                    _ => p.command.clone(),
                };
                (p.node.clone(), command)
            })
            .collect()
    }

    #[test]
    fn a_dry_run_plans_the_commands_the_live_mover_sends_in_its_order() {
        // Four slots of A, three with keys (one needs two MIGRATE rounds of two keys).
        let mut tagged: Vec<(u16, String)> = (0..200)
            .map(|i| format!("t{i}"))
            .map(|t| (slot_of(t.as_bytes()), t))
            .filter(|(s, _)| *s < 8192)
            .collect();
        tagged.sort();
        tagged.dedup_by_key(|(s, _)| *s);
        let slots: Vec<u16> = tagged.iter().take(4).map(|(s, _)| *s).collect();
        let mut keys: BTreeMap<u16, Vec<String>> = BTreeMap::new();
        for ((slot, tag), n) in tagged.iter().zip([3, 1, 0, 2]) {
            if n > 0 {
                keys.insert(*slot, (0..n).map(|i| format!("k{i}{{{tag}}}")).collect());
            }
        }
        let (a, c) = ("a".repeat(40), "c".repeat(40));
        let moves: Vec<SlotMove> = slots
            .iter()
            .map(|s| SlotMove {
                slot: *s,
                src: a.clone(),
                dst: c.clone(),
            })
            .collect();
        let opts = MoveOpts {
            pipeline: 2,
            migration: mover::Migration::Legacy,
            ..MoveOpts::new(Stop::never())
        };

        let dry = MemoryCluster::new(Rc::new(snapshot(&keys)));
        let moved = dry.move_slots(&moves, &opts).expect("the dry run moves");
        assert_eq!(moved.slots, 4);
        assert_eq!(moved.keys, 6);
        let plan = planned(&dry.plan());

        // The live mover's calls of the shared steps, with the words it sends.
        let model = MemoryCluster::new(Rc::new(snapshot(&keys)));
        let views = model.views().unwrap();
        let nodes = crate::cluster::merged_nodes(&views);
        let pairs = mover::pairs_of(&nodes, &moves).unwrap();
        let wire = Wire::new(&model, HashMap::new());
        let (lanes, batch) = steps::batched(pairs, &opts, &views);
        let told = steps::told(&nodes);
        futures::executor::block_on(async {
            for pair in &lanes {
                for chunk in pair.slots.chunks(batch) {
                    let b = steps::move_batch(&wire, pair, chunk, false, &opts)
                        .await
                        .unwrap();
                    assert!(b.careful.is_empty(), "{:?}", b.careful);
                    steps::tell_others(&wire, pair, &b.done, &told).await;
                }
            }
        });
        let sent = wire.sent.into_inner();
        assert_eq!(plan, sent);

        // What that order is: markers, keys round by round, owner on the target (the
        // middle slots made STABLE first), the source, the other master; never the
        // node without an address.
        let at = |node: &str, text: String| (node.to_string(), text);
        let mut expected: Vec<(String, String)> = Vec::new();
        for s in &slots {
            expected.push(at(C, format!("CLUSTER SETSLOT {s} IMPORTING {a}")));
        }
        for s in &slots {
            expected.push(at(A, format!("CLUSTER SETSLOT {s} MIGRATING {c}")));
        }
        for (s, n) in [(slots[0], 2), (slots[1], 1), (slots[3], 2), (slots[0], 1)] {
            expected.push(at(A, format!("MIGRATE {s} {n} keys to {C}")));
        }
        for (i, s) in slots.iter().enumerate() {
            if i == 1 || i == 2 {
                expected.push(at(C, format!("CLUSTER SETSLOT {s} STABLE")));
            }
            expected.push(at(C, format!("CLUSTER SETSLOT {s} NODE {c}")));
        }
        for node in [A, B] {
            for s in &slots {
                expected.push(at(node, format!("CLUSTER SETSLOT {s} NODE {c}")));
            }
        }
        assert_eq!(sent, expected);
    }

    #[test]
    fn sized_rounds_carry_16_mb_and_a_slot_with_a_key_over_the_limit_is_taken_back_untouched() {
        // Slot x: three keys of 10 MB; slot y: a small key and one of 60 MB (both A's).
        let tag = |i: usize| format!("t{i}");
        let mut of_a = (0..200).filter(|i| slot_of(tag(*i).as_bytes()) < 8192);
        let (tx, ty) = (of_a.next().unwrap(), of_a.next().unwrap());
        let (x, y) = (slot_of(tag(tx).as_bytes()), slot_of(tag(ty).as_bytes()));
        assert_ne!(x, y);
        let mut keys: BTreeMap<u16, Vec<String>> = BTreeMap::new();
        keys.insert(x, (0..3).map(|i| format!("k{i}{{t{tx}}}")).collect());
        keys.insert(y, vec![format!("small{{t{ty}}}"), format!("big{{t{ty}}}")]);
        let mb = 1u64 << 20;
        let mut weights: HashMap<String, u64> = HashMap::new();
        for i in 0..3 {
            weights.insert(format!("k{i}{{t{tx}}}"), 10 * mb);
        }
        weights.insert(format!("big{{t{ty}}}"), 60 * mb);
        let opts = MoveOpts {
            migration: mover::Migration::Legacy,
            max_key_bytes: 50 * mb,
            ..MoveOpts::new(Stop::never())
        };
        let (a, c) = ("a".repeat(40), "c".repeat(40));
        let mut slots = vec![x, y];
        slots.sort();
        let moves: Vec<SlotMove> = slots
            .iter()
            .map(|s| SlotMove {
                slot: *s,
                src: a.clone(),
                dst: c.clone(),
            })
            .collect();
        let model = MemoryCluster::new(Rc::new(snapshot(&keys)));
        let nodes = crate::cluster::merged_nodes(&model.views().unwrap());
        let pairs = mover::pairs_of(&nodes, &moves).unwrap();
        let wire = Wire::new(&model, weights);
        let b =
            futures::executor::block_on(steps::move_batch(&wire, &pairs[0], &slots, true, &opts))
                .unwrap();
        assert_eq!(b.done, vec![x]);
        assert!(b.careful.is_empty(), "{:?}", b.careful);
        assert_eq!(b.skipped.len(), 1);
        assert_eq!(b.skipped[0].slot, y);
        assert!(
            b.skipped[0].why.contains("over --max-key-size 50 MB"),
            "{}",
            b.skipped[0].why
        );
        let sent = wire.sent.into_inner();
        // No key of y moved, its markers taken back (source first); x's keys went one
        // per round (two of 10 MB exceed a round's 16 MB).
        assert!(
            !sent
                .iter()
                .any(|(_, t)| t.starts_with(&format!("MIGRATE {y} "))),
            "{sent:?}"
        );
        let at = |node: &str, t: String| sent.iter().position(|s| s.0 == node && s.1 == t);
        let src_back = at(A, format!("CLUSTER SETSLOT {y} STABLE")).expect("source STABLE");
        let dst_back = at(C, format!("CLUSTER SETSLOT {y} STABLE")).expect("target STABLE");
        assert!(src_back < dst_back);
        let rounds: Vec<&String> = sent
            .iter()
            .map(|(_, t)| t)
            .filter(|t| t.starts_with(&format!("MIGRATE {x} ")))
            .collect();
        assert_eq!(rounds, vec![&format!("MIGRATE {x} 1 keys to {C}"); 3]);
        // The model holds the slot where it was, with both keys.
        assert_eq!(model.countkeysinslot(A, y).unwrap(), 2);
        assert_eq!(model.countkeysinslot(C, y).unwrap(), 0);
    }

    /// A stop check that was asked for from the start.
    struct Asked;

    impl crate::cluster::stop::StopSource for Asked {
        fn requested(&self) -> bool {
            true
        }
        fn held(&self) -> bool {
            false
        }
        fn overdue(&self, _since: std::time::Instant) -> bool {
            false
        }
        fn grace(&self) -> std::time::Duration {
            std::time::Duration::ZERO
        }
        fn opened(&self, _slots: &[u16]) {}
        fn settled(&self, _slots: &[u16]) {}
        fn open_slots(&self) -> Vec<u16> {
            Vec::new()
        }
    }

    #[test]
    fn a_move_takes_no_slot_once_its_callers_stop_check_is_asked_for() {
        let (a, c) = ("a".repeat(40), "c".repeat(40));
        let moves: Vec<SlotMove> = (0..3)
            .map(|slot| SlotMove {
                slot,
                src: a.clone(),
                dst: c.clone(),
            })
            .collect();
        let opts = MoveOpts {
            migration: mover::Migration::Legacy,
            ..MoveOpts::new(Stop::new(Asked))
        };
        let dry = MemoryCluster::new(Rc::new(snapshot(&BTreeMap::new())));
        let moved = dry.move_slots(&moves, &opts).expect("no error");
        assert!(moved.interrupted);
        assert_eq!(moved.slots, 0);
        assert!(dry.plan().is_empty(), "{:?}", dry.plan());
        let opts = MoveOpts {
            migration: mover::Migration::Legacy,
            ..MoveOpts::new(Stop::never())
        };
        let moved = dry.move_slots(&moves, &opts).expect("moves");
        assert!(!moved.interrupted);
        assert_eq!(moved.slots, 3);
    }
}
