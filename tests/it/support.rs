//! Helpers shared by the integration tests: [`TestCluster`], a lab cluster of a
//! [`Server`] on a free port range in its own temporary directory, stopped on drop,
//! with ways to check what an operator would check (the real `redis-cli`, key counts);
//! `on_both_servers!`, which runs a test once on each server; and [`ss`] / [`ss_bare`],
//! runs of the binary kept from the machine's user settings.

#![allow(dead_code)]

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use slotsmith::cluster::live::LiveCluster;
use slotsmith::cluster::slot::key_in_slot;
use slotsmith::cluster::topology::parse_cluster_nodes;
use slotsmith::cluster::{Cluster, NodeState};
use slotsmith::lab::{self, Lab, LabError, LabSpec};

/// Lowest and highest base port handed out to test clusters. Each node's cluster bus
/// port (port + 10000) stays below 32768, where Linux starts handing out ephemeral
/// ports: thousands of short client connections (redis-cli) leave their ports in
/// TIME_WAIT, which a listener cannot bind, and a bus port among them made clusters
/// fail to start.
const FIRST_BASE: u16 = 21000;
const LAST_BASE: u16 = 22752;
/// Ports reserved per cluster (enough for any test layout).
const STRIDE: u16 = 16;

/// The next base port to try; starts at an offset derived from the process id so that
/// test binaries running side by side rarely probe the same ports.
static NEXT_BASE: AtomicU16 = AtomicU16::new(0);

fn next_base() -> u16 {
    let slots = (LAST_BASE - FIRST_BASE) / STRIDE;
    let _ = NEXT_BASE.compare_exchange(
        0,
        (std::process::id() % u32::from(slots)) as u16 + 1,
        Ordering::SeqCst,
        Ordering::SeqCst,
    );
    let n = NEXT_BASE.fetch_add(1, Ordering::SeqCst);
    FIRST_BASE + (n % slots) * STRIDE
}

/// Whether every node port and its cluster bus port can be bound on 127.0.0.1.
fn ports_free(base: u16, count: usize) -> bool {
    (0..count as u16).all(|i| {
        let p = base + i;
        TcpListener::bind(("127.0.0.1", p)).is_ok()
            && TcpListener::bind(("127.0.0.1", p + 10000)).is_ok()
    })
}

/// Valkey 9.1.2's `valkey-server`, as `scripts/setup` installs it: `$SLOTSMITH_VALKEY`,
/// else `valkey-9.1.2/valkey-server` in `$SLOTSMITH_CACHE`, `$XDG_CACHE_HOME/slotsmith`
/// or `~/.cache/slotsmith`.
pub fn valkey_server() -> std::path::PathBuf {
    let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
    let path = var("SLOTSMITH_VALKEY")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            let cache = var("SLOTSMITH_CACHE")
                .map(std::path::PathBuf::from)
                .unwrap_or_else(|| {
                    var("XDG_CACHE_HOME")
                        .map(std::path::PathBuf::from)
                        .unwrap_or_else(|| {
                            std::path::PathBuf::from(var("HOME").expect("HOME")).join(".cache")
                        })
                        .join("slotsmith")
                });
            cache.join("valkey-9.1.2").join("valkey-server")
        });
    assert!(
        path.is_file(),
        "Valkey 9.1.2 is not installed at {}: run scripts/setup",
        path.display()
    );
    path
}

/// The server a test cluster runs: every test that starts a cluster runs once on each
/// (see [`on_both_servers!`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Server {
    /// Debian's `redis-server` 7.0.15 on `PATH`.
    Redis,
    /// Valkey 9.1.2 as `scripts/setup` installs it ([`valkey_server`]).
    Valkey,
}

impl Server {
    /// The binary the lab starts for each node.
    pub fn binary(self) -> std::path::PathBuf {
        match self {
            Server::Redis => std::path::PathBuf::from("redis-server"),
            Server::Valkey => valkey_server(),
        }
    }

    /// Whether the server moves slots itself (`CLUSTER MIGRATESLOTS`).
    pub fn atomic(self) -> bool {
        self == Server::Valkey
    }
}

