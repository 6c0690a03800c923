//! The cluster's shape as each node describes it: a parser of `CLUSTER NODES` and the
//! node records it yields. Owns no connections; the live cluster feeds it text.

use std::collections::BTreeMap;

/// Number of hash slots in a Redis Cluster.
pub const SLOTS: u16 = 16384;

/// One line of `CLUSTER NODES`, as the node that printed it sees that node.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct NodeInfo {
    pub id: String,
    /// Empty for a `noaddr` node.
    pub host: String,
    /// 0 for a `noaddr` node.
    pub port: u16,
    pub cport: u16,
    /// The announced hostname after the comma, if any.
    pub hostname: Option<String>,
    /// Every flag as printed (`myself`, `master`, `slave`, `fail?`, `fail`, `handshake`, `noaddr`, `nofailover`, `noflags`).
    pub flags: Vec<String>,
    /// `None` when the field is `-`.
    pub master_id: Option<String>,
    pub ping_sent: u64,
    pub pong_recv: u64,
    pub epoch: u64,
    /// `connected` or `disconnected`.
    pub link: String,
    /// Owned slots as inclusive ranges, in the order printed (single slots as `(s, s)`).
    pub slots: Vec<(u16, u16)>,
    /// `[slot->-id]`: slot -> id of the node it is migrating to. Only on the `myself` line.
    pub migrating: BTreeMap<u16, String>,
    /// `[slot-<-id]`: slot -> id of the node it is importing from. Only on the `myself` line.
    pub importing: BTreeMap<u16, String>,
}

impl NodeInfo {
    /// `host:port`, the address slotsmith connects to.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
    pub fn has_flag(&self, flag: &str) -> bool {
        self.flags.iter().any(|f| f == flag)
    }
    pub fn is_myself(&self) -> bool {
        self.has_flag("myself")
    }
    pub fn is_master(&self) -> bool {
        self.has_flag("master")
    }
    pub fn is_replica(&self) -> bool {
        self.has_flag("slave")
    }
    /// `fail` or `fail?`.
    pub fn failing(&self) -> bool {
        self.has_flag("fail") || self.has_flag("fail?")
    }
    pub fn noaddr(&self) -> bool {
        self.has_flag("noaddr") || self.port == 0
    }
    pub fn handshake(&self) -> bool {
        self.has_flag("handshake")
    }
    pub fn role(&self) -> &'static str {
        if self.is_master() {
            "master"
        } else {
            "replica"
        }
    }
    pub fn slot_count(&self) -> usize {
        self.slots.iter().map(|(a, b)| (*b - *a) as usize + 1).sum()
    }
    pub fn owns(&self, slot: u16) -> bool {
        self.slots.iter().any(|(a, b)| *a <= slot && slot <= *b)
    }
}

/// Why a `CLUSTER NODES` reply could not be parsed: the 1-based line number, the
/// offending line and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} of CLUSTER NODES: {reason} (in {text:?})")]
pub struct ParseError {
    /// 1-based line number in the reply.
    pub line: usize,
    /// The whole offending line.
    pub text: String,
    /// What is wrong, naming the offending field, e.g. `bad slot range "12-x"`.
    pub reason: String,
}

/// Parses a `CLUSTER NODES` reply (also the lines of a `nodes.conf`):
/// `id ip:port@cport[,hostname] flags master-id ping-sent pong-recv config-epoch
/// link-state slot...`. Blank lines are skipped; any malformed line is an error.
pub fn parse_cluster_nodes(text: &str) -> Result<Vec<NodeInfo>, ParseError> {
    let mut out = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() {
            continue;
        }
        let node = parse_line(line).map_err(|reason| ParseError {
            line: i + 1,
            text: line.to_string(),
            reason,
        })?;
        out.push(node);
    }
    Ok(out)
}

