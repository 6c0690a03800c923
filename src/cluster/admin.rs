//! The commands that form and change a cluster's membership and roles (MEET,
//! REPLICATE, FORGET, RESET, FAILOVER, CONFIG SET), their words, and the pure rules
//! around them: which nodes must forget a node, and when every node has joined.

use super::check::check;
use super::conn::args;
use super::{merged_nodes, NodeView};

/// `CLUSTER FAILOVER`'s modes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailoverMode {
    /// The replica and its master agree on the switch (the master must answer).
    Default,
    /// Without the master's agreement, with the other masters' votes.
    Force,
    /// Without any vote: the replica takes a new epoch itself.
    Takeover,
}

impl std::str::FromStr for FailoverMode {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "" => Ok(FailoverMode::Default),
            "force" => Ok(FailoverMode::Force),
            "takeover" => Ok(FailoverMode::Takeover),
            _ => Err(format!(
                "mode must be \"\", \"force\" or \"takeover\", got \"{s}\""
            )),
        }
    }
}

/// One membership or role command sent to one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admin {
    /// `CLUSTER MEET host port`: the node greets the one at `host:port`.
    Meet { host: String, port: u16 },
    /// `CLUSTER REPLICATE master-id`.
    Replicate { master: String },
    /// `CLUSTER FORGET id`.
    Forget { id: String },
    /// `CLUSTER RESET SOFT|HARD`.
    Reset { hard: bool },
    /// `CLUSTER FAILOVER [FORCE|TAKEOVER]`.
    Failover(FailoverMode),
    /// `CONFIG SET name value`.
    ConfigSet { name: String, value: String },
}

impl Admin {
    /// The command's words.
    pub fn words(&self) -> Vec<Vec<u8>> {
        match self {
            Admin::Meet { host, port } => args(["CLUSTER", "MEET", host, &port.to_string()]),
            Admin::Replicate { master } => args(["CLUSTER", "REPLICATE", master]),
            Admin::Forget { id } => args(["CLUSTER", "FORGET", id]),
            Admin::Reset { hard } => {
                args(["CLUSTER", "RESET", if *hard { "HARD" } else { "SOFT" }])
            }
            Admin::Failover(FailoverMode::Default) => args(["CLUSTER", "FAILOVER"]),
            Admin::Failover(FailoverMode::Force) => args(["CLUSTER", "FAILOVER", "FORCE"]),
            Admin::Failover(FailoverMode::Takeover) => args(["CLUSTER", "FAILOVER", "TAKEOVER"]),
            Admin::ConfigSet { name, value } => args(["CONFIG", "SET", name, value]),
        }
    }

    /// The command as the journal and the plan show it (passwords masked).
    pub fn describe(&self) -> String {
        super::conn::describe(&self.words())
    }
}

/// What one node did with `CLUSTER FORGET`: `error` is `None` when it forgot the node,
/// else why not (its error reply, or why it could not be asked).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Forgot {
    pub node: String,
    pub error: Option<String>,
}

/// Which nodes must be told to forget node `id`: every reachable node that knows it
/// (itself excepted), and, as `Err(why)`, every node that cannot be asked (so the
/// caller names it rather than skipping it silently).
pub fn forget_targets(views: &[NodeView], id: &str) -> Vec<(String, Result<(), String>)> {
    let its_addr = merged_nodes(views)
        .into_iter()
        .find(|n| n.id == id)
        .map(|n| n.addr());
    let mut out = Vec::new();
    for v in views {
        if Some(&v.addr) == its_addr.as_ref() {
            continue;
        }
        match &v.state {
            Ok(st) => {
                if st.myself().is_some_and(|m| m.id == id) {
                    continue;
                }
                if st.nodes.iter().any(|n| n.id == id) {
                    out.push((v.addr.clone(), Ok(())));
                }
            }
            Err(why) => out.push((v.addr.clone(), Err(why.clone()))),
        }
    }
    out
}