impl std::fmt::Display for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Server::Redis => "Redis 7.0.15",
            Server::Valkey => "Valkey 9.1.2",
        })
    }
}

/// `on_both_servers!(name, ...)`: each named test function (`fn name(server: Server)`)
/// runs once on each server, as the tests `name::redis` and `name::valkey`.
macro_rules! on_both_servers {
    ($($name:ident),+ $(,)?) => {$(
        mod $name {
            #[test]
            fn redis() {
                eprintln!("server: {}", $crate::support::Server::Redis);
                super::$name($crate::support::Server::Redis)
            }

            #[test]
            fn valkey() {
                eprintln!("server: {}", $crate::support::Server::Valkey);
                super::$name($crate::support::Server::Valkey)
            }
        }
    )+};
}

/// The `slotsmith` binary, built by cargo for the integration tests, as a bare command
/// with the test process's environment: [`ss`] and [`ss_bare`] run it isolated.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_slotsmith"))
}

/// Whether a process with this pid exists and is not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// A lab cluster for one test (or one test module), stopped and removed on drop.
pub struct TestCluster {
    lab: Lab,
    cluster: LiveCluster,
    password: Option<String>,
    // Dropped after `lab` is taken down (fields drop in order; `Drop` runs first).
    _dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
}

impl TestCluster {
    /// The seed lab's shape (3 masters, 1 replica each, 1 empty master) with `keys` keys.
    pub fn start(server: Server, keys: u64) -> TestCluster {
        TestCluster::with(server, |spec| spec.keys = keys)
    }

    /// A lab of `server` whose spec `edit` adjusts (port and directory are chosen here).
    pub fn with(server: Server, edit: impl Fn(&mut LabSpec)) -> TestCluster {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let dir = tempfile::Builder::new()
            .prefix("slotsmith-it-")
            .tempdir()
            .expect("temp dir");
        let mut last_err = None;
        for _ in 0..20 {
            let base = next_base();
            let mut spec = LabSpec::new(base);
            spec.server = server.binary();
            edit(&mut spec);
            spec.port = base;
            spec.dir = dir.path().join(base.to_string());
            if !ports_free(base, spec.node_count()) {
                continue;
            }
            match lab::up(&spec, rt.handle()) {
                Ok(lab) => {
                    let lab = lab.with_password(spec.password.clone());
                    let cluster = lab.cluster(rt.handle()).expect("lab cluster");
                    return TestCluster {
                        lab,
                        cluster,
                        password: spec.password.clone(),
                        _dir: dir,
                        rt,
                    };
                }
                // Another test process took a port between the check and the start.
                Err(e @ LabError::PortInUse { .. }) | Err(e @ LabError::Start { .. }) => {
                    last_err = Some(e)
                }
                Err(e) => panic!("lab up failed: {e}"),
            }
        }
        panic!("no free port range for a test cluster: {last_err:?}");
    }

    /// `127.0.0.1:<base port>`.
    pub fn seed(&self) -> String {
        self.lab.seed()
    }

    /// The `slotsmith` global options that reach this cluster with its credentials:
    /// `-c SEED [--user U] [-a PASSWORD] [--tls --cacert CA --cert C --key K]`.
    pub fn flags(&self) -> Vec<String> {
        let mut flags = self.lab.flags(self.password.as_deref().unwrap_or_default());
        if self.password.is_some() {
            flags.push("--no-auth-warning".into());
        }
        flags
    }

    /// Every node port, masters first, then replicas, then empty masters.
    pub fn ports(&self) -> Vec<u16> {
        self.lab.ports()
    }

    pub fn lab(&self) -> &Lab {
        &self.lab
    }

    /// The live cluster on the seed node, as `slotsmith -c <seed>` would open it.
    pub fn cluster(&self) -> &LiveCluster {
        &self.cluster
    }

    pub fn handle(&self) -> &tokio::runtime::Handle {
        self.rt.handle()
    }

