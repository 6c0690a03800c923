//! `slotsmith::lab` against real `redis-server` processes: a 3+3+1 cluster with keys,
//! the stuck-slot fault as `redis-cli` sees it, and `down` leaving nothing behind.
//! One cluster for the whole module, driven through one sequence.

use slotsmith::cluster::slot::slot_of;
use slotsmith::cluster::Cluster;
use slotsmith::lab::{self, Fault, LabError, LabRole};

use crate::support::{own_line, pid_alive, run, run_env, Server, TestCluster};

on_both_servers!(up_break_down);
fn up_break_down(server: Server) {
    let tc = TestCluster::start(server, 1000);
    let ports = tc.ports();
    assert_eq!(ports.len(), 7);
    let base = ports[0];
    assert_eq!(ports, (base..base + 7).collect::<Vec<_>>());
    assert_eq!(tc.seed(), format!("127.0.0.1:{base}"));

    // up: a healthy cluster, as redis-cli sees it.
    let check = tc.cluster_check();
    assert!(check.contains("[OK] All 16384 slots covered."), "{check}");
    assert!(
        check.contains("[OK] All nodes agree about slots configuration."),
        "{check}"
    );
    assert!(
        !check.contains("[WARNING]") && !check.contains("[ERR]"),
        "{check}"
    );
    assert!(check.contains("[OK] 1000 keys in 4 masters."), "{check}");
    assert_eq!(tc.total_keys(), 1000);
    let empty = ports[6];
    assert_eq!(
        tc.lab().node(empty).map(|n| n.role),
        Some(LabRole::EmptyMaster)
    );
    let me = tc.redis_cli(empty, &["CLUSTER", "NODES"]);
    let line = me
        .lines()
        .find(|l| l.contains("myself"))
        .expect("myself line");
    assert!(line.contains("master"), "{line}");
    assert_eq!(
        line.split_whitespace().count(),
        8,
        "no slots expected: {line}"
    );
    for &p in &ports[3..6] {
        let role = tc.redis_cli(p, &["ROLE"]);
        assert!(role.starts_with("slave"), "{p}: {role}");
    }
    assert!(tc
        .lab()
        .next_steps()
        .contains(&format!("slotsmith lab down --port {base}")));

    // A second lab on the same base is refused, naming the port.
    let mut again = lab::LabSpec::new(base);
    again.dir = tc.lab().dir.clone();
    match lab::up(&again, tc.handle()) {
        Err(e @ LabError::AlreadyRunning { .. }) => {
            assert!(e.to_string().contains(&base.to_string()))
        }
        other => panic!("expected AlreadyRunning, got {other:?}"),
    }
    // A lab elsewhere whose ports collide is refused too.
    let mut clash = lab::LabSpec::new(base + 3);
    clash.dir = tc.lab().dir.with_file_name("clash");
    match lab::up(&clash, tc.handle()) {
        Err(e @ LabError::PortInUse { .. }) => {
            assert!(e.to_string().contains(&(base + 3).to_string()), "{e}")
        }
        other => panic!("expected PortInUse, got {other:?}"),
    }

    // status: every node alive, slots and keys as loaded.
    let status = tc.lab().status(tc.handle()).expect("status");
    assert_eq!(status.cluster_state, "ok");
    assert!(status.nodes.iter().all(|n| n.alive));
    assert_eq!(status.nodes.iter().map(|n| n.slots).sum::<usize>(), 16384);
    assert!(status.to_string().contains("cluster_state:ok"));
    assert!(
        status
            .nodes
            .iter()
            .all(|n| n.server.as_deref() == Some(&server.to_string().to_lowercase())),
        "{status}"
    );

    // break stuck-slot 5519: 7002 migrating to the empty master, keys on both sides.
    let (src, dst) = (ports[1], ports[6]);
    let text = tc
        .lab()
        .break_fault(Fault::StuckSlot { slot: 5519 }, tc.handle())
        .expect("break stuck-slot");
    assert!(text.contains(&format!("127.0.0.1:{src}")), "{text}");
    let src_nodes = tc.redis_cli(src, &["CLUSTER", "NODES"]);
    let src_line = src_nodes
        .lines()
        .find(|l| l.contains("myself"))
        .expect("myself");
    assert!(src_line.contains("[5519->-"), "{src_line}");
    let dst_nodes = tc.redis_cli(dst, &["CLUSTER", "NODES"]);
    let dst_line = dst_nodes
        .lines()
        .find(|l| l.contains("myself"))
        .expect("myself");
    assert!(dst_line.contains("[5519-<-"), "{dst_line}");
    let on_src = tc.redis_cli(src, &["CLUSTER", "COUNTKEYSINSLOT", "5519"]);
    let on_dst = tc.redis_cli(dst, &["CLUSTER", "COUNTKEYSINSLOT", "5519"]);
    assert_eq!(on_src.trim(), "1", "source keeps one key");
    assert!(
        on_dst.trim().parse::<u64>().expect("count") >= 1,
        "{on_dst}"
    );
    let left = tc.redis_cli(src, &["CLUSTER", "GETKEYSINSLOT", "5519", "10"]);
    assert_eq!(left.trim(), "user:loadtest_user_33:reservations");
    assert_eq!(slot_of(b"user:loadtest_user_33:reservations"), 5519);
    // The fault writes the seed key and three `{tag}:item:N` keys; MIGRATE loses none.
    assert_eq!(tc.total_keys(), 1000 + 4);
    let check = tc.cluster_check();
    assert!(
        check.contains("has slots in migrating state 5519"),
        "{check}"
    );
    assert!(
        check.contains("has slots in importing state 5519"),
        "{check}"
    );

    // Breaking an open slot again is refused with a sentence.
    let err = tc
        .lab()
        .break_fault(Fault::StuckSlot { slot: 5519 }, tc.handle())
        .expect_err("slot already open");
    assert!(err.to_string().contains("already open"), "{err}");

    // stop_node: one process gone, the others still there.
    let victim = ports[5];
    let victim_pid = tc.lab().node(victim).expect("node").pid;
    tc.stop_node(victim);
    assert!(!pid_alive(victim_pid));
    let status = tc.lab().status(tc.handle()).expect("status");
    assert!(status.nodes.iter().any(|n| n.port == victim && !n.alive));
    assert!(tc.cluster().call(&tc.seed(), &[b"PING".to_vec()]).is_ok());

    // down: no process left, directory gone; a second down is a no-op.
    let pids: Vec<u32> = tc.lab().nodes.iter().map(|n| n.pid).collect();
    assert!(pids.iter().all(|&p| p > 0));
    let dir = tc.lab().dir.clone();
    let report = tc.lab().down().expect("down");
    assert!(report.removed);
    assert_eq!(report.stopped.len() + report.killed.len(), 6, "{report}");
    for pid in pids {
        assert!(!pid_alive(pid), "pid {pid} still running");
    }
    assert!(!dir.exists());
    let again = tc.lab().down().expect("second down");
    assert!(!again.removed);
}

