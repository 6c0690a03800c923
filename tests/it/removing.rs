//! Taking nodes out and swapping roles with the bundled commands: `del-node` (refused
//! for a master with slots unless `--drain`, which moves them away first), `failover`
//! of a replica, and `forget` of a stopped node.

use crate::support::{
    assert_check_clean, assert_healthy, assert_lab_keys, fingerprint, own_line, ss, Server,
    TestCluster,
};

/// Node `port`'s own id.
fn id_of(tc: &TestCluster, port: u16) -> String {
    tc.redis_cli(port, &["CLUSTER", "MYID"]).trim().to_string()
}

/// The master id node `port` replicates, as it says itself ("-" for a master).
fn master_of(tc: &TestCluster, port: u16) -> String {
    own_line(tc, port)
        .split(' ')
        .nth(3)
        .unwrap_or_default()
        .to_string()
}

/// The port of the replica of the master on `master`.
fn replica_of(tc: &TestCluster, master: u16) -> u16 {
    let id = id_of(tc, master);
    tc.ports()
        .into_iter()
        .find(|p| master_of(tc, *p) == id)
        .unwrap_or_else(|| panic!("no replica of {master}"))
}

fn addr(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

on_both_servers!(del_node_refuses_a_master_with_slots_and_drains_it_with_drain);
fn del_node_refuses_a_master_with_slots_and_drains_it_with_drain(server: Server) {
    let tc = TestCluster::with(server, |s| {
        s.keys = 100_000;
        s.empty = 0;
    });
    let victim = tc.ports()[1];
    let victim_id = id_of(&tc, victim);
    let replica = replica_of(&tc, victim);

    let before = fingerprint(&tc, None);
    let out = ss(&tc).args(["-y", "del-node", &addr(victim)]).run();
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("--drain"), "{out}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "{out}");
    assert_eq!(
        fingerprint(&tc, None),
        before,
        "del-node without --drain wrote"
    );

    // A dry run prints the whole plan, the forget and the reset, and writes nothing.
    let out = ss(&tc)
        .args(["--dry-run", "del-node", "--drain", &addr(victim)])
        .run();
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout.contains("[PLAN]")
            && out.stdout.contains(&format!("CLUSTER FORGET {victim_id}"))
            && out.stdout.contains("CLUSTER RESET HARD"),
        "{out}"
    );
    assert_eq!(
        fingerprint(&tc, None),
        before,
        "a dry run of del-node wrote"
    );

    let out = ss(&tc)
        .args(["-y", "del-node", "--drain", &addr(victim)])
        .run();
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("[OK]"), "{out}");

    // Gone from every other node's table; reset itself, so it knows no other node.
    for p in tc.ports().into_iter().filter(|p| *p != victim) {
        let nodes = tc.redis_cli(p, &["CLUSTER", "NODES"]);
        assert!(!nodes.contains(&victim_id), "{p} still knows it:\n{nodes}");
    }
    let own = tc.redis_cli(victim, &["CLUSTER", "NODES"]);
    assert_eq!(own.trim().lines().count(), 1, "{own}");
    assert!(!own.contains(&victim_id), "not reset:\n{own}");
    assert_eq!(tc.redis_cli(victim, &["DBSIZE"]).trim(), "0");

    // Its replica follows another master of the cluster.
    let line = own_line(&tc, replica);
    assert!(line.contains("myself,slave"), "{line}");
    let new_master = master_of(&tc, replica);
    let masters: Vec<String> = [tc.ports()[0], tc.ports()[2]]
        .iter()
        .map(|p| id_of(&tc, *p))
        .collect();
    assert!(masters.contains(&new_master), "{line}");

    assert_check_clean(&tc);
    assert_healthy(&tc, 100_000);
    assert_lab_keys(&tc, 100_000, 100_000, 997);
}

