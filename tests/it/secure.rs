//! Authentication and TLS end to end, on three protected clusters: one with a password
//! (`requirepass`), one with an ACL user (the `default` user switched off), one serving
//! TLS only (certificates made here with `openssl`, client certificates required). On
//! each, `check`, then `fix` of a stuck slot (its keys must reach the target, so
//! `MIGRATE` must carry `AUTH` / `AUTH2`), then `rebalance --use-empty-masters`; the
//! password never shows in any output or journal; wrong credentials are refused with
//! exit 2 and one sentence that names the node.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use slotsmith::cluster::topology::parse_cluster_nodes;
use slotsmith::lab::{Fault, LabSpec, LabTls};

use crate::support::{assert_check_clean, assert_lab_keys, run_env, Output, Server, TestCluster};

const SLOT: u16 = 5519;
const KEYS: u64 = 500;

/// 3 masters holding `KEYS` keys and 1 empty master, no replicas.
fn small(spec: &mut LabSpec) {
    spec.masters = 3;
    spec.replicas = 0;
    spec.empty = 1;
    spec.keys = KEYS;
}

/// Runs of `slotsmith` that share one state directory (so their journals can be read),
/// remembering every output to search for the password.
struct Runs {
    state: tempfile::TempDir,
    seen: Vec<Output>,
}

impl Runs {
    fn new() -> Runs {
        Runs {
            state: tempfile::Builder::new()
                .prefix("slotsmith-it-secure-")
                .tempdir()
                .expect("temp dir"),
            seen: Vec::new(),
        }
    }

    /// `slotsmith <flags> <args>`; the output is kept and a copy returned.
    fn run(&mut self, flags: &[String], args: &[&str]) -> Output {
        let mut all: Vec<&str> = flags.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        if !all.contains(&"--no-auth-warning") {
            all.push("--no-auth-warning");
        }
        let state = self.state.path().to_string_lossy().to_string();
        let out = run_env(&all, &[("XDG_STATE_HOME", &state)]);
        let copy = Output {
            code: out.code,
            stdout: out.stdout.clone(),
            stderr: out.stderr.clone(),
        };
        self.seen.push(out);
        copy
    }

    /// Every journal line the runs wrote.
    fn journal(&self) -> String {
        let dir = self.state.path().join("slotsmith").join("journal");
        let mut text = String::new();
        let entries = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("journal directory {}: {e}", dir.display()));
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().is_some_and(|x| x == "jsonl") {
                text.push_str(&std::fs::read_to_string(&path).expect("journal file"));
            }
        }
        text
    }

    /// The secret shows in no stdout, stderr or journal line.
    fn assert_never_shown(&self, secret: &str) {
        for out in &self.seen {
            assert!(
                !out.stdout.contains(secret) && !out.stderr.contains(secret),
                "the password shows in the output of a run:\n{out}"
            );
        }
        let journal = self.journal();
        assert!(!journal.is_empty(), "the runs wrote no journal");
        assert!(
            !journal.contains(secret),
            "the password shows in the journal:\n{journal}"
        );
    }
}

fn id(tc: &TestCluster, port: u16) -> String {
    tc.redis_cli(port, &["CLUSTER", "MYID"]).trim().to_string()
}

/// Slots each master holds in its own view, by port.
fn slot_counts(tc: &TestCluster) -> BTreeMap<u16, usize> {
    tc.ports()
        .into_iter()
        .map(|p| {
            let text = tc.redis_cli(p, &["CLUSTER", "NODES"]);
            let nodes = parse_cluster_nodes(&text)
                .unwrap_or_else(|e| panic!("CLUSTER NODES of {p} ({e}):\n{text}"));
            let me = nodes.iter().find(|n| n.is_myself()).expect("myself line");
            (p, if me.is_master() { me.slot_count() } else { 0 })
        })
        .collect()
}

