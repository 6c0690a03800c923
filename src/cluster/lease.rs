//! How runs see each other, without writing anything into the operator's keyspace.
//!
//! A run that is about to change slots names its connection to every master
//! (`CLIENT SETNAME slotsmith:<script>:<pid>@<host>`), then reads every master's
//! `CLIENT LIST`. It stops when it sees another slotsmith run that did the same (a
//! named connection that sent a command in the last [`LEASE_IDLE`] seconds), or a
//! client that is moving slots right now (its last command a `MIGRATE` or
//! `CLUSTER SETSLOT`, within [`FOREIGN_IDLE`] seconds: redis-cli's reshard looks like
//! that). Both runs announce before they look, so of two that start together at least
//! one sees the other. The lease is the connection itself: it ends with the process
//! (a `kill -9` closes its sockets) or after [`LEASE_IDLE`] seconds without a command.

use std::time::{SystemTime, UNIX_EPOCH};

/// Every lease name starts with this.
pub const PREFIX: &str = "slotsmith:";
/// A named connection idle longer than this no longer holds the lease (its run is
/// stuck or gone without closing its sockets).
pub const LEASE_IDLE: u64 = 30;
/// A client whose last command moved slots this recently is moving slots now.
pub const FOREIGN_IDLE: u64 = 2;

/// Another run seen on a node.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct OtherRun {
    /// The node whose `CLIENT LIST` showed it.
    pub node: String,
    /// The client's address as the node sees it.
    pub client: String,
    /// Its connection name (a slotsmith run's lease), empty for another tool.
    pub name: String,
    /// Its last command, as `CLIENT LIST` names it (`migrate`, `cluster|setslot`, ...).
    pub cmd: String,
    /// Seconds since its last command.
    pub idle: u64,
}

impl OtherRun {
    /// `slotsmith rebalance (pid 4242 on host-a)` or `a client at 127.0.0.1:5000 (MIGRATE 0 s ago)`.
    pub fn who(&self) -> String {
        if let Some(rest) = self.name.strip_prefix(PREFIX) {
            // script:pid@host; the script may itself hold colons (a path).
            if let Some((script, pid_host)) = rest.rsplit_once(':') {
                if let Some((pid, host)) = pid_host.split_once('@') {
                    return format!("slotsmith {script} (pid {pid} on {host})");
                }
            }
            return format!("slotsmith ({})", self.name);
        }
        format!(
            "a client at {} ({} {} s ago)",
            self.client,
            self.cmd.replace('|', " ").to_ascii_uppercase(),
            self.idle
        )
    }
}

/// One line of `CLIENT LIST`.
#[derive(Debug, Clone, PartialEq)]
pub struct Client {
    pub id: u64,
    pub addr: String,
    pub name: String,
    pub idle: u64,
    pub cmd: String,
}

/// Parse `CLIENT LIST` (`id=5 addr=127.0.0.1:5555 ... name=x ... idle=0 ... cmd=migrate ...`).
pub fn parse_client_list(text: &str) -> Vec<Client> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let mut c = Client {
                id: 0,
                addr: String::new(),
                name: String::new(),
                idle: 0,
                cmd: String::new(),
            };
            for field in line.split(' ') {
                let Some((k, v)) = field.split_once('=') else {
                    continue;
                };
                match k {
                    "id" => c.id = v.parse().unwrap_or(0),
                    "addr" => c.addr = v.to_string(),
                    "name" => c.name = v.to_string(),
                    "idle" => c.idle = v.parse().unwrap_or(0),
                    "cmd" => c.cmd = v.to_string(),
                    _ => {}
                }
            }
            c
        })
        .collect()
}

/// The clients of one node's list that are other runs moving slots; `own` is this
/// run's client id on that node.
pub fn others_on(node: &str, clients: &[Client], own: Option<u64>) -> Vec<OtherRun> {
    clients
        .iter()
        .filter(|c| Some(c.id) != own)
        .filter(|c| {
            let leased = c.name.starts_with(PREFIX) && c.idle <= LEASE_IDLE;
            let moving = !c.name.starts_with(PREFIX)
                && (c.cmd == "migrate" || c.cmd == "cluster|setslot")
                && c.idle <= FOREIGN_IDLE;
            leased || moving
        })
        .map(|c| OtherRun {
            node: node.to_string(),
            client: c.addr.clone(),
            name: c.name.clone(),
            cmd: c.cmd.clone(),
            idle: c.idle,
        })
        .collect()
}