    /// Run the real `redis-cli` against node `port`; stdout, then stderr.
    pub fn redis_cli(&self, port: u16, args: &[&str]) -> String {
        let mut cmd = Command::new("redis-cli");
        cmd.args(["-h", "127.0.0.1", "-p", &port.to_string()]);
        if let Some(user) = &self.lab.user {
            cmd.args(["--user", user]);
        }
        if let Some(pw) = &self.password {
            cmd.args(["-a", pw, "--no-auth-warning"]);
        }
        if let Some(tls) = &self.lab.tls {
            cmd.args(tls.flags());
        }
        let out = cmd.args(args).output().expect("redis-cli runs");
        let mut text = String::from_utf8_lossy(&out.stdout).to_string();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        text
    }

    /// A stray key: `key` (whose slot `owner` serves) SET on the master `port`, as a
    /// half-done import leaves one: IMPORTING from the owner, ASKING + SET on one
    /// connection, then STABLE again. Clients are sent away from it.
    pub fn plant_stray(&self, port: u16, owner: u16, key: &str, value: &str) {
        let slot = slotsmith::cluster::slot::slot_of(key.as_bytes()).to_string();
        let owner_id = self
            .redis_cli(owner, &["CLUSTER", "MYID"])
            .trim()
            .to_string();
        let said = self.redis_cli(port, &["CLUSTER", "SETSLOT", &slot, "IMPORTING", &owner_id]);
        assert_eq!(said.trim(), "OK", "IMPORTING on {port}: {said}");
        let mut cli = Command::new("redis-cli")
            .args(["-p", &port.to_string()])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("redis-cli runs");
        use std::io::Write;
        cli.stdin
            .take()
            .expect("stdin")
            .write_all(format!("ASKING\nSET {key} {value}\n").as_bytes())
            .expect("redis-cli reads");
        let said = cli.wait_with_output().expect("redis-cli ends");
        assert!(
            String::from_utf8_lossy(&said.stdout).contains("OK"),
            "ASKING + SET on {port}: {said:?}"
        );
        let said = self.redis_cli(port, &["CLUSTER", "SETSLOT", &slot, "STABLE"]);
        assert_eq!(said.trim(), "OK", "STABLE on {port}: {said}");
    }

    /// `redis-cli --cluster check <seed>`, as an operator would run it.
    pub fn cluster_check(&self) -> String {
        let seed = self.seed();
        self.redis_cli(self.lab.port, &["--cluster", "check", &seed])
    }

    /// Every reachable node's own view.
    pub fn states(&self) -> Vec<(String, NodeState)> {
        self.cluster
            .views()
            .expect("cluster views")
            .into_iter()
            .filter_map(|v| v.state.ok().map(|s| (v.addr, s)))
            .collect()
    }

    /// Sum of `DBSIZE` over the nodes that are masters now.
    pub fn total_keys(&self) -> u64 {
        self.states()
            .iter()
            .filter(|(_, s)| s.myself().is_some_and(|m| m.is_master()))
            .map(|(_, s)| s.keys)
            .sum()
    }

    /// Stop one node (its process exits; the rest keep running).
    pub fn stop_node(&self, port: u16) {
        let was_running = self.lab.stop_node(port).expect("stop node");
        assert!(was_running, "node {port} was not running");
        self.cluster.pool().drop_conn(&format!("127.0.0.1:{port}"));
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if let Err(e) = self.lab.down() {
            eprintln!("lab down failed for {}: {e}", self.lab.seed());
        }
    }
}

