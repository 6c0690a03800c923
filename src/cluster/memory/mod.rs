//! The in-memory cluster: an overlay over another cluster (the live one, or a
//! snapshot). Reads of anything the plan has not touched fall through to the base;
//! writes change only the overlay (slot owners, markers, which keys sit on which
//! node) and are recorded, in order, as the plan. `--dry-run` and `--snapshot` use it,
//! so every script runs unchanged against it. It mimics the Redis replies that matter
//! to a migration (ownership errors, MOVED/ASK from MIGRATE, BUSYKEY), so a plan that
//! would fail live fails here too.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;

mod lifecycle;
mod moves;
mod owners;
mod plan;
mod replicas;

pub use plan::{render, summarize, PlanSummary};

use owners::{owner_in, set_owner};
use replicas::replicas_follow_masters;

use super::jobs::SlotJob;
use super::mover::{self, MoveOpts, SlotMove, SlotMoved};
use super::slot::slot_of;
use super::topology::{format_ranges, ranges_of};
use super::{Cluster, ClusterError, Key, MigrateOpts, NodeInfo, NodeView, Reply, Result, SetSlot};

/// One command the plan would send.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Planned {
    /// The node it goes to.
    pub node: String,
    /// The command as an operator reads it (no passwords).
    pub command: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot: Option<u16>,
    /// Keys it moves (MIGRATE).
    #[serde(skip_serializing_if = "is_zero")]
    pub keys: u64,
    /// Where MIGRATE sends them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A key where the overlay put it, and the node that holds its value in the base.
#[derive(Debug, Clone)]
struct Placed {
    key: Key,
    origin: String,
}

#[derive(Default)]
struct Overlay {
    /// Every node's view, copied from the base at the first topology write.
    views: Option<Vec<NodeView>>,
    /// Keys of the (node, slot) pairs the plan has touched.
    slots: HashMap<(String, u16), Vec<Placed>>,
    /// Change of DBSIZE per node.
    delta: HashMap<String, i64>,
    plan: Vec<Planned>,
    /// Steps taken only to reach a state a recorded command reaches at once (an atomic
    /// move), so not recorded themselves.
    muted: bool,
    /// Whether a node moves slots itself, as the base said (asked once per node).
    atomic: HashMap<String, bool>,
    /// Atomic slot migration jobs the plan started, per node, newest last.
    jobs: Vec<(String, SlotJob)>,
    /// New states of the base's jobs (cancelled by the plan), by job name.
    job_states: HashMap<String, String>,
}

/// One node's own view of one slot.
struct SlotState {
    id: String,
    owns: bool,
    migrating: Option<String>,
    importing: Option<String>,
    master: bool,
}

/// See the module docs.
pub struct MemoryCluster {
    base: Rc<dyn Cluster>,
    inner: RefCell<Overlay>,
}

fn err(addr: &str, command: String, reason: String) -> ClusterError {
    ClusterError::Command {
        addr: addr.to_string(),
        command,
        reason,
    }
}

impl MemoryCluster {
    pub fn new(base: Rc<dyn Cluster>) -> Self {
        MemoryCluster {
            base,
            inner: RefCell::new(Overlay::default()),
        }
    }

    /// The node whose base holds the value of `key` as `addr` holds it in the plan:
    /// where the plan placed it from, or `addr` itself for a slot the plan has not
    /// touched there; `None` when the plan moved it away. Values never change in a plan.
    fn held_at(&self, addr: &str, key: &Key) -> Option<String> {
        match self
            .inner
            .borrow()
            .slots
            .get(&(addr.to_string(), slot_of(key)))
        {
            Some(placed) => placed
                .iter()
                .find(|p| &p.key == key)
                .map(|p| p.origin.clone()),
            None => Some(addr.to_string()),
        }
    }

    /// The commands the plan would send, in order.
    pub fn plan(&self) -> Vec<Planned> {
        self.inner.borrow().plan.clone()
    }

    fn record(
        &self,
        node: &str,
        command: String,
        slot: Option<u16>,
        keys: u64,
        to: Option<String>,
    ) {
        if self.inner.borrow().muted {
            return;
        }
        self.inner.borrow_mut().plan.push(Planned {
            node: node.to_string(),
            command,
            slot,
            keys,
            to,
        });
    }