/// The sentence a run that sees others stops with.
pub fn refusal(others: &[OtherRun]) -> String {
    let mut who: Vec<String> = Vec::new();
    for o in others {
        let w = o.who();
        if !who.contains(&w) {
            who.push(w);
        }
    }
    let nodes: Vec<&str> = {
        let mut n: Vec<&str> = others.iter().map(|o| o.node.as_str()).collect();
        n.dedup();
        n
    };
    format!(
        "another run is changing slots on this cluster: {} (seen on {}); nothing was written by this run: wait until it has finished (or stop it), then run this again",
        who.join(", "),
        nodes.join(", ")
    )
}

/// The lease of one run: its connection name, and whether it is held.
#[derive(Debug)]
pub struct Lease {
    name: String,
    held: std::sync::atomic::AtomicBool,
}

impl Lease {
    /// A lease for a run of `script` by this process.
    pub fn new(script: &str) -> Lease {
        let name = format!(
            "{PREFIX}{}:{}@{}",
            printable(script.trim_end_matches(".rhai")),
            std::process::id(),
            printable(&hostname())
        );
        Lease {
            name,
            held: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn held(&self) -> bool {
        self.held.load(std::sync::atomic::Ordering::SeqCst)
    }

    pub fn set_held(&self, held: bool) {
        self.held.store(held, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Connection names may hold only printable characters without spaces.
fn printable(s: &str) -> String {
    s.chars()
        .map(|c| if ('!'..='~').contains(&c) { c } else { '_' })
        .collect()
}

/// This machine's name, for other runs' messages.
fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc == 0 {
        let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
        if let Ok(s) = std::str::from_utf8(&buf[..end]) {
            if !s.is_empty() {
                return s.to_string();
            }
        }
    }
    format!(
        "unknown-{}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIST: &str = "id=3 addr=127.0.0.1:50000 laddr=127.0.0.1:7001 fd=8 name=slotsmith:rebalance:4242@host-a age=3 idle=0 flags=N db=0 cmd=cluster|setslot\n\
id=4 addr=127.0.0.1:50001 laddr=127.0.0.1:7001 fd=9 name= age=9 idle=1 flags=N db=0 cmd=migrate\n\
id=5 addr=127.0.0.1:50002 laddr=127.0.0.1:7001 fd=10 name= age=9 idle=0 flags=N db=0 cmd=get\n\
id=6 addr=127.0.0.1:50003 laddr=127.0.0.1:7001 fd=11 name=slotsmith:fix:77@host-b age=90 idle=61 flags=N db=0 cmd=cluster|nodes\n\
id=7 addr=127.0.0.1:50004 laddr=127.0.0.1:7001 fd=12 name= age=90 idle=40 flags=N db=0 cmd=cluster|setslot\n";

    #[test]
    fn other_runs_are_live_leases_and_clients_moving_slots_now() {
        let clients = parse_client_list(LIST);
        assert_eq!(clients.len(), 5);
        let others = others_on("127.0.0.1:7001", &clients, Some(5));
        let ids: Vec<&str> = others.iter().map(|o| o.client.as_str()).collect();
        // The lease, and redis-cli's MIGRATE; not a reader, not a lease idle for 61 s,
        // not a SETSLOT typed 40 s ago.
        assert_eq!(ids, ["127.0.0.1:50000", "127.0.0.1:50001"]);
        assert_eq!(others[0].who(), "slotsmith rebalance (pid 4242 on host-a)");
        assert_eq!(
            others[1].who(),
            "a client at 127.0.0.1:50001 (MIGRATE 1 s ago)"
        );
        // Our own connection never counts.
        assert!(others_on("n", &clients, Some(3))
            .iter()
            .all(|o| o.client != "127.0.0.1:50000"));
        let text = refusal(&others);
        assert!(text.starts_with("another run is changing slots on this cluster: slotsmith rebalance (pid 4242 on host-a), a client at"), "{text}");
        assert!(text.contains("seen on 127.0.0.1:7001"), "{text}");
    }

    #[test]
    fn lease_names_are_printable() {
        let l = Lease::new("/tmp/my runbook.rhai");
        assert!(
            l.name().starts_with("slotsmith:/tmp/my_runbook:"),
            "{}",
            l.name()
        );
        assert!(l.name().chars().all(|c| ('!'..='~').contains(&c)));
    }
}
