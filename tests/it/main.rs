//! The one integration-test binary: every test here runs against real `redis-server`
//! clusters that the tests start themselves through `slotsmith::lab`, the same code
//! operators use. Shared helpers live in `support`.

#[macro_use]
mod support;

mod atomic;
mod atomic_repair;
mod bigkeys;
mod check;
mod cli;
mod dryrun;
mod examples;
mod faults;
mod fix;
mod forming;
mod lab;
mod lifecycle;
mod many;
mod offline;
mod ops;
mod owner_override;
mod plans;
mod pty;
mod races;
mod rebalance;
mod removing;
mod repair;
mod repl;
mod safety;
mod scripts;
mod secure;
mod traffic;
mod truth;
