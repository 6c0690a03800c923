//! How the session runs: `:dry-run on|off` (writes to an in-memory copy of the
//! cluster, shown as a plan, or to the cluster) and `:json on|off` (results as JSON).

use std::rc::Rc;

use crate::cluster::memory::{render as render_plan, MemoryCluster};
use crate::repl::failure::{Done, Failure};
use crate::repl::session::Session;

impl Session {
    /// `:dry-run on|off`; with neither, where writes go now (and the plan so far).
    pub(super) fn set_dry_run(&mut self, on: Option<bool>) -> Done {
        match (on, &self.memory) {
            (Some(true), Some(_)) => println!("dry run is already on"),
            (Some(true), None) => {
                self.memory = Some(Rc::new(MemoryCluster::new(self.base.clone())));
                self.rebuild_runner();
                println!("dry run on: writes change an in-memory copy of the cluster and are shown as a plan; nothing is written");
            }
            (Some(false), None) => println!("dry run is already off"),
            (Some(false), Some(_)) if self.snapshot => {
                return Err(Failure::error(
                    "this session runs on a snapshot: there is no live cluster to write to",
                ));
            }
            (Some(false), Some(m)) => {
                let n = m.plan().len();
                self.memory = None;
                self.rebuild_runner();
                println!(
                    "dry run off: the plan of {n} command{} is discarded; writes now go to the cluster at {}",
                    if n == 1 { "" } else { "s" },
                    self.base.seed()
                );
            }
            (None, None) => println!(
                "dry run is off: writes go to the cluster at {}",
                self.base.seed()
            ),
            (None, Some(m)) => {
                let plan = m.plan();
                println!("dry run is on; the plan so far ({} commands):", plan.len());
                print!("{}", render_plan(&plan));
            }
        }
        Ok(())
    }

    /// `:json on|off`; with neither, the other way round from now.
    pub(super) fn set_json(&mut self, on: Option<bool>) {
        self.json = on.unwrap_or(!self.json);
        println!("results as JSON: {}", if self.json { "on" } else { "off" });
    }
}
