//! A key's value in a form that does not depend on how the node stores it, to tell
//! whether a key on both sides of a move holds the same value when their `DUMP`
//! payloads differ. A big hash, set or sorted set is serialised in the order of its
//! hash table, and a copy restored on another node may iterate in another order: the
//! same value, other bytes. Compared here: the type and the elements, sorted where
//! the type has no order (hash fields, set members). Only the types whose elements
//! say it all: strings, lists, hashes, sets, sorted sets (not a stream, whose consumer
//! groups `XRANGE` does not show, nor a module's type): any other stays "different".
//! What `DUMP` leaves out (the key's TTL, and a hash field's TTL on a server that has
//! them) is left out here too.

use super::conn::args;
use super::nodes::Nodes;
use super::{Key, Reply, Result};

/// The elements of a reply, flattened, each tagged so that nesting cannot collide.
fn flatten(r: Reply, out: &mut Vec<Vec<u8>>) {
    match r {
        Reply::Bulk(b) => out.push([b"$".as_slice(), &b].concat()),
        Reply::Status(s) => out.push([b"+".as_slice(), s.as_bytes()].concat()),
        Reply::Int(n) => out.push(format!(":{n}").into_bytes()),
        Reply::Double(d) => out.push(format!(",{d}").into_bytes()),
        Reply::Nil => out.push(b"_".to_vec()),
        Reply::Array(items) => {
            out.push(format!("*{}", items.len()).into_bytes());
            for i in items {
                flatten(i, out);
            }
        }
        Reply::Map(pairs) => {
            out.push(format!("%{}", pairs.len()).into_bytes());
            for (k, v) in pairs {
                flatten(k, out);
                flatten(v, out);
            }
        }
    }
}

/// The command that reads a whole value of `kind`, and whether its elements come in
/// pairs (`Some(true)`) or alone (`Some(false)`) that are sorted, or in order (`None`).
fn reader(kind: &str, key: &Key) -> Option<(Vec<Vec<u8>>, Option<bool>)> {
    let with = |words: &[&str], rest: &[&str]| {
        let mut cmd: Vec<Vec<u8>> = words.iter().map(|w| w.as_bytes().to_vec()).collect();
        cmd.push(key.clone());
        cmd.extend(rest.iter().map(|w| w.as_bytes().to_vec()));
        cmd
    };
    Some(match kind {
        "string" => (with(&["GET"], &[]), None),
        "list" => (with(&["LRANGE"], &["0", "-1"]), None),
        "zset" => (with(&["ZRANGE"], &["0", "-1", "WITHSCORES"]), None),
        "hash" => (with(&["HGETALL"], &[]), Some(true)),
        "set" => (with(&["SMEMBERS"], &[]), Some(false)),
        _ => return None,
    })
}

impl Nodes {
    /// The value of `key` on `addr` (after `ASKING`, for a node that imports its slot)
    /// in a form equal for equal values however stored; `None` when the key is not
    /// there, its type cannot be read so, or the node does not answer (then the copies
    /// count as different, as their `DUMP`s said).
    pub async fn canonical_value(&self, addr: &str, key: &Key) -> Option<Vec<u8>> {
        self.read_canonical(addr, key).await.ok().flatten()
    }

    async fn read_canonical(&self, addr: &str, key: &Key) -> Result<Option<Vec<u8>>> {
        // A whole big value is read: give it the time a MIGRATE of it would have.
        let timeout = self.pool().options().timeout * 4 + std::time::Duration::from_secs(60);
        let asked = self
            .pool()
            .pipeline(
                addr,
                &[args(["ASKING"]), vec![b"TYPE".to_vec(), key.clone()]],
                timeout,
            )
            .await?;
        let kind = match asked.into_iter().nth(1) {
            Some(Ok(Reply::Status(s))) => s,
            Some(Ok(Reply::Bulk(b))) => String::from_utf8_lossy(&b).to_string(),
            Some(Err(e)) => return Err(e),
            _ => return Ok(None),
        };
        let Some((read, sorted)) = reader(&kind, key) else {
            return Ok(None);
        };
        let reply = self
            .pool()
            .pipeline(addr, &[args(["ASKING"]), read], timeout)
            .await?
            .into_iter()
            .nth(1)
            .unwrap_or(Ok(Reply::Nil))?;
        let mut elements = Vec::new();
        match (reply, sorted) {
            (Reply::Array(items), Some(pairs)) => {
                let mut flat: Vec<Vec<u8>> = Vec::with_capacity(items.len());
                for i in items {
                    flatten(i, &mut flat);
                }
                if pairs {
                    let mut p: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(flat.len() / 2);
                    let mut it = flat.into_iter();
                    while let (Some(f), Some(v)) = (it.next(), it.next()) {
                        p.push((f, v));
                    }
                    p.sort_unstable();
                    elements.extend(p.into_iter().flat_map(|(f, v)| [f, v]));
                } else {
                    flat.sort_unstable();
                    elements = flat;
                }
            }
            (Reply::Map(pairs), Some(_)) => {
                let mut p: Vec<(Vec<u8>, Vec<u8>)> = Vec::with_capacity(pairs.len());
                for (k, v) in pairs {
                    let (mut a, mut b) = (Vec::new(), Vec::new());
                    flatten(k, &mut a);
                    flatten(v, &mut b);
                    p.push((a.concat(), b.concat()));
                }
                p.sort_unstable();
                elements.extend(p.into_iter().flat_map(|(f, v)| [f, v]));
            }
            (Reply::Nil, _) => return Ok(None),
            (other, _) => flatten(other, &mut elements),
        }
        let mut out = kind.into_bytes();
        for e in elements {
            out.extend((e.len() as u64).to_le_bytes());
            out.extend(e);
        }
        Ok(Some(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unordered_types_sort_their_elements_and_ordered_ones_keep_order() {
        let k = b"k".to_vec();
        assert_eq!(reader("hash", &k).map(|r| r.1), Some(Some(true)));
        assert_eq!(reader("set", &k).map(|r| r.1), Some(Some(false)));
        assert_eq!(reader("list", &k).map(|r| r.1), Some(None));
        assert!(reader("ReJSON-RL", &k).is_none());
        let mut a = Vec::new();
        flatten(
            Reply::Array(vec![Reply::Bulk(b"x".to_vec()), Reply::Int(1)]),
            &mut a,
        );
        assert_eq!(a, vec![b"*2".to_vec(), b"$x".to_vec(), b":1".to_vec()]);
    }
}
