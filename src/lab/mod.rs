//! Throwaway local clusters of real `redis-server` processes on loopback (`slotsmith lab
//! up / break / status / down`). This is the one way clusters get started, by operators
//! who want to practise on something real and by the integration tests.
//!
//! One file per concept: where labs live and which one a command means (`place`), what
//! to build (`spec`), what a lab is and its `lab.json` (`state`), starting and forming
//! it (`forming`), its server processes (`processes`), asking its nodes (`probe`,
//! `status`), the faults it can be put into (`fault`, which runs the scripts in
//! `stdlib/lab/`), its errors (`error`), and which server binary it runs ([`server`]).

mod error;
mod fault;
mod forming;
mod place;
mod probe;
mod processes;
mod spec;
mod state;
mod status;

pub mod server;

use tokio::runtime::Handle;

pub use error::LabError;
pub use fault::Fault;
pub use forming::up;
pub use place::{base_port, lab_dir, lab_root, Named};
pub use processes::{down_dir, DownReport};
pub use spec::{LabSpec, LabTls};
pub use state::{Lab, LabNode, LabRole};
pub use status::{LabStatus, NodeStatus};

/// The base port of a lab when none is given: nodes on 7001, 7002, ...
pub const DEFAULT_PORT: u16 = 7001;
/// The slot `lab break stuck-slot` opens when none is given (the seed lab's slot).
pub const DEFAULT_STUCK_SLOT: u16 = 5519;
/// Every lab node listens here, and only here.
pub const HOST: &str = "127.0.0.1";

/// Read the lab on base `port` (see [`Lab::open`]).
pub fn open(port: u16) -> Result<Lab, LabError> {
    Lab::open(port)
}

/// Stop the lab on base `port` and remove its directory. Idempotent: a lab that is
/// already gone, or whose nodes already died, is not an error.
pub fn down(port: u16) -> Result<DownReport, LabError> {
    down_dir(&lab_dir(port))
}

/// The status of the lab on base `port` (no password; see [`Lab::status`]).
pub fn status(port: u16, rt: &Handle) -> Result<LabStatus, LabError> {
    Lab::open(port)?.status(rt)
}

/// Break the lab on base `port` (no password; see [`Lab::break_fault`]).
pub fn break_fault(port: u16, fault: Fault, rt: &Handle) -> Result<String, LabError> {
    Lab::open(port)?.break_fault(fault, rt)
}

/// `1 master`, `3 masters`.
fn plural(n: u64, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

fn join_ports(ports: &[u16]) -> String {
    ports
        .iter()
        .map(u16::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