on_both_servers!(failover_swaps_roles_and_forget_removes_a_stopped_node);
fn failover_swaps_roles_and_forget_removes_a_stopped_node(server: Server) {
    let tc = TestCluster::with(server, |s| {
        s.keys = 1000;
        s.empty = 0;
    });
    let master = tc.ports()[1];
    let replica = replica_of(&tc, master);

    // A master is not a replica to promote: exit 2, one sentence, nothing sent.
    let before = fingerprint(&tc, None);
    let out = ss(&tc).args(["-y", "failover", &addr(master)]).run();
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("is a master"), "{out}");
    assert_eq!(fingerprint(&tc, None), before);

    let out = ss(&tc).args(["-y", "failover", &addr(replica)]).run();
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("[OK]"), "{out}");
    assert!(own_line(&tc, replica).contains("myself,master"));
    assert!(own_line(&tc, master).contains("myself,slave"));
    assert_eq!(master_of(&tc, master), id_of(&tc, replica));
    assert_check_clean(&tc);

    // A node that is up is refused, saying why.
    let out = ss(&tc).args(["-y", "forget", &addr(master)]).run();
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr.contains("is up and connected") && out.stderr.contains("--force"),
        "{out}"
    );

    // Stopped, it is forgotten by every other node.
    let gone_id = id_of(&tc, master);
    tc.stop_node(master);
    let out = ss(&tc).args(["-y", "forget", &addr(master)]).run();
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("[OK]"), "{out}");
    for p in tc.ports().into_iter().filter(|p| *p != master) {
        let nodes = tc.redis_cli(p, &["CLUSTER", "NODES"]);
        assert!(!nodes.contains(&gone_id), "{p} still knows it:\n{nodes}");
    }
    assert_check_clean(&tc);
    assert_healthy(&tc, 1000);
}

/// Node `port` is gone from every other node's table and knows no other node itself.
fn assert_removed(tc: &TestCluster, port: u16, id: &str) {
    for p in tc.ports().into_iter().filter(|p| *p != port) {
        let nodes = tc.redis_cli(p, &["CLUSTER", "NODES"]);
        assert!(!nodes.contains(id), "{p} still knows {port}:\n{nodes}");
    }
    let own = tc.redis_cli(port, &["CLUSTER", "NODES"]);
    assert_eq!(
        own.trim().lines().count(),
        1,
        "{port} was not reset:\n{own}"
    );
}

on_both_servers!(del_node_of_an_empty_master_and_a_replica_failover_by_force_and_takeover);
fn del_node_of_an_empty_master_and_a_replica_failover_by_force_and_takeover(server: Server) {
    let tc = TestCluster::with(server, |s| s.keys = 1000);
    let ports = tc.ports();
    let (m0, m1, m2, empty) = (ports[0], ports[1], ports[2], ports[6]);

    // A master without slots or keys goes without --drain.
    let empty_id = id_of(&tc, empty);
    let out = ss(&tc).args(["-y", "del-node", &addr(empty)]).run();
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("[OK]"), "{out}");
    assert_removed(&tc, empty, &empty_id);

    // A replica goes too; its master is left without one.
    let r0 = replica_of(&tc, m0);
    let r0_id = id_of(&tc, r0);
    let out = ss(&tc).args(["-y", "del-node", &addr(r0)]).run();
    assert_eq!(out.code, 0, "{out}");
    assert_removed(&tc, r0, &r0_id);
    let m0_id = id_of(&tc, m0);
    let ports: Vec<u16> = tc
        .ports()
        .into_iter()
        .filter(|p| *p != empty && *p != r0)
        .collect();
    assert!(ports.iter().all(|p| master_of(&tc, *p) != m0_id));
    assert_check_clean(&tc);

    // --takeover: the replica takes the slots without any vote.
    let r1 = replica_of(&tc, m1);
    let out = ss(&tc)
        .args(["-y", "failover", "--takeover", &addr(r1)])
        .run();
    assert_eq!(out.code, 0, "{out}");
    assert!(own_line(&tc, r1).contains("myself,master"), "{out}");
    assert_eq!(master_of(&tc, m1), id_of(&tc, r1));

    // --force: without the master's agreement, with the other masters' votes.
    let r2 = replica_of(&tc, m2);
    let out = ss(&tc).args(["-y", "failover", "--force", &addr(r2)]).run();
    assert_eq!(out.code, 0, "{out}");
    assert!(own_line(&tc, r2).contains("myself,master"), "{out}");
    assert_eq!(master_of(&tc, m2), id_of(&tc, r2));
    assert_check_clean(&tc);
    assert_healthy(&tc, 1000);

    // forget --force of a node that is up: every other node forgets it at once (it
    // will introduce itself again, as the refusal without --force says).
    let m1_id = id_of(&tc, m1);
    let out = ss(&tc).args(["-y", "forget", "--force", &addr(m1)]).run();
    assert_eq!(out.code, 0, "{out}");
    for p in [m0, r1, m2, r2] {
        let nodes = tc.redis_cli(p, &["CLUSTER", "NODES"]);
        assert!(!nodes.contains(&m1_id), "{p} still knows {m1}:\n{nodes}");
    }
}
