//! Atomic slot migration jobs as the servers report them (`CLUSTER GETSLOTMIGRATIONS`,
//! Valkey 9): the one parser of that reply, and what a job's state and message mean to
//! an operator. Starting, watching and cancelling jobs is the engine's business
//! (`bulk::atomic`); grouping them into a health report is `check`'s.

use serde::Serialize;

use super::topology::{format_ranges, ranges_of};
use super::{ClusterError, NodeInfo, Reply};

/// The message of a job that may have moved its slots although it failed: the source
/// resumed writes before it knew the target had taken over.
pub const UNPAUSED: &str = "Unpaused before migration completed";

/// One job, as one node reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SlotJob {
    /// The job's name (the same on its source and its target).
    pub name: String,
    /// `EXPORT` on the source, `IMPORT` on the target.
    pub operation: String,
    /// Its slots, as sorted inclusive ranges.
    pub slots: Vec<(u16, u16)>,
    /// Node ids.
    pub source: String,
    pub target: String,
    /// `success`, `cancelled`, `failed` when it has ended; another word while in flight.
    pub state: String,
    pub message: String,
    /// Unix seconds on the reporting node.
    pub create_time: u64,
    pub last_update_time: u64,
}

impl SlotJob {
    /// Whether the job has ended (the server never retries it).
    pub fn ended(&self) -> bool {
        matches!(self.state.as_str(), "success" | "cancelled" | "failed")
    }

    pub fn in_flight(&self) -> bool {
        !self.ended()
    }

    /// Every slot of the job.
    pub fn slot_list(&self) -> Vec<u16> {
        self.slots.iter().flat_map(|&(a, b)| a..=b).collect()
    }

    pub fn has_slot(&self, slot: u16) -> bool {
        self.slots.iter().any(|&(a, b)| a <= slot && slot <= b)
    }

    /// A failure after which the slots may have moved anyway, with lost writes.
    pub fn unpaused(&self) -> bool {
        self.state == "failed" && self.message.contains(UNPAUSED)
    }
}

/// Text of a reply item.
fn text(r: &Reply) -> String {
    match r {
        Reply::Bulk(b) => String::from_utf8_lossy(b).to_string(),
        Reply::Status(s) => s.clone(),
        Reply::Int(i) => i.to_string(),
        _ => String::new(),
    }
}

/// Ranges of `"0-1365 5462-6826"` (single slots as `"7"`).
fn ranges_in(text: &str) -> Vec<(u16, u16)> {
    let mut out = Vec::new();
    for r in text.split([' ', ',']).filter(|r| !r.is_empty()) {
        let (a, b) = r.split_once('-').unwrap_or((r, r));
        if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>()) {
            if a <= b {
                out.push((a, b));
            }
        }
    }
    out.sort_unstable();
    out
}

/// The jobs of a `CLUSTER GETSLOTMIGRATIONS` reply (each a flat name/value array or a
/// map; fields by name, extra ones ignored), newest first as the server lists them.
pub fn jobs_of(reply: Reply) -> Vec<SlotJob> {
    let Reply::Array(items) = reply else {
        return Vec::new();
    };
    items
        .into_iter()
        .map(|item| {
            let pairs: Vec<(String, String)> = match item {
                Reply::Array(flat) => flat
                    .chunks(2)
                    .filter_map(|kv| match kv {
                        [k, v] => Some((text(k), text(v))),
                        _ => None,
                    })
                    .collect(),
                Reply::Map(m) => m.iter().map(|(k, v)| (text(k), text(v))).collect(),
                _ => Vec::new(),
            };
            let mut job = SlotJob::default();
            for (k, v) in pairs {
                match k.as_str() {
                    "name" => job.name = v,
                    "operation" => job.operation = v,
                    "slot_ranges" => job.slots = ranges_in(&v),
                    "source_node" => job.source = v,
                    "target_node" => job.target = v,
                    "state" => job.state = v,
                    "message" => job.message = v,
                    "create_time" => job.create_time = v.parse().unwrap_or(0),
                    "last_update_time" => job.last_update_time = v.parse().unwrap_or(0),
                    _ => {}
                }
            }
            job
        })
        .collect()
}

/// Whether an error reply means the server has no atomic slot migration (Redis, Valkey
/// before 9): it then has no jobs either.
pub fn unsupported(reason: &str) -> bool {
    let r = reason.to_ascii_lowercase();
    r.contains("unknown subcommand") || r.contains("unknown command")
}

/// The one sentence for a node that cannot report its jobs (an error reply such as
/// `NOPERM`, no reply, a lost connection): `cannot list the atomic slot migrations of
/// 127.0.0.1:7002: <reason>`. A server without the command is no such node: it has
/// no jobs ([`unsupported`]).
pub fn unlisted(addr: &str, e: &ClusterError) -> String {
    let reason = match e {
        ClusterError::Command { reason, .. } | ClusterError::Connect { reason, .. } => {
            reason.clone()
        }
        ClusterError::Timeout { ms, .. } => format!("no reply within {ms} ms"),
        ClusterError::Io { reason, .. } => format!("connection lost ({reason})"),
        ClusterError::Refused(s) if s.starts_with("cannot list the atomic slot migrations") => {
            return s.clone()
        }
        other => other.to_string(),
    };
    format!("cannot list the atomic slot migrations of {addr}: {reason}")
}

/// The address of a node id among `nodes` (the id itself when unknown).
fn addr(nodes: &[NodeInfo], id: &str) -> String {
    nodes
        .iter()
        .find(|n| n.id == id)
        .map_or_else(|| id.to_string(), NodeInfo::addr)
}

