//! Faults of the cluster itself: a master killed in the middle of a migration, its
//! replica taking over. `fix` explains what a human must decide (the migration's
//! source is gone), and with `--force` settles the slot without losing a key.

use std::time::{Duration, Instant};

use slotsmith::cluster::topology::parse_cluster_nodes;
use slotsmith::lab::Fault;

use crate::support::{run, Server, TestCluster};

on_both_servers!(a_master_killed_mid_migration_is_survived);
fn a_master_killed_mid_migration_is_survived(server: Server) {
    let tc = TestCluster::start(server, 3000);
    let seed = tc.seed();
    tc.lab()
        .break_fault(Fault::StuckSlot { slot: 5519 }, tc.handle())
        .expect("break");
    let keys = tc.total_keys();
    let ports = tc.ports();
    // The source of the migration is the second master (it owns 5519); its replica is the fifth node.
    let (src, replica) = (ports[1], ports[4]);
    let mut before: Vec<(String, String)> = Vec::new();
    for p in [src, *ports.last().unwrap()] {
        for k in tc
            .redis_cli(p, &["CLUSTER", "GETKEYSINSLOT", "5519", "100"])
            .lines()
        {
            before.push((k.to_string(), String::new()));
        }
    }
    assert!(!before.is_empty());
    let src_id = tc.redis_cli(src, &["CLUSTER", "MYID"]).trim().to_string();

    // kill -9 the source master; wait for its replica to take over.
    let pid = tc.lab().node(src).expect("source node").pid;
    // SAFETY: killing a redis-server process this test's lab started.
    unsafe {
        libc::kill(pid as i32, libc::SIGKILL);
    }
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let nodes =
            parse_cluster_nodes(&tc.redis_cli(replica, &["CLUSTER", "NODES"])).unwrap_or_default();
        if nodes
            .iter()
            .any(|n| n.is_myself() && n.is_master() && n.owns(5519))
        {
            break;
        }
        assert!(Instant::now() < deadline, "the replica never took over");
        std::thread::sleep(Duration::from_millis(200));
    }
    tc.cluster().pool().drop_conn(&format!("127.0.0.1:{src}"));

    let dead = format!("127.0.0.1:{src}");
    if server == Server::Valkey {
        // Valkey replicated the MIGRATING marker to the replica that took over: the
        // migration goes on from there without the dead node; fix settles it and names
        // the dead node as what is still wrong.
        let out = run(&["-c", &seed, "fix", "-y"]);
        assert_eq!(out.code, 1, "{out}");
        assert!(out.stdout.contains("[OK] slot 5519"), "{out}");
        assert!(
            out.stdout.contains(&format!("Node {dead} (")) && out.stdout.contains("is failing"),
            "{out}"
        );
    } else {
        // fix names the dead node and what to decide, and changes nothing.
        let out = run(&["-c", &seed, "fix", "-y"]);
        assert_eq!(out.code, 1, "{out}");
        assert!(
            out.stdout.contains("[REFUSED]") && out.stdout.contains(&dead),
            "{out}"
        );
        assert!(out.stdout.contains("--force"), "{out}");

        // With --force: the slot is settled with the reachable masters, every key kept.
        let out = run(&["-c", &seed, "fix", "-y", "--force"]);
        assert!(out.stdout.contains("[OK] slot 5519"), "{out}");
    }
    // The operator forgets the dead node; then the cluster is healthy with every key.
    for p in ports.iter().filter(|p| **p != src) {
        tc.redis_cli(*p, &["CLUSTER", "FORGET", &src_id]);
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let out = run(&["-c", &seed, "check"]);
        if out.code == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not healthy after fix --force and FORGET: {out}"
        );
        std::thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(tc.total_keys(), keys, "keys lost");
    for (k, _) in &before {
        let got = tc.redis_cli(replica, &["-c", "EXISTS", k]);
        let got = if got.trim() == "1" {
            got
        } else {
            tc.redis_cli(*ports.last().unwrap(), &["-c", "EXISTS", k])
        };
        assert_eq!(got.trim(), "1", "{k} lost");
    }
}
