//! Moves in the model, as the live engine makes them: one `CLUSTER MIGRATESLOTS` per
//! source when the live run would be atomic, else the legacy protocol's commands in
//! the order the engine sends them.

use super::*;

/// Move slots as the live engine does, so a dry run shows the same plan: atomic
/// (one `CLUSTER MIGRATESLOTS` per source) when the live run would be, else in the
/// order the legacy mover sends its commands (per pair, in batches: every IMPORTING,
/// every MIGRATING, the keys, then SETSLOT NODE on the target, the source and the
/// other masters).
pub(super) fn move_in_phases(
    c: &MemoryCluster,
    moves: &[SlotMove],
    opts: &MoveOpts,
) -> Result<SlotMoved> {
    let started = std::time::Instant::now();
    let ids = mover::ends_of(moves);
    let nodes = crate::cluster::merged_nodes(&mover::ready(c, &ids, mover::GOSSIP_WAIT)?);
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
    let pairs: Vec<(String, String, Vec<u16>)> = grouped
        .into_iter()
        .map(|p| (p.src.id, p.dst.id, p.slots))
        .collect();
    let r = move_pairs_in_phases(c, pairs, opts, started, total);
    c.inner.borrow_mut().muted = false;
    r
}

/// The legacy protocol's steps over the pairs, batch by batch.
fn move_pairs_in_phases(
    c: &MemoryCluster,
    pairs: Vec<(String, String, Vec<u16>)>,
    opts: &MoveOpts,
    started: std::time::Instant,
    mut total: SlotMoved,
) -> Result<SlotMoved> {
    for (src_id, dst_id, slots) in pairs {
        let src = c.address_of(&src_id)?;
        let dst = c.address_of(&dst_id)?;
        for batch in slots.chunks(128) {
            if crate::interrupt::requested() {
                total.interrupted = true;
                break;
            }
            for s in batch {
                let st = c.slot_state(&dst, *s)?;
                if !st.owns && st.importing.as_deref() != Some(src_id.as_str()) {
                    c.setslot(&dst, *s, &SetSlot::Importing(src_id.clone()))?;
                }
            }
            for s in batch {
                let st = c.slot_state(&src, *s)?;
                if st.owns && st.migrating.as_deref() != Some(dst_id.as_str()) {
                    c.setslot(&src, *s, &SetSlot::Migrating(dst_id.clone()))?;
                }
            }
            for s in batch {
                let r = mover::move_keys(c, *s, &src, &dst, opts)?;
                total.slot_keys.insert(*s, r.keys);
                total.keys += r.keys;
                total.overwritten.extend(r.overwritten);
                total.identical.extend(r.identical);
            }
            let nodes = crate::cluster::merged_nodes(&c.views()?);
            let others: Vec<String> = nodes
                .iter()
                .filter(|n| n.is_master() && !n.failing() && n.addr() != src && n.addr() != dst)
                .map(|n| n.addr())
                .collect();
            for addr in std::iter::once(&dst)
                .chain(std::iter::once(&src))
                .chain(others.iter())
            {
                for s in batch {
                    match c.setslot(addr, *s, &SetSlot::Node(dst_id.clone())) {
                        Ok(()) => {}
                        Err(e)
                            if e.server_reply()
                                .is_some_and(|r| r.contains("only with masters")) => {}
                        Err(e) => return Err(e),
                    }
                }
            }
            total.slots += batch.len() as u64;
        }
    }
    total.seconds = started.elapsed().as_secs_f64();
    Ok(total)
}