/// One non-empty line; the error is the reason only, the caller adds the position.
fn parse_line(line: &str) -> Result<NodeInfo, String> {
    let fields: Vec<&str> = line.split_ascii_whitespace().collect();
    if fields.len() < 8 {
        return Err(format!(
            "expected at least 8 fields, found {}",
            fields.len()
        ));
    }
    let (host, port, cport, hostname) = parse_address(fields[1])?;
    let number = |name: &str, s: &str| s.parse::<u64>().map_err(|_| format!("bad {name} {s:?}"));
    let mut node = NodeInfo {
        id: fields[0].to_string(),
        host,
        port,
        cport,
        hostname,
        flags: fields[2]
            .split(',')
            .filter(|f| !f.is_empty())
            .map(str::to_string)
            .collect(),
        master_id: match fields[3] {
            "-" => None,
            id => Some(id.to_string()),
        },
        ping_sent: number("ping-sent", fields[4])?,
        pong_recv: number("pong-recv", fields[5])?,
        epoch: number("config-epoch", fields[6])?,
        link: fields[7].to_string(),
        slots: Vec::new(),
        migrating: BTreeMap::new(),
        importing: BTreeMap::new(),
    };
    for token in &fields[8..] {
        if let Some(inner) = token.strip_prefix('[') {
            let inner = inner
                .strip_suffix(']')
                .ok_or_else(|| format!("bad open slot {token:?}"))?;
            let (slot, id, map) = if let Some((slot, id)) = inner.split_once("->-") {
                (slot, id, &mut node.migrating)
            } else if let Some((slot, id)) = inner.split_once("-<-") {
                (slot, id, &mut node.importing)
            } else {
                return Err(format!("bad open slot {token:?}"));
            };
            if id.is_empty() {
                return Err(format!("bad open slot {token:?}"));
            }
            let slot = parse_slot(slot).map_err(|e| slot_error(e, "open slot", token))?;
            map.insert(slot, id.to_string());
        } else {
            let range = match token.split_once('-') {
                Some((a, b)) => parse_slot(a).and_then(|a| Ok((a, parse_slot(b)?))),
                None => parse_slot(token).map(|s| (s, s)),
            };
            match range {
                Ok((a, b)) if a <= b => node.slots.push((a, b)),
                Ok(_) => return Err(format!("bad slot range {token:?}")),
                Err(e) => return Err(slot_error(e, "slot range", token)),
            }
        }
    }
    Ok(node)
}

/// A slot number below [`SLOTS`]; the error is the number when it is too large.
fn parse_slot(s: &str) -> Result<u16, Option<u32>> {
    match s.parse::<u32>() {
        Ok(n) if n < u32::from(SLOTS) => Ok(n as u16),
        Ok(n) => Err(Some(n)),
        Err(_) => Err(None),
    }
}

/// The reason for a bad slot token: `bad slot range "12-x"` or
/// `slot 16384 out of range 0-16383 in slot range "16000-16384"`.
fn slot_error(too_large: Option<u32>, what: &str, token: &str) -> String {
    match too_large {
        Some(n) => format!("slot {n} out of range 0-{} in {what} {token:?}", SLOTS - 1),
        None => format!("bad {what} {token:?}"),
    }
}

/// `ip:port@cport[,hostname[,aux=value]...]` into host, port, cport and hostname.
/// IPv6 hosts are printed without brackets, so host and port split at the last colon.
fn parse_address(field: &str) -> Result<(String, u16, u16, Option<String>), String> {
    let bad = || format!("bad address {field:?}");
    let mut parts = field.split(',');
    let addr = parts.next().unwrap_or_default();
    // Redis 7.2 writes `key=value` auxiliary fields after the hostname in nodes.conf.
    let hostname = parts
        .next()
        .filter(|h| !h.is_empty() && !h.contains('='))
        .map(str::to_string);
    let (hostport, cport) = match addr.split_once('@') {
        Some((hp, cp)) => (hp, Some(cp.parse::<u16>().map_err(|_| bad())?)),
        None => (addr, None),
    };
    let (host, port) = hostport.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse::<u16>().map_err(|_| bad())?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    // Before Redis 4 there was no `@cport`: the bus port was always port + 10000.
    let cport = cport.unwrap_or_else(|| {
        if port == 0 {
            0
        } else {
            port.checked_add(10000).unwrap_or(0)
        }
    });
    Ok((host.to_string(), port, cport, hostname))
}

