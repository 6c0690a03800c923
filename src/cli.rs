//! The command line as clap sees it: raw flags and subcommands, nothing validated
//! beyond their syntax. `app` turns them into actions.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// `slotsmith --version`: the release, the git commit and the build date.
const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (",
    env!("SLOTSMITH_COMMIT"),
    ", built ",
    env!("SLOTSMITH_BUILD_DATE"),
    ")"
);

/// Repair and rebalance Redis Cluster with scriptable, testable runbooks.
#[derive(Debug, Parser)]
#[command(name = "slotsmith", version = VERSION, about, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options valid before or after the subcommand.
#[derive(Debug, Args, Clone)]
#[command(next_help_heading = "Global options")]
pub struct Global {
    /// Any reachable node of the cluster (default 127.0.0.1:6379).
    #[arg(
        short = 'c',
        long,
        env = "SLOTSMITH_CLUSTER",
        global = true,
        value_name = "HOST:PORT"
    )]
    pub cluster: Option<String>,
    /// ACL user name.
    #[arg(long, global = true, value_name = "NAME")]
    pub user: Option<String>,
    /// Password (also from REDISCLI_AUTH).
    #[arg(
        short = 'a',
        long,
        env = "REDISCLI_AUTH",
        hide_env_values = true,
        global = true,
        value_name = "PASS"
    )]
    pub password: Option<String>,
    /// Use TLS to every node.
    #[arg(long, global = true)]
    pub tls: bool,
    /// CA certificate to verify the nodes with (PEM).
    #[arg(long, global = true, value_name = "FILE")]
    pub cacert: Option<PathBuf>,
    /// Client certificate (PEM).
    #[arg(long, global = true, value_name = "FILE")]
    pub cert: Option<PathBuf>,
    /// Client key (PEM).
    #[arg(long, global = true, value_name = "FILE")]
    pub key: Option<PathBuf>,
    /// Do not verify the nodes' certificates.
    #[arg(long, global = true)]
    pub insecure: bool,
    /// Run against an in-memory copy of the cluster: reads see the live cluster, writes
    /// only change the copy and are printed as the plan. Nothing is written.
    #[arg(
        long,
        global = true,
        visible_alias = "simulate",
        alias = "cluster-simulate"
    )]
    pub dry_run: bool,
    /// Run against a saved snapshot instead of a live cluster (implies --dry-run).
    #[arg(long, global = true, value_name = "FILE")]
    pub snapshot: Option<PathBuf>,
    /// Do not ask before changing the cluster.
    #[arg(short = 'y', long, global = true, alias = "cluster-yes")]
    pub yes: bool,
    /// Machine-readable output on stdout, one JSON document.
    #[arg(long, global = true)]
    pub json: bool,
    /// Per-command timeout in milliseconds.
    #[arg(long, global = true, default_value_t = 5000, value_name = "MS", value_parser = clap::value_parser!(u64).range(1..))]
    pub timeout: u64,
    /// A directory searched for scripts before the user directory (repeatable).
    #[arg(long = "scripts", global = true, value_name = "DIR")]
    pub scripts: Vec<PathBuf>,
    /// Run scripts (and use script directories) that other users can write to.
    #[arg(long, global = true)]
    pub allow_unsafe_scripts: bool,
    /// No warning that a password given with -a shows in the process list.
    #[arg(long, global = true)]
    pub no_auth_warning: bool,
    /// Stop a script after this many Rhai operations (a runaway loop); 0 means no limit.
    #[arg(long, global = true, value_name = "N", default_value_t = 0)]
    pub max_operations: u64,
    /// More on stderr.
    #[arg(short, long, global = true)]
    pub verbose: bool,
    /// Less on stderr.
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// When to colour [OK], [WARNING], [ERR] and >>> headings.
    #[arg(long, global = true, value_enum, default_value_t, value_name = "WHEN")]
    pub color: crate::color::ColorWhen,
}

/// The node `-c` means when neither it nor `SLOTSMITH_CLUSTER` is given.
pub const DEFAULT_CLUSTER: &str = "127.0.0.1:6379";

