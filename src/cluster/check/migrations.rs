//! The atomic slot migrations in a check report: every node's jobs (`CLUSTER
//! GETSLOTMIGRATIONS`) grouped by job. A job in flight is a warning, since no other
//! move of its nodes can start until it ends; a job that failed a moment ago is
//! listed, and loudly when it may have moved its slots with lost writes.

use serde::{Deserialize, Serialize};

use super::render::addr_of;
use super::CheckReport;
use crate::cluster::jobs::{self, SlotJob};
use crate::cluster::topology::format_ranges;
use crate::cluster::{merged_nodes, NodeInfo, NodeView};

/// How long a failed job stays in the report after it ended, in seconds.
pub const RECENT: u64 = 3600;

/// One atomic slot migration, as the nodes that know it report it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Migration {
    pub name: String,
    /// Its slots, as sorted inclusive ranges.
    pub slots: Vec<(u16, u16)>,
    /// Node ids.
    pub source: String,
    pub target: String,
    /// Some node reports a state that has not ended.
    pub in_flight: bool,
    /// The source's state where it reports the job, else the first node's.
    pub state: String,
    /// It failed with [`jobs::UNPAUSED`]: the slots may have moved anyway, with lost
    /// writes.
    #[serde(default)]
    pub unpaused: bool,
    /// Seconds since it started (in flight) or last changed (ended), by the reporting
    /// node's clock.
    pub age: u64,
    /// What each node says of it.
    pub nodes: Vec<JobView>,
    /// The sentence for the operator.
    pub text: String,
}

/// What one node says of a job.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JobView {
    pub node: String,
    pub operation: String,
    pub state: String,
    pub message: String,
}

/// `report` with the migrations of `jobs` (each node's address and its jobs) in it:
/// those in flight and those that failed within [`RECENT`] seconds of `now` (Unix
/// seconds). A job in flight makes the report not ok.
pub fn add(
    report: &mut CheckReport,
    views: &[NodeView],
    jobs: &[(String, Vec<SlotJob>)],
    now: u64,
) {
    let nodes = merged_nodes(views);
    let mut found: Vec<(Migration, Vec<&SlotJob>)> = Vec::new();
    for (addr, list) in jobs {
        for j in list {
            let view = JobView {
                node: addr.clone(),
                operation: j.operation.clone(),
                state: j.state.clone(),
                message: j.message.clone(),
            };
            match found.iter_mut().find(|(m, _)| m.name == j.name) {
                Some((m, js)) => {
                    m.nodes.push(view);
                    js.push(j);
                }
                None => found.push((
                    Migration {
                        name: j.name.clone(),
                        slots: j.slots.clone(),
                        source: j.source.clone(),
                        target: j.target.clone(),
                        in_flight: false,
                        unpaused: false,
                        state: String::new(),
                        age: 0,
                        nodes: vec![view],
                        text: String::new(),
                    },
                    vec![j],
                )),
            }
        }
    }
    for (m, js) in &mut found {
        // A replica lists its copy of a job without its ends: they come from the
        // source's EXPORT and the target's IMPORT, else from any node naming them.
        m.source = end_of(js, "EXPORT", |j| &j.source);
        m.target = end_of(js, "IMPORT", |j| &j.target);
        m.in_flight = js.iter().any(|j| j.in_flight());
        let source_view = js
            .iter()
            .find(|j| j.operation == "EXPORT")
            .unwrap_or(&js[0]);
        m.state = source_view.state.clone();
        m.age = if m.in_flight {
            now.saturating_sub(js.iter().map(|j| j.create_time).max().unwrap_or(now))
        } else {
            now.saturating_sub(js.iter().map(|j| j.last_update_time).max().unwrap_or(now))
        };
        m.nodes.sort_by(|a, b| a.node.cmp(&b.node));
    }
    // A failure that a later job of the same slots has made good is no news.
    let started = |js: &[&SlotJob]| js.iter().map(|j| j.create_time).max().unwrap_or(0);
    let later: Vec<bool> = found
        .iter()
        .map(|(m, js)| {
            found.iter().any(|(o, ojs)| {
                o.name != m.name && started(ojs) > started(js) && overlap(&o.slots, &m.slots)
            })
        })
        .collect();
    let mut kept: Vec<Migration> = Vec::new();
    for ((mut m, js), superseded) in found.into_iter().zip(later) {
        // The source's word decides: a job it cancelled is no failure, whatever the
        // target says of the lost connection.
        let failed = js
            .iter()
            .find(|j| j.state == "failed")
            .filter(|_| m.state == "failed" && !superseded);
        if m.in_flight {
            m.text = in_flight_text(report, &m);
        } else if let (Some(f), true) = (failed, m.age <= RECENT) {
            let unpaused = js.iter().find(|j| j.unpaused()).copied();
            m.unpaused = unpaused.is_some();
            m.text = match unpaused {
                Some(u) => jobs::unpaused_warning(u, &nodes),
                None => failed_text(report, &m, f, &nodes),
            };
        } else {
            continue;
        }
        kept.push(m);
    }
    kept.sort_by(|a, b| (!a.in_flight, a.age, &a.slots).cmp(&(!b.in_flight, b.age, &b.slots)));
    report.migrations = kept;
    let more = warnings(report);
    report.warnings.extend(more);
    report.ok = report.ok && !report.migrations.iter().any(|m| m.in_flight);
}

