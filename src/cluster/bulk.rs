//! The fast slot mover of the live cluster. Round trips, not bytes, dominate moving
//! thousands of slots, so every step is pipelined per node over a batch of slots:
//! IMPORTING on the target, MIGRATING on the source, GETKEYSINSLOT and MIGRATE,
//! then SETSLOT NODE on the target, the source and every other master, in that order.
//! Several source/target pairs run at once. A slot that hits anything unusual
//! (BUSYKEY, a transient error) is finished afterwards by the careful one-slot mover.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::stream::{self, StreamExt};

use super::conn::Pool;
use super::live::{migrate_args, LiveCluster};
use super::mover::{self, MoveOpts, SlotMove, SlotMoved};
use super::topology::{format_ranges, ranges_of};
use super::{merged_nodes, Cluster, Reply, Result};
use crate::journal::Journal;

/// Slots handled together in one pipelined step.
const BATCH: usize = 128;

/// One source/target pair and the slots it moves.
type Pair = mover::PairMoves;

/// What a pair did.
#[derive(Default)]
struct PairDone {
    slots: u64,
    keys: u64,
    /// Slots to finish with the careful mover.
    careful: Vec<u16>,
}

/// Slots and keys moved so far, shown as a bar when stderr is a terminal.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    keys: AtomicU64,
}

impl Progress {
    fn new(slots: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(slots);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} slots, {msg} [{elapsed}, ETA {eta}]",
            ) {
                bar.set_style(style);
            }
            bar
        });
        Progress {
            bar,
            keys: AtomicU64::new(0),
        }
    }

    fn done(&self, slots: u64, keys: u64) {
        let total = self.keys.fetch_add(keys, Ordering::Relaxed) + keys;
        if let Some(bar) = &self.bar {
            bar.inc(slots);
            let secs = bar.elapsed().as_secs_f64().max(0.001);
            bar.set_message(format!("{total} keys ({:.0} keys/s)", total as f64 / secs));
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

fn setslot_cmd(slot: u16, words: &[&str]) -> Vec<Vec<u8>> {
    let mut c = vec![
        b"CLUSTER".to_vec(),
        b"SETSLOT".to_vec(),
        slot.to_string().into_bytes(),
    ];
    c.extend(words.iter().map(|w| w.as_bytes().to_vec()));
    c
}

/// Where the bulk mover's writes go, and the journal that records them.
struct Ctx<'a> {
    pool: &'a Pool,
    journal: Option<&'a Journal>,
}

impl Ctx<'_> {
    fn log(&self, node: &str, command: String, failures: &[String]) {
        if let Some(j) = self.journal {
            let reply = match failures {
                [] => Ok(()),
                [one] => Err(one.clone()),
                [first, ..] => Err(format!("{} failed, the first: {first}", failures.len())),
            };
            j.record(node, &command, reply);
        }
    }
}

