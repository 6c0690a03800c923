//! Per-slot load: how many keys each slot of a node holds and, when asked, about how
//! many bytes. Keys come from `CLUSTER SLOT-STATS` where the server has it (Valkey 8+,
//! Redis 8.2+), else from `CLUSTER COUNTKEYSINSLOT`, pipelined. Bytes are estimated:
//! `MEMORY USAGE` of up to `sample` keys of the slot (from `GETKEYSINSLOT`), their mean
//! times the slot's keys (exact when the slot holds no more keys than the sample).

use super::conn::args;
use super::nodes::{protocol, Nodes};
use super::{commands, Key, Reply, Result};

/// One slot's load.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SlotLoad {
    pub slot: u16,
    pub keys: u64,
    /// Estimated bytes; `None` when not measured.
    pub bytes: Option<u64>,
}

/// One node's slots with keys, and how they were measured.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Loads {
    pub slots: Vec<SlotLoad>,
    /// `"slot-stats"` or `"countkeysinslot"`.
    pub keys_from: String,
    /// Keys sampled per slot for the bytes (0: bytes not measured).
    pub sample: u64,
}

/// The bytes of a slot of `keys` keys whose `sampled` keys weigh `sum`: the sum when
/// every key was sampled, else their mean times the keys.
pub fn estimate(sum: u64, sampled: u64, keys: u64) -> u64 {
    if sampled == 0 {
        0
    } else if keys <= sampled {
        sum
    } else {
        (sum as f64 / sampled as f64 * keys as f64).round() as u64
    }
}

/// Commands per pipeline.
const CHUNK: usize = 4096;

/// The key counts of `CLUSTER SLOT-STATS SLOTSRANGE a b`: pairs (slot, keys) from
/// `[[slot, [name, value, ...]], ...]`.
fn parse_slot_stats(reply: Reply) -> Option<Vec<(u16, u64)>> {
    let Reply::Array(rows) = reply else {
        return None;
    };
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let Reply::Array(mut pair) = row else {
            return None;
        };
        if pair.len() != 2 {
            return None;
        }
        let stats = pair.pop()?;
        let Reply::Int(slot) = pair.pop()? else {
            return None;
        };
        let fields: Vec<Reply> = match stats {
            Reply::Array(f) => f,
            Reply::Map(m) => m.into_iter().flat_map(|(k, v)| [k, v]).collect(),
            _ => return None,
        };
        let keys = fields.chunks(2).find_map(|kv| match kv {
            [Reply::Bulk(name), Reply::Int(n)] if name.eq_ignore_ascii_case(b"key-count") => {
                Some(*n)
            }
            [Reply::Status(name), Reply::Int(n)] if name.eq_ignore_ascii_case("key-count") => {
                Some(*n)
            }
            _ => None,
        })?;
        out.push((u16::try_from(slot).ok()?, u64::try_from(keys).ok()?));
    }
    Some(out)
}

/// The contiguous runs of `slots` (sorted), as (first, last).
fn runs(slots: &[u16]) -> Vec<(u16, u16)> {
    let mut out: Vec<(u16, u16)> = Vec::new();
    for &s in slots {
        match out.last_mut() {
            Some((_, b)) if *b + 1 == s => *b = s,
            _ => out.push((s, s)),
        }
    }
    out
}

impl Nodes {
    /// Keys per slot of `slots` on `addr` (slots without keys left out): `SLOT-STATS`
    /// when the server has it, else `COUNTKEYSINSLOT`; and which was used.
    async fn slot_keys(
        &self,
        addr: &str,
        slots: &[u16],
    ) -> Result<(Vec<(u16, u64)>, &'static str)> {
        let mut sorted = slots.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let asks: Vec<Vec<Vec<u8>>> = runs(&sorted)
            .into_iter()
            .map(|(a, b)| {
                args([
                    "CLUSTER".to_string(),
                    "SLOT-STATS".into(),
                    "SLOTSRANGE".into(),
                    a.to_string(),
                    b.to_string(),
                ])
            })
            .collect();
        let timeout = self.pool().options().timeout * 4;
        if let Some(first) = asks.first() {
            // A server without it answers the first with an error: count instead.
            if let Ok(Some(mut out)) = self.pool().cmd(addr, first).await.map(parse_slot_stats) {
                for chunk in asks[1..].chunks(CHUNK) {
                    for r in self.pool().pipeline(addr, chunk, timeout).await? {
                        let rows = parse_slot_stats(r?).ok_or_else(|| {
                            protocol(addr, "CLUSTER SLOT-STATS", "unexpected reply")
                        })?;
                        out.extend(rows);
                    }
                }
                out.retain(|(_, n)| *n > 0);
                return Ok((out, "slot-stats"));
            }
        }
        Ok((self.key_counts(addr, &sorted).await?, "countkeysinslot"))
    }

