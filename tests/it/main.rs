//! The one integration-test binary: every test here runs against real `redis-server`
//! clusters that the tests start themselves through `slotsmith::lab`, the same code
//! operators use. Shared helpers live in `support`.

mod check;
mod fix;
mod lab;
mod rebalance;
mod repair;
mod scripts;
mod support;
mod offline;
mod dryrun;