/// Whether every node has joined: each reachable node knows every other node (none in
/// handshake, none without an address), and all agree on each node's role (master, or
/// replica of which master) and on who owns which slot. A node
/// that cannot be asked counts only when no other flags it as failed. `Err` says the
/// first thing still missing.
pub fn joined(views: &[NodeView]) -> Result<(), String> {
    let merged = merged_nodes(views);
    let flagged_fail = |addr: &str| {
        views.iter().any(|v| {
            v.state.as_ref().is_ok_and(|s| {
                s.nodes
                    .iter()
                    .any(|n| n.addr() == addr && n.has_flag("fail"))
            })
        })
    };
    let ids: Vec<&str> = merged
        .iter()
        .filter(|n| !n.handshake())
        .map(|n| n.id.as_str())
        .collect();
    for v in views {
        let st = match &v.state {
            Ok(st) => st,
            Err(_) if flagged_fail(&v.addr) => continue,
            Err(why) => return Err(format!("{} cannot be asked: {why}", v.addr)),
        };
        if let Some(n) = st.nodes.iter().find(|n| n.handshake()) {
            return Err(format!(
                "{} is still in handshake with {}",
                v.addr,
                n.addr()
            ));
        }
        if let Some(n) = st.nodes.iter().find(|n| n.noaddr()) {
            return Err(format!("{} knows {} without an address", v.addr, n.id));
        }
        if let Some(missing) = ids.iter().find(|id| !st.nodes.iter().any(|n| n.id == **id)) {
            let name = merged
                .iter()
                .find(|n| n.id == *missing)
                .map_or_else(|| missing.to_string(), |n| n.addr());
            return Err(format!("{} does not know {name} yet", v.addr));
        }
    }
    // Roles: every reachable node sees each node as the same master or replica of
    // the same master (a manual failover needs the master to know its replica).
    let mut roles: std::collections::HashMap<&str, (&str, Option<&str>, &str)> =
        std::collections::HashMap::new();
    for v in views {
        let Ok(st) = &v.state else { continue };
        for n in &st.nodes {
            let role = (n.role(), n.master_id.as_deref(), v.addr.as_str());
            match roles.get(n.id.as_str()) {
                None => {
                    roles.insert(&n.id, role);
                }
                Some((r, m, first)) if (*r, *m) != (role.0, role.1) => {
                    let seen = |r: &str, m: Option<&str>| match m {
                        Some(m) => format!("a {r} of {m}"),
                        None => format!("a {r}"),
                    };
                    return Err(format!(
                        "{first} sees {} as {} but {} sees it as {}",
                        n.addr(),
                        seen(r, *m),
                        v.addr,
                        seen(role.0, role.1)
                    ));
                }
                Some(_) => {}
            }
        }
    }
    if !check("", views).agree {
        return Err("the nodes do not agree on the slots yet".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::topology::parse_cluster_nodes;
    use crate::cluster::NodeState;

    const A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    const B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
    const C: &str = "cccccccccccccccccccccccccccccccccccccccc";

    /// A node's view: `me` flagged myself, each of `known` as `(id, port, extra flags,
    /// slots)`.
    fn view(port: u16, me: &str, known: &[(&str, u16, &str, &str)]) -> NodeView {
        let text: String = known
            .iter()
            .map(|(id, p, flags, slots)| {
                let mut f = if *id == me { "myself,master" } else { "master" }.to_string();
                if !flags.is_empty() {
                    f = format!("{f},{flags}");
                }
                format!("{id} 127.0.0.1:{p}@1{p} {f} - 0 0 1 connected {slots}\n")
            })
            .collect();
        NodeView {
            addr: format!("127.0.0.1:{port}"),
            state: Ok(NodeState {
                nodes: parse_cluster_nodes(&text).unwrap(),
                keys: 0,
                cluster_state: None,
                current_epoch: None,
            }),
        }
    }

    fn down(port: u16) -> NodeView {
        NodeView {
            addr: format!("127.0.0.1:{port}"),
            state: Err("connection refused".into()),
        }
    }

    #[test]
    fn words_and_modes() {
        let text = |a: Admin| a.describe();
        assert_eq!(
            text(Admin::Meet {
                host: "10.0.0.7".into(),
                port: 7007
            }),
            "CLUSTER MEET 10.0.0.7 7007"
        );
        assert_eq!(text(Admin::Reset { hard: true }), "CLUSTER RESET HARD");
        assert_eq!(
            text(Admin::Failover("takeover".parse().unwrap())),
            "CLUSTER FAILOVER TAKEOVER"
        );
        assert_eq!(
            text(Admin::Failover("".parse().unwrap())),
            "CLUSTER FAILOVER"
        );
        assert!("soft".parse::<FailoverMode>().is_err());
        let set = text(Admin::ConfigSet {
            name: "masterauth".into(),
            value: "s3cret".into(),
        });
        assert!(!set.contains("s3cret"), "{set}");
    }

    #[test]
    fn every_node_that_knows_it_forgets_and_an_unreachable_one_is_named() {
        let full = [(A, 1, "", "0-16383"), (B, 2, "", ""), (C, 3, "fail", "")];
        let views = vec![
            view(1, A, &full),
            view(2, B, &[(A, 1, "", "0-16383"), (B, 2, "", "")]),
            down(3),
            down(4),
        ];
        let targets = forget_targets(&views, C);
        assert_eq!(
            targets,
            vec![
                ("127.0.0.1:1".to_string(), Ok(())),
                ("127.0.0.1:4".to_string(), Err("connection refused".into())),
            ]
        );
    }

    #[test]
    fn joined_only_when_everyone_knows_everyone_and_agrees() {
        let full = [(A, 1, "", "0-16383"), (B, 2, "", ""), (C, 3, "", "")];
        let all = vec![view(1, A, &full), view(2, B, &full), view(3, C, &full)];
        assert_eq!(joined(&all), Ok(()));

        let mut late = all.clone();
        late[2] = view(3, C, &[(A, 1, "", "0-16383"), (C, 3, "", "")]);
        assert_eq!(
            joined(&late),
            Err("127.0.0.1:3 does not know 127.0.0.1:2 yet".into())
        );

        let mut shaking = all.clone();
        shaking[0] = view(
            1,
            A,
            &[
                (A, 1, "", "0-16383"),
                (B, 2, "", ""),
                (C, 3, "", ""),
                (
                    "dddddddddddddddddddddddddddddddddddddddd",
                    4,
                    "handshake",
                    "",
                ),
            ],
        );
        assert!(joined(&shaking).unwrap_err().contains("handshake"));

        let mut apart = all.clone();
        apart[1] = view(2, B, &[(A, 1, "", ""), (B, 2, "", ""), (C, 3, "", "")]);
        assert_eq!(
            joined(&apart),
            Err("the nodes do not agree on the slots yet".into())
        );

        let mut roles = all.clone();
        roles[1] = view(2, B, &full);
        if let Ok(st) = roles[1].state.as_mut() {
            let c = st.nodes.iter_mut().find(|n| n.id == C).unwrap();
            c.flags = vec!["slave".into()];
            c.master_id = Some(A.into());
        }
        assert_eq!(
            joined(&roles),
            Err(format!(
                "127.0.0.1:1 sees 127.0.0.1:3 as a master but 127.0.0.1:2 sees it as a replica of {A}"
            ))
        );

        let mut gone = all.clone();
        gone[2] = down(3);
        assert!(joined(&gone).unwrap_err().contains("cannot be asked"));
        let failed = [(A, 1, "", "0-16383"), (B, 2, "", ""), (C, 3, "fail", "")];
        let flagged = vec![view(1, A, &failed), view(2, B, &failed), down(3)];
        assert_eq!(joined(&flagged), Ok(()));
    }
}