/// What one run of the binary did.
pub struct Output {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Display for Output {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// `slotsmith` against `tc`: `-c SEED` and the cluster's credentials ([`TestCluster::flags`])
/// come first, then what `.args` adds.
pub fn ss(tc: &TestCluster) -> Ss {
    let mut run = ss_bare();
    run.args = tc.flags().into_iter().map(OsString::from).collect();
    run
}

/// `slotsmith` with no cluster flags (`--help`, `lab`, `scripts`, or a test that spells
/// `-c` itself).
pub fn ss_bare() -> Ss {
    Ss {
        args: Vec::new(),
        env: Vec::new(),
        dir: None,
        stdin: None,
        home: None,
        color: false,
    }
}

/// One run of the `slotsmith` binary, set up by [`ss`] or [`ss_bare`], then run by
/// [`Ss::run`] (or started by [`Ss::spawn`]).
///
/// Each run is kept from the machine's user: `XDG_CONFIG_HOME`, `XDG_DATA_HOME`,
/// `XDG_STATE_HOME` and `XDG_CACHE_HOME` all name one home directory of the run's own,
/// removed when it ends ([`Spawned`]: when dropped), so no user script shadows a
/// bundled one and no journal lands in the user's; `SLOTSMITH_PATH`,
/// `SLOTSMITH_CLUSTER`, `SLOTSMITH_LAB_DIR`, `SLOTSMITH_SERVER`, `REDISCLI_AUTH`,
/// `VISUAL`, `EDITOR`, `CLICOLOR` and `CLICOLOR_FORCE` are removed; `NO_COLOR` is set
/// ([`Ss::color`]: not); stdin is empty ([`Ss::stdin`]: a pipe). [`Ss::home`] shares a
/// home between runs and lets the test read what they wrote
/// (`HOME/slotsmith/journal`, `HOME/slotsmith/scripts`); [`Ss::env`] overrides any of
/// the above.
#[must_use = "a run does nothing until .run() or .spawn()"]
pub struct Ss {
    args: Vec<OsString>,
    env: Vec<(OsString, OsString)>,
    dir: Option<PathBuf>,
    stdin: Option<Vec<u8>>,
    home: Option<PathBuf>,
    color: bool,
}

impl Ss {
    pub fn arg(mut self, arg: impl AsRef<OsStr>) -> Ss {
        self.args.push(arg.as_ref().to_owned());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Ss
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Set an environment variable (after the defaults, so it wins over them).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Ss {
        self.env
            .push((key.as_ref().to_owned(), value.as_ref().to_owned()));
        self
    }

    pub fn envs<I, K, V>(mut self, vars: I) -> Ss
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        for (k, v) in vars {
            self = self.env(k, v);
        }
        self
    }

    /// The working directory (else the test's).
    pub fn dir(mut self, dir: impl AsRef<Path>) -> Ss {
        self.dir = Some(dir.as_ref().to_owned());
        self
    }

    /// What the run reads on stdin (a pipe; else it reads nothing).
    pub fn stdin(mut self, input: impl AsRef<[u8]>) -> Ss {
        self.stdin = Some(input.as_ref().to_vec());
        self
    }

    /// Every XDG base directory is `home`, which the test owns and which stays: runs
    /// given the same home share user scripts, journals and labs.
    pub fn home(mut self, home: impl AsRef<Path>) -> Ss {
        self.home = Some(home.as_ref().to_owned());
        self
    }

    /// Leave `NO_COLOR` unset: colour is the run's own choice (`--color`, a terminal).
    pub fn color(mut self) -> Ss {
        self.color = true;
        self
    }

