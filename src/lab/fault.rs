//! The faults `lab break` puts a lab into, to practise on. Each is a bundled runbook
//! (`stdlib/lab/`), run against the lab like any script: the operator can read it, eject
//! it and change it. `lab up` forms its cluster the same way (`stdlib/lab/form.rhai`).

use std::rc::Rc;
use std::str::FromStr;

use tokio::runtime::Handle;

use super::{Lab, LabError, DEFAULT_STUCK_SLOT};
use crate::script::host::RunOptions;
use crate::script::path::ScriptPath;
use crate::script::{Runner, ScriptError};

impl Lab {
    /// Put the lab into a broken state to practise on, with the bundled fault scripts;
    /// returns what was done, in words.
    pub fn break_fault(&self, fault: Fault, rt: &Handle) -> Result<String, LabError> {
        self.break_with(fault, rt, ScriptPath::default(), RunOptions::default())
    }

    /// [`Lab::break_fault`] with the fault's script found on `path` (a user's copy comes
    /// before the bundled one) and run with `opts`.
    pub fn break_with(
        &self,
        fault: Fault,
        rt: &Handle,
        path: ScriptPath,
        opts: RunOptions,
    ) -> Result<String, LabError> {
        let mut args = rhai::Map::new();
        match fault {
            Fault::StuckSlot { slot } => args.insert("slot".into(), i64::from(slot).into()),
        };
        args.insert("seed".into(), self.seed().into());
        args.insert("client".into(), self.flags("PASSWORD").join(" ").into());
        let done = self.run_script(fault.script(), args, rt, path, opts)?;
        Ok(done
            .into_string()
            .unwrap_or_else(|other| format!("{other}\n")))
    }

    /// Run the script `name` of `path` against the lab: `main(args)`'s value, or the
    /// script's failure in words.
    pub(super) fn run_script(
        &self,
        name: &str,
        args: rhai::Map,
        rt: &Handle,
        path: ScriptPath,
        opts: RunOptions,
    ) -> Result<rhai::Dynamic, LabError> {
        let cluster = Rc::new(self.cluster(rt)?);
        let script = path.load(name).map_err(LabError::Script)?;
        let runner = Runner::new(cluster, opts, path);
        match runner.call_main(&script, args) {
            Ok(done) if done.code == 0 => Ok(done.value),
            Ok(done) => Err(LabError::Script(done.message.unwrap_or_else(|| {
                format!("{} ended with exit code {}", script.name, done.code)
            }))),
            Err(ScriptError::Runtime { cause: Some(e), .. }) => Err(LabError::Cluster(e)),
            Err(e) => Err(LabError::Script(e.to_string())),
        }
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

    /// The script that makes this fault, by its name on the script path.
    pub fn script(&self) -> &'static str {
        match self {
            Fault::StuckSlot { .. } => "lab/stuck-slot",
        }
    }

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
    fn every_fault_has_a_bundled_script() {
        let script = Fault::StuckSlot { slot: 1 }.script();
        let text = crate::script::path::bundled(script).expect("bundled");
        // The seed lab's key, left behind in the default slot.
        let key = "user:loadtest_user_33:reservations";
        assert!(text.contains(&format!("\"{key}\"")));
        assert_eq!(
            crate::cluster::slot::slot_of(key.as_bytes()),
            DEFAULT_STUCK_SLOT
        );
    }
}