/// Sorted, merged inclusive ranges covering exactly the given slots (in any order,
/// duplicates allowed).
pub fn ranges_of(slots: &[u16]) -> Vec<(u16, u16)> {
    let mut sorted = slots.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut out: Vec<(u16, u16)> = Vec::new();
    for s in sorted {
        match out.last_mut() {
            Some((_, end)) if end.checked_add(1) == Some(s) => *end = s,
            _ => out.push((s, s)),
        }
    }
    out
}

/// `1 slot`, `12 slots`.
pub fn n_slots(n: usize) -> String {
    if n == 1 {
        "1 slot".into()
    } else {
        format!("{n} slots")
    }
}

/// Ranges as `0-5460,5519,6000-6001` (the empty string for none).
pub fn format_ranges(r: &[(u16, u16)]) -> String {
    r.iter()
        .map(|&(a, b)| {
            if a == b {
                a.to_string()
            } else {
                format!("{a}-{b}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// From the Redis 7.0 `CLUSTER NODES` documentation.
    const DOC: &str = "\
07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,hostname4 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002,hostname2 master - 0 1426238316232 2 connected 5461-10922
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003,hostname3 master - 0 1426238318243 3 connected 10923-16383
6ec23923021cf3ffec47632106199cb7f496ce01 127.0.0.1:30005@31005 slave,fail 67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 0 1426238316232 5 disconnected
824fe116063bc5fcf9f4ffd895bc17aee7731ac3 :0@0 master,fail?,noaddr - 1426238316232 1426238316232 0 disconnected
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001,hostname1 myself,master - 0 0 1 connected 0-5460 [5519->-292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f] [93-<-292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f]
";

    fn one(line: &str) -> NodeInfo {
        let mut v = parse_cluster_nodes(line).expect("parses");
        assert_eq!(v.len(), 1);
        v.remove(0)
    }

    #[test]
    fn parses_documentation_example() {
        let nodes = parse_cluster_nodes(DOC).expect("parses");
        assert_eq!(nodes.len(), 6);

        let r = &nodes[0];
        assert_eq!(r.id, "07c37dfeb235213a872192d90877d0cd55635b91");
        assert_eq!(
            (r.host.as_str(), r.port, r.cport),
            ("127.0.0.1", 30004, 31004)
        );
        assert_eq!(r.hostname.as_deref(), Some("hostname4"));
        assert_eq!(r.flags, vec!["slave"]);
        assert!(r.is_replica() && !r.is_master() && !r.failing());
        assert_eq!(
            r.master_id.as_deref(),
            Some("e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca")
        );
        assert_eq!((r.ping_sent, r.pong_recv, r.epoch), (0, 1426238317239, 4));
        assert_eq!(r.link, "connected");
        assert!(r.slots.is_empty() && r.migrating.is_empty() && r.importing.is_empty());

        let m = &nodes[1];
        assert_eq!(m.master_id, None);
        assert_eq!(m.slots, vec![(5461, 10922)]);
        assert_eq!(m.slot_count(), 5462);
        assert_eq!(m.addr(), "127.0.0.1:30002");

        let failed = &nodes[3];
        assert_eq!(failed.hostname, None);
        assert_eq!(failed.flags, vec!["slave", "fail"]);
        assert!(failed.failing());
        assert_eq!(failed.link, "disconnected");

        let noaddr = &nodes[4];
        assert_eq!(
            (noaddr.host.as_str(), noaddr.port, noaddr.cport),
            ("", 0, 0)
        );
        assert_eq!(noaddr.flags, vec!["master", "fail?", "noaddr"]);
        assert!(noaddr.noaddr() && noaddr.failing() && noaddr.is_master());
        assert_eq!(noaddr.ping_sent, 1426238316232);

        let me = &nodes[5];
        assert!(me.is_myself() && me.is_master());
        assert_eq!(me.slots, vec![(0, 5460)]);
        assert_eq!(
            me.migrating.get(&5519).map(String::as_str),
            Some("292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f")
        );
        assert_eq!(
            me.importing.get(&93).map(String::as_str),
            Some("292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f")
        );
        assert_eq!(me.migrating.len() + me.importing.len(), 2);
    }

    #[test]
    fn parses_lines_seen_on_redis_7_0_15() {
        let text = "99c365dd881608d0fc34c511374b41dad84b2490 127.0.0.1:6390@16390 myself,master - 0 0 0 connected 0-2 5 100 [5->-91ce611d5d8e1da121b75c04914eee99a31cb154]\r\n\
91ce611d5d8e1da121b75c04914eee99a31cb154 127.0.0.1:6391@16391,h6391 master - 0 1795564410358 1 connected\r\n";
        let nodes = parse_cluster_nodes(text).expect("parses");
        assert_eq!(nodes[0].slots, vec![(0, 2), (5, 5), (100, 100)]);
        assert_eq!(nodes[0].slot_count(), 5);
        assert!(nodes[0].owns(5) && !nodes[0].owns(3));
        assert_eq!(nodes[0].migrating.len(), 1);
        assert_eq!(nodes[1].hostname.as_deref(), Some("h6391"));
        assert_eq!(nodes[1].link, "connected");

        // A lone node that has not met anyone yet does not know its own IP.
        let lone = one(
            "99c365dd881608d0fc34c511374b41dad84b2490 :6390@16390 myself,master - 0 0 0 connected",
        );
        assert_eq!(
            (lone.host.as_str(), lone.port, lone.cport),
            ("", 6390, 16390)
        );
    }

    #[test]
    fn empty_lines_and_whitespace() {
        assert!(parse_cluster_nodes("").expect("parses").is_empty());
        assert!(parse_cluster_nodes("\n\n  \n").expect("parses").is_empty());
        let text = format!("\n{DOC}\n\n");
        assert_eq!(parse_cluster_nodes(&text).expect("parses").len(), 6);
    }

    #[test]
    fn empty_hostname_after_comma_is_none() {
        let n = one("e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001, myself,master - 0 0 1 connected 0-5460");
        assert_eq!(n.hostname, None);
        assert_eq!(n.port, 30001);
    }

    #[test]
    fn nodes_conf_aux_fields_are_ignored() {
        let n = one("e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001,,tls-port=0,shard-id=ab12 myself,master - 0 0 1 connected 0-5460");
        assert_eq!(n.hostname, None);
        let n = one("e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001,h1,shard-id=ab12 master - 0 0 1 connected");
        assert_eq!(n.hostname.as_deref(), Some("h1"));
    }

    #[test]
    fn handshake_node() {
        let n = one("5a9b3c2d1e0f5a9b3c2d1e0f5a9b3c2d1e0f5a9b 127.0.0.1:7007@17007 handshake - 1700000000000 0 0 disconnected");
        assert_eq!(n.flags, vec!["handshake"]);
        assert!(n.handshake() && !n.is_master() && !n.is_replica());
        assert_eq!(n.port, 7007);
    }

    #[test]
    fn other_flags() {
        let n = one("07c37dfeb235213a872192d90877d0cd55635b91 10.0.0.4:6379@16379 slave,nofailover e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected");
        assert!(n.has_flag("nofailover") && n.is_replica());
        let n = one("07c37dfeb235213a872192d90877d0cd55635b91 10.0.0.4:6379@16379 noflags - 0 0 0 connected");
        assert_eq!(n.flags, vec!["noflags"]);
    }

    #[test]
    fn single_slots_mixed_with_ranges_in_printed_order() {
        let n = one("67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:7002@17002 master - 0 1426238316232 2 connected 5461-5518 5519 5520-10922 16383 0");
        assert_eq!(
            n.slots,
            vec![
                (5461, 5518),
                (5519, 5519),
                (5520, 10922),
                (16383, 16383),
                (0, 0)
            ]
        );
        assert_eq!(n.slot_count(), 5462 + 2);
    }

    #[test]
    fn ipv6_addresses() {
        let n = one("e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca ::1:7001@17001 myself,master - 0 0 1 connected 0-16383");
        assert_eq!((n.host.as_str(), n.port, n.cport), ("::1", 7001, 17001));
        assert_eq!(n.addr(), "::1:7001");
        let n = one("e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 2001:db8::7:6379@16379,redis-a.example master - 0 0 1 connected");
        assert_eq!((n.host.as_str(), n.port), ("2001:db8::7", 6379));
        assert_eq!(n.hostname.as_deref(), Some("redis-a.example"));
        let n = one("e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca [fe80::1]:6379@16379 master - 0 0 1 connected");
        assert_eq!((n.host.as_str(), n.port), ("fe80::1", 6379));
    }

    #[test]
    fn address_without_bus_port() {
        let n = one("e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:7001 myself,master - 0 0 1 connected 0-16383");
        assert_eq!((n.port, n.cport), (7001, 17001));
    }

    #[test]
    fn errors_name_line_and_token() {
        let text = format!("{}\n\n67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:7002@17002 master - 0 0 2 connected 12-x\n", DOC.lines().next().unwrap_or_default());
        let e = parse_cluster_nodes(&text).expect_err("bad range");
        assert_eq!(e.line, 3);
        assert_eq!(e.reason, r#"bad slot range "12-x""#);
        assert!(e.text.ends_with("connected 12-x"));
        let msg = e.to_string();
        assert!(
            msg.starts_with(r#"line 3 of CLUSTER NODES: bad slot range "12-x""#),
            "{msg}"
        );
        assert!(msg.contains("67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:7002"));
    }

    fn reason(line: &str) -> String {
        parse_cluster_nodes(line).expect_err("must fail").reason
    }

    #[test]
    fn error_cases() {
        let head = "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:7002@17002 master - 0 0 2 connected";
        assert_eq!(
            reason("67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:7002@17002 master - 0 0 2"),
            "expected at least 8 fields, found 7"
        );
        assert_eq!(
            reason(&format!("{head} 16384")),
            r#"slot 16384 out of range 0-16383 in slot range "16384""#
        );
        assert_eq!(
            reason(&format!("{head} 16000-16384")),
            r#"slot 16384 out of range 0-16383 in slot range "16000-16384""#
        );
        assert_eq!(reason(&format!("{head} 10-5")), r#"bad slot range "10-5""#);
        assert_eq!(reason(&format!("{head} -5")), r#"bad slot range "-5""#);
        assert_eq!(
            reason(&format!("{head} [5519]")),
            r#"bad open slot "[5519]""#
        );
        assert_eq!(
            reason(&format!("{head} [5519->-abc")),
            r#"bad open slot "[5519->-abc""#
        );
        assert_eq!(
            reason(&format!("{head} [20000-<-abc]")),
            r#"slot 20000 out of range 0-16383 in open slot "[20000-<-abc]""#
        );
        assert_eq!(
            reason(
                "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1@17002 master - 0 0 2 connected"
            ),
            r#"bad address "127.0.0.1@17002""#
        );
        assert_eq!(
            reason("67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:7002@x master - 0 0 2 connected"),
            r#"bad address "127.0.0.1:7002@x""#
        );
        assert_eq!(
            reason("67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:7002@17002 master - zero 0 2 connected"),
            r#"bad ping-sent "zero""#
        );
        assert_eq!(
            reason("67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:7002@17002 master - 0 0 -1 connected"),
            r#"bad config-epoch "-1""#
        );
    }

    #[test]
    fn ranges_of_merges_and_sorts() {
        assert_eq!(ranges_of(&[]), vec![]);
        assert_eq!(ranges_of(&[5]), vec![(5, 5)]);
        assert_eq!(
            ranges_of(&[6001, 3, 0, 1, 2, 6000, 5519, 2]),
            vec![(0, 3), (5519, 5519), (6000, 6001)]
        );
        let all: Vec<u16> = (0..SLOTS).rev().collect();
        assert_eq!(ranges_of(&all), vec![(0, 16383)]);
        assert_eq!(
            ranges_of(&[u16::MAX, u16::MAX - 1]),
            vec![(u16::MAX - 1, u16::MAX)]
        );
    }

    #[test]
    fn format_ranges_like_redis_cli() {
        assert_eq!(format_ranges(&[]), "");
        assert_eq!(
            format_ranges(&[(0, 5460), (5519, 5519), (6000, 6001)]),
            "0-5460,5519,6000-6001"
        );
    }
}