#[test]
fn a_lab_of_another_server_binary() {
    // Valkey's valkey-server: a healthy cluster, and lab status names the server.
    let tc = TestCluster::with(Server::Valkey, |s| {
        s.masters = 3;
        s.replicas = 0;
        s.empty = 0;
        s.keys = 300;
    });
    let check = tc.cluster_check();
    assert!(check.contains("[OK] All 16384 slots covered."), "{check}");
    assert!(check.contains("[OK] 300 keys in 3 masters."), "{check}");
    let root = tc
        .lab()
        .dir
        .parent()
        .expect("lab root")
        .to_string_lossy()
        .to_string();
    let base = tc.ports()[0].to_string();
    let out = run_env(
        &["lab", "status", "--port", &base],
        &[("SLOTSMITH_LAB_DIR", &root)],
    );
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("cluster_state:ok"), "{out}");
    let rows: Vec<&str> = out
        .stdout
        .lines()
        .skip(2)
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(rows.len(), 3, "{out}");
    assert!(rows.iter().all(|r| r.contains("valkey 9.1.2")), "{out}");

    // A server binary that cannot be run: exit 2, one sentence naming it.
    for out in [
        run(&[
            "lab",
            "up",
            "--port",
            "29990",
            "--server",
            "/nonexistent/valkey-server",
        ]),
        run_env(
            &["lab", "up", "--port", "29990"],
            &[("SLOTSMITH_SERVER", "/nonexistent/valkey-server")],
        ),
    ] {
        assert_eq!(out.code, 2, "{out}");
        assert!(
            out.stderr
                .contains("cannot run the server binary /nonexistent/valkey-server"),
            "{out}"
        );
        assert_eq!(out.stderr.trim().lines().count(), 1, "{out}");
    }
}