    /// Make sure the overlay holds its own copy of every view.
    fn load_views(&self) -> Result<()> {
        if self.inner.borrow().views.is_none() {
            let views = self.base.views()?;
            self.inner.borrow_mut().views = Some(views);
        }
        Ok(())
    }

    /// Run `f` on every reachable view (address, its node list).
    fn with_views<T>(&self, f: impl FnOnce(&mut Vec<NodeView>) -> Result<T>) -> Result<T> {
        self.load_views()?;
        let mut inner = self.inner.borrow_mut();
        let views = inner
            .views
            .as_mut()
            .ok_or_else(|| ClusterError::State("no views".into()))?;
        f(views)
    }

    /// One node's own view (its node list) and its id.
    fn own<'a>(views: &'a mut [NodeView], addr: &str) -> Result<(&'a mut Vec<NodeInfo>, String)> {
        let v = views
            .iter_mut()
            .find(|v| {
                v.addr == addr
                    || v.state
                        .as_ref()
                        .ok()
                        .and_then(|s| s.myself())
                        .is_some_and(|m| m.addr() == addr)
            })
            .ok_or_else(|| ClusterError::Connect {
                addr: addr.to_string(),
                reason: "not a node of this cluster".into(),
            })?;
        let state = v.state.as_mut().map_err(|e| ClusterError::Connect {
            addr: addr.to_string(),
            reason: e.clone(),
        })?;
        let id = state
            .myself()
            .map(|m| m.id.clone())
            .ok_or_else(|| ClusterError::State(format!("{addr} does not describe itself")))?;
        Ok((&mut state.nodes, id))
    }

    fn address_of(&self, id: &str) -> Result<String> {
        let views = match &self.inner.borrow().views {
            Some(v) => v.clone(),
            None => self.base.views()?,
        };
        super::merged_nodes(&views)
            .into_iter()
            .find(|n| n.id == id)
            .map(|n| n.addr())
            .ok_or_else(|| ClusterError::State(format!("node {id} is not in the cluster")))
    }

    /// The keys of a (node, slot), copied from the base on first touch.
    fn touch(&self, addr: &str, slot: u16) -> Result<()> {
        let k = (addr.to_string(), slot);
        if self.inner.borrow().slots.contains_key(&k) {
            return Ok(());
        }
        let n = self.base.countkeysinslot(addr, slot)?;
        let keys = if n == 0 {
            Vec::new()
        } else {
            self.base.getkeysinslot(addr, slot, n)?
        };
        self.hold(addr, slot, keys);
        Ok(())
    }

    /// Record the keys the base holds in a (node, slot), as the copy's own.
    fn hold(&self, addr: &str, slot: u16, keys: Vec<Key>) {
        let placed = keys
            .into_iter()
            .map(|key| Placed {
                key,
                origin: addr.to_string(),
            })
            .collect();
        self.inner
            .borrow_mut()
            .slots
            .insert((addr.to_string(), slot), placed);
    }

    /// [`Self::touch`] of many slots of one node at once: two round trips to the base
    /// instead of two per slot. A base that cannot say leaves them to [`Self::touch`],
    /// which reports it.
    fn touch_many(&self, addr: &str, slots: &[u16]) {
        let untouched: Vec<u16> = {
            let inner = self.inner.borrow();
            slots
                .iter()
                .copied()
                .filter(|s| !inner.slots.contains_key(&(addr.to_string(), *s)))
                .collect()
        };
        if untouched.len() < 2 {
            return;
        }
        let Ok(counts) = self.base.key_counts(addr, Some(&untouched)) else {
            return;
        };
        let Ok(keys) = self.base.keys_in_slots(addr, &counts) else {
            return;
        };
        let mut held: BTreeMap<u16, Vec<Key>> = counts.iter().map(|(s, _)| *s).zip(keys).collect();
        for slot in untouched {
            self.hold(addr, slot, held.remove(&slot).unwrap_or_default());
        }
    }

    /// The marker state and ownership of a slot in one node's own view.
    fn slot_state(&self, addr: &str, slot: u16) -> Result<SlotState> {
        self.with_views(|views| {
            let (nodes, id) = Self::own(views, addr)?;
            let me = nodes
                .iter()
                .find(|n| n.id == id)
                .cloned()
                .unwrap_or_else(|| nodes[0].clone());
            Ok(SlotState {
                owns: me.owns(slot),
                migrating: me.migrating.get(&slot).cloned(),
                importing: me.importing.get(&slot).cloned(),
                master: me.is_master(),
                id,
            })
        })
    }

    fn apply_setslot(&self, addr: &str, slot: u16, action: &SetSlot) -> Result<()> {
        let command = format!("CLUSTER SETSLOT {slot} {}", action.args().join(" "));
        let SlotState {
            id,
            owns,
            master,
            migrating,
            ..
        } = self.slot_state(addr, slot)?;
        let fail = |reason: String| err(addr, command.clone(), reason);
        if !master {
            return Err(fail("ERR Please use SETSLOT only with masters.".into()));
        }
        match action {
            SetSlot::Importing(_) if owns => {
                return Err(fail(format!(
                    "ERR I'm already the owner of hash slot {slot}"
                )));
            }
            SetSlot::Migrating(_) if !owns => {
                return Err(fail(format!("ERR I'm not the owner of hash slot {slot}")));
            }
            SetSlot::Node(x) if owns && *x != id && self.countkeysinslot(addr, slot)? > 0 => {
                return Err(fail(format!(
                    "ERR Can't assign hashslot {slot} to a different node while I still hold keys for this hash slot."
                )));
            }
            _ => {}
        }
        // Only a node giving the slot away needs its key count (each count may be a
        // round trip to the live cluster, so it is not asked for every SETSLOT).
        let has_keys = match action {
            SetSlot::Node(x) if *x != id && (owns || migrating.is_some()) => {
                self.countkeysinslot(addr, slot)? > 0
            }
            _ => false,
        };
        self.with_views(|views| {
            let (nodes, me_id) = Self::own(views, addr)?;
            let me_idx = nodes.iter().position(|n| n.id == me_id).unwrap_or(0);
            match action {
                SetSlot::Importing(src) => {
                    nodes[me_idx].importing.insert(slot, src.clone());
                }
                SetSlot::Migrating(dst) => {
                    nodes[me_idx].migrating.insert(slot, dst.clone());
                }
                SetSlot::Stable => {
                    nodes[me_idx].importing.remove(&slot);
                    nodes[me_idx].migrating.remove(&slot);
                }
                SetSlot::Node(x) => {
                    set_owner(nodes, slot, Some(x));
                    if *x == me_id {
                        nodes[me_idx].importing.remove(&slot);
                    } else if !has_keys {
                        nodes[me_idx].migrating.remove(&slot);
                    }
                }
            }
            // A node that takes a slot for itself bumps its epoch, and the others learn it.
            if let SetSlot::Node(x) = action {
                if *x == me_id {
                    for v in views.iter_mut() {
                        if let Ok(st) = v.state.as_mut() {
                            set_owner(&mut st.nodes, slot, Some(x));
                        }
                    }
                }
            }
            Ok(())
        })?;
        self.record(addr, command, Some(slot), 0, None);
        Ok(())
    }

    fn move_placed(&self, src: &str, dst: &str, slot: u16, key: &Key, copy: bool) {
        let mut inner = self.inner.borrow_mut();
        let from = inner.slots.entry((src.to_string(), slot)).or_default();
        let Some(pos) = from.iter().position(|p| &p.key == key) else {
            return;
        };
        let placed = if copy {
            from[pos].clone()
        } else {
            from.remove(pos)
        };
        let to = inner.slots.entry((dst.to_string(), slot)).or_default();
        let added = match to.iter().position(|p| &p.key == key) {
            Some(i) => {
                to[i] = placed;
                0
            }
            None => {
                to.push(placed);
                1
            }
        };
        *inner.delta.entry(dst.to_string()).or_default() += added;
        if !copy {
            *inner.delta.entry(src.to_string()).or_default() -= 1;
        }
    }
}

