//! The faults `lab break` puts a lab into, to practise on.

use std::str::FromStr;

use tokio::runtime::Handle;

use super::{plural, Lab, LabError, DEFAULT_STUCK_SLOT};
use crate::cluster::conn::args;
use crate::cluster::slot::{key_in_slot, slot_of};
use crate::cluster::{merged_nodes, Cluster, MigrateOpts, NodeInfo, NodeState, SetSlot, SLOTS};

/// The key the seed's stuck migration left behind (it hashes to slot 5519).
const SEED_KEY: &str = "user:loadtest_user_33:reservations";

impl Lab {
    /// Put the lab into a broken state to practise on; returns what was done.
    pub fn break_fault(&self, fault: Fault, rt: &Handle) -> Result<String, LabError> {
        match fault {
            Fault::StuckSlot { slot } => self.stuck_slot(slot, rt),
        }
    }

    fn stuck_slot(&self, slot: u16, rt: &Handle) -> Result<String, LabError> {
        if slot >= SLOTS {
            return Err(LabError::Refused(format!(
                "slot {slot} does not exist; slots are 0 to {}",
                SLOTS - 1
            )));
        }
        let cluster = self.cluster(rt)?;
        let views = cluster.views()?;
        let mut open = Vec::new();
        for v in &views {
            if let Some(me) = v.state.as_ref().ok().and_then(NodeState::myself) {
                if me.migrating.contains_key(&slot) {
                    open.push(format!("{} is migrating it", v.addr));
                }
                if me.importing.contains_key(&slot) {
                    open.push(format!("{} is importing it", v.addr));
                }
            }
        }
        if !open.is_empty() {
            return Err(LabError::Refused(format!(
                "slot {slot} is already open ({}); close it first with `slotsmith -c {} fix`",
                open.join(", "),
                self.seed()
            )));
        }
        let nodes = merged_nodes(&views);
        let owners: Vec<&NodeInfo> = nodes
            .iter()
            .filter(|n| n.is_master() && n.owns(slot))
            .collect();
        let src = match owners.as_slice() {
            [one] if !one.failing() => *one,
            [one] => {
                return Err(LabError::Refused(format!(
                    "slot {slot} belongs to {}, which is failing; bring it back before breaking the slot",
                    one.addr()
                )))
            }
            [] => {
                return Err(LabError::Refused(format!(
                    "slot {slot} has no owner; cover it first with `slotsmith -c {} fix`",
                    self.seed()
                )))
            }
            many => {
                return Err(LabError::Refused(format!(
                    "slot {slot} is claimed by several masters ({}); fix that first",
                    many.iter().map(|n| n.addr()).collect::<Vec<_>>().join(", ")
                )))
            }
        };
        let others = || {
            nodes
                .iter()
                .filter(|n| n.is_master() && !n.failing() && n.id != src.id)
        };
        let dst = others()
            .find(|n| n.slot_count() == 0)
            .or_else(|| others().next())
            .ok_or_else(|| {
                LabError::Refused(format!(
                    "the lab has no other healthy master to migrate slot {slot} to"
                ))
            })?;
        let (src_addr, dst_addr) = (src.addr(), dst.addr());

        // Make sure the slot has keys on the source, one of which stays behind.
        let tag = key_in_slot(slot, "lab");
        let mut written: Vec<String> = Vec::new();
        if slot_of(SEED_KEY.as_bytes()) == slot {
            written.push(SEED_KEY.to_string());
        }
        written.extend((1..=3).map(|i| format!("{{{tag}}}:item:{i}")));
        for key in &written {
            cluster.call(
                &src_addr,
                &args([
                    "SET",
                    key.as_str(),
                    &format!("written by lab break stuck-slot ({key})"),
                ]),
            )?;
        }
        let stay = written[0].clone();

        cluster.setslot(&dst_addr, slot, &SetSlot::Importing(src.id.clone()))?;
        cluster.setslot(&src_addr, slot, &SetSlot::Migrating(dst.id.clone()))?;
        let count = cluster.countkeysinslot(&src_addr, slot)?;
        let mut keys = cluster.getkeysinslot(&src_addr, slot, count.max(1))?;
        keys.sort();
        keys.retain(|k| k.as_slice() != stay.as_bytes());
        cluster.migrate(&src_addr, &dst_addr, &keys, MigrateOpts::default())?;

        let seed = self.seed();
        let client = self.flags("PASSWORD").join(" ");
        Ok(format!(
            "Slot {slot} is now stuck half-way, as an interrupted reshard leaves it: \
             {src_addr} is MIGRATING it to {dst_addr}, which is IMPORTING it; \
             {moved} moved to {dst_addr}, 1 left behind on {src_addr} ({stay}).\n\
             See it:  slotsmith {client} check   (or redis-cli --cluster check {seed})\n\
             Fix it:  slotsmith {client} fix   (or complete {slot} / cancel {slot})\n",
            moved = plural(keys.len() as u64, "key"),
        ))
    }
}

/// A fault `lab break` can put a lab into. More will follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// The classic interrupted migration of the seed lab: the slot's owner is
    /// `MIGRATING` it to an (empty, if there is one) master that is `IMPORTING` it, with
    /// the slot's keys split between the two and one key left behind.
    StuckSlot { slot: u16 },
}

impl Fault {
    /// The names `lab break` accepts.
    pub const NAMES: &'static [&'static str] = &["stuck-slot"];

    /// The fault named `name` (see [`Fault::NAMES`]); `slot` overrides its default slot.
    pub fn parse(name: &str, slot: Option<u16>) -> Result<Fault, LabError> {
        match name {
            "stuck-slot" => Ok(Fault::StuckSlot {
                slot: slot.unwrap_or(DEFAULT_STUCK_SLOT),
            }),
            other => Err(LabError::Spec(format!(
                "unknown fault \"{other}\"; known faults: {}",
                Fault::NAMES.join(", ")
            ))),
        }
    }
}

impl FromStr for Fault {
    type Err = LabError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Fault::parse(s, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_parse_by_name() {
        assert_eq!(
            "stuck-slot".parse::<Fault>().unwrap(),
            Fault::StuckSlot { slot: 5519 }
        );
        assert_eq!(
            Fault::parse("stuck-slot", Some(42)).unwrap(),
            Fault::StuckSlot { slot: 42 }
        );
        assert!(Fault::parse("nope", None)
            .unwrap_err()
            .to_string()
            .contains("unknown fault"));
    }

    #[test]
    fn the_seed_key_is_in_slot_5519() {
        assert_eq!(slot_of(SEED_KEY.as_bytes()), DEFAULT_STUCK_SLOT);
    }
}