on_both_servers!(lab_verbs_follow_the_cluster_option);
/// `-c HOST:PORT` and `SLOTSMITH_CLUSTER` say which lab a `lab` verb means when `--port`
/// does not; both naming different labs is a usage error naming both.
fn lab_verbs_follow_the_cluster_option(server: Server) {
    let tc = TestCluster::with(server, |s| {
        s.masters = 3;
        s.replicas = 0;
        s.empty = 1;
        s.keys = 200;
    });
    let ports = tc.ports();
    let (base, seed) = (ports[0], tc.seed());
    let root = tc.lab().dir.parent().expect("lab root").to_path_buf();
    let root = root.to_string_lossy();
    let dir = [("SLOTSMITH_LAB_DIR", &*root)];
    let dir_and = |addr: &str| {
        [
            ("SLOTSMITH_LAB_DIR", root.to_string()),
            ("SLOTSMITH_CLUSTER", addr.to_string()),
        ]
    };
    let run_with = |args: &[&str], env: &[(&str, String)]| {
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        run_env(args, &env)
    };
    let one_sentence = |out: &crate::support::Output| {
        assert_eq!(out.stderr.trim().lines().count(), 1, "{out}");
    };

    // status: by -c (before or after the verb), and by SLOTSMITH_CLUSTER.
    let header = format!("lab on port {base} (");
    for out in [
        run_env(&["-c", &seed, "lab", "status"], &dir),
        run_env(&["lab", "status", "--cluster", &seed], &dir),
        run_with(&["lab", "status"], &dir_and(&seed)),
    ] {
        assert_eq!(out.code, 0, "{out}");
        assert!(out.stdout.contains(&header), "{out}");
        assert!(out.stdout.contains("cluster_state:ok"), "{out}");
    }
    // Neither: the lab on 7001, which is not this one.
    let out = run_env(&["lab", "status"], &dir);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("no lab cluster on port 7001"), "{out}");
    // --port and -c agreeing is fine; disagreeing is exit 2, one sentence naming both.
    let b = base.to_string();
    let out = run_env(&["lab", "status", "--port", &b, "-c", &seed], &dir);
    assert_eq!(out.code, 0, "{out}");
    let other = (base + 1).to_string();
    let out = run_env(&["-c", &seed, "lab", "status", "--port", &other], &dir);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains(&format!("--port {other}")), "{out}");
    assert!(out.stderr.contains(&format!("-c {seed}")), "{out}");
    one_sentence(&out);
    let out = run_with(&["lab", "down", "--port", &other], &dir_and(&seed));
    assert_eq!(out.code, 2, "{out}");
    assert!(
        out.stderr.contains(&format!("SLOTSMITH_CLUSTER={seed}")),
        "{out}"
    );
    one_sentence(&out);
    // A node on another host names no lab.
    let out = run_env(&["-c", "10.1.2.3:7001", "lab", "status"], &dir);
    assert_eq!(out.code, 2, "{out}");
    assert!(out.stderr.contains("10.1.2.3:7001"), "{out}");
    one_sentence(&out);
    // up with -c means this lab, which already runs.
    let out = run_env(&["-c", &seed, "lab", "up"], &dir);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stderr
            .contains(&format!("a lab cluster already runs on port {base}")),
        "{out}"
    );
    assert_eq!(tc.total_keys(), 200);

    // break stuck-slot with -c after the verb: the owner of 5519 migrating it to the
    // empty master, one key left behind, said in the same words as always.
    let (src, dst) = (ports[1], ports[3]);
    let loaded = (0..200u64)
        .filter(|i| slot_of(format!("key:{i:06}").as_bytes()) == 5519)
        .count();
    let out = run_env(&["lab", "break", "stuck-slot", "-c", &seed], &dir);
    assert_eq!(out.code, 0, "{out}");
    let said = format!(
        "Slot 5519 is now stuck half-way, as an interrupted reshard leaves it: \
         127.0.0.1:{src} is MIGRATING it to 127.0.0.1:{dst}, which is IMPORTING it; \
         {} keys moved to 127.0.0.1:{dst}, 1 left behind on 127.0.0.1:{src} \
         (user:loadtest_user_33:reservations).\n\
         See it:  slotsmith -c {seed} check   (or redis-cli --cluster check {seed})\n\
         Fix it:  slotsmith -c {seed} fix   (or complete 5519 / cancel 5519)\n",
        3 + loaded
    );
    assert_eq!(out.stdout.trim_end(), said.trim_end(), "{out}");
    let myself = |port: u16| own_line(&tc, port);
    assert!(myself(src).contains("[5519->-"), "{}", myself(src));
    assert!(myself(dst).contains("[5519-<-"), "{}", myself(dst));
    let left = tc.redis_cli(src, &["CLUSTER", "GETKEYSINSLOT", "5519", "10"]);
    assert_eq!(left.trim(), "user:loadtest_user_33:reservations");
    assert_eq!(tc.total_keys(), 200 + 4);
    // Again: refused in one sentence, nothing changed.
    let out = run_env(&["-c", &seed, "lab", "break", "stuck-slot"], &dir);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("slot 5519 is already open"), "{out}");
    one_sentence(&out);
    assert_eq!(tc.total_keys(), 200 + 4);

    // By SLOTSMITH_CLUSTER, another slot (owned by the first master): its three keys
    // written, the first left behind.
    let out = run_with(
        &["lab", "break", "stuck-slot", "--slot", "100"],
        &dir_and(&seed),
    );
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout.contains(&format!(
            "Slot 100 is now stuck half-way, as an interrupted reshard leaves it: \
             127.0.0.1:{base} is MIGRATING it to 127.0.0.1:{dst}, which is IMPORTING it;"
        )),
        "{out}"
    );
    assert!(myself(base).contains("[100->-"), "{}", myself(base));
    assert!(myself(dst).contains("[100-<-"), "{}", myself(dst));
    let on_src = tc.redis_cli(base, &["CLUSTER", "COUNTKEYSINSLOT", "100"]);
    assert_eq!(on_src.trim(), "1", "one key left behind");
    assert_eq!(tc.total_keys(), 200 + 4 + 3);

    // The fault is a script on the script path: a copy of one's own comes first.
    let mine = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir(mine.path().join("lab")).expect("lab dir");
    std::fs::write(
        mine.path().join("lab").join("stuck-slot.rhai"),
        "fn main(opts) { throw `not slot ${opts.slot} today`; }\n",
    )
    .expect("write the copy");
    let scripts = mine.path().to_string_lossy();
    let out = run_env(
        &[
            "lab",
            "break",
            "stuck-slot",
            "--slot",
            "200",
            "--scripts",
            &scripts,
            "-c",
            &seed,
        ],
        &dir,
    );
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.contains("not slot 200 today"), "{out}");
    assert!(!myself(base).contains("[200-"), "{}", myself(base));
    assert_eq!(tc.total_keys(), 200 + 4 + 3);

    // down with -c stops this lab.
    let out = run_env(&["lab", "down", "-c", &seed], &dir);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("stopped 4 nodes"), "{out}");
    assert!(!tc.lab().dir.exists());
}