impl Global {
    /// The node to reach the cluster through: `-c`, else `SLOTSMITH_CLUSTER`, else
    /// [`DEFAULT_CLUSTER`].
    pub fn cluster(&self) -> &str {
        self.cluster.as_deref().unwrap_or(DEFAULT_CLUSTER)
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Save the cluster's topology and key names per slot, for --snapshot runs with no cluster.
    Snapshot {
        #[command(subcommand)]
        action: SnapshotAction,
    },
    /// What runs wrote to the cluster: every run (what ran, against which node, how it
    /// ended), or the writes of one.
    Journal {
        /// Print the writes of the last run.
        #[arg(long)]
        last: bool,
        #[command(subcommand)]
        action: Option<JournalAction>,
    },
    /// Every primitive and helper the scripts can call, with its signature and doc.
    Api {
        /// Write `slotsmith.d.rhai` into DIR instead: Rhai definitions (every primitive with
        /// its doc, and `args`) for editors with Rhai support.
        #[arg(long, value_name = "DIR")]
        definitions: Option<PathBuf>,
    },
    /// Run a script: a path, or the name of a bundled or user script.
    Run {
        /// Script path or name.
        script: String,
        /// Arguments, available to the script as `args`.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Interactive Rhai session with the primitives loaded.
    Repl,
    /// Print a shell completion script: `source <(slotsmith completions bash)`. It
    /// completes the runbooks on the script path too.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff), or write one page per command into DIR.
    Man {
        /// Write slotsmith.1 and slotsmith-COMMAND.1 into this directory.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// The script path: list names and where they resolve, show one, or eject a bundled one to edit.
    Scripts {
        #[command(subcommand)]
        action: Option<ScriptsAction>,
    },
    /// A throwaway cluster of real redis-server processes on loopback, and faults to practise on.
    Lab {
        #[command(subcommand)]
        action: LabAction,
    },
}

#[derive(Debug, Subcommand)]
pub enum SnapshotAction {
    /// Write the snapshot to FILE.
    Save { file: PathBuf },
}

#[derive(Debug, Subcommand)]
pub enum ScriptsAction {
    /// Every script name, where it resolves, and what it shadows.
    List,
    /// Print one script.
    Show { name: String },
    /// Copy a bundled script into the user directory, where it then takes precedence.
    Eject {
        name: String,
        /// Overwrite an existing copy.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum JournalAction {
    /// Every write of one run.
    Show {
        /// The run: its id (or a unique start of it), its file, or its number in
        /// `slotsmith journal` (1 the oldest, -1 the last).
        #[arg(allow_hyphen_values = true)]
        run: String,
    },
}

/// Which lab cluster: the base port of its first node.
#[derive(Debug, Args, Clone, Copy)]
pub struct LabPort {
    /// Base port of the lab (its nodes use this port and the next ones); default: the
    /// port of -c/SLOTSMITH_CLUSTER when given, else 7001.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..55000))]
    pub port: Option<u16>,
}

#[derive(Debug, Subcommand)]
pub enum LabAction {
    /// Start a lab cluster.
    Up {
        #[command(flatten)]
        port: LabPort,
        /// Masters holding slots.
        #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=50))]
        masters: u64,
        /// Replicas per master.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(0..=5))]
        replicas: u64,
        /// Extra masters with no slots.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(0..=20))]
        empty: u64,
        /// Keys to load.
        #[arg(long, default_value_t = 0)]
        keys: u64,
        /// The server binary every node runs: redis-server or any compatible one, such
        /// as Valkey's valkey-server
        #[arg(
            long,
            value_name = "PATH",
            env = "SLOTSMITH_SERVER",
            default_value = "redis-server"
        )]
        server: std::path::PathBuf,
    },
    /// Break the lab cluster on purpose.
    Break {
        #[command(subcommand)]
        fault: Fault,
    },
    /// Each node's process, role, slots and keys.
    Status {
        #[command(flatten)]
        port: LabPort,
    },
    /// Stop every process of the lab and remove its files.
    Down {
        #[command(flatten)]
        port: LabPort,
    },
}

#[derive(Debug, Subcommand)]
pub enum Fault {
    /// An interrupted migration: a slot MIGRATING on its owner, IMPORTING on another
    /// master, its keys split between them.
    StuckSlot {
        #[command(flatten)]
        port: LabPort,
        /// The slot to leave open.
        #[arg(long, default_value_t = 5519, value_parser = clap::value_parser!(u16).range(0..16384))]
        slot: u16,
    },
}
