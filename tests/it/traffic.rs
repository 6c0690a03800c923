//! Live traffic during a rebalance and during a fix: a cluster-aware client (it
//! follows MOVED and ASK) writes its own keys and reads them back while slots move;
//! afterwards every acknowledged write is readable with its value.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use slotsmith::cluster::slot::key_in_slot;
use slotsmith::lab::Fault;

use crate::support::{run, TestCluster};

/// Acknowledged writes (key, value), and read-back mismatches.
type Seen = (Vec<(String, String)>, Vec<String>);

/// Writes `prefix:n` (and keys of `hot_slot`, which is being moved) until told to stop;
/// returns the acknowledged writes and the read-back mismatches seen meanwhile.
fn workload(
    seed: String,
    prefix: &'static str,
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

fn verify(seed: &str, acked: &[(String, String)]) {
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

#[test]
fn writes_during_a_rebalance_and_a_fix_are_all_readable_afterwards() {
    let tc = TestCluster::with(|s| {
        s.masters = 3;
        s.replicas = 1;
        s.empty = 1;
        s.keys = 20_000;
    });
    let seed = tc.seed();

    // During a rebalance: slot 0 moves to the empty master early.
    let stop = Arc::new(AtomicBool::new(false));
    let w = workload(seed.clone(), "rb", 0, stop.clone());
    let out = run(&[
        "-c",
        &seed,
        "rebalance",
        "--use-empty-masters",
        "--pipeline",
        "5",
        "-y",
    ]);
    stop.store(true, Ordering::SeqCst);
    let (acked, wrong) = w.join().unwrap();
    assert_eq!(out.code, 0, "{out}");
    assert!(
        wrong.is_empty(),
        "read-back mismatches during the rebalance: {wrong:?}"
    );
    assert!(acked.len() >= 200, "the workload made no progress");
    verify(&seed, &acked);

    // During a fix of the classic stuck slot, writing into that very slot.
    tc.lab()
        .break_fault(Fault::StuckSlot { slot: 5519 }, tc.handle())
        .expect("break");
    let stop = Arc::new(AtomicBool::new(false));
    let w = workload(seed.clone(), "fx", 5519, stop.clone());
    std::thread::sleep(std::time::Duration::from_millis(200));
    let out = run(&["-c", &seed, "fix", "-y"]);
    stop.store(true, Ordering::SeqCst);
    let (acked2, wrong) = w.join().unwrap();
    assert_eq!(out.code, 0, "{out}");
    assert!(
        wrong.is_empty(),
        "read-back mismatches during the fix: {wrong:?}"
    );
    verify(&seed, &acked);
    verify(&seed, &acked2);
    assert_eq!(run(&["-c", &seed, "check"]).code, 0);
}
