//! slotsmith repairs and rebalances Redis Cluster.
//!
//! Layout:
//! - [`cluster`]: the one interface to a cluster ([`cluster::Cluster`]), the
//!   `CLUSTER NODES` parser, the pure `check`, and the live implementation.
//! - [`script`]: the Rhai engine, the primitives it exposes, and the script path
//!   (user directories, then the bundled `stdlib/`).
//! - [`lab`]: throwaway local clusters of real `redis-server` processes, used by
//!   operators to practise and by the tests.
//! - [`map`]: the picture of the 16384 slots, for a terminal and as SVG.
//! - [`repl`]: `slotsmith repl`, the interactive session over the same engine.
//! - [`cli`] and [`app`]: the command line and what each command runs.

pub mod app;
pub mod civil_date;
pub mod cli;
pub mod cluster;
pub mod color;
pub mod commands;
pub mod connect;
pub mod interrupt;
pub mod journal;
pub mod lab;
pub mod map;
pub mod progress;
pub mod repl;
pub mod script;
pub mod xdg;