impl Cluster for MemoryCluster {
    fn seed(&self) -> String {
        self.base.seed()
    }

    fn views(&self) -> Result<Vec<NodeView>> {
        let inner = self.inner.borrow();
        let Some(views) = &inner.views else {
            drop(inner);
            let mut views = lifecycle::reached(self.base.views()?);
            let inner = self.inner.borrow();
            for v in &mut views {
                if let (Ok(st), Some(d)) = (v.state.as_mut(), inner.delta.get(&v.addr)) {
                    st.keys = (st.keys as i64 + d).max(0) as u64;
                }
            }
            return Ok(views);
        };
        let mut views = lifecycle::reached(views.clone());
        for v in &mut views {
            if let (Ok(st), Some(d)) = (v.state.as_mut(), inner.delta.get(&v.addr)) {
                st.keys = (st.keys as i64 + d).max(0) as u64;
            }
        }
        drop(inner);
        replicas_follow_masters(&mut views, |addr| {
            self.moves_atomically(addr).unwrap_or(false)
        });
        Ok(views)
    }

    fn countkeysinslot(&self, addr: &str, slot: u16) -> Result<u64> {
        if let Some(keys) = self.inner.borrow().slots.get(&(addr.to_string(), slot)) {
            return Ok(keys.len() as u64);
        }
        self.base.countkeysinslot(addr, slot)
    }

