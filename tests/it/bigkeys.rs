//! Big keys: a slot holding a 100 MB string and a hash of 1,000,000 fields moves with
//! `reshard` and with `fix` (MIGRATE sized by bytes, its timeout grown), values intact;
//! with `--max-key-size 50` the slot is skipped and named, nothing of it moved; a
//! MIGRATE that times out is retried down to one key, which is named, and `fix`
//! settles what it left.

use redis::Commands;

use crate::support::{assert_check_clean, run, Server, TestCluster};

/// A hash tag whose keys hash to slot 0 (the first slot of the first master).
const STR: &str = "{afps}str";
const HASH: &str = "{afps}hash";
const SMALL: &str = "{afps}small";
const FIELDS: usize = 1_000_000;

fn addr(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

fn conn(port: u16) -> redis::Connection {
    redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_connection()
        .unwrap()
}

/// 100 MiB that do not compress (a DUMP payload as big as the value).
fn noise() -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut out = Vec::with_capacity(100 << 20);
    while out.len() < 100 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out
}

/// The string's DUMP payload, and the hash's field count and a digest of its fields
/// and values that does not depend on their order, on `port`. A hash this big is
/// stored as a hash table, whose DUMP lists the fields in table order: a copy
/// restored elsewhere may list them in another order, so the hash is compared by its
/// fields and values (read with `redis-cli`, which is quicker than parsing 2,000,000
/// replies here).
fn values(tc: &TestCluster, port: u16) -> (Vec<u8>, usize, u64) {
    let mut c = conn(port);
    let dump: Vec<u8> = redis::cmd("DUMP").arg(STR).query(&mut c).unwrap();
    let text = tc.redis_cli(port, &["HGETALL", HASH]);
    let lines: Vec<&str> = text.lines().collect();
    let digest = lines.chunks(2).fold(0u64, |sum, pair| {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in pair.join("\0").bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        sum.wrapping_add(h)
    });
    (dump, lines.len() / 2, digest)
}

fn keys_in_slot0(tc: &TestCluster, port: u16) -> u64 {
    tc.redis_cli(port, &["CLUSTER", "COUNTKEYSINSLOT", "0"])
        .trim()
        .parse()
        .unwrap()
}

