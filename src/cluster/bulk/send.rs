//! How the live cluster sends the steps of a move ([`crate::cluster::mover::steps`]):
//! each step one pipeline to one node, one journal line per pipeline; the keys moved
//! are counted as each MIGRATE succeeds.

use std::collections::BTreeSet;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::{Busy, Ctx, Run};
use crate::cluster::conn::describe;
use crate::cluster::mover::steps::{assign_commands, Sender};
use crate::cluster::nodes::keys_of;
use crate::cluster::topology::{format_ranges, ranges_of};
use crate::cluster::{commands, Key, MigrateOpts, Reply, Result, SetSlot};
use crate::progress::Progress;

/// The keys of one `CLUSTER GETKEYSINSLOT` reply; `None` for an error or a reply
/// that is not a list of keys (the careful mover finishes that slot).
fn listed(src: &str, reply: Result<Reply>) -> Option<Vec<Key>> {
    reply.and_then(|r| keys_of(src, r)).ok()
}

/// The journal line of a pipeline of `CLUSTER SETSLOT slot <action>` over `slots`.
fn setslot_text(slots: &[u16], action: &SetSlot) -> String {
    format!(
        "CLUSTER SETSLOT {} {} ({} slots, pipelined)",
        format_ranges(&ranges_of(slots)),
        action.args().join(" "),
        slots.len()
    )
}

/// The slots whose `SETSLOT` failed, and the errors, but for a reply that contains
/// `ok_if` (when not empty).
fn failures(
    slots: &[u16],
    replies: impl IntoIterator<Item = Result<Reply>>,
    ok_if: &str,
) -> (Vec<u16>, Vec<String>) {
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
    (failed, errors)
}

/// The live sender of one call's steps.
pub(super) struct Live<'a> {
    pub ctx: &'a Ctx<'a>,
    pub run: &'a Run,
    pub progress: &'a Progress,
}

impl Live<'_> {
    /// Send `cmds` to `addr` in one pipeline; when it cannot be sent at all, journal
    /// that as `command`.
    async fn pipeline(
        &self,
        addr: &str,
        cmds: &[Vec<Vec<u8>>],
        command: &str,
    ) -> Result<Vec<Result<Reply>>> {
        let pool = self.ctx.nodes.pool();
        match pool.pipeline(addr, cmds, pool.options().timeout * 4).await {
            Ok(replies) => Ok(replies),
            Err(e) => {
                self.ctx
                    .nodes
                    .log(addr, command.to_string(), &[e.to_string()]);
                Err(e)
            }
        }
    }
}