    fn getkeysinslot(&self, addr: &str, slot: u16, count: u64) -> Result<Vec<Key>> {
        if let Some(keys) = self.inner.borrow().slots.get(&(addr.to_string(), slot)) {
            return Ok(keys
                .iter()
                .take(count as usize)
                .map(|p| p.key.clone())
                .collect());
        }
        self.base.getkeysinslot(addr, slot, count)
    }

    fn migrate(&self, src: &str, dst: &str, keys: &[Key], opts: MigrateOpts) -> Result<()> {
        let command = format!("MIGRATE {src} -> {dst}");
        let mut by_slot: BTreeMap<u16, Vec<&Key>> = BTreeMap::new();
        for k in keys {
            by_slot.entry(slot_of(k)).or_default().push(k);
        }
        if by_slot.len() > 1 {
            return Err(err(
                src,
                command,
                "CROSSSLOT Keys in request don't hash to the same slot".into(),
            ));
        }
        let Some((&slot, keys)) = by_slot.iter().next() else {
            return Ok(());
        };
        let SlotState {
            owns: s_owns,
            importing: s_imports,
            ..
        } = self.slot_state(src, slot)?;
        let SlotState {
            owns: d_owns,
            migrating: d_migrating,
            importing: d_imports,
            ..
        } = self.slot_state(dst, slot)?;
        if !s_owns && s_imports.is_none() {
            return Err(err(
                src,
                command,
                format!("MOVED {slot} (the node neither owns nor imports the slot)"),
            ));
        }
        if !d_owns && d_imports.is_none() {
            return Err(err(
                src,
                command,
                format!("ERR Target instance replied with error: MOVED {slot}"),
            ));
        }
        self.touch(src, slot)?;
        self.touch(dst, slot)?;
        let mut moved = 0u64;
        for k in keys {
            let (on_src, on_dst) = {
                let inner = self.inner.borrow();
                let has = |a: &str| {
                    inner
                        .slots
                        .get(&(a.to_string(), slot))
                        .is_some_and(|v| v.iter().any(|p| &p.key == *k))
                };
                (has(src), has(dst))
            };
            if !on_src {
                continue;
            }
            if d_migrating.is_some() && !on_dst {
                return Err(err(
                    src,
                    command,
                    format!(
                        "ERR Target instance replied with error: ASK {slot} {}",
                        d_migrating.unwrap_or_default()
                    ),
                ));
            }
            if on_dst && !opts.replace {
                self.record(
                    src,
                    format!("MIGRATE to {dst} KEYS ({moved} keys)"),
                    Some(slot),
                    moved,
                    Some(dst.to_string()),
                );
                return Err(err(src, command, "ERR Target instance replied with error: BUSYKEY Target key name already exists.".into()));
            }
            self.move_placed(src, dst, slot, k, opts.copy);
            moved += 1;
        }
        let mut words = vec!["MIGRATE to".to_string(), dst.to_string()];
        if opts.replace {
            words.push("REPLACE".into());
        }
        if opts.copy {
            words.push("COPY".into());
        }
        let sample: Vec<String> = keys
            .iter()
            .take(3)
            .map(|k| super::keyname::shown(k))
            .collect();
        let more = if keys.len() > 3 { ", ..." } else { "" };
        words.push(format!("KEYS {}{more} ({moved} keys)", sample.join(" ")));
        self.record(
            src,
            words.join(" "),
            Some(slot),
            moved,
            Some(dst.to_string()),
        );
        Ok(())
    }