/// Who owns each of `slots` now, as `100-150 by A, 151-200 by B (no owner: ...)`.
pub fn owners_text(nodes: &[NodeInfo], slots: &[u16]) -> String {
    let mut by: Vec<(String, Vec<u16>)> = Vec::new();
    for &s in slots {
        let owner = nodes
            .iter()
            .find(|n| n.is_master() && n.owns(s))
            .map_or_else(|| "no master".to_string(), NodeInfo::addr);
        match by.iter_mut().find(|(o, _)| *o == owner) {
            Some((_, v)) => v.push(s),
            None => by.push((owner, vec![s])),
        }
    }
    by.iter()
        .map(|(o, v)| format!("{} by {o}", format_ranges(&ranges_of(v))))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What became of a job's source, from `nodes` read after it went silent or its job
/// failed: `is now a replica of B (a failover happened)`, `is failing and B took
/// over its slots (a failover happened)`, `is failing`; `None` while it is a serving
/// master.
pub fn source_fate(nodes: &[NodeInfo], id: &str, slots: &[u16]) -> Option<String> {
    let now = nodes.iter().find(|n| n.id == id)?;
    if now.is_replica() {
        let master = now
            .master_id
            .as_deref()
            .map(|m| format!(" of {}", addr(nodes, m)))
            .unwrap_or_default();
        return Some(format!("is now a replica{master} (a failover happened)"));
    }
    if !now.failing() {
        return None;
    }
    let taken_by = nodes
        .iter()
        .find(|n| n.is_master() && !n.failing() && n.id != id && slots.iter().any(|s| n.owns(*s)));
    Some(match taken_by {
        Some(t) => format!(
            "is failing and {} took over its slots (a failover happened)",
            t.addr()
        ),
        None => "is failing".to_string(),
    })
}

/// The error for a job of this run that failed (not [`UNPAUSED`]): its slots, its
/// source, the server's message, who owns the slots now and what became of the
/// source, from `nodes` read back after it ended.
pub fn failure_text(job: &SlotJob, src: &str, nodes: &[NodeInfo]) -> String {
    let fate = source_fate(nodes, &job.source, &job.slot_list())
        .map(|f| format!("; {src} {f}"))
        .unwrap_or_default();
    let owners = if nodes.is_empty() {
        String::new()
    } else {
        format!("; owned now: {}", owners_text(nodes, &job.slot_list()))
    };
    format!(
        "the atomic migration of slots {} from {src} failed: {}{owners}{fate}",
        format_ranges(&job.slots),
        job.message
    )
}

/// The loud warning for a job that failed with [`UNPAUSED`]: its slots, who owns them
/// now (from `nodes`, read back after the job ended), and what to check.
pub fn unpaused_warning(job: &SlotJob, nodes: &[NodeInfo]) -> String {
    format!(
        "The atomic migration of slots {} from {} to {} failed with \"{}\": the slots may have moved anyway, and writes to them during the hand-over may be lost. They are owned now: {}. Check the data of those slots.",
        format_ranges(&job.slots),
        addr(nodes, &job.source),
        addr(nodes, &job.target),
        job.message,
        owners_text(nodes, &job.slot_list())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_are_read_by_field_name() {
        let bulk = |s: &str| Reply::Bulk(s.as_bytes().to_vec());
        let reply = Reply::Array(vec![Reply::Array(vec![
            bulk("name"),
            bulk("23086fd6"),
            bulk("operation"),
            bulk("EXPORT"),
            bulk("slot_ranges"),
            bulk("0-2 5-5"),
            bulk("target_node"),
            bulk("bbbb"),
            bulk("source_node"),
            bulk("aaaa"),
            bulk("state"),
            bulk("failed"),
            bulk("message"),
            bulk("Unpaused before migration completed (migration may have succeeded with lost writes)"),
            bulk("last_update_time"),
            bulk("1796189850"),
            bulk("cow_size"),
            Reply::Int(0),
        ])]);
        let jobs = jobs_of(reply);
        assert_eq!(jobs.len(), 1);
        assert_eq!(jobs[0].slots, vec![(0, 2), (5, 5)]);
        assert_eq!(jobs[0].slot_list(), vec![0, 1, 2, 5]);
        assert_eq!(
            (jobs[0].source.as_str(), jobs[0].target.as_str()),
            ("aaaa", "bbbb")
        );
        assert_eq!(jobs[0].last_update_time, 1796189850);
        assert!(jobs[0].ended() && jobs[0].unpaused());
        assert!(unsupported(
            "ERR unknown subcommand 'GETSLOTMIGRATIONS'. Try CLUSTER HELP."
        ));
    }

    #[test]
    fn a_node_that_cannot_list_its_jobs_is_one_sentence() {
        let noperm = ClusterError::Command {
            addr: "127.0.0.1:7002".into(),
            command: "CLUSTER GETSLOTMIGRATIONS".into(),
            reason: "NOPERM this user has no permissions".into(),
        };
        let said = unlisted("127.0.0.1:7002", &noperm);
        assert_eq!(
            said,
            "cannot list the atomic slot migrations of 127.0.0.1:7002: NOPERM this user has no permissions"
        );
        // Said once, even when passed on again.
        assert_eq!(
            unlisted("127.0.0.1:7002", &ClusterError::Refused(said.clone())),
            said
        );
        let slow = ClusterError::Timeout {
            addr: "127.0.0.1:7002".into(),
            command: "CLUSTER GETSLOTMIGRATIONS".into(),
            ms: 2000,
        };
        assert_eq!(
            unlisted("127.0.0.1:7002", &slow),
            "cannot list the atomic slot migrations of 127.0.0.1:7002: no reply within 2000 ms"
        );
    }
}
