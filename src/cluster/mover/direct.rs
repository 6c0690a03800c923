//! The steps of a move sent one command at a time ([`Direct`]).

use std::cell::RefCell;
use std::collections::BTreeMap;

use super::steps::Sender;
use crate::cluster::{Cluster, ClusterError, Key, MigrateOpts, Result, SetSlot};

/// The steps sent one command at a time through the [`Cluster`] interface: how the
/// in-memory cluster takes them (each command applied and recorded in the plan, in the
/// order the live cluster pipelines them), and how the careful one-slot mover shares a
/// step with the bulk mover ([`super::steps::take_back`]).
pub struct Direct<'a> {
    pub c: &'a dyn Cluster,
    /// Keys moved per slot by the steps' MIGRATEs.
    pub keys: RefCell<BTreeMap<u16, u64>>,
}

/// Whether an error is one command's reply, as a node answers it (the slot goes to the
/// careful mover, as live), rather than a node that cannot be reached (the move stops).
fn replied(e: &ClusterError) -> bool {
    matches!(e, ClusterError::Command { .. })
}

impl<'a> Direct<'a> {
    pub fn new(c: &'a dyn Cluster) -> Self {
        Direct {
            c,
            keys: RefCell::new(BTreeMap::new()),
        }
    }

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

impl Sender for Direct<'_> {
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
