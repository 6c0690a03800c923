//! From the global options to a cluster a script can run against: the connection
//! settings, the script path, and the one way a run opens its cluster (live, journaled,
//! or a snapshot). Used by every command that runs scripts and by the REPL.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::Global;
use crate::cluster::conn::{ConnOptions, TlsOptions};
use crate::cluster::live::LiveCluster;
use crate::cluster::snapshot::Snapshot;
use crate::cluster::Cluster;
use crate::journal::Journal;
use crate::script::path::ScriptPath;

/// The connection settings the global options give.
pub fn conn_options(g: &Global) -> ConnOptions {
    let tls = (g.tls || g.cacert.is_some() || g.cert.is_some()).then(|| TlsOptions {
        cacert: g.cacert.clone(),
        cert: g.cert.clone(),
        key: g.key.clone(),
        insecure: g.insecure,
    });
    ConnOptions {
        user: g.user.clone(),
        password: g.password.clone().filter(|p| !p.is_empty()),
        tls,
        timeout: Duration::from_millis(g.timeout),
    }
}

/// The script path of this run, with its options.
pub fn script_path(g: &Global) -> ScriptPath {
    ScriptPath::new(&g.scripts).with_options(g.allow_unsafe_scripts, g.quiet)
}

/// A cluster opened for one run.
pub struct Opened {
    /// What the run talks to: the live cluster (journaled when it may write) or a snapshot.
    pub cluster: Rc<dyn Cluster>,
    /// The run's journal, when it may write to a live cluster.
    pub journal: Option<Arc<Journal>>,
}

/// Open the cluster the global options name, for the run `what` (its name in the
/// lease and the journal). A dry run keeps no journal. The error is one sentence about
/// the options (a usage error).
pub fn open_cluster(
    g: &Global,
    rt: &tokio::runtime::Handle,
    what: &str,
    dry_run: bool,
) -> Result<Opened, String> {
    if let Some(file) = &g.snapshot {
        return Ok(Opened {
            cluster: Rc::new(Snapshot::load(file)?),
            journal: None,
        });
    }
    crate::cluster::conn::split_addr(g.cluster()).map_err(|e| format!("--cluster: {e}"))?;
    let live = LiveCluster::new(
        g.cluster(),
        conn_options(g),
        rt.clone(),
        crate::interrupt::stop(),
    )
    .with_lease(what);
    match Journal::new(what, g.cluster()).filter(|_| !dry_run) {
        Some(j) => {
            let j = Arc::new(j);
            Ok(Opened {
                cluster: Rc::new(live.with_journal(j.clone())),
                journal: Some(j),
            })
        }
        None => Ok(Opened {
            cluster: Rc::new(live),
            journal: None,
        }),
    }
}
