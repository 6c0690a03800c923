use super::*;
use crate::cluster::topology::parse_cluster_nodes;

mod jobs;

fn id(c: char) -> String {
    c.to_string().repeat(40)
}

#[test]
fn normal_ranges_cover_what_the_slots_cover() {
    let cases: [&[(u16, u16)]; 5] = [
        &[(5, 9), (0, 4), (20, 20)],
        &[(0, 100), (50, 60), (101, 101)],
        &[(16380, 16383), (16000, 16390)],
        &[(7, 3), (1, 1)],
        &[],
    ];
    for ranges in cases {
        let slots: Vec<u16> = ranges
            .iter()
            .flat_map(|&(a, b)| a..=b)
            .filter(|&s| s < SLOTS)
            .collect();
        assert_eq!(normal_ranges(ranges), ranges_of(&slots), "{ranges:?}");
    }
}

/// One line of `CLUSTER NODES` for node `c` at port `port`, 40 times `c` as id.
fn line(c: char, port: u16, flags: &str, master: Option<char>, rest: &str) -> String {
    let master = master.map_or("-".to_string(), id);
    format!(
        "{} 127.0.0.1:{port}@{} {flags} {master} 0 1700000000000 1 connected {rest}",
        id(c),
        port + 10000
    )
}

/// A cluster description: (id char, port, flags without myself, master, slots).
type Topo = Vec<(char, u16, &'static str, Option<char>, String)>;

/// 3 masters (a, b, c on 7001-7003), one replica each (d, e, f on 7004-7006).
fn healthy() -> Topo {
    vec![
        ('a', 7001, "master", None, "0-5460".into()),
        ('b', 7002, "master", None, "5461-10922".into()),
        ('c', 7003, "master", None, "10923-16383".into()),
        ('d', 7004, "slave", Some('a'), String::new()),
        ('e', 7005, "slave", Some('b'), String::new()),
        ('f', 7006, "slave", Some('c'), String::new()),
    ]
}

/// Node `me`'s `CLUSTER NODES`: `topo`, with `myself` on its line and `extra`
/// (migrating/importing markers) after its slots.
fn text(topo: &Topo, me: char, extra: &str) -> String {
    topo.iter()
        .map(|(c, port, flags, master, slots)| {
            if *c == me {
                line(
                    *c,
                    *port,
                    &format!("myself,{flags}"),
                    *master,
                    &format!("{slots} {extra}"),
                )
            } else {
                line(*c, *port, flags, *master, slots)
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn port_of(topo: &Topo, me: char) -> u16 {
    topo.iter().find(|n| n.0 == me).map_or(0, |n| n.1)
}

fn view_text(addr: &str, keys: u64, text: &str) -> NodeView {
    NodeView {
        addr: addr.to_string(),
        state: Ok(NodeState {
            nodes: parse_cluster_nodes(text).expect("test text parses"),
            keys,
            cluster_state: None,
            current_epoch: None,
        }),
    }
}

fn view(topo: &Topo, me: char, keys: u64, extra: &str) -> NodeView {
    let addr = format!("127.0.0.1:{}", port_of(topo, me));
    view_text(&addr, keys, &text(topo, me, extra))
}

fn down(addr: &str, reason: &str) -> NodeView {
    NodeView {
        addr: addr.to_string(),
        state: Err(reason.to_string()),
    }
}

/// Every node of `topo` answering with the same view and no open slots.
fn all_views(topo: &Topo) -> Vec<NodeView> {
    topo.iter()
        .map(|n| view(topo, n.0, if n.2 == "master" { 10 } else { 0 }, ""))
        .collect()
}

fn set_slots(topo: &mut Topo, c: char, slots: &str) {
    if let Some(n) = topo.iter_mut().find(|n| n.0 == c) {
        n.4 = slots.to_string();
    }
}

fn has_line(text: &str, wanted: &str) -> bool {
    text.lines().any(|l| l == wanted)
}

#[test]
fn healthy_three_masters() {
    let topo = healthy();
    let views = all_views(&topo);
    let r = check("127.0.0.1:7001", &views);
    assert!(r.ok, "{r:#?}");
    assert!(r.agree && r.disagreements.is_empty());
    assert!(r.open_slots.is_empty() && r.uncovered.is_empty());
    assert!(r.warnings.is_empty() && r.errors.is_empty(), "{r:#?}");
    assert_eq!(r.total_keys, 30);
    let addrs: Vec<&str> = r.masters.iter().map(|m| m.addr.as_str()).collect();
    assert_eq!(
        addrs,
        ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"]
    );
    let a = &r.masters[0];
    assert_eq!(a.id, id('a'));
    assert_eq!((a.keys, a.slots, a.replicas), (10, 5461, 1));
    assert_eq!(a.ranges, vec![(0, 5460)]);
    assert!(a.reachable && !a.failing);
    assert_eq!(r.replicas.len(), 3);
    assert_eq!(r.replicas[0].master_id, Some(id('a')));
    assert!(r.replicas.iter().all(|s| s.reachable && !s.failing));

    let out = render(&r);
    let expected = format!(
        "127.0.0.1:7001 (aaaaaaaa...) -> 10 keys | 5461 slots | 1 replicas.
127.0.0.1:7002 (bbbbbbbb...) -> 10 keys | 5462 slots | 1 replicas.
127.0.0.1:7003 (cccccccc...) -> 10 keys | 5461 slots | 1 replicas.
[OK] 30 keys in 3 masters.
0.00 keys per slot on average.
>>> Performing Cluster Check (using node 127.0.0.1:7001)
M: {a} 127.0.0.1:7001
   slots:[0-5460] (5461 slots) master
   1 additional replica(s)
M: {b} 127.0.0.1:7002
   slots:[5461-10922] (5462 slots) master
   1 additional replica(s)
M: {c} 127.0.0.1:7003
   slots:[10923-16383] (5461 slots) master
   1 additional replica(s)
S: {d} 127.0.0.1:7004
   slots: (0 slots) replica
   replicates {a}
S: {e} 127.0.0.1:7005
   slots: (0 slots) replica
   replicates {b}
S: {f} 127.0.0.1:7006
   slots: (0 slots) replica
   replicates {c}
[OK] All nodes agree about slots configuration.
>>> Check for open slots...
>>> Check slots coverage...
[OK] All 16384 slots covered.
",
        a = id('a'),
        b = id('b'),
        c = id('c'),
        d = id('d'),
        e = id('e'),
        f = id('f'),
    );
    assert_eq!(out, expected);
}

#[test]
fn report_serializes_to_json() {
    let r = check("127.0.0.1:7001", &all_views(&healthy()));
    let v = serde_json::to_value(&r).expect("serializes");
    assert_eq!(v["ok"], true);
    assert_eq!(v["masters"][0]["ranges"], serde_json::json!([[0, 5460]]));
    assert_eq!(v["uncovered"], serde_json::json!([]));
}

#[test]
fn report_round_trips_through_json() {
    let r = check("127.0.0.1:7001", &all_views(&healthy()));
    let json = serde_json::to_string(&r).expect("serializes");
    let back: CheckReport = serde_json::from_str(&json).expect("deserializes");
    assert_eq!(render(&back), render(&r));
}

#[test]
fn ranges_printed_in_pieces_still_agree() {
    let topo = healthy();
    let mut views = all_views(&topo);
    let mut split = topo.clone();
    set_slots(&mut split, 'a', "2731-5460 0-2730");
    views[0] = view(&split, 'a', 10, "");
    let r = check("127.0.0.1:7001", &views);
    assert!(r.agree && r.ok, "{r:#?}");
}

/// Slot 5519 moving from b (7002) to g, an empty master on 7007.
fn with_empty_master() -> Topo {
    let mut topo = healthy();
    topo.push(('g', 7007, "master", None, String::new()));
    topo
}

#[test]
fn stuck_slot_migrating_and_importing() {
    let topo = with_empty_master();
    let views: Vec<NodeView> = topo
        .iter()
        .map(|n| match n.0 {
            'b' => view(&topo, 'b', 10, &format!("[5519->-{}]", id('g'))),
            'g' => view(&topo, 'g', 2, &format!("[5519-<-{}]", id('b'))),
            c => view(&topo, c, 10, ""),
        })
        .collect();
    let r = check("127.0.0.1:7001", &views);
    assert!(!r.ok && r.agree && r.uncovered.is_empty() && r.errors.is_empty());
    assert_eq!(r.open_slots.len(), 1);
    let o = &r.open_slots[0];
    assert_eq!(o.slot, 5519);
    assert_eq!(o.migrating, vec![id('b')]);
    assert_eq!(o.importing, vec![id('g')]);
    assert_eq!(o.owners, vec![id('b')]);
    assert_eq!(
        r.warnings,
        vec![
            "Node 127.0.0.1:7002 has slots in migrating state 5519.",
            "Node 127.0.0.1:7007 has slots in importing state 5519.",
            "The following slots are open: 5519.",
        ]
    );
    let g = r
        .masters
        .iter()
        .find(|m| m.id == id('g'))
        .expect("g listed");
    assert_eq!((g.slots, g.keys, g.replicas), (0, 2, 0));
    assert_eq!(r.total_keys, 32);

    let out = render(&r);
    assert!(has_line(
        &out,
        "[OK] All nodes agree about slots configuration."
    ));
    assert!(out.contains(
        ">>> Check for open slots...
[WARNING] Node 127.0.0.1:7002 has slots in migrating state 5519.
[WARNING] Node 127.0.0.1:7007 has slots in importing state 5519.
[WARNING] The following slots are open: 5519.
>>> Check slots coverage...
[OK] All 16384 slots covered.
"
    ));
    // Each warning is printed once, in its section.
    assert_eq!(out.matches("migrating state").count(), 1);
    assert!(has_line(&out, "   slots: (0 slots) master"));
}

#[test]
fn importing_without_migrating_several_slots() {
    let topo = with_empty_master();
    let views: Vec<NodeView> = topo
        .iter()
        .map(|n| match n.0 {
            'g' => view(
                &topo,
                'g',
                0,
                &format!("[5519-<-{b}] [5520-<-{b}] [6000-<-{b}]", b = id('b')),
            ),
            c => view(&topo, c, 10, ""),
        })
        .collect();
    let r = check("127.0.0.1:7001", &views);
    assert!(!r.ok && r.agree);
    let slots: Vec<u16> = r.open_slots.iter().map(|o| o.slot).collect();
    assert_eq!(slots, [5519, 5520, 6000]);
    assert!(r.open_slots.iter().all(|o| o.migrating.is_empty()
        && o.importing == vec![id('g')]
        && o.owners == vec![id('b')]));
    assert_eq!(
        r.warnings,
        vec![
            "Node 127.0.0.1:7007 has slots in importing state 5519-5520,6000.",
            "The following slots are open: 5519-5520,6000.",
        ]
    );
}

#[test]
fn migrating_on_both_sides_of_two_slots() {
    let topo = healthy();
    let views: Vec<NodeView> = topo
        .iter()
        .map(|n| match n.0 {
            'a' => view(&topo, 'a', 10, &format!("[100->-{}]", id('c'))),
            'b' => view(
                &topo,
                'b',
                10,
                &format!("[5519->-{}] [100-<-{}]", id('c'), id('a')),
            ),
            c => view(&topo, c, 10, ""),
        })
        .collect();
    let r = check("s", &views);
    assert_eq!(r.open_slots.len(), 2);
    assert_eq!(r.open_slots[0].migrating, vec![id('a')]);
    assert_eq!(r.open_slots[0].importing, vec![id('b')]);
    assert_eq!(
        r.warnings,
        vec![
            "Node 127.0.0.1:7001 has slots in migrating state 100.",
            "Node 127.0.0.1:7002 has slots in migrating state 5519.",
            "Node 127.0.0.1:7002 has slots in importing state 100.",
            "The following slots are open: 100,5519.",
        ]
    );
}

#[test]
fn uncovered_slots() {
    let mut topo = healthy();
    set_slots(&mut topo, 'a', "0-5000 5400");
    let r = check("127.0.0.1:7001", &all_views(&topo));
    assert!(!r.ok && r.agree && r.open_slots.is_empty());
    assert_eq!(r.uncovered, vec![(5001, 5399), (5401, 5460)]);
    assert_eq!(
        r.errors,
        vec!["Not all 16384 slots are covered by nodes. Uncovered: 5001-5399,5401-5460."]
    );
    let out = render(&r);
    assert!(out.ends_with(
        ">>> Check slots coverage...
[ERR] Not all 16384 slots are covered by nodes.
   uncovered slots: 5001-5399,5401-5460
"
    ));
    assert_eq!(out.matches("Not all 16384").count(), 1);
    assert!(has_line(
        &out,
        "   slots:[0-5000],[5400] (5002 slots) master"
    ));
}

#[test]
fn stale_view_disagrees() {
    // After moving 5519 from b to g, b and g know it; a still has the old map.
    let old = with_empty_master();
    let mut new = old.clone();
    set_slots(&mut new, 'b', "5461-5518 5520-10922");
    set_slots(&mut new, 'g', "5519");
    let views = vec![
        view(&old, 'a', 10, ""),
        view(&new, 'b', 10, ""),
        view(&new, 'c', 10, ""),
        view(&new, 'g', 1, ""),
    ];
    let r = check("127.0.0.1:7001", &views);
    assert!(!r.ok && !r.agree);
    assert!(r.open_slots.is_empty() && r.uncovered.is_empty());
    assert_eq!(r.disagreements.len(), 1);
    let d = &r.disagreements[0];
    assert_eq!(d.slots, vec![(5519, 5519)]);
    let claims: Vec<(&str, Option<&str>)> = d
        .claims
        .iter()
        .map(|c| (c.node.as_str(), c.owner.as_deref()))
        .collect();
    let (b, g) = (id('b'), id('g'));
    assert_eq!(
        claims,
        vec![
            ("127.0.0.1:7001", Some(b.as_str())),
            ("127.0.0.1:7002", Some(g.as_str())),
            ("127.0.0.1:7003", Some(g.as_str())),
            ("127.0.0.1:7007", Some(g.as_str())),
        ]
    );
    let msg = format!(
        "Nodes don't agree about slot 5519: 127.0.0.1:7001 says {b} (127.0.0.1:7002) owns it; \
             127.0.0.1:7002, 127.0.0.1:7003 and 127.0.0.1:7007 say {g} (127.0.0.1:7007) owns it."
    );
    assert_eq!(r.errors, vec![msg.clone()]);
    // The merged view takes b's and g's own lines.
    let bs = r.masters.iter().find(|m| m.id == b).expect("b listed");
    assert_eq!(bs.ranges, vec![(5461, 5518), (5520, 10922)]);

    let out = render(&r);
    assert!(out.contains(&format!(
        "[ERR] Nodes don't agree about configuration!\n   {msg}\n>>> Check for open slots...\n"
    )));
    assert_eq!(out.matches("Nodes don't agree about slot").count(), 1);
}

#[test]
fn disagreement_groups_ranges_and_missing_owner() {
    let topo = healthy();
    let mut stale = topo.clone();
    // 7003 lost 0-99 and 200-299 from a (as if it missed a DELSLOTS/ADDSLOTS).
    set_slots(&mut stale, 'a', "100-199 300-5460");
    let views = vec![
        view(&topo, 'a', 1, ""),
        view(&topo, 'b', 1, ""),
        view(&stale, 'c', 1, ""),
    ];
    let r = check("x", &views);
    assert!(!r.agree && r.uncovered.is_empty());
    assert_eq!(r.disagreements.len(), 1);
    assert_eq!(r.disagreements[0].slots, vec![(0, 99), (200, 299)]);
    assert_eq!(
        r.errors,
        vec![format!(
            "Nodes don't agree about slots 0-99,200-299: 127.0.0.1:7001 and 127.0.0.1:7002 \
                 say {} (127.0.0.1:7001) owns them; 127.0.0.1:7003 says nobody owns them.",
            id('a')
        )]
    );
}

#[test]
fn unreachable_master() {
    let topo = healthy();
    let mut views = all_views(&topo);
    views[2] = down("127.0.0.1:7003", "Connection refused (os error 111)");
    let r = check("127.0.0.1:7001", &views);
    assert!(!r.ok && r.agree && r.uncovered.is_empty());
    assert_eq!(
        r.errors,
        vec!["127.0.0.1:7003: Connection refused (os error 111)"]
    );
    let c = &r.masters[2];
    assert_eq!(c.id, id('c'));
    assert!(!c.reachable && !c.failing);
    assert_eq!((c.keys, c.slots, c.replicas), (0, 5461, 1));
    assert_eq!(r.total_keys, 20);
    let out = render(&r);
    assert!(has_line(
        &out,
        "127.0.0.1:7003 (cccccccc...) -> unreachable | 5461 slots | 1 replicas."
    ));
    assert!(has_line(
        &out,
        "[WARNING] 20 keys in 3 masters (1 unreachable, not counted)."
    ));
    assert!(has_line(
        &out,
        "[ERR] 127.0.0.1:7003: Connection refused (os error 111)"
    ));
    assert!(has_line(
        &out,
        "   slots:[10923-16383] (5461 slots) master, unreachable"
    ));
}

#[test]
fn failing_master() {
    let mut topo = healthy();
    if let Some(c) = topo.iter_mut().find(|n| n.0 == 'c') {
        c.2 = "master,fail";
    }
    let mut pfail = healthy();
    if let Some(c) = pfail.iter_mut().find(|n| n.0 == 'c') {
        c.2 = "master,fail?";
    }
    let views = vec![
        view(&topo, 'a', 10, ""),
        view(&topo, 'b', 10, ""),
        down("127.0.0.1:7003", "timed out"),
        view(&pfail, 'd', 0, ""),
    ];
    let r = check("127.0.0.1:7001", &views);
    assert!(!r.ok);
    let c = &r.masters[2];
    assert!(c.failing && !c.reachable);
    assert_eq!(
        r.errors,
        vec![
            "127.0.0.1:7003: timed out".to_string(),
            format!(
                "Node 127.0.0.1:7003 ({}) is failing: marked fail by 127.0.0.1:7001 and \
                     127.0.0.1:7002; fail? by 127.0.0.1:7004.",
                id('c')
            ),
        ]
    );
    // 7005 and 7006 were never asked: warnings, they are replicas.
    assert_eq!(
        r.warnings,
        vec![
            format!(
                "Replica 127.0.0.1:7005 ({}) was not asked about itself.",
                id('e')
            ),
            format!(
                "Replica 127.0.0.1:7006 ({}) was not asked about itself.",
                id('f')
            ),
        ]
    );
    let out = render(&r);
    assert!(has_line(
        &out,
        "   slots:[10923-16383] (5461 slots) master, failing, unreachable"
    ));
    assert!(out.contains("[ERR] Node 127.0.0.1:7003 (cccc"));
}

#[test]
fn multiple_owners() {
    // a took 5519 with ADDSLOTS while b still owns it: each describes itself as owner.
    let topo = healthy();
    let mut a_view = topo.clone();
    set_slots(&mut a_view, 'a', "0-5460 5519");
    set_slots(&mut a_view, 'b', "5461-5518 5520-10922");
    let views = vec![
        view(&a_view, 'a', 10, ""),
        view(&topo, 'b', 10, ""),
        view(&topo, 'c', 10, ""),
    ];
    let r = check("127.0.0.1:7001", &views);
    assert!(!r.ok && !r.agree);
    // No marker: not "open" (as redis-cli means it), but claimed twice.
    assert!(r.open_slots.is_empty());
    assert_eq!(r.several_owners.len(), 1);
    let g = &r.several_owners[0];
    assert_eq!(g.slots, vec![(5519, 5519)]);
    assert_eq!(g.owners, vec![id('a'), id('b')]);
    assert!(!g.failover);
    assert!(r.warnings.contains(&format!(
        "Slot 5519 is claimed by 2 owners: {} (127.0.0.1:7001), {} (127.0.0.1:7002).",
        id('a'),
        id('b')
    )));
    assert!(!r.warnings.iter().any(|w| w.contains("open")));
    assert_eq!(r.disagreements.len(), 1);
    assert_eq!(r.disagreements[0].slots, vec![(5519, 5519)]);
    assert_eq!(r.masters[0].ranges, vec![(0, 5460), (5519, 5519)]);
}

#[test]
fn a_failover_gossip_has_not_finished_telling_is_no_open_slot() {
    // c is down and flagged fail; its replica f took over c's slots. a still lists
    // c as the owner; f describes itself as owner.
    let mut old = healthy();
    for n in &mut old {
        if n.0 == 'c' {
            n.2 = "master,fail";
        }
    }
    let mut new = old.clone();
    set_slots(&mut new, 'c', "");
    set_slots(&mut new, 'f', "10923-16383");
    for n in &mut new {
        if n.0 == 'f' {
            n.2 = "master";
            n.3 = None;
        }
    }
    let views = vec![
        view(&old, 'a', 10, ""),
        view(&old, 'b', 10, ""),
        down("127.0.0.1:7003", "connection refused"),
        view(&new, 'f', 10, ""),
    ];
    let r = check("127.0.0.1:7001", &views);
    assert!(!r.ok);
    assert!(r.open_slots.is_empty(), "{r:#?}");
    assert_eq!(r.several_owners.len(), 1);
    assert!(r.several_owners[0].failover);
    assert!(
            r.warnings.contains(&"Failover in progress: 127.0.0.1:7003 is failing and 127.0.0.1:7006 has taken over slots 10923-16383; gossip has not converged yet (the nodes disagree until it has).".to_string()),
            "{:#?}",
            r.warnings
        );
    assert!(!render(&r).contains("slots are open"), "{}", render(&r));
}

#[test]
fn documentation_example_with_noaddr_and_handshake() {
    let doc = "\
07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004,hostname4 slave e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 0 1426238317239 4 connected
67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002,hostname2 master - 0 1426238316232 2 connected 5461-10922
292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f 127.0.0.1:30003@31003,hostname3 master - 0 1426238318243 3 connected 10923-16383
6ec23923021cf3ffec47632106199cb7f496ce01 127.0.0.1:30005@31005 slave,fail 67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 0 1426238316232 5 disconnected
824fe116063bc5fcf9f4ffd895bc17aee7731ac3 :0@0 master,fail?,noaddr - 1426238316232 1426238316232 0 disconnected
5a9b3c2d1e0f5a9b3c2d1e0f5a9b3c2d1e0f5a9b 127.0.0.1:30009@31009 handshake - 1426238316232 0 0 disconnected
e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca 127.0.0.1:30001@31001,hostname1 myself,master - 0 0 1 connected 0-5460 [5519->-292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f] [93-<-292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f]
";
    let r = check("127.0.0.1:30001", &[view_text("127.0.0.1:30001", 7, doc)]);
    assert!(!r.ok && r.agree && r.uncovered.is_empty());
    let addrs: Vec<&str> = r.masters.iter().map(|m| m.addr.as_str()).collect();
    assert_eq!(
        addrs,
        [
            ":0",
            "127.0.0.1:30001",
            "127.0.0.1:30002",
            "127.0.0.1:30003"
        ]
    );
    assert!(r.masters[0].failing && !r.masters[0].reachable);
    assert_eq!(r.masters[1].replicas, 1);
    assert_eq!(r.masters[2].replicas, 1);
    assert_eq!(r.total_keys, 7);
    assert_eq!(
            r.errors,
            vec![
                "Node :0 (824fe116063bc5fcf9f4ffd895bc17aee7731ac3) is failing: marked fail? by 127.0.0.1:30001.",
                "Master 127.0.0.1:30002 (67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1) was not asked about itself.",
                "Master 127.0.0.1:30003 (292f8b365bb7edb5e285caf0b7e6ddc7265d2f4f) was not asked about itself.",
                "Node 127.0.0.1:30005 (6ec23923021cf3ffec47632106199cb7f496ce01) is failing: marked fail by 127.0.0.1:30001.",
            ]
        );
    assert_eq!(
            r.warnings,
            vec![
                "Replica 127.0.0.1:30004 (07c37dfeb235213a872192d90877d0cd55635b91) was not asked about itself.",
                "Node 127.0.0.1:30009 (5a9b3c2d1e0f5a9b3c2d1e0f5a9b3c2d1e0f5a9b) is in handshake state.",
                "Node 127.0.0.1:30001 has slots in migrating state 5519.",
                "Node 127.0.0.1:30001 has slots in importing state 93.",
                "The following slots are open: 93,5519.",
            ]
        );
    let o: Vec<(u16, &[String], &[String])> = r
        .open_slots
        .iter()
        .map(|o| (o.slot, &o.migrating[..], &o.importing[..]))
        .collect();
    assert_eq!(o.len(), 2);
    assert_eq!((o[0].0, o[0].1.len(), o[0].2.len()), (93, 0, 1));
    assert_eq!((o[1].0, o[1].1.len(), o[1].2.len()), (5519, 1, 0));
    assert_eq!(
        r.open_slots[0].owners,
        vec!["e7d1eecce10fd6bb5eb35b9f99a514335d9ba9ca"]
    );
}

#[test]
fn nothing_reachable() {
    let r = check(
        "127.0.0.1:7001",
        &[down("127.0.0.1:7001", "Connection refused")],
    );
    assert!(!r.ok && r.agree && r.masters.is_empty());
    assert_eq!(r.uncovered, vec![(0, 16383)]);
    assert_eq!(r.errors[0], "127.0.0.1:7001: Connection refused");
    let out = render(&r);
    assert!(has_line(&out, "[OK] 0 keys in 0 masters."));
    assert!(has_line(&out, "   uncovered slots: 0-16383"));

    let r = check("127.0.0.1:7001", &[]);
    assert_eq!(r.errors[0], "No node was asked.");
    assert!(!r.ok);
}

#[test]
fn keys_per_slot_average() {
    let topo = healthy();
    let views: Vec<NodeView> = topo
        .iter()
        .map(|n| view(&topo, n.0, if n.2 == "master" { 21000 } else { 0 }, ""))
        .collect();
    let out = render(&check("s", &views));
    assert!(has_line(&out, "[OK] 63000 keys in 3 masters."));
    assert!(has_line(&out, "3.85 keys per slot on average."), "{out}");
}