on_both_servers!(a_slot_of_big_keys_moves_whole_and_a_limit_skips_it);
fn a_slot_of_big_keys_moves_whole_and_a_limit_skips_it(server: Server) {
    let tc = TestCluster::start(server, 1000);
    let seed = tc.seed();
    let ports = tc.ports();
    let (m0, m1) = (ports[0], ports[1]);
    assert_eq!(tc.redis_cli(m0, &["CLUSTER", "KEYSLOT", STR]).trim(), "0");

    let mut c = conn(m0);
    let _: () = c.set(STR, noise()).unwrap();
    let _: () = c.set(SMALL, "small").unwrap();
    let mut pipe = redis::pipe();
    for chunk in (0..FIELDS).collect::<Vec<_>>().chunks(1000) {
        let items: Vec<(String, String)> = chunk
            .iter()
            .map(|n| (format!("field:{n}"), format!("value:{n}:abcdefghij")))
            .collect();
        pipe.hset_multiple(HASH, &items).ignore();
    }
    let _: () = pipe.query(&mut c).unwrap();
    let before = values(&tc, m0);
    assert_eq!(before.1, FIELDS);
    let in_slot = keys_in_slot0(&tc, m0);
    let total = tc.total_keys();
    // Legacy on both servers: the limit is MIGRATE's (an atomic move streams big keys).
    let reshard = |extra: &[&str]| {
        let (from, to) = (addr(m0), addr(m1));
        let mut args = vec!["-c", &seed, "-y", "reshard", "--from", &from, "--to", &to];
        args.extend(["--slots", "1", "--migration", "legacy"]);
        args.extend(extra);
        run(&args)
    };

    // Over the limit: skipped and named, nothing of the slot moved, no marker left.
    let out = reshard(&["--max-key-size", "50"]);
    assert_eq!(out.code, 1, "{out}");
    assert!(
        out.stdout.contains("slot 0 left alone: its key {afps}"),
        "{out}"
    );
    assert!(out.stdout.contains("over --max-key-size 50 MB"), "{out}");
    assert!(out.stdout.contains("nothing of the slot moved"), "{out}");
    assert_eq!(keys_in_slot0(&tc, m0), in_slot);
    assert_eq!(keys_in_slot0(&tc, m1), 0);
    assert_check_clean(&tc);

    // Under the default limit the slot moves whole, without a timeout error.
    let out = reshard(&[]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        !out.stdout.contains("IOERR") && !out.stderr.contains("IOERR"),
        "{out}"
    );
    assert_eq!(keys_in_slot0(&tc, m1), in_slot);
    assert!(
        values(&tc, m1) == before,
        "the values changed on the way to {m1}"
    );
    assert_check_clean(&tc);
    assert_eq!(tc.total_keys(), total);

    // Left open by an interrupted migration back to m0 (its small key already there):
    // `fix` finishes it.
    let id = |p: u16| tc.redis_cli(p, &["CLUSTER", "MYID"]).trim().to_string();
    tc.redis_cli(m0, &["CLUSTER", "SETSLOT", "0", "IMPORTING", &id(m1)]);
    tc.redis_cli(m1, &["CLUSTER", "SETSLOT", "0", "MIGRATING", &id(m0)]);
    let port = m0.to_string();
    let moved = tc.redis_cli(
        m1,
        &[
            "MIGRATE",
            "127.0.0.1",
            &port,
            "",
            "0",
            "5000",
            "KEYS",
            SMALL,
        ],
    );
    assert_eq!(moved.trim(), "OK");
    let out = run(&["-c", &seed, "-y", "fix"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(out.stdout.contains("slot 0 owned by"), "{out}");
    assert_eq!(keys_in_slot0(&tc, m0), in_slot);
    assert!(
        values(&tc, m0) == before,
        "the values changed on the way back to {m0}"
    );
    assert_check_clean(&tc);
    assert_eq!(tc.total_keys(), total);

    // A MIGRATE that times out (1 ms at most): retried smaller down to one key, which
    // is named; the slot stops there, and `fix` settles it with every value intact.
    let out = run(&[
        "-c",
        &seed,
        "-y",
        "reshard",
        "--from",
        &addr(m0),
        "--to",
        &addr(m1),
        "--slots",
        "1",
        "--migration",
        "legacy",
        "--migrate-timeout",
        "1",
        "--migrate-timeout-max",
        "1",
    ]);
    assert_eq!(out.code, 1, "{out}");
    let named = format!("could not be moved from {} to {}", addr(m0), addr(m1));
    assert!(out.stderr.contains(&named), "{out}");
    assert!(out.stderr.contains("slot 0: key {afps}"), "{out}");
    let out = run(&["-c", &seed, "-y", "fix"]);
    assert_eq!(out.code, 0, "{out}");
    assert_check_clean(&tc);
    assert_eq!(tc.total_keys(), total);
    let (owner, other) = if keys_in_slot0(&tc, m0) > 0 {
        (m0, m1)
    } else {
        (m1, m0)
    };
    assert_eq!(keys_in_slot0(&tc, owner), in_slot);
    assert!(
        values(&tc, owner) == before,
        "the values changed on {owner}"
    );

    // An interruption with nothing moved yet, and `fix --max-key-size 50`: the slot is
    // named and closed where its keys are, nothing moved; no slot is left open, so fix
    // ends well.
    tc.redis_cli(other, &["CLUSTER", "SETSLOT", "0", "IMPORTING", &id(owner)]);
    tc.redis_cli(owner, &["CLUSTER", "SETSLOT", "0", "MIGRATING", &id(other)]);
    let out = run(&["-c", &seed, "-y", "fix", "--max-key-size", "50"]);
    assert_eq!(out.code, 0, "{out}");
    assert!(
        out.stdout.contains("[SKIPPED] slot 0: its key {afps}"),
        "{out}"
    );
    assert!(out.stdout.contains("The cluster is healthy"), "{out}");
    assert!(out.stdout.contains("over --max-key-size 50 MB"), "{out}");
    assert_eq!(keys_in_slot0(&tc, owner), in_slot);
    assert_eq!(keys_in_slot0(&tc, other), 0);
    assert_check_clean(&tc);
    assert!(values(&tc, owner) == before);
}
