//! The engine's SETSLOT steps, pipelined over a batch: on one node, on the target
//! (without a PONG broadcast per slot), and on the masters outside the pair.

use std::collections::BTreeSet;

use super::{Ctx, Pair};
use crate::cluster::topology::{format_ranges, ranges_of};
use crate::cluster::Result;

fn setslot_cmd(slot: u16, words: &[&str]) -> Vec<Vec<u8>> {
    let mut c = vec![
        b"CLUSTER".to_vec(),
        b"SETSLOT".to_vec(),
        slot.to_string().into_bytes(),
    ];
    c.extend(words.iter().map(|w| w.as_bytes().to_vec()));
    c
}

/// Run one pipelined SETSLOT per slot on a node; the slots whose command failed.
pub(super) async fn setslot_all(
    ctx: &Ctx<'_>,
    addr: &str,
    slots: &[u16],
    words: &[&str],
    ok_if: &str,
) -> Result<Vec<u16>> {
    if slots.is_empty() {
        return Ok(Vec::new());
    }
    let pool = ctx.pool;
    let cmds: Vec<Vec<Vec<u8>>> = slots.iter().map(|s| setslot_cmd(*s, words)).collect();
    let command = format!(
        "CLUSTER SETSLOT {} {} ({} slots, pipelined)",
        format_ranges(&ranges_of(slots)),
        words.join(" "),
        slots.len()
    );
    let replies = match pool.pipeline(addr, &cmds, pool.options().timeout * 4).await {
        Ok(r) => r,
        Err(e) => {
            ctx.log(addr, command, &[e.to_string()]);
            return Err(e);
        }
    };
    let mut failed = Vec::new();
    let mut errors = Vec::new();
    for (s, r) in slots.iter().zip(replies) {
        if let Err(e) = r {
            if ok_if.is_empty() || !e.server_reply().is_some_and(|t| t.contains(ok_if)) {
                failed.push(*s);
                errors.push(e.to_string());
            }
        }
    }
    ctx.log(addr, command, &errors);
    Ok(failed)
}

/// `SETSLOT NODE` on the target for a batch's slots; the slots whose command failed.
///
/// A target that is given a slot it imports bumps its config epoch unless it is
/// already the highest, and broadcasts a PONG to every node, whose whole slot table
/// each receiver walks. Per slot that is the cost of a large move: 4096 slots onto a
/// node of a 7-node cluster made 24,576 PONGs and kept both cores busy. So only two
/// slots of the batch take that path: the first imported one (the bump, made before
/// the target claims any other slot of the batch, so that its claim outranks the
/// source's everywhere) and the last (one broadcast that carries the whole batch).
/// Every other slot is made `STABLE` on the target right before its `NODE`, in the
/// same pipeline, which drops the importing marker without a broadcast.
pub(super) async fn assign_on_target(
    ctx: &Ctx<'_>,
    pair: &Pair,
    slots: &[u16],
    imported: &[u16],
) -> Result<Vec<u16>> {
    let marked: Vec<u16> = slots
        .iter()
        .copied()
        .filter(|s| imported.contains(s))
        .collect();
    let quiet: BTreeSet<u16> = match marked.as_slice() {
        [_, middle @ .., _] => middle.iter().copied().collect(),
        _ => BTreeSet::new(),
    };
    if quiet.is_empty() {
        return setslot_all(ctx, &pair.dst.addr(), slots, &["NODE", &pair.dst.id], "").await;
    }
    let dst = pair.dst.addr();
    let mut cmds: Vec<Vec<Vec<u8>>> = Vec::with_capacity(slots.len() + quiet.len());
    for &s in slots {
        if quiet.contains(&s) {
            cmds.push(setslot_cmd(s, &["STABLE"]));
        }
        cmds.push(setslot_cmd(s, &["NODE", &pair.dst.id]));
    }
    let command = format!(
        "CLUSTER SETSLOT {} NODE {} ({} slots, pipelined; STABLE first on {})",
        format_ranges(&ranges_of(slots)),
        pair.dst.id,
        slots.len(),
        format_ranges(&ranges_of(&quiet.iter().copied().collect::<Vec<_>>())),
    );
    let pool = ctx.pool;
    let mut replies = match pool.pipeline(&dst, &cmds, pool.options().timeout * 4).await {
        Ok(r) => r.into_iter(),
        Err(e) => {
            ctx.log(&dst, command, &[e.to_string()]);
            return Err(e);
        }
    };
    let mut failed = Vec::new();
    let mut errors = Vec::new();
    for &s in slots {
        let mut replies_of_slot = vec![replies.next()];
        if quiet.contains(&s) {
            replies_of_slot.push(replies.next());
        }
        let error = replies_of_slot.into_iter().find_map(|r| match r {
            Some(Ok(_)) => None,
            Some(Err(e)) => Some(e.to_string()),
            None => Some("no reply".to_string()),
        });
        if let Some(e) = error {
            failed.push(s);
            errors.push(e);
        }
    }
    ctx.log(&dst, command, &errors);
    Ok(failed)
}

/// Tell the other masters the new owner of a batch's slots. They learn it by gossip
/// anyway (its epoch is higher): telling them is for speed, so it runs beside the
/// pair's next batch, and one that misses it does not stop the move (the journal
/// records it).
pub(super) async fn tell_others(ctx: &Ctx<'_>, pair: &Pair, done: Vec<u16>, others: &[String]) {
    if done.is_empty() {
        return;
    }
    let (src, dst) = (pair.src.addr(), pair.dst.addr());
    let node_words = ["NODE", pair.dst.id.as_str()];
    futures::future::join_all(
        others
            .iter()
            .filter(|a| **a != src && **a != dst)
            .map(|a| setslot_all(ctx, a, &done, &node_words, "only with masters")),
    )
    .await;
}