/// `report` with the nodes that could not list their jobs (one sentence each, as
/// [`jobs::unlisted`] says it): warnings, and the report is not ok, since a job may be
/// in flight on them.
pub fn add_unlisted(report: &mut CheckReport, sentences: Vec<String>) {
    if sentences.is_empty() {
        return;
    }
    report.warnings.extend(sentences.iter().cloned());
    report.unlisted = sentences;
    report.ok = false;
}

/// The warnings among the migrations: nodes that cannot list theirs, those in
/// flight, and failures that may have moved their slots with lost writes.
pub fn warnings(report: &CheckReport) -> Vec<String> {
    report
        .unlisted
        .iter()
        .cloned()
        .chain(
            report
                .migrations
                .iter()
                .filter(|m| m.in_flight || m.unpaused)
                .map(|m| m.text.clone()),
        )
        .collect()
}

/// The migrations' lines of the human report, under their own heading; nothing when
/// there are none.
pub fn render(report: &CheckReport) -> Vec<String> {
    if report.migrations.is_empty() && report.unlisted.is_empty() {
        return Vec::new();
    }
    let mut out = vec![">>> Check atomic slot migrations...".to_string()];
    out.extend(report.unlisted.iter().map(|u| format!("[WARNING] {u}")));
    let loud = warnings(report);
    for m in &report.migrations {
        if loud.contains(&m.text) {
            out.push(format!("[WARNING] {}", m.text));
        } else {
            out.push(format!("[FAILED] {}", m.text));
        }
    }
    // A node that cannot say may have one in flight.
    if report.unlisted.is_empty() && !report.migrations.iter().any(|m| m.in_flight) {
        out.push("[OK] No atomic slot migration in flight.".to_string());
    }
    out
}

/// One end of a job (a node id) from the entry of the node `operation` names (the
/// source for `EXPORT`, the target for `IMPORT`), else from any entry that names it;
/// empty only when no node does.
fn end_of(js: &[&SlotJob], operation: &str, end: impl Fn(&SlotJob) -> &String) -> String {
    js.iter()
        .filter(|j| !end(j).is_empty())
        .find(|j| j.operation == operation)
        .or_else(|| js.iter().find(|j| !end(j).is_empty()))
        .map(|j| end(j).clone())
        .unwrap_or_default()
}

/// Whether two sets of ranges share a slot.
fn overlap(a: &[(u16, u16)], b: &[(u16, u16)]) -> bool {
    a.iter()
        .any(|&(a0, a1)| b.iter().any(|&(b0, b1)| a0 <= b1 && b0 <= a1))
}

/// `for 12 s`, `2 min ago`: a duration an operator reads at a glance.
fn duration(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s => format!("{} h", s / 3600),
    }
}

fn in_flight_text(report: &CheckReport, m: &Migration) -> String {
    let states: Vec<String> = m
        .nodes
        .iter()
        .map(|v| format!("{} on {}", v.state, v.node))
        .collect();
    format!(
        "The atomic migration of slots {} from {} to {} is in flight ({}; started {} ago): other moves of these nodes must wait until it ends; slotsmith fix waits for it (--wait SECONDS) or cancels it (--cancel-migrations).",
        format_ranges(&m.slots),
        addr_of(report, &m.source),
        addr_of(report, &m.target),
        states.join(", "),
        duration(m.age)
    )
}

fn failed_text(report: &CheckReport, m: &Migration, f: &SlotJob, nodes: &[NodeInfo]) -> String {
    let said: Vec<String> = m
        .nodes
        .iter()
        .filter(|v| !v.message.is_empty())
        .map(|v| format!("\"{}\" ({})", v.message, v.node))
        .collect();
    format!(
        "The atomic migration of slots {} from {} to {} failed {} ago: {}. Its slots are owned now: {}.",
        format_ranges(&m.slots),
        addr_of(report, &m.source),
        addr_of(report, &m.target),
        duration(m.age),
        if said.is_empty() {
            f.message.clone()
        } else {
            said.join("; ")
        },
        jobs::owners_text(nodes, &f.slot_list())
    )
}