    fn setslot(&self, addr: &str, slot: u16, action: &SetSlot) -> Result<()> {
        self.apply_setslot(addr, slot, action)
    }

    fn addslots(&self, addr: &str, slots: &[u16]) -> Result<()> {
        let command = format!("CLUSTER ADDSLOTS {}", format_ranges(&ranges_of(slots)));
        self.add_slots(addr, slots, command)
    }

    fn addslots_range(&self, addr: &str, start: u16, end: u16) -> Result<()> {
        let slots: Vec<u16> = (start..=end).collect();
        self.add_slots(addr, &slots, format!("CLUSTER ADDSLOTSRANGE {start} {end}"))
    }

    fn admin(&self, addr: &str, cmd: &super::admin::Admin) -> Result<()> {
        self.apply_admin(addr, cmd)
    }

    fn delslots(&self, addr: &str, slots: &[u16]) -> Result<()> {
        let command = format!("CLUSTER DELSLOTS {}", format_ranges(&ranges_of(slots)));
        self.with_views(|views| {
            let (nodes, _) = Self::own(views, addr)?;
            if let Some(s) = slots.iter().find(|s| owner_in(nodes, **s).is_none()) {
                return Err(err(
                    addr,
                    command.clone(),
                    format!("ERR Slot {s} is already unassigned"),
                ));
            }
            for s in slots {
                set_owner(nodes, *s, None);
            }
            Ok(())
        })?;
        self.record(addr, command, None, 0, None);
        Ok(())
    }

    fn call(&self, addr: &str, args: &[Vec<u8>]) -> Result<Reply> {
        if super::conn::is_read(args) {
            return self.base.call(addr, args);
        }
        // Not simulated: recorded, answered OK.
        self.record(
            addr,
            format!("{} (not simulated)", super::conn::describe(args)),
            None,
            0,
            None,
        );
        Ok(Reply::Status("OK".into()))
    }

    fn key_counts(&self, addr: &str, slots: Option<&[u16]>) -> Result<Vec<(u16, u64)>> {
        let mut counts: BTreeMap<u16, u64> =
            self.base.key_counts(addr, slots)?.into_iter().collect();
        for ((a, slot), keys) in &self.inner.borrow().slots {
            if a == addr && slots.is_none_or(|s| s.contains(slot)) {
                counts.insert(*slot, keys.len() as u64);
            }
        }
        Ok(counts.into_iter().filter(|(_, c)| *c > 0).collect())
    }

