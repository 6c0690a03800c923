//! Where labs live (one directory per lab under the lab root, named by the lab's base
//! port), and which lab a `lab` command means.

use std::fmt;
use std::path::{Path, PathBuf};

use super::{LabError, DEFAULT_PORT, HOST};
use crate::cluster::conn::split_addr;

/// Base ports from here on leave no room for a node's cluster bus port (port + 10000);
/// `--port` stops below it too.
const MAX_BASE_PORT: u16 = 55000;

/// Where labs live: `$SLOTSMITH_LAB_DIR`, else `$XDG_DATA_HOME/slotsmith/lab`, else
/// `~/.local/share/slotsmith/lab`. Each lab is the sub-directory named by its base port.
pub fn lab_root() -> PathBuf {
    if let Some(dir) = std::env::var_os("SLOTSMITH_LAB_DIR").filter(|v| !v.is_empty()) {
        return PathBuf::from(dir);
    }
    crate::xdg::strict_dir(crate::xdg::Base::Data, "lab")
        .unwrap_or_else(|| std::env::temp_dir().join("slotsmith-lab"))
}

/// The directory of the lab whose base port is `port`, under [`lab_root`].
pub fn lab_dir(port: u16) -> PathBuf {
    lab_root().join(port.to_string())
}

pub(super) fn port_of_dir(dir: &Path) -> Option<u16> {
    dir.file_name()?.to_str()?.parse().ok()
}

/// How the operator named a cluster node: `-c HOST:PORT` (or `--cluster`) on the command
/// line, or `SLOTSMITH_CLUSTER` in the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Named<'a> {
    Flag(&'a str),
    Env(&'a str),
}

impl<'a> Named<'a> {
    /// The cluster address `-c`/`SLOTSMITH_CLUSTER` gave, named as the operator gave it:
    /// from the environment when it holds that address and the command line has no
    /// `-c`/`--cluster` (this only chooses the words).
    pub fn as_given(addr: &'a str) -> Self {
        let flag = std::env::args().skip(1).any(|a| {
            a == "--cluster"
                || a.starts_with("--cluster=")
                || (a.starts_with("-c") && !a.starts_with("--"))
        });
        if !flag && std::env::var("SLOTSMITH_CLUSTER").is_ok_and(|v| v == addr) {
            Named::Env(addr)
        } else {
            Named::Flag(addr)
        }
    }

    fn addr(&self) -> &str {
        match self {
            Named::Flag(a) | Named::Env(a) => a,
        }
    }
}

impl fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Named::Flag(a) => write!(f, "-c {a}"),
            Named::Env(a) => write!(f, "SLOTSMITH_CLUSTER={a}"),
        }
    }
}

/// The base port of the lab a `lab` command means: `--port` when given; else the port of
/// the node the operator named (`-c` or `SLOTSMITH_CLUSTER`), which must be on
/// [`HOST`]; else [`DEFAULT_PORT`]. Both given and naming different labs is a usage
/// error ([`LabError::Spec`]) naming both.
pub fn base_port(port: Option<u16>, named: Option<Named<'_>>) -> Result<u16, LabError> {
    let Some(named) = named else {
        return Ok(port.unwrap_or(DEFAULT_PORT));
    };
    let (host, at) =
        split_addr(named.addr()).map_err(|e| LabError::Spec(format!("{named}: {e}")))?;
    let local = host == HOST || host.eq_ignore_ascii_case("localhost");
    match port {
        Some(p) if local && p == at => Ok(p),
        Some(p) => Err(LabError::Spec(format!(
            "--port {p} and {named} name different lab clusters; give only one of them"
        ))),
        None if !local => Err(LabError::Spec(format!(
            "{named} is not on {HOST}, where lab clusters run; name the lab with --port or -c {HOST}:PORT"
        ))),
        None if at >= MAX_BASE_PORT => Err(LabError::Spec(format!(
            "{named}: a lab's base port is 1 to {}",
            MAX_BASE_PORT - 1
        ))),
        None => Ok(at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lab_is_port_then_cluster_then_7001() {
        assert_eq!(base_port(None, None).unwrap(), 7001);
        assert_eq!(base_port(Some(7100), None).unwrap(), 7100);
        let c = Named::Flag("127.0.0.1:9001");
        assert_eq!(base_port(None, Some(c)).unwrap(), 9001);
        assert_eq!(base_port(Some(9001), Some(c)).unwrap(), 9001);
        let env = Named::Env("localhost:9002");
        assert_eq!(base_port(None, Some(env)).unwrap(), 9002);
    }

    #[test]
    fn a_cluster_that_names_no_lab_is_refused_with_a_sentence() {
        let both = base_port(Some(7001), Some(Named::Flag("127.0.0.1:9001")))
            .unwrap_err()
            .to_string();
        assert_eq!(
            both,
            "--port 7001 and -c 127.0.0.1:9001 name different lab clusters; give only one of them"
        );
        let env = base_port(Some(7001), Some(Named::Env("127.0.0.1:9001")))
            .unwrap_err()
            .to_string();
        assert!(env.contains("SLOTSMITH_CLUSTER=127.0.0.1:9001"), "{env}");
        let far = base_port(None, Some(Named::Flag("10.0.0.5:7001")))
            .unwrap_err()
            .to_string();
        assert!(
            far.contains("-c 10.0.0.5:7001 is not on 127.0.0.1"),
            "{far}"
        );
        let bad = base_port(None, Some(Named::Flag("nonsense"))).unwrap_err();
        assert!(matches!(bad, LabError::Spec(_)));
        assert!(bad.to_string().contains("HOST:PORT"), "{bad}");
        let high = base_port(None, Some(Named::Flag("127.0.0.1:60000"))).unwrap_err();
        assert!(high.to_string().contains("1 to 54999"), "{high}");
    }
}
