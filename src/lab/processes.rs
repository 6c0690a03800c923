//! The lab's server processes: starting one node, finding and signalling them (never a
//! recycled pid), and `down`, which stops them all and removes the lab's files.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::place::port_of_dir;
use super::state::STATE_FILE;
use super::{join_ports, plural, server, Lab, LabError, LabNode, LabSpec, HOST};
use crate::cluster::ClusterError;

/// How long a node may take to exit after SIGTERM before it gets SIGKILL.
const STOP: Duration = Duration::from_secs(5);

impl Lab {
    /// Stop one node (SIGTERM, then SIGKILL after 5 s), leaving the others running.
    /// Returns whether it was running.
    pub fn stop_node(&self, port: u16) -> Result<bool, LabError> {
        let node = self.node(port).ok_or_else(|| {
            LabError::Refused(format!(
                "port {port} is not a node of the lab on port {} (its nodes: {})",
                self.port,
                join_ports(&self.ports())
            ))
        })?;
        let pid = current_pid(&self.dir, node);
        if !running(pid, port) {
            return Ok(false);
        }
        let mut report = DownReport::default();
        stop_all(&[(port, pid)], &mut report)?;
        Ok(true)
    }

    /// Stop every node and remove the lab's directory.
    pub fn down(&self) -> Result<DownReport, LabError> {
        down_dir(&self.dir)
    }
}

/// What `down` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DownReport {
    pub dir: PathBuf,
    /// Nodes that exited on SIGTERM.
    pub stopped: Vec<u16>,
    /// Nodes that needed SIGKILL.
    pub killed: Vec<u16>,
    /// Whether the lab's directory was there and is now removed.
    pub removed: bool,
}

impl fmt::Display for DownReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.removed && self.stopped.is_empty() && self.killed.is_empty() {
            return write!(
                f,
                "no lab cluster in {}; nothing to stop",
                self.dir.display()
            );
        }
        let mut all: Vec<u16> = self.stopped.iter().chain(&self.killed).copied().collect();
        all.sort_unstable();
        write!(f, "stopped {}", plural(all.len() as u64, "node"))?;
        if !all.is_empty() {
            write!(f, " ({})", join_ports(&all))?;
        }
        if !self.killed.is_empty() {
            write!(f, ", {} of them with SIGKILL", self.killed.len())?;
        }
        if self.removed {
            write!(f, " and removed {}", self.dir.display())?;
        }
        Ok(())
    }
}

/// Stop every node of the lab in `dir` (from `lab.json` and the nodes' pid files) and
/// remove the directory. Only processes that are `redis-server` on the lab's ports are
/// signalled, and only the lab's own files are removed.
pub fn down_dir(dir: &Path) -> Result<DownReport, LabError> {
    let mut report = DownReport {
        dir: dir.to_path_buf(),
        ..DownReport::default()
    };
    if !dir.exists() {
        return Ok(report);
    }
    let mut targets: BTreeSet<(u16, u32)> = BTreeSet::new();
    let lab = Lab::open_dir(dir).ok();
    if let Some(lab) = &lab {
        for n in &lab.nodes {
            targets.insert((n.port, n.pid));
        }
    }
    let node_dirs = node_dirs(dir)?;
    for (port, path) in &node_dirs {
        if let Some(pid) = read_pid(&path.join("redis.pid")) {
            targets.insert((*port, pid));
        }
    }
    let live: Vec<(u16, u32)> = targets
        .into_iter()
        .filter(|&(port, pid)| running(pid, port))
        .collect();
    stop_all(&live, &mut report)?;

    for (_, path) in &node_dirs {
        std::fs::remove_dir_all(path).map_err(|source| LabError::Io {
            action: "remove",
            path: path.clone(),
            source,
        })?;
    }
    for name in [STATE_FILE.to_string(), format!("{STATE_FILE}.tmp")] {
        let path = dir.join(name);
        if path.exists() {
            std::fs::remove_file(&path).map_err(|source| LabError::Io {
                action: "remove",
                path,
                source,
            })?;
        }
    }
    // Not remove_dir_all: anything else in there is not ours to delete.
    std::fs::remove_dir(dir).map_err(|source| LabError::Io {
        action: "remove the lab directory (it holds files the lab did not create)",
        path: dir.to_path_buf(),
        source,
    })?;
    report.removed = true;
    Ok(report)
}

