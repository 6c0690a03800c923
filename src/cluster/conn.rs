//! Connections to cluster nodes: one multiplexed async connection per address,
//! opened on first use with the cluster's credentials and TLS settings, and a
//! per-command timeout. Knows nothing of slots or topology.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{ConnectionAddr, IntoConnectionInfo, RedisConnectionInfo};

use super::{ClusterError, Reply, Result};

/// TLS settings shared by every node.
#[derive(Debug, Clone, Default)]
pub struct TlsOptions {
    pub cacert: Option<PathBuf>,
    pub cert: Option<PathBuf>,
    pub key: Option<PathBuf>,
    /// Skip certificate and hostname verification.
    pub insecure: bool,
}

/// How to reach every node of one cluster.
#[derive(Clone, Default)]
pub struct ConnOptions {
    pub user: Option<String>,
    pub password: Option<String>,
    pub tls: Option<TlsOptions>,
    /// Per-command timeout (and connect timeout).
    pub timeout: Duration,
}

impl std::fmt::Debug for ConnOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnOptions")
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field("tls", &self.tls)
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Split `host:port` (the port after the last colon).
pub fn split_addr(addr: &str) -> Result<(String, u16)> {
    let bad = || ClusterError::State(format!("bad node address \"{addr}\": expected HOST:PORT"));
    let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() || port == 0 {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

/// Which words of a command are secrets, and how many leading characters of each may
/// show: the word after `AUTH`, `REQUIREPASS` or `MASTERAUTH`, the two after `AUTH2`,
/// and the password rules (`>pw`, `<pw`, `#hash`, `!hash`) after `ACL SETUSER name`.
/// The same rules mask the journal, errors, `-v` and the REPL's history.
pub fn secret_mask<S: AsRef<str>>(words: &[S]) -> Vec<Option<usize>> {
    let up: Vec<String> = words
        .iter()
        .map(|w| w.as_ref().to_ascii_uppercase())
        .collect();
    let mut mask = vec![None; words.len()];
    let mut hide = 0;
    let mut acl_rules_from = usize::MAX;
    for (i, w) in up.iter().enumerate() {
        if hide > 0 {
            mask[i] = Some(0);
            hide -= 1;
            continue;
        }
        match w.as_str() {
            // The AUTH command: every argument (`AUTH pw`, `AUTH user pw`).
            "AUTH" if i == 0 => hide = words.len(),
            // HELLO ... AUTH user pw
            "AUTH" if up.first().is_some_and(|c| c == "HELLO") => hide = 2,
            // MIGRATE ... AUTH pw
            "AUTH" => hide = 1,
            "AUTH2" => hide = 2,
            "REQUIREPASS"
            | "MASTERAUTH"
            | "PRIMARYAUTH"
            | "TLS-KEY-FILE-PASS"
            | "TLS-CLIENT-KEY-FILE-PASS" => hide = 1,
            "SETUSER" if i > 0 && up[i - 1] == "ACL" => acl_rules_from = i + 2,
            _ => {}
        }
        if i >= acl_rules_from && words[i].as_ref().starts_with(['>', '<', '#', '!']) {
            mask[i] = Some(1);
        }
    }
    mask
}

/// A short, password-free rendering of a command for error messages.
pub fn describe(args: &[Vec<u8>]) -> String {
    let words: Vec<String> = args
        .iter()
        .map(|a| String::from_utf8_lossy(a).to_string())
        .collect();
    let mask = secret_mask(&words);
    let mut out: Vec<String> = Vec::new();
    for ((word, keep), bytes) in words.iter().zip(mask).zip(args) {
        if let Some(keep) = keep {
            out.push(format!("{}***", word.get(..keep).unwrap_or_default()));
            continue;
        }
        if out.len() >= 8 {
            out.push(format!("... ({} args)", args.len()));
            break;
        }
        // Key names can hold anything: quoted and cut as redis-cli would show them.
        out.push(super::keyname::shown(bytes));
    }
    out.join(" ")
}

/// One connection per node address, shared by every task.
#[derive(Clone)]
pub struct Pool {
    opts: Arc<ConnOptions>,
    conns: Arc<Mutex<HashMap<String, MultiplexedConnection>>>,
    /// The caller's stop check: a wait past its grace is abandoned.
    stop: super::Stop,
}

impl Pool {
    pub fn new(opts: ConnOptions, stop: super::Stop) -> Self {
        Pool {
            opts: Arc::new(opts),
            conns: Arc::new(Mutex::new(HashMap::new())),
            stop,
        }
    }

    pub fn options(&self) -> &ConnOptions {
        &self.opts
    }

    fn client(&self, addr: &str) -> Result<redis::Client> {
        let (host, port) = split_addr(addr)?;
        let connect_err = |e: redis::RedisError| ClusterError::Connect {
            addr: addr.to_string(),
            reason: e.to_string(),
        };
        let mut redis_info = RedisConnectionInfo::default().set_skip_set_lib_name();
        if let Some(user) = &self.opts.user {
            redis_info = redis_info.set_username(user);
        }
        if let Some(pw) = &self.opts.password {
            redis_info = redis_info.set_password(pw);
        }
        match &self.opts.tls {
            None => {
                let info = ConnectionAddr::Tcp(host, port)
                    .into_connection_info()
                    .map_err(connect_err)?
                    .set_redis_settings(redis_info);
                redis::Client::open(info).map_err(connect_err)
            }
            Some(tls) => {
                // rustls picks no crypto provider on its own; one per process (a second
                // install, or one by someone else, is refused and harmless).
                let _ = rustls::crypto::ring::default_provider().install_default();
                // Bad TLS files stop every connection: connection errors (exit 2).
                let bad = |reason: String| ClusterError::Connect {
                    addr: addr.to_string(),
                    reason,
                };
                let read = |p: &Option<PathBuf>, what: &str| -> Result<Option<Vec<u8>>> {
                    match p {
                        None => Ok(None),
                        Some(p) => std::fs::read(p)
                            .map(Some)
                            .map_err(|e| bad(format!("cannot read {what} {} ({e})", p.display()))),
                    }
                };
                let root_cert = read(&tls.cacert, "--cacert")?;
                let client_tls = match (read(&tls.cert, "--cert")?, read(&tls.key, "--key")?) {
                    (Some(client_cert), Some(client_key)) => Some(redis::ClientTlsConfig {
                        client_cert,
                        client_key,
                    }),
                    (None, None) => None,
                    _ => return Err(bad("--cert and --key must be given together".into())),
                };
                let info = ConnectionAddr::TcpTls {
                    host,
                    port,
                    insecure: tls.insecure,
                    tls_params: None,
                }
                .into_connection_info()
                .map_err(connect_err)?
                .set_redis_settings(redis_info);
                redis::Client::build_with_tls(
                    info,
                    redis::TlsCertificates {
                        client_tls,
                        root_cert,
                    },
                )
                .map_err(connect_err)
            }
        }
    }

    /// The connection to `addr`, opened (and authenticated) on first use.
    pub async fn conn(&self, addr: &str) -> Result<MultiplexedConnection> {
        if let Some(c) = self.lock().get(addr) {
            return Ok(c.clone());
        }
        let client = self.client(addr)?;
        let cfg = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.opts.timeout))
            .set_response_timeout(None);
        let connect_err = |reason: String| ClusterError::Connect {
            addr: addr.to_string(),
            reason,
        };
        // A plain-text node never answers a TLS handshake: say what may be wrong.
        let tls_hint = match self.opts.tls {
            Some(_) => "; does the node serve TLS on this port? (if not, drop --tls)",
            None => "",
        };
        let no_answer = || {
            format!(
                "no answer within {} ms{tls_hint}",
                self.opts.timeout.as_millis()
            )
        };
        let mut conn = match tokio::time::timeout(
            self.opts.timeout + Duration::from_millis(100),
            client.get_multiplexed_async_connection_with_config(&cfg),
        )
        .await
        {
            Ok(Ok(c)) => c,
            Ok(Err(e)) if e.is_timeout() => {
                return Err(connect_err(format!("{}{tls_hint}", connect_reason(&e))))
            }
            Ok(Err(e)) => return Err(connect_err(connect_reason(&e))),
            Err(_) => return Err(connect_err(no_answer())),
        };
        // One PING before the connection is shared: a node that drops us after the
        // handshake (TLS client certificate refused, plain text to a TLS port) or wants a
        // password we did not give says so here, as a connection error naming it.
        let ping = redis::cmd("PING");
        match tokio::time::timeout(
            self.opts.timeout,
            ping.query_async::<redis::Value>(&mut conn),
        )
        .await
        {
            Err(_) => return Err(connect_err(no_answer())),
            Ok(Err(e)) if e.is_io_error() || e.is_connection_dropped() => {
                return Err(connect_err(self.dropped_reason(&e)))
            }
            Ok(Err(e)) if server_text(&e).starts_with("NOAUTH") => {
                return Err(connect_err(NOAUTH.into()))
            }
            Ok(Ok(redis::Value::ServerError(e))) if e.code() == "NOAUTH" => {
                return Err(connect_err(NOAUTH.into()))
            }
            // Any other answer (even LOADING) means we are talking to the node.
            _ => {}
        }
        self.lock().insert(addr.to_string(), conn.clone());
        Ok(conn)
    }

    /// Why a node closed a fresh connection, with what the options suggest.
    fn dropped_reason(&self, e: &redis::RedisError) -> String {
        let hint = match &self.opts.tls {
            Some(t) if t.cert.is_none() => {
                "; it may require a TLS client certificate (--cert and --key)"
            }
            Some(_) => "; it may not accept the client certificate given with --cert",
            None => "; if it serves TLS only, add --tls and --cacert",
        };
        format!("the node closed the connection ({e}){hint}")
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, MultiplexedConnection>> {
        // A poisoned map only means another thread panicked mid-insert; the map is still usable.
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The addresses with an open connection.
    pub fn connected(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Forget a connection (after it broke), so the next command reconnects.
    pub fn drop_conn(&self, addr: &str) {
        self.lock().remove(addr);
    }

    /// Send one command with the default timeout.
    pub async fn cmd(&self, addr: &str, args: &[Vec<u8>]) -> Result<Reply> {
        self.cmd_timeout(addr, args, self.opts.timeout).await
    }

    /// Send one command, waiting at most `timeout` for its reply.
    pub async fn cmd_timeout(
        &self,
        addr: &str,
        args: &[Vec<u8>],
        timeout: Duration,
    ) -> Result<Reply> {
        let mut conn = self
            .abandonable(addr, || describe(args), self.conn(addr))
            .await??;
        let mut cmd = redis::Cmd::new();
        for a in args {
            cmd.arg(a.as_slice());
        }
        let sent = std::time::Instant::now();
        let reply = self
            .abandonable(
                addr,
                || describe(args),
                tokio::time::timeout(timeout, cmd.query_async::<redis::Value>(&mut conn)),
            )
            .await?;
        if crate::progress::verbose() {
            crate::progress::detail(&format!(
                "  {addr} {} ({:.1} ms)",
                describe(args),
                sent.elapsed().as_secs_f64() * 1000.0
            ));
        }
        match reply {
            Err(_) => Err(ClusterError::Timeout {
                addr: addr.to_string(),
                command: describe(args),
                ms: timeout.as_millis() as u64,
            }),
            Ok(Err(e)) => Err(self.command_error(addr, args, e)),
            Ok(Ok(v)) => reply_of(v).map_err(|reason| refused(addr, args, reason)),
        }
    }

    /// Send several commands to one node in one round trip; each gets its own result.
    pub async fn pipeline(
        &self,
        addr: &str,
        cmds: &[Vec<Vec<u8>>],
        timeout: Duration,
    ) -> Result<Vec<Result<Reply>>> {
        if cmds.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self
            .abandonable(addr, || describe(&cmds[0]), self.conn(addr))
            .await??;
        let mut pipe = redis::pipe();
        for args in cmds {
            let c = pipe.cmd(&String::from_utf8_lossy(&args[0]));
            for a in &args[1..] {
                c.arg(a.as_slice());
            }
        }
        let first = describe(&cmds[0]);
        let sent = std::time::Instant::now();
        let reply = self
            .abandonable(
                addr,
                || format!("pipeline of {} ({first} ...)", cmds.len()),
                tokio::time::timeout(
                    timeout,
                    pipe.ignore_errors()
                        .query_async::<Vec<redis::Value>>(&mut conn),
                ),
            )
            .await?;
        let replies: Vec<redis::Value> = match reply {
            Err(_) => {
                return Err(ClusterError::Timeout {
                    addr: addr.to_string(),
                    command: format!("pipeline of {} ({first} ...)", cmds.len()),
                    ms: timeout.as_millis() as u64,
                })
            }
            Ok(Err(e)) => return Err(self.command_error(addr, &cmds[0], e)),
            Ok(Ok(v)) => v,
        };
        if crate::progress::verbose() {
            crate::progress::detail(&format!(
                "  {addr} {} command(s) pipelined: {first}{} ({:.1} ms)",
                cmds.len(),
                if cmds.len() > 1 { " ..." } else { "" },
                sent.elapsed().as_secs_f64() * 1000.0
            ));
        }
        Ok(replies
            .into_iter()
            .zip(cmds)
            .map(|(v, args)| reply_of(v).map_err(|reason| refused(addr, args, reason)))
            .collect())
    }

    /// Wait for `fut` (connecting, or a reply), unless an interruption was asked for
    /// and its grace period ran out (see [`super::Stop::overdue`]): then the command is
    /// abandoned, and its connection dropped so that nothing else queues behind it.
    async fn abandonable<T>(
        &self,
        addr: &str,
        command: impl FnOnce() -> String,
        fut: impl std::future::Future<Output = T>,
    ) -> Result<T> {
        let since = std::time::Instant::now();
        tokio::select! {
            r = fut => Ok(r),
            _ = self.stop.abandoned(since) => {
                self.drop_conn(addr);
                Err(ClusterError::Abandoned {
                    addr: addr.to_string(),
                    command: command(),
                    secs: self.stop.grace().as_secs(),
                })
            }
        }
    }

    fn command_error(&self, addr: &str, args: &[Vec<u8>], e: redis::RedisError) -> ClusterError {
        if e.is_io_error() || e.is_connection_dropped() || e.is_unrecoverable_error() {
            self.drop_conn(addr);
            return ClusterError::Io {
                addr: addr.to_string(),
                command: describe(args),
                reason: e.to_string(),
            };
        }
        refused(addr, args, server_text(&e))
    }
}

const NOAUTH: &str =
    "authentication required: the node asks for a password (see --user, -a, REDISCLI_AUTH)";

/// A node's error reply to a command. `NOAUTH` means we never authenticated (no
/// password was given): the node cannot be talked to at all, like a wrong password.
fn refused(addr: &str, args: &[Vec<u8>], reason: String) -> ClusterError {
    if reason.starts_with("NOAUTH") {
        return ClusterError::Connect {
            addr: addr.to_string(),
            reason: NOAUTH.into(),
        };
    }
    ClusterError::Command {
        addr: addr.to_string(),
        command: describe(args),
        reason,
    }
}

/// The reply text of a server error as Redis printed it (`BUSYKEY Target key name already exists.`).
fn server_text(e: &redis::RedisError) -> String {
    match (e.code(), e.detail()) {
        (Some(code), Some(detail)) => format!("{code} {detail}"),
        (Some(code), None) => code.to_string(),
        _ => e.to_string(),
    }
}

fn connect_reason(e: &redis::RedisError) -> String {
    let text = server_text(e);
    if e.kind() == redis::ErrorKind::AuthenticationFailed
        || text.contains("WRONGPASS")
        || text.contains("NOAUTH")
    {
        "authentication failed: wrong password or user (see --user, -a, REDISCLI_AUTH)".into()
    } else if text.contains("invalid peer certificate") {
        let why = e.to_string();
        if why.contains("NotValidForName") {
            format!("the node's TLS certificate is not valid for this address ({why}); connect by a name or IP the certificate holds, or skip verification with --insecure")
        } else {
            format!("the node's TLS certificate is not trusted ({why}); give the CA that signed it with --cacert, or skip verification with --insecure")
        }
    } else if text.contains("corrupt message") || text.contains("InvalidContentType") {
        format!("TLS handshake failed ({e}); the node may not serve TLS on this port (drop --tls)")
    } else if e.is_connection_refusal() {
        "connection refused".into()
    } else if e.is_timeout() {
        "connection timed out".into()
    } else {
        e.to_string()
    }
}

/// Convert a client reply, turning an embedded server error into `Err(text)`.
fn reply_of(v: redis::Value) -> std::result::Result<Reply, String> {
    use redis::Value as V;
    Ok(match v {
        V::Nil => Reply::Nil,
        V::Int(i) => Reply::Int(i),
        V::BulkString(b) => Reply::Bulk(b),
        V::SimpleString(s) => Reply::Status(s),
        V::Okay => Reply::Status("OK".into()),
        V::Double(d) => Reply::Double(d),
        V::Boolean(b) => Reply::Int(b as i64),
        V::Array(items) | V::Set(items) => Reply::Array(
            items
                .into_iter()
                .map(reply_of)
                .collect::<std::result::Result<_, _>>()?,
        ),
        V::Map(pairs) => Reply::Map(
            pairs
                .into_iter()
                .map(|(k, v)| Ok((reply_of(k)?, reply_of(v)?)))
                .collect::<std::result::Result<_, String>>()?,
        ),
        V::ServerError(e) => {
            let e: redis::RedisError = e.into();
            return Err(server_text(&e));
        }
        other => Reply::Bulk(format!("{other:?}").into_bytes()),
    })
}

/// Build a command's argument list from words.
pub fn args<I, S>(words: I) -> Vec<Vec<u8>>
where
    I: IntoIterator<Item = S>,
    S: AsRef<[u8]>,
{
    words.into_iter().map(|w| w.as_ref().to_vec()).collect()
}

/// Commands that only read.
const READS: &[&str] = &[
    "PING", "INFO", "DBSIZE", "GET", "MGET", "EXISTS", "TYPE", "TTL", "PTTL", "DUMP", "STRLEN",
    "HGETALL", "HGET", "LRANGE", "LLEN", "SMEMBERS", "SCARD", "ZRANGE", "ZCARD", "SCAN", "KEYS",
    "OBJECT", "TIME", "ROLE", "ECHO", "LASTSAVE",
];
/// Commands that read with some subcommands only (`SLOWLOG RESET`, `LATENCY RESET` and
/// `MEMORY PURGE` change the node): the subcommands that read.
const READ_SUBCOMMANDS: &[(&str, &[&str])] = &[
    (
        "MEMORY",
        &["USAGE", "STATS", "DOCTOR", "MALLOC-STATS", "HELP"],
    ),
    ("SLOWLOG", &["GET", "LEN", "HELP"]),
    (
        "LATENCY",
        &["LATEST", "HISTORY", "DOCTOR", "GRAPH", "HISTOGRAM", "HELP"],
    ),
    ("CLIENT", &["LIST", "INFO", "GETNAME", "ID"]),
    ("CONFIG", &["GET"]),
];
const CLUSTER_READS: &[&str] = &[
    "INFO",
    "NODES",
    "MYID",
    "KEYSLOT",
    "COUNTKEYSINSLOT",
    "GETKEYSINSLOT",
    "GETSLOTMIGRATIONS",
    "SLOTS",
    "SHARDS",
    "REPLICAS",
    "SLAVES",
    "LINKS",
    "COUNT-FAILURE-REPORTS",
    "MYSHARDID",
];

/// Whether a raw command changes which node serves a slot (so a run sending it
/// takes the lease first, see `lease`).
pub fn changes_slots(args: &[Vec<u8>]) -> bool {
    let word = |i: usize| {
        args.get(i)
            .map(|a| String::from_utf8_lossy(a).to_ascii_uppercase())
            .unwrap_or_default()
    };
    match word(0).as_str() {
        "MIGRATE" => true,
        "CLUSTER" => [
            "SETSLOT",
            "ADDSLOTS",
            "ADDSLOTSRANGE",
            "DELSLOTS",
            "DELSLOTSRANGE",
            "BUMPEPOCH",
            "MIGRATESLOTS",
            "CANCELSLOTMIGRATIONS",
            "FAILOVER",
            "FORGET",
            "RESET",
            "MEET",
        ]
        .contains(&word(1).as_str()),
        _ => false,
    }
}

/// Whether a raw command only reads (so a dry run may pass it to the live cluster and
/// the journal need not record it).
pub fn is_read(args: &[Vec<u8>]) -> bool {
    let word = |i: usize| {
        args.get(i)
            .map(|a| String::from_utf8_lossy(a).to_ascii_uppercase())
            .unwrap_or_default()
    };
    let first = word(0);
    READS.contains(&first.as_str())
        || (first == "CLUSTER" && CLUSTER_READS.contains(&word(1).as_str()))
        || READ_SUBCOMMANDS
            .iter()
            .any(|(c, subs)| first == *c && subs.contains(&word(1).as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_commands_that_read_are_reads() {
        for c in [
            args(["MEMORY", "USAGE", "k"]),
            args(["slowlog", "get", "10"]),
            args(["LATENCY", "LATEST"]),
            args(["CONFIG", "GET", "maxmemory"]),
            args(["CLUSTER", "NODES"]),
        ] {
            assert!(is_read(&c), "{c:?}");
        }
        for c in [
            args(["SLOWLOG", "RESET"]),
            args(["LATENCY", "RESET"]),
            args(["MEMORY", "PURGE"]),
            args(["CONFIG", "SET", "maxmemory", "0"]),
            args(["CLIENT", "KILL", "ID", "1"]),
            args(["SET", "k", "v"]),
        ] {
            assert!(!is_read(&c), "{c:?}");
        }
    }

    #[test]
    fn described_commands_never_show_secrets() {
        let d = describe(&args([
            "MIGRATE", "h", "1", "", "0", "5000", "AUTH2", "u", "pw", "KEYS", "k",
        ]));
        assert_eq!(d, "MIGRATE h 1 \"\" 0 5000 AUTH2 *** *** ... (11 args)");
        assert!(!describe(&args(["CONFIG", "SET", "requirepass", "s3cret"])).contains("s3cret"));
        assert!(!describe(&args(["CONFIG", "SET", "masterauth", "s3cret"])).contains("s3cret"));
        let d = describe(&args(["ACL", "SETUSER", "ops", "on", ">s3cret", "~*"]));
        assert!(!d.contains("s3cret") && d.contains(">***"), "{d}");
        for c in [
            args(["AUTH", "ops", "s3cret"]),
            args(["AUTH", "s3cret"]),
            args(["HELLO", "3", "AUTH", "ops", "s3cret"]),
            args(["CONFIG", "SET", "primaryauth", "s3cret"]),
            args(["CONFIG", "SET", "tls-key-file-pass", "s3cret"]),
        ] {
            let d = describe(&c);
            assert!(!d.contains("s3cret"), "{d}");
        }
    }
}