/// Keys of `slot` on each node, by port (only the nodes that hold some).
fn slot_keys(tc: &TestCluster, slot: u16) -> BTreeMap<u16, u64> {
    tc.ports()
        .into_iter()
        .filter_map(|p| {
            let n = tc.redis_cli(p, &["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()]);
            let n: u64 = n
                .trim()
                .parse()
                .unwrap_or_else(|_| panic!("COUNTKEYSINSLOT on {p}: {n}"));
            (n > 0).then_some((p, n))
        })
        .collect()
}

/// Refused before anything happened: exit 2, one sentence on stderr naming `node`
/// and holding `phrase`.
fn assert_refused(out: &Output, node: &str, phrase: &str) {
    assert_eq!(out.code, 2, "{out}");
    assert!(!out.stderr.contains("panicked"), "{out}");
    assert_eq!(out.stderr.trim().lines().count(), 1, "one sentence: {out}");
    assert!(out.stderr.contains(node), "names {node}: {out}");
    assert!(out.stderr.contains(phrase), "says \"{phrase}\": {out}");
    assert!(out.stdout.trim().is_empty(), "{out}");
}

/// On a protected cluster: `check` passes; a stuck slot is fixed with every key, which
/// needs `MIGRATE` to authenticate at the target; `rebalance --use-empty-masters`
/// gives every master its share with every key; `secret` never shows.
fn fix_and_rebalance(tc: &TestCluster, secret: Option<&str>) -> Runs {
    let flags = tc.flags();
    let mut runs = Runs::new();

    let out = runs.run(&flags, &["check"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout
            .contains(&format!("[OK] {KEYS} keys in 4 masters.")),
        "{out}"
    );

    // The lab's own break moves keys with MIGRATE too (through the same connection
    // options), so the target already holds some: AUTH reached it.
    let ports = tc.ports();
    let empty = *ports.last().unwrap();
    let src = ports[1]; // 5462-10922 on a 3-master lab
    tc.lab()
        .break_fault(Fault::StuckSlot { slot: SLOT }, tc.handle())
        .expect("break the slot");
    let split = slot_keys(tc, SLOT);
    assert_eq!(split.len(), 2, "keys of {SLOT} on both sides: {split:?}");
    assert!(split[&src] >= 1 && split[&empty] >= 1, "{split:?}");
    let in_slot: u64 = split.values().sum();
    let total = tc.total_keys();
    assert!(total > KEYS, "the break wrote its keys: {total}");

    let out = runs.run(&flags, &["check"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stdout
            .contains(&format!("[WARNING] The following slots are open: {SLOT}.")),
        "{out}"
    );

    let out = runs.run(&flags, &["fix", "-y"]);
    assert_eq!(out.code, 0, "fix: {out}");
    // Every key of the slot sits on one node now, the slot's owner: the keys of the
    // other side crossed over with an authenticated MIGRATE.
    let after = slot_keys(tc, SLOT);
    assert_eq!(after.len(), 1, "keys of {SLOT} on one node: {after:?}");
    let (&owner, &n) = after.iter().next().unwrap();
    assert_eq!(n, in_slot, "every key of {SLOT} on {owner}");
    let owns = tc.redis_cli(owner, &["CLUSTER", "NODES"]);
    let nodes = parse_cluster_nodes(&owns).expect("CLUSTER NODES parses");
    assert!(
        nodes.iter().any(|n| n.is_myself() && n.owns(SLOT)),
        "{owner} owns {SLOT}:\n{owns}"
    );
    assert_lab_keys(tc, total, KEYS, 37);
    assert_check_clean(tc);
    let out = runs.run(&flags, &["check"]);
    assert_eq!(out.code, 0, "check after fix: {out}");

    let out = runs.run(&flags, &["rebalance", "--use-empty-masters", "-y"]);
    assert_eq!(out.code, 0, "rebalance: {out}");
    let counts = slot_counts(tc);
    assert_eq!(
        counts.values().copied().collect::<Vec<_>>(),
        vec![4096; 4],
        "slots per master: {counts:?}"
    );
    assert_lab_keys(tc, total, KEYS, 37);
    assert!(
        tc.redis_cli(empty, &["DBSIZE"])
            .trim()
            .parse::<u64>()
            .unwrap()
            > 0,
        "keys reached the empty master {empty}"
    );
    assert_check_clean(tc);
    let out = runs.run(&flags, &["check"]);
    assert_eq!(out.code, 0, "check after rebalance: {out}");

    // The journal records the MIGRATEs, with their credentials masked.
    let journal = runs.journal();
    assert!(journal.contains("MIGRATE"), "{journal}");
    if let Some(secret) = secret {
        assert!(journal.contains("***"), "credentials masked: {journal}");
        runs.assert_never_shown(secret);
    }
    runs
}

on_both_servers!(password_cluster_fix_and_rebalance_and_a_wrong_password);
fn password_cluster_fix_and_rebalance_and_a_wrong_password(server: Server) {
    let pw = "pw-Secret-7731";
    let tc = TestCluster::with(server, |s| {
        small(s);
        s.password = Some(pw.into());
    });
    let seed = tc.seed();
    let mut runs = fix_and_rebalance(&tc, Some(pw));
    let journal = runs.journal();
    assert!(journal.contains("AUTH ***"), "MIGRATE ... AUTH: {journal}");

    let out = runs.run(&["-c".into(), seed.clone()], &["-a", "wrong-pw-1", "check"]);
    assert_refused(&out, &seed, "authentication failed");
    assert!(!out.stderr.contains("wrong-pw-1"), "{out}");
    let out = runs.run(&["-c".into(), seed.clone()], &["check"]);
    assert_refused(&out, &seed, "authentication required");
    runs.assert_never_shown(pw);
}

on_both_servers!(acl_user_cluster_fix_and_rebalance_and_a_wrong_user);
fn acl_user_cluster_fix_and_rebalance_and_a_wrong_user(server: Server) {
    let pw = "pw-Acl-9120";
    let tc = TestCluster::with(server, |s| {
        small(s);
        s.user = Some("operator".into());
        s.password = Some(pw.into());
    });
    let seed = tc.seed();
    // Nothing gets in as `default`, even with the password: MIGRATE needs AUTH2.
    let as_default = tc.redis_cli(tc.ports()[0], &["--user", "default", "PING"]);
    assert!(!as_default.contains("PONG"), "{as_default}");
    let mut runs = fix_and_rebalance(&tc, Some(pw));
    let journal = runs.journal();
    assert!(
        journal.contains("AUTH2 *** ***"),
        "MIGRATE ... AUTH2: {journal}"
    );

    let c = ["-c".to_string(), seed.clone()];
    let out = runs.run(&c, &["--user", "intruder", "-a", pw, "check"]);
    assert_refused(&out, &seed, "authentication failed");
    let out = runs.run(&c, &["--user", "operator", "-a", "wrong-pw-2", "check"]);
    assert_refused(&out, &seed, "authentication failed");
    // The password alone authenticates as `default`, which is off.
    let out = runs.run(&c, &["-a", pw, "check"]);
    assert_refused(&out, &seed, "authentication failed");
    runs.assert_never_shown(pw);
}

/// Make a CA and one certificate for 127.0.0.1 / localhost signed by it (for servers
/// and clients alike) in `dir` with `openssl`.
fn certificates(dir: &Path) -> LabTls {
    let openssl = |args: &[&str]| {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .unwrap_or_else(|e| {
                panic!("openssl does not run ({e}); install it: apt-get install -y openssl")
            });
        assert!(
            out.status.success(),
            "openssl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
    let mut ca = vec!["req", "-x509", "-nodes", "-days", "2"];
    ca.extend(ec);
    ca.extend([
        "-keyout",
        "ca.key",
        "-out",
        "ca.crt",
        "-subj",
        "/CN=slotsmith test CA",
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign",
    ]);
    openssl(&ca);
    let mut csr = vec!["req", "-nodes"];
    csr.extend(ec);
    csr.extend([
        "-keyout",
        "node.key",
        "-out",
        "node.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    openssl(&csr);
    std::fs::write(
        dir.join("node.ext"),
        "basicConstraints=CA:FALSE\n\
         keyUsage=critical,digitalSignature,keyEncipherment\n\
         extendedKeyUsage=serverAuth,clientAuth\n\
         subjectAltName=IP:127.0.0.1,DNS:localhost\n",
    )
    .expect("write node.ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "node.csr",
        "-CA",
        "ca.crt",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "node.ext",
        "-out",
        "node.crt",
    ]);
    let path = |name: &str| -> PathBuf { dir.join(name) };
    LabTls {
        ca: path("ca.crt"),
        cert: path("node.crt"),
        key: path("node.key"),
        auth_clients: true,
    }
}

/// Redis only: the Valkey 9.1.2 build the kit installs has no TLS (`--tls-port` logs
/// `Failed finding TLS support.`).
#[test]
fn tls_cluster_fix_and_rebalance_and_an_untrusted_certificate() {
    let server = Server::Redis;
    eprintln!("server: {server} only: the Valkey 9.1.2 build has no TLS");
    let certs = tempfile::Builder::new()
        .prefix("slotsmith-it-certs-")
        .tempdir()
        .expect("temp dir");
    let tls = certificates(certs.path());
    let tc = TestCluster::with(server, |s| {
        small(s);
        s.tls = Some(tls.clone());
    });
    let seed = tc.seed();
    // TLS only: the node's port does not speak plain text.
    let plain = Command::new("redis-cli")
        .args(["-p", &tc.ports()[0].to_string(), "PING"])
        .output()
        .expect("redis-cli runs");
    assert!(!String::from_utf8_lossy(&plain.stdout).contains("PONG"));
    assert_eq!(id(&tc, tc.ports()[0]).len(), 40, "redis-cli over TLS");

    let mut runs = fix_and_rebalance(&tc, None);

    // Not trusted: the CA is not given.
    let c = ["-c".to_string(), seed.clone()];
    let cert = tls.cert.to_string_lossy().to_string();
    let key = tls.key.to_string_lossy().to_string();
    let out = runs.run(&c, &["--tls", "--cert", &cert, "--key", &key, "check"]);
    assert_refused(&out, &seed, "TLS certificate is not trusted");
    assert!(out.stderr.contains("--cacert"), "{out}");
    // No client certificate where the nodes require one.
    let ca = tls.ca.to_string_lossy().to_string();
    let out = runs.run(&c, &["--tls", "--cacert", &ca, "check"]);
    assert_refused(&out, &seed, "client certificate");
    // Half a client identity, and a CA file that is not there.
    let out = runs.run(&c, &["--tls", "--cacert", &ca, "--cert", &cert, "check"]);
    assert_refused(&out, &seed, "--cert and --key must be given together");
    let out = runs.run(&c, &["--tls", "--cacert", "/nonexistent/ca.crt", "check"]);
    assert_refused(&out, &seed, "cannot read --cacert /nonexistent/ca.crt");
    // Plain text to a TLS port.
    let out = runs.run(&c, &["check"]);
    assert_refused(&out, &seed, "--tls");
    // The certificate is checked, not skipped: --insecure gets in without the CA.
    let out = runs.run(
        &c,
        &[
            "--tls",
            "--insecure",
            "--cert",
            &cert,
            "--key",
            &key,
            "check",
        ],
    );
    assert_eq!(out.code, 0, "--insecure: {out}");
}
