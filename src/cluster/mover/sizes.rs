//! Big keys: how a move sizes its `MIGRATE`s by bytes as well as keys, gives a big key
//! a timeout that grows with its size, and refuses a key over the operator's limit
//! before any key of its slot moves. One definition for the bulk mover's batches, the
//! careful one-slot mover and the in-memory cluster.
//!
//! Sizes come from `MEMORY USAGE ... SAMPLES 0` (the server's own count, every element
//! of a collection weighed). They are asked only of a source whose whole dataset could hold a
//! key that matters (`INFO memory` `used_memory_dataset` over [`BATCH_BYTES`] or the
//! limit): on a node holding less than that, no key and no batch can be big.

use super::MoveOpts;
use crate::cluster::keyname::shown;
use crate::cluster::Key;

/// The most bytes one round of `MIGRATE`s carries (one key bigger than this goes alone).
pub const BATCH_BYTES: u64 = 16 << 20;

/// The transfer rate a `MIGRATE` timeout is grown by: 10 MB/s (serialising on the
/// source, the wire, and `RESTORE` on the target, which blocks it), far below what a
/// loopback or a LAN does, so that a slow target still finishes in time.
pub const BYTES_PER_MS: u64 = 10_000;

/// The keys listed per slot when sizes matter: every key of the slot, so that a key
/// over the limit is found before the first of its slot moves.
pub const EVERY_KEY: u64 = 1 << 31;

/// Slots per batch when sizes matter: each slot's keys are all listed at once.
pub const SIZED_BATCH: usize = 64;

/// The default limit on one key's size, in MB (`--max-key-size`).
pub const MAX_KEY_MB: u64 = 512;

/// The default upper bound of a grown `MIGRATE` timeout, in ms (`--migrate-timeout-max`).
pub const TIMEOUT_MAX_MS: u64 = 120_000;

const MB: u64 = 1 << 20;

/// Whether the keys of a source holding `dataset` bytes (`None`: not known) must be
/// sized before they move.
pub fn matter(dataset: Option<u64>, opts: &MoveOpts) -> bool {
    dataset.is_some_and(|d| d > BATCH_BYTES.min(opts.max_key_bytes))
}

/// Slots per batch: `batch`, fewer when sizes matter.
pub fn batch(batch: usize, sized: bool) -> usize {
    if sized {
        batch.min(SIZED_BATCH)
    } else {
        batch
    }
}

/// Keys listed per slot and round.
pub fn listed(pipeline: u64, sized: bool, first_round: bool) -> u64 {
    if sized && first_round {
        EVERY_KEY
    } else {
        pipeline.max(1)
    }
}

/// The `MIGRATE` timeout for `bytes` in one command or round: the operator's base,
/// grown by [`BYTES_PER_MS`], never past the operator's bound (nor below the base).
pub fn timeout_ms(opts: &MoveOpts, bytes: u64) -> u64 {
    let base = opts.migrate.timeout_ms;
    (base + bytes / BYTES_PER_MS).min(opts.timeout_max_ms.max(base))
}

/// How many of `sizes` (bytes per key, in order) the next `MIGRATE` takes: at most
/// `count` keys and [`BATCH_BYTES`] less the `spent` bytes of the round so far; a key
/// bigger than that goes alone, first in a round. Zero when the round is full.
pub fn take(sizes: &[u64], count: u64, spent: u64) -> usize {
    let mut bytes = spent;
    let mut n = 0;
    for &s in sizes.iter().take(count.max(1) as usize) {
        if bytes + s > BATCH_BYTES && (n > 0 || spent > 0) {
            break;
        }
        bytes += s;
        n += 1;
    }
    n
}

/// A key of `keys` over the limit, with its size.
pub fn over_limit<'a>(keys: &'a [Key], sizes: &[u64], opts: &MoveOpts) -> Option<(&'a Key, u64)> {
    keys.iter()
        .zip(sizes)
        .find(|(_, &s)| s > opts.max_key_bytes)
        .map(|(k, &s)| (k, s))
}

/// Bytes for the operator: `100.0 MB`.
pub fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / MB as f64)
}

/// Why a slot with a key over the limit was not moved.
pub fn why_too_big(key: &Key, bytes: u64, opts: &MoveOpts) -> String {
    format!(
        "its key {} holds {} (MEMORY USAGE), over --max-key-size {} MB",
        shown(key),
        mb(bytes),
        opts.max_key_bytes / MB
    )
}

/// What became of a slot left alone for a big key before any of its keys moved.
pub fn stays(why: &str, src: &str) -> String {
    format!("{why}: nothing of the slot moved, it stays with {src}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_takes_keys_up_to_the_count_and_the_bytes_and_a_big_key_alone() {
        let small = [100u64; 300];
        assert_eq!(take(&small, 100, 0), 100);
        // A round already full takes nothing more; a round with room takes what fits.
        assert_eq!(take(&small, 100, BATCH_BYTES), 0);
        assert_eq!(take(&small, 100, BATCH_BYTES - 250), 2);
        // A key bigger than a round: alone, and only first in a round.
        let big = [100 * MB, 100];
        assert_eq!(take(&big, 100, 0), 1);
        assert_eq!(take(&big, 100, 100), 0);
        assert_eq!(take(&big[1..], 100, 100 * MB), 0);
        // Unknown sizes (0) take the count.
        assert_eq!(take(&[0; 10], 4, 0), 4);
    }

    #[test]
    fn the_timeout_grows_with_bytes_up_to_the_bound() {
        let mut o = MoveOpts::new(crate::cluster::Stop::never());
        o.migrate.timeout_ms = 5000;
        o.timeout_max_ms = 60_000;
        assert_eq!(timeout_ms(&o, 0), 5000);
        assert_eq!(timeout_ms(&o, 100 * 1_000_000), 15_000);
        assert_eq!(timeout_ms(&o, 10_000 * 1_000_000), 60_000);
        // A bound below the base keeps the base.
        o.timeout_max_ms = 1000;
        assert_eq!(timeout_ms(&o, 100 * 1_000_000), 5000);
    }

    #[test]
    fn sizes_matter_only_on_a_node_that_could_hold_a_big_key() {
        let mut o = MoveOpts::new(crate::cluster::Stop::never());
        assert!(!matter(None, &o));
        assert!(!matter(Some(10 * MB), &o));
        assert!(matter(Some(17 * MB), &o));
        o.max_key_bytes = MB;
        assert!(matter(Some(2 * MB), &o));
    }
}