    /// `MEMORY USAGE` of each key on `addr`, pipelined (0 for a key it does not hold,
    /// or when it refuses to say); with `asking`, each after `ASKING`, for a node that
    /// imports the keys' slot. `every_element` (`SAMPLES 0`): a collection's every
    /// element is weighed, not 5 of them (a big collection's size is then exact, at the
    /// cost of walking it; a small one is as quick either way).
    pub async fn key_sizes(
        &self,
        addr: &str,
        keys: &[Key],
        asking: bool,
        every_element: bool,
    ) -> Result<Vec<u64>> {
        let timeout = self.pool().options().timeout * 4;
        let mut sizes = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(CHUNK) {
            let cmds: Vec<Vec<Vec<u8>>> = chunk
                .iter()
                .flat_map(|k| {
                    let mut usage = vec![b"MEMORY".to_vec(), b"USAGE".to_vec(), k.clone()];
                    if every_element {
                        usage.extend([b"SAMPLES".to_vec(), b"0".to_vec()]);
                    }
                    if asking {
                        vec![args(["ASKING"]), usage]
                    } else {
                        vec![usage]
                    }
                })
                .collect();
            let step = if asking { 2 } else { 1 };
            for r in self
                .pool()
                .pipeline(addr, &cmds, timeout)
                .await?
                .into_iter()
                .skip(step - 1)
                .step_by(step)
            {
                sizes.push(match r {
                    Ok(Reply::Int(n)) => n.max(0) as u64,
                    // A key gone since it was listed (nil, or ASK from a migrating
                    // node) weighs nothing; a node that refuses MEMORY USAGE (an ACL)
                    // leaves the size unknown.
                    Ok(_) | Err(_) => 0,
                });
            }
        }
        Ok(sizes)
    }

    /// The bytes of `addr`'s dataset (`INFO memory` `used_memory_dataset`): no key it
    /// holds is bigger. `None` when the reply does not say; as big as can be when the
    /// node refuses `INFO`.
    pub async fn dataset_bytes(&self, addr: &str) -> Result<Option<u64>> {
        let reply = match self.pool().cmd(addr, &args(["INFO", "memory"])).await {
            Ok(r) => r,
            // A node that refuses INFO (an ACL) might hold anything.
            Err(e) if e.server_reply().is_some() => return Ok(Some(u64::MAX)),
            Err(e) => return Err(e),
        };
        let text = match reply {
            Reply::Bulk(b) => String::from_utf8_lossy(&b).to_string(),
            Reply::Status(s) => s,
            _ => return Ok(None),
        };
        Ok(super::nodes::info_field(&text, "used_memory_dataset").and_then(|v| v.parse().ok()))
    }

    /// The load of `slots` on `addr`; bytes estimated from `sample` keys per slot
    /// (none when 0). See the module docs.
    pub async fn slot_loads(&self, addr: &str, slots: &[u16], sample: u64) -> Result<Loads> {
        let (keys, keys_from) = self.slot_keys(addr, slots).await?;
        let mut out = Loads {
            slots: keys
                .iter()
                .map(|&(slot, keys)| SlotLoad {
                    slot,
                    keys,
                    bytes: None,
                })
                .collect(),
            keys_from: keys_from.to_string(),
            sample,
        };
        if sample == 0 {
            return Ok(out);
        }
        let timeout = self.pool().options().timeout * 4;
        for loads in out.slots.chunks_mut(CHUNK) {
            let gets: Vec<Vec<Vec<u8>>> = loads
                .iter()
                .map(|l| commands::getkeysinslot(l.slot, sample))
                .collect();
            let mut sampled: Vec<Vec<Key>> = Vec::with_capacity(loads.len());
            for r in self.pool().pipeline(addr, &gets, timeout).await? {
                sampled.push(match r? {
                    Reply::Array(items) => items
                        .into_iter()
                        .filter_map(|i| match i {
                            Reply::Bulk(b) => Some(b),
                            _ => None,
                        })
                        .collect(),
                    _ => Vec::new(),
                });
            }
            let keys: Vec<Key> = sampled.iter().flatten().cloned().collect();
            let sizes = self.key_sizes(addr, &keys, false, false).await?;
            let mut sizes = sizes.into_iter();
            for (l, keys) in loads.iter_mut().zip(&sampled) {
                let sum: u64 = sizes.by_ref().take(keys.len()).sum();
                l.bytes = Some(estimate(sum, keys.len() as u64, l.keys));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Reply {
        Reply::Bulk(s.as_bytes().to_vec())
    }

    #[test]
    fn slot_stats_replies_give_the_key_counts() {
        let reply = Reply::Array(vec![
            Reply::Array(vec![
                Reply::Int(0),
                Reply::Array(vec![
                    bulk("key-count"),
                    Reply::Int(3),
                    bulk("cpu-usec"),
                    Reply::Int(9),
                ]),
            ]),
            Reply::Array(vec![
                Reply::Int(7),
                Reply::Map(vec![(bulk("key-count"), Reply::Int(0))]),
            ]),
        ]);
        assert_eq!(parse_slot_stats(reply), Some(vec![(0, 3), (7, 0)]));
        assert_eq!(parse_slot_stats(Reply::Status("OK".into())), None);
    }

    #[test]
    fn runs_join_neighbours() {
        assert_eq!(runs(&[1, 2, 3, 7, 9, 10]), vec![(1, 3), (7, 7), (9, 10)]);
        assert_eq!(runs(&[]), vec![]);
    }
}