/// Run one pipelined SETSLOT per slot on a node; the slots whose command failed.
async fn setslot_all(
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

/// Move one batch of a pair's slots; slots that need care are returned.
async fn move_batch(
    ctx: &Ctx<'_>,
    pair: &Pair,
    batch: &[u16],
    others: &[String],
    opts: &MoveOpts,
) -> Result<(Vec<u16>, Vec<u16>, u64)> {
    let pool = ctx.pool;
    let (src, dst) = (pair.src.addr(), pair.dst.addr());
    let mut careful: Vec<u16> = Vec::new();
    // The target may already own a slot (an earlier run finished it there).
    let to_import: Vec<u16> = batch
        .iter()
        .copied()
        .filter(|s| !pair.dst.owns(*s))
        .collect();
    careful.extend(setslot_all(ctx, &dst, &to_import, &["IMPORTING", &pair.src.id], "").await?);
    let to_migrate: Vec<u16> = batch
        .iter()
        .copied()
        .filter(|s| pair.src.owns(*s) && !careful.contains(s))
        .collect();
    careful.extend(setslot_all(ctx, &src, &to_migrate, &["MIGRATING", &pair.dst.id], "").await?);

    let mut keys = 0u64;
    let mut active: Vec<u16> = batch
        .iter()
        .copied()
        .filter(|s| !careful.contains(s))
        .collect();
    let migrate_timeout = pool.options().timeout + Duration::from_millis(opts.migrate.timeout_ms);
    while !active.is_empty() {
        let gets: Vec<Vec<Vec<u8>>> = active
            .iter()
            .map(|s| {
                vec![
                    b"CLUSTER".to_vec(),
                    b"GETKEYSINSLOT".to_vec(),
                    s.to_string().into_bytes(),
                    opts.pipeline.max(1).to_string().into_bytes(),
                ]
            })
            .collect();
        let replies = pool
            .pipeline(&src, &gets, pool.options().timeout * 4)
            .await?;
        let mut with_keys: Vec<(u16, Vec<Vec<u8>>)> = Vec::new();
        for (s, r) in active.iter().zip(replies) {
            match r {
                Ok(Reply::Array(items)) if !items.is_empty() => with_keys.push((
                    *s,
                    items
                        .into_iter()
                        .filter_map(|i| match i {
                            Reply::Bulk(b) => Some(b),
                            _ => None,
                        })
                        .collect(),
                )),
                Ok(_) => {}
                Err(_) => careful.push(*s),
            }
        }
        if with_keys.is_empty() {
            break;
        }
        let cmds: Vec<Vec<Vec<u8>>> = with_keys
            .iter()
            .map(|(_, k)| migrate_args(&dst, k, opts.migrate, pool.options()))
            .collect::<Result<_>>()?;
        let replies = pool.pipeline(&src, &cmds, migrate_timeout).await?;
        active.clear();
        for (((s, k), r), words) in with_keys.into_iter().zip(replies).zip(&cmds) {
            let error: Vec<String> = r
                .as_ref()
                .err()
                .map(|e| e.to_string())
                .into_iter()
                .collect();
            ctx.log(
                &src,
                format!("{} (slot {s})", crate::cluster::conn::describe(words)),
                &error,
            );
            match r {
                Ok(_) => {
                    keys += k.len() as u64;
                    active.push(s);
                }
                Err(_) => careful.push(s),
            }
        }
    }

    let done: Vec<u16> = batch
        .iter()
        .copied()
        .filter(|s| !careful.contains(s))
        .collect();
    // Target first: once it owns the slot, the source can let go.
    let failed = setslot_all(ctx, &dst, &done, &["NODE", &pair.dst.id], "").await?;
    careful.extend(failed.iter().copied());
    let done: Vec<u16> = done.into_iter().filter(|s| !failed.contains(s)).collect();
    // A source that gave away its last slot may already be a replica.
    let failed = setslot_all(
        ctx,
        &src,
        &done,
        &["NODE", &pair.dst.id],
        "only with masters",
    )
    .await?;
    careful.extend(failed.iter().copied());
    let done: Vec<u16> = done.into_iter().filter(|s| !failed.contains(s)).collect();
    let node_words = ["NODE", pair.dst.id.as_str()];
    let rest = futures::future::join_all(
        others
            .iter()
            .filter(|a| **a != src && **a != dst)
            .map(|a| setslot_all(ctx, a, &done, &node_words, "only with masters")),
    )
    .await;
    for r in rest {
        // Another master that missed the news learns it by gossip; only a broken
        // connection is worth reporting.
        if let Err(e) = r {
            if e.is_connection() {
                return Err(e);
            }
        }
    }
    Ok((done, careful, keys))
}

async fn move_pair(
    ctx: &Ctx<'_>,
    pair: &Pair,
    others: &[String],
    opts: &MoveOpts,
    progress: &Progress,
) -> PairDone {
    let mut out = PairDone::default();
    for (i, batch) in pair.slots.chunks(BATCH).enumerate() {
        if crate::interrupt::requested() {
            break;
        }
        match move_batch(ctx, pair, batch, others, opts).await {
            Ok((done, careful, keys)) => {
                out.slots += done.len() as u64;
                out.keys += keys;
                progress.done(done.len() as u64, keys);
                out.careful.extend(careful);
            }
            Err(_) => {
                // The careful mover resumes every slot of this batch from its state, and
                // moves the pair's remaining slots one at a time; it reports what fails.
                let start = i * BATCH;
                out.careful.extend(pair.slots[start..].iter().copied());
                break;
            }
        }
    }
    out
}

/// Move many slots fast; see the module docs.
pub fn move_slots(live: &LiveCluster, moves: &[SlotMove], opts: &MoveOpts) -> Result<SlotMoved> {
    let started = Instant::now();
    let nodes = merged_nodes(&live.views()?);
    let pairs: Vec<Pair> = mover::pairs_of(&nodes, moves)?;
    let others: Vec<String> = nodes
        .iter()
        .filter(|n| n.is_master() && !n.failing() && !n.noaddr())
        .map(|n| n.addr())
        .collect();
    let progress = Progress::new(moves.len() as u64);
    let pool = live.pool().clone();
    let ctx = Ctx {
        pool: &pool,
        journal: live.journal(),
    };
    let results: Vec<(usize, PairDone)> = live.handle().block_on(
        stream::iter(pairs.iter().enumerate())
            .map(|(i, p)| {
                let (ctx, others, progress) = (&ctx, &others, &progress);
                async move { (i, move_pair(ctx, p, others, opts, progress).await) }
            })
            .buffer_unordered(opts.parallel.max(1))
            .collect(),
    );
    progress.finish();

    let mut total = SlotMoved::default();
    let mut first_error = None;
    for (i, done) in results {
        total.slots += done.slots;
        total.keys += done.keys;
        let pair = &pairs[i];
        for slot in done.careful {
            match mover::move_slot(live, slot, &pair.src.id, &pair.dst.id, opts) {
                Ok(r) => total.add(r),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
    }
    total.interrupted = crate::interrupt::requested() && total.slots < moves.len() as u64;
    total.seconds = started.elapsed().as_secs_f64();
    match first_error {
        Some(e) => Err(e),
        None => Ok(total),
    }
}