impl Sender for Live<'_> {
    async fn setslot(
        &self,
        node: &str,
        slots: &[u16],
        action: &SetSlot,
        ok_if: &str,
    ) -> Result<Vec<u16>> {
        if slots.is_empty() {
            return Ok(Vec::new());
        }
        let cmds: Vec<Vec<Vec<u8>>> = slots
            .iter()
            .map(|s| commands::setslot(*s, action))
            .collect();
        let command = setslot_text(slots, action);
        let replies = self.pipeline(node, &cmds, &command).await?;
        let (failed, errors) = failures(slots, replies, ok_if);
        self.ctx.nodes.log(node, command, &errors);
        Ok(failed)
    }

    async fn assign(
        &self,
        node: &str,
        slots: &[u16],
        owner: &str,
        quiet: &BTreeSet<u16>,
    ) -> Result<Vec<u16>> {
        if quiet.is_empty() {
            return self
                .setslot(node, slots, &SetSlot::Node(owner.to_string()), "")
                .await;
        }
        let cmds = assign_commands(slots, owner, quiet);
        let command = format!(
            "CLUSTER SETSLOT {} NODE {owner} ({} slots, pipelined; STABLE first on {})",
            format_ranges(&ranges_of(slots)),
            slots.len(),
            format_ranges(&ranges_of(&quiet.iter().copied().collect::<Vec<_>>())),
        );
        let mut replies = self.pipeline(node, &cmds, &command).await?.into_iter();
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
        self.ctx.nodes.log(node, command, &errors);
        Ok(failed)
    }

    async fn keys(&self, src: &str, slots: &[u16], count: u64) -> Result<Vec<Option<Vec<Key>>>> {
        let pool = self.ctx.nodes.pool();
        let gets: Vec<Vec<Vec<u8>>> = slots
            .iter()
            .map(|s| commands::getkeysinslot(*s, count))
            .collect();
        // A read: nothing to journal.
        let replies = pool
            .pipeline(src, &gets, pool.options().timeout * 4)
            .await?;
        Ok(replies.into_iter().map(|r| listed(src, r)).collect())
    }

    async fn mark_and_list(
        &self,
        src: &str,
        marked: &[u16],
        action: &SetSlot,
        listed_slots: &[u16],
        count: u64,
    ) -> Result<(Vec<u16>, Vec<Option<Vec<Key>>>)> {
        if marked.is_empty() {
            // Only a read: nothing to journal.
            return Ok((Vec::new(), self.keys(src, listed_slots, count).await?));
        }
        let mut cmds: Vec<Vec<Vec<u8>>> = marked
            .iter()
            .map(|s| commands::setslot(*s, action))
            .collect();
        cmds.extend(
            listed_slots
                .iter()
                .map(|s| commands::getkeysinslot(*s, count)),
        );
        let command = format!(
            "{}; then CLUSTER GETKEYSINSLOT of {} slots",
            setslot_text(marked, action),
            listed_slots.len()
        );
        let mut replies = self.pipeline(src, &cmds, &command).await?.into_iter();
        let (failed, errors) = failures(marked, replies.by_ref().take(marked.len()), "");
        self.ctx.nodes.log(src, command, &errors);
        let keys = replies.map(|r| listed(src, r)).collect();
        Ok((failed, keys))
    }

    async fn migrate(
        &self,
        src: &str,
        dst: &str,
        batch: &[(u16, Vec<Key>)],
        opts: MigrateOpts,
    ) -> Result<Vec<bool>> {
        let pool = self.ctx.nodes.pool();
        let run = self.run;
        let migrate_timeout = pool.options().timeout + Duration::from_millis(opts.timeout_ms);
        let cmds: Vec<Vec<Vec<u8>>> = batch
            .iter()
            .map(|(_, k)| commands::migrate(dst, k, opts, pool.options()))
            .collect::<Result<_>>()?;
        // One journal line for the pipeline: the slots, the keys, each failure.
        let slots: Vec<u16> = batch.iter().map(|(s, _)| *s).collect();
        let command = format!(
            "{} (slots {}, {} keys, one MIGRATE per slot, pipelined)",
            describe(&cmds[0]),
            format_ranges(&ranges_of(&slots)),
            batch.iter().map(|(_, k)| k.len()).sum::<usize>()
        );
        let migrated = {
            let _busy = Busy::new(run, src);
            pool.pipeline(src, &cmds, migrate_timeout).await
        };
        let replies = match migrated {
            Ok(r) => r,
            Err(e) => {
                self.ctx.nodes.log(src, command, &[e.to_string()]);
                return Err(e);
            }
        };
        let mut keys = 0u64;
        let mut errors = Vec::new();
        let mut out = Vec::with_capacity(batch.len());
        let mut per_slot = run.slot_keys.lock().unwrap_or_else(|e| e.into_inner());
        for ((s, k), r) in batch.iter().zip(replies) {
            if let Err(e) = &r {
                errors.push(format!("slot {s}: {e}"));
            }
            if r.is_ok() {
                keys += k.len() as u64;
                *per_slot.entry(*s).or_default() += k.len() as u64;
            }
            out.push(r.is_ok());
        }
        drop(per_slot);
        self.ctx.nodes.log(src, command, &errors);
        run.keys.fetch_add(keys, Ordering::Relaxed);
        self.progress.done(0, keys);
        Ok(out)
    }

    async fn dataset(&self, node: &str) -> Result<Option<u64>> {
        self.ctx.nodes.dataset_bytes(node).await
    }

    async fn sizes(&self, node: &str, keys: &[Key]) -> Result<Vec<u64>> {
        self.ctx.nodes.key_sizes(node, keys, false, true).await
    }

    async fn counts(&self, node: &str, slots: &[u16]) -> Result<Vec<(u16, u64)>> {
        self.ctx.nodes.key_counts(node, slots).await
    }
}