    fn canonical_values(&self, addr: &str, keys: &[Key]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(match self.held_at(addr, k) {
                Some(node) => self
                    .base
                    .canonical_values(&node, std::slice::from_ref(k))?
                    .pop()
                    .flatten(),
                None => None,
            });
        }
        Ok(out)
    }

    fn dataset_bytes(&self, addr: &str) -> Result<Option<u64>> {
        // Keys the plan moved here weigh what they weigh where the base has them: the
        // biggest of those datasets bounds them too.
        let origins: BTreeSet<String> = self
            .inner
            .borrow()
            .slots
            .iter()
            .filter(|((a, _), _)| a == addr)
            .flat_map(|(_, placed)| placed.iter().map(|p| p.origin.clone()))
            .filter(|o| o != addr)
            .collect();
        let mut most = self.base.dataset_bytes(addr)?;
        for o in origins {
            if let Some(b) = self.base.dataset_bytes(&o)? {
                most = Some(most.map_or(b, |m| m.max(b)));
            }
        }
        Ok(most)
    }

    fn key_sizes(&self, addr: &str, keys: &[Key]) -> Result<Vec<u64>> {
        // Each key is sized where the base has it, asked once per node.
        let mut at: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, k) in keys.iter().enumerate() {
            if let Some(node) = self.held_at(addr, k) {
                at.entry(node).or_default().push(i);
            }
        }
        let mut out = vec![0; keys.len()];
        for (node, idx) in at {
            let asked: Vec<Key> = idx.iter().map(|&i| keys[i].clone()).collect();
            for (i, size) in idx.into_iter().zip(self.base.key_sizes(&node, &asked)?) {
                out[i] = size;
            }
        }
        Ok(out)
    }

    fn dump(&self, addr: &str, keys: &[Key]) -> Result<Vec<Option<Vec<u8>>>> {
        let mut out = Vec::with_capacity(keys.len());
        for k in keys {
            out.push(match self.held_at(addr, k) {
                Some(node) => self
                    .base
                    .dump(&node, std::slice::from_ref(k))?
                    .pop()
                    .flatten(),
                None => None,
            });
        }
        Ok(out)
    }

    fn claim_slot(&self, addr: &str, slot: u16) -> Result<()> {
        self.with_views(|views| {
            let (_, id) = Self::own(views, addr)?;
            for v in views.iter_mut() {
                if let Ok(st) = v.state.as_mut() {
                    set_owner(&mut st.nodes, slot, Some(&id));
                }
            }
            Ok(())
        })?;
        self.record(
            addr,
            format!(
                "MULTI; CLUSTER DELSLOTS {slot}; CLUSTER ADDSLOTS {slot}; CLUSTER BUMPEPOCH; EXEC"
            ),
            Some(slot),
            0,
            None,
        );
        Ok(())
    }

    fn move_slots(&self, moves: &[SlotMove], opts: &MoveOpts) -> Result<SlotMoved> {
        moves::move_in_phases(self, moves, opts)
    }

    fn dry_run(&self) -> bool {
        true
    }

    fn other_runs(&self) -> Result<Vec<super::lease::OtherRun>> {
        self.base.other_runs()
    }

    fn moves_atomically(&self, addr: &str) -> Result<bool> {
        if let Some(known) = self.inner.borrow().atomic.get(addr) {
            return Ok(*known);
        }
        let known = self.base.moves_atomically(addr)?;
        self.inner
            .borrow_mut()
            .atomic
            .insert(addr.to_string(), known);
        Ok(known)
    }

    fn slot_migrations(&self, addr: &str) -> Result<Vec<SlotJob>> {
        let inner = self.inner.borrow();
        let mut out: Vec<SlotJob> = inner
            .jobs
            .iter()
            .rev()
            .filter(|(a, _)| a == addr)
            .map(|(_, j)| j.clone())
            .collect();
        let states = inner.job_states.clone();
        drop(inner);
        for mut j in self.base.slot_migrations(addr)? {
            if let Some(state) = states.get(&j.name) {
                j.state = state.clone();
                j.message.clear();
            }
            out.push(j);
        }
        Ok(out)
    }

    fn cancel_slot_migrations(&self, addr: &str) -> Result<bool> {
        let flying: Vec<SlotJob> = self
            .slot_migrations(addr)?
            .into_iter()
            .filter(|j| j.operation == "EXPORT" && j.in_flight())
            .collect();
        for j in &flying {
            // The target drops what it had received of the job's keys, and its
            // DBSIZE drops with them.
            let target = self.address_of(&j.target)?;
            let slots = j.slot_list();
            let dropped: u64 = self
                .key_counts(&target, Some(&slots))?
                .iter()
                .map(|(_, n)| n)
                .sum();
            let mut inner = self.inner.borrow_mut();
            inner.job_states.insert(j.name.clone(), "cancelled".into());
            for s in slots {
                inner.slots.insert((target.clone(), s), Vec::new());
            }
            *inner.delta.entry(target.clone()).or_default() -= dropped as i64;
        }
        self.record(addr, "CLUSTER CANCELSLOTMIGRATIONS".into(), None, 0, None);
        Ok(!flying.is_empty())
    }
}

#[cfg(test)]
mod tests;