    /// The command, and the temporary home it uses unless [`Ss::home`] named one.
    fn command(&self) -> (Command, Option<tempfile::TempDir>) {
        let (home, owned) = match &self.home {
            Some(h) => (h.clone(), None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("slotsmith-it-home-")
                    .tempdir()
                    .expect("temp dir");
                (t.path().to_owned(), Some(t))
            }
        };
        let mut cmd = bin();
        cmd.args(&self.args);
        for var in [
            "XDG_CONFIG_HOME",
            "XDG_DATA_HOME",
            "XDG_STATE_HOME",
            "XDG_CACHE_HOME",
        ] {
            cmd.env(var, &home);
        }
        for var in [
            "SLOTSMITH_PATH",
            "SLOTSMITH_CLUSTER",
            "SLOTSMITH_LAB_DIR",
            "SLOTSMITH_SERVER",
            "REDISCLI_AUTH",
            "VISUAL",
            "EDITOR",
            "NO_COLOR",
            "CLICOLOR",
            "CLICOLOR_FORCE",
        ] {
            cmd.env_remove(var);
        }
        if !self.color {
            cmd.env("NO_COLOR", "1");
        }
        cmd.envs(self.env.iter().map(|(k, v)| (k, v)));
        if let Some(d) = &self.dir {
            cmd.current_dir(d);
        }
        cmd.stdin(if self.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        (cmd, owned)
    }

    /// Run to the end; what it printed and its exit code.
    pub fn run(self) -> Output {
        let (mut cmd, _home) = self.command();
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("slotsmith runs");
        // Written from another thread, so that a run printing much before it reads
        // cannot block on a full pipe; one that exits unread is no error here.
        let writer = child.stdin.take().map(|mut pipe| {
            let input = self.stdin.clone().unwrap_or_default();
            std::thread::spawn(move || {
                let _ = pipe.write_all(&input);
            })
        });
        let out = child.wait_with_output().expect("slotsmith ends");
        if let Some(w) = writer {
            w.join().expect("stdin writer");
        }
        Output {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).to_string(),
            stderr: String::from_utf8_lossy(&out.stderr).to_string(),
        }
    }

    /// Start it with its output captured; the test waits for it or signals it.
    pub fn spawn(self) -> Spawned {
        let (mut cmd, home) = self.command();
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("slotsmith starts");
        if let Some(input) = &self.stdin {
            let mut pipe = child.stdin.take().expect("stdin pipe");
            let _ = pipe.write_all(input);
        }
        Spawned { child, _home: home }
    }
}

/// A started run ([`Ss::spawn`]): a [`Child`], whose temporary home is removed when
/// this is dropped.
pub struct Spawned {
    child: Child,
    _home: Option<tempfile::TempDir>,
}

impl Spawned {
    /// Wait for the end; what it printed ([`Child::wait_with_output`]).
    pub fn wait_with_output(self) -> std::io::Result<std::process::Output> {
        self.child.wait_with_output()
    }
}

impl std::ops::Deref for Spawned {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.child
    }
}

impl std::ops::DerefMut for Spawned {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

/// Run `slotsmith ARGS` with no cluster flags added ([`ss_bare`]).
pub fn run(args: &[&str]) -> Output {
    ss_bare().args(args).run()
}

/// [`run`] with extra environment variables.
pub fn run_env(args: &[&str], env: &[(&str, &str)]) -> Output {
    ss_bare().args(args).envs(env.iter().copied()).run()
}

/// [`run_env`] in a working directory (`None`: the test's).
pub fn run_in(dir: Option<&Path>, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut run = ss_bare().args(args).envs(env.iter().copied());
    if let Some(d) = dir {
        run = run.dir(d);
    }
    run.run()
}

/// The port of a `host:port` address.
pub fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':')
        .expect("host:port")
        .1
        .parse()
        .expect("a port")
}

/// What an operator would compare before and after: every node's own view of owners
/// and markers, its key count, and (when given) its keys in `slot`.
pub fn fingerprint(tc: &TestCluster, slot: Option<u16>) -> Vec<String> {
    tc.ports()
        .iter()
        .map(|p| {
            let text = tc.redis_cli(*p, &["CLUSTER", "NODES"]);
            let nodes = slotsmith::cluster::topology::parse_cluster_nodes(&text)
                .expect("CLUSTER NODES parses");
            let view: Vec<String> = nodes
                .iter()
                .map(|n| {
                    format!(
                        "{} {} {:?} {:?} {:?}",
                        n.id,
                        n.role(),
                        n.slots,
                        n.migrating,
                        n.importing
                    )
                })
                .collect();
            let in_slot = slot
                .map(|s| {
                    tc.redis_cli(*p, &["CLUSTER", "COUNTKEYSINSLOT", &s.to_string()])
                        .trim()
                        .to_string()
                })
                .unwrap_or_default();
            format!(
                "{p}: {view:?} dbsize={} slot={in_slot}",
                tc.redis_cli(*p, &["DBSIZE"]).trim()
            )
        })
        .collect()
}