/// Launch one daemonized `redis-server` in `<dir>/<port>/`, with the password, ACL
/// user and TLS of `spec`.
pub(super) fn start_node(dir: &Path, port: u16, spec: &LabSpec) -> Result<(), LabError> {
    let node_dir = dir.join(port.to_string());
    let path = |name: &str| node_dir.join(name).to_string_lossy().to_string();
    let mut cmd = Command::new(&spec.server);
    match &spec.tls {
        None => cmd.args(["--port", &port.to_string()]),
        // TLS only: no plain-text port; the bus (port + 10000) and replication use TLS.
        Some(tls) => cmd
            .args(["--port", "0", "--tls-port", &port.to_string()])
            .args(["--tls-cert-file", &tls.cert.to_string_lossy()])
            .args(["--tls-key-file", &tls.key.to_string_lossy()])
            .args(["--tls-ca-cert-file", &tls.ca.to_string_lossy()])
            .args(["--tls-cluster", "yes", "--tls-replication", "yes"])
            .args([
                "--tls-auth-clients",
                if tls.auth_clients { "yes" } else { "optional" },
            ]),
    };
    cmd.args(["--bind", HOST])
        .args([
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            "nodes.conf",
        ])
        .args(["--dir", &node_dir.to_string_lossy()])
        .args(["--daemonize", "yes"])
        .args([
            "--pidfile",
            &path("redis.pid"),
            "--logfile",
            &path("redis.log"),
        ])
        .args([
            "--save",
            "",
            "--appendonly",
            "no",
            "--cluster-node-timeout",
            "5000",
        ])
        // Replicas sync at once instead of after the default 5 s wait for more of them.
        .args(["--repl-diskless-sync-delay", "0"]);
    match (&spec.user, &spec.password) {
        // The `user` directive takes the rest of the line: one argument per ACL rule.
        (Some(user), Some(pw)) => cmd
            .args(["--user", user, "on", &format!(">{pw}"), "~*", "&*", "+@all"])
            .args(["--user", "default", "off"])
            .args(["--masteruser", user, "--masterauth", pw]),
        (None, Some(pw)) => cmd.args(["--requirepass", pw, "--masterauth", pw]),
        _ => &mut cmd,
    };
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| server::not_runnable(&spec.server, &e))?;
    if !out.status.success() {
        let mut text = String::from_utf8_lossy(&out.stderr).trim().to_string();
        if text.is_empty() {
            text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        }
        return Err(LabError::Start {
            port,
            reason: last_lines(&text, 3),
        });
    }
    Ok(())
}

/// Why a node did not answer: the end of its log, else the connection error.
pub(super) fn start_failure(dir: &Path, port: u16, err: &ClusterError) -> String {
    let log = dir.join(port.to_string()).join("redis.log");
    match std::fs::read_to_string(&log) {
        Ok(text) if !text.trim().is_empty() => {
            format!("{} (from {})", last_lines(&text, 3), log.display())
        }
        _ => err.to_string(),
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" / ")
}

/// The sub-directories of a lab that are node directories (named by a port and holding
/// a node's files).
fn node_dirs(dir: &Path) -> Result<Vec<(u16, PathBuf)>, LabError> {
    let entries = std::fs::read_dir(dir).map_err(|source| LabError::Io {
        action: "read",
        path: dir.to_path_buf(),
        source,
    })?;
    let mut out = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(port) = port_of_dir(&path) else {
            continue;
        };
        let ours = ["nodes.conf", "redis.log", "redis.pid"]
            .iter()
            .any(|f| path.join(f).exists())
            || std::fs::read_dir(&path).is_ok_and(|mut d| d.next().is_none());
        if path.is_dir() && ours {
            out.push((port, path));
        }
    }
    Ok(out)
}

pub(super) fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The node's pid: its pid file when present (fresher), else `lab.json`.
pub(super) fn current_pid(dir: &Path, node: &LabNode) -> u32 {
    read_pid(&dir.join(node.port.to_string()).join("redis.pid")).unwrap_or(node.pid)
}

/// Whether `pid` is a live `redis-server` serving `port` (so a recycled pid is never
/// signalled).
pub(super) fn running(pid: u32, port: u16) -> bool {
    if pid == 0 || !signal(pid, 0) {
        return false;
    }
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    if !Path::new("/proc/self").exists() {
        return true; // no procfs to look closer: trust the pid
    }
    let stat = std::fs::read_to_string(proc_dir.join("stat")).unwrap_or_default();
    let zombie = stat
        .rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
    if zombie {
        return false;
    }
    let cmdline = std::fs::read(proc_dir.join("cmdline")).unwrap_or_default();
    let cmdline = String::from_utf8_lossy(&cmdline);
    server::is_server_title(&cmdline) && cmdline.contains(&port.to_string())
}

/// Send `sig` to `pid`; true when the process exists and accepted it.
fn signal(pid: u32, sig: libc::c_int) -> bool {
    match libc::pid_t::try_from(pid) {
        // SAFETY: kill(2) takes two integers and touches none of our memory.
        Ok(p) if p > 0 => unsafe { libc::kill(p, sig) == 0 },
        _ => false,
    }
}

/// SIGTERM every node, wait up to [`STOP`], SIGKILL the rest, and wait for them too.
fn stop_all(nodes: &[(u16, u32)], report: &mut DownReport) -> Result<(), LabError> {
    for &(_, pid) in nodes {
        signal(pid, libc::SIGTERM);
    }
    let deadline = Instant::now() + STOP;
    while Instant::now() < deadline && nodes.iter().any(|&(port, pid)| running(pid, port)) {
        std::thread::sleep(Duration::from_millis(50));
    }
    for &(port, pid) in nodes {
        if running(pid, port) {
            signal(pid, libc::SIGKILL);
            report.killed.push(port);
        } else {
            report.stopped.push(port);
        }
    }
    let deadline = Instant::now() + STOP;
    for &(port, pid) in nodes {
        while running(pid, port) {
            if Instant::now() >= deadline {
                return Err(LabError::Stop { port, pid });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn down_of_a_missing_lab_is_a_no_op() {
        let dir = std::env::temp_dir().join("slotsmith-lab-test-missing-dir-xyz");
        let report = down_dir(&dir).unwrap();
        assert!(!report.removed);
        assert!(report.to_string().contains("nothing to stop"));
    }
}