/// The lab's value of key number `i` (64 bytes of `value-000042:` repeated).
pub fn lab_value(i: u64) -> String {
    format!("value-{i:06}:").chars().cycle().take(64).collect()
}

/// Every key is still there: `total` over the masters, and every `step`-th of the
/// `lab_keys` keys the lab loaded read back with its value through the real
/// `redis-cli -c` (which follows redirections).
pub fn assert_lab_keys(tc: &TestCluster, total: u64, lab_keys: u64, step: usize) {
    assert_eq!(tc.total_keys(), total, "keys over the masters");
    for i in (0..lab_keys).step_by(step).chain([lab_keys - 1]) {
        let key = format!("key:{i:06}");
        let got = tc.redis_cli(tc.ports()[0], &["-c", "GET", &key]);
        assert_eq!(got.trim(), lab_value(i), "value of {key}");
    }
}

/// `redis-cli --cluster check` (with the cluster's credentials) finds nothing wrong;
/// replicas may take a moment to learn new owners by gossip.
pub fn assert_check_clean(tc: &TestCluster) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let text = tc.cluster_check();
        let clean = text.contains("[OK] All nodes agree about slots configuration.")
            && text.contains("[OK] All 16384 slots covered.")
            && !text.contains("[WARNING]")
            && !text.contains("[ERR]");
        if clean {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "redis-cli --cluster check:\n{text}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// How many slots the node on `port` holds in its own view.
pub fn slots_of(tc: &TestCluster, port: u16) -> usize {
    let nodes = parse_cluster_nodes(&tc.redis_cli(port, &["CLUSTER", "NODES"])).expect("parses");
    nodes
        .iter()
        .find(|n| n.is_myself())
        .map(|n| n.slot_count())
        .unwrap_or(0)
}

/// Start `slotsmith ARGS` ([`ss_bare`]) with its output captured.
pub fn spawn(args: &[&str]) -> Spawned {
    ss_bare().args(args).spawn()
}

/// Send a signal to a process this test started.
pub fn signal(child: &Child, sig: i32) {
    // SAFETY: sending a signal to a child process we started and still own.
    unsafe {
        libc::kill(child.id() as i32, sig);
    }
}

/// Wait until the master on `port` holds another number of slots than when called
/// (the move has begun), at most 20 s; false if it did not, or the run ended first.
pub fn wait_for_progress(tc: &TestCluster, port: u16, child: &mut Child) -> bool {
    let start = slots_of(tc, port);
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if slots_of(tc, port) != start {
            return true;
        }
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

/// `slotsmith check` exits 0 (within 10 s: gossip) and the masters hold `keys` keys.
pub fn assert_healthy(tc: &TestCluster, keys: u64) {
    // Replicas and other masters learn the last owners by gossip.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let out = ss(tc).arg("check").run();
        if out.code == 0 || Instant::now() > deadline {
            assert_eq!(out.code, 0, "{out}");
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(tc.total_keys(), keys, "keys lost or duplicated");
}

/// Acknowledged writes (key, value), and read-back mismatches.
pub type Seen = (Vec<(String, String)>, Vec<String>);

/// A cluster client (it follows MOVED and ASK) that writes `prefix:n` (every third
/// key in `hot_slot`) and reads each back, until told to stop; returns the
/// acknowledged writes and the read-back mismatches seen meanwhile.
pub fn workload(
    seed: String,
    prefix: String,
    hot_slot: u16,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Seen> {
    std::thread::spawn(move || {
        let client = redis::cluster::ClusterClient::new(vec![format!("redis://{seed}")])
            .expect("cluster client");
        let mut con = client.get_connection().expect("cluster connection");
        let tag = key_in_slot(hot_slot, "w");
        let mut acked = Vec::new();
        let mut wrong = Vec::new();
        let mut n = 0u64;
        while !stop.load(Ordering::SeqCst) || n < 200 {
            let key = if n.is_multiple_of(3) {
                format!("{{{tag}}}:{prefix}:{n}")
            } else {
                format!("{prefix}:{n}")
            };
            let value = format!("v{n}-{}", n * 7919);
            let set: redis::RedisResult<()> =
                redis::cmd("SET").arg(&key).arg(&value).query(&mut con);
            if set.is_ok() {
                let got: redis::RedisResult<Option<String>> =
                    redis::cmd("GET").arg(&key).query(&mut con);
                if got.as_ref().ok().and_then(|v| v.as_deref()) != Some(value.as_str()) {
                    wrong.push(format!("{key}: wrote {value}, read {got:?}"));
                }
                acked.push((key, value));
            }
            n += 1;
        }
        (acked, wrong)
    })
}

/// Every acknowledged write reads back with its value, through a cluster client.
pub fn verify_acked(seed: &str, acked: &[(String, String)]) {
    let client = redis::cluster::ClusterClient::new(vec![format!("redis://{seed}")]).unwrap();
    let mut con = client.get_connection().unwrap();
    for (k, v) in acked {
        let got: Option<String> = redis::cmd("GET").arg(k).query(&mut con).unwrap();
        assert_eq!(
            got.as_deref(),
            Some(v.as_str()),
            "acknowledged write of {k} lost"
        );
    }
}

/// The isolation every [`Ss`] run gets, on `scripts list` (no cluster needed): its
/// first line names the script path, user directory included.
mod isolation {
    use super::ss_bare;

    /// The user directory `scripts list` names first (with no `SLOTSMITH_PATH`).
    fn user_dir(out: &super::Output) -> String {
        let first = out.stdout.lines().next().unwrap_or_default();
        let label = "script path: ";
        first
            .get(..label.len())
            .filter(|l| l.eq_ignore_ascii_case(label))
            .and_then(|_| first[label.len()..].strip_suffix(", bundled"))
            .unwrap_or_else(|| panic!("one user directory, then bundled: {out}"))
            .to_string()
    }

    #[test]
    fn each_run_has_a_home_of_its_own_removed_after_it() {
        let out = ss_bare().args(["scripts", "list"]).run();
        assert_eq!(out.code, 0, "{out}");
        let dir = user_dir(&out);
        let home = dir
            .strip_suffix("/slotsmith/scripts")
            .unwrap_or_else(|| panic!("{dir}"));
        let tmp = std::env::temp_dir().join("slotsmith-it-home-");
        assert!(home.starts_with(tmp.to_str().unwrap()), "{home}");
        assert!(!std::path::Path::new(home).exists(), "{home} was left");
        let again = user_dir(&ss_bare().args(["scripts", "list"]).run());
        assert_ne!(again, dir, "two runs share no home");
    }

    #[test]
    fn a_shared_home_keeps_what_a_run_wrote() {
        let home = tempfile::tempdir().unwrap();
        let out = ss_bare()
            .args(["scripts", "eject", "check"])
            .home(home.path())
            .run();
        assert_eq!(out.code, 0, "{out}");
        let ejected = home.path().join("slotsmith/scripts/check.rhai");
        assert!(ejected.is_file(), "{out}");
        let list = ss_bare().args(["scripts", "list"]).home(home.path()).run();
        assert_eq!(
            user_dir(&list),
            home.path().join("slotsmith/scripts").display().to_string()
        );
        let check = |out: &super::Output| {
            out.stdout
                .lines()
                .find(|l| l.starts_with("check "))
                .unwrap_or_default()
                .to_string()
        };
        assert!(
            check(&list).contains(ejected.to_str().unwrap()),
            "the ejected check is the one that runs: {list}"
        );
        let elsewhere = ss_bare().args(["scripts", "list"]).run();
        let line = check(&elsewhere);
        assert!(
            line.contains("bundled") && !line.contains("shadows"),
            "another home has no ejected check: {elsewhere}"
        );
    }
}

/// Node `port`'s own line of its `CLUSTER NODES`.
pub fn own_line(tc: &TestCluster, port: u16) -> String {
    tc.redis_cli(port, &["CLUSTER", "NODES"])
        .lines()
        .find(|l| l.contains("myself"))
        .unwrap_or_default()
        .to_string()
}
