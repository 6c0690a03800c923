//! Key to hash slot, exactly as Redis Cluster computes it: CRC16 (XMODEM) of the key,
//! or of its hash tag, modulo 16384. Also makes hash tags that land in a chosen slot.

use super::topology::SLOTS;

/// CRC16/XMODEM lookup table (polynomial 0x1021, initial value 0), as in Redis `crc16.c`.
const CRC16_TABLE: [u16; 256] = {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = (i as u16) << 8;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
};

/// CRC16/XMODEM of `data`, the checksum Redis Cluster uses for key slots.
pub fn crc16(data: &[u8]) -> u16 {
    data.iter().fold(0u16, |crc, &b| {
        (crc << 8) ^ CRC16_TABLE[usize::from(((crc >> 8) as u8) ^ b)]
    })
}

/// The part of `key` that is hashed: the text between the first `{` and the first `}`
/// after it, when that is non-empty; otherwise the whole key.
fn hash_part(key: &[u8]) -> &[u8] {
    if let Some(open) = key.iter().position(|&b| b == b'{') {
        if let Some(len) = key[open + 1..].iter().position(|&b| b == b'}') {
            if len > 0 {
                return &key[open + 1..open + 1 + len];
            }
        }
    }
    key
}

/// The hash slot of `key`, as `CLUSTER KEYSLOT` reports it.
pub fn slot_of(key: &[u8]) -> u16 {
    crc16(hash_part(key)) % SLOTS
}

/// A hash tag that lands in `slot`: `prefix` followed by the smallest decimal suffix
/// (0, 1, 2, ...) with `slot_of(tag) == slot`. Wrapped in braces it puts any key in that
/// slot (`{t8123}:x`), provided `prefix` holds no `{` or `}`. Deterministic; slots of
/// 16384 and above are taken modulo 16384.
pub fn key_in_slot(slot: u16, prefix: &str) -> String {
    let slot = slot % SLOTS;
    let mut n: u64 = 0;
    loop {
        let tag = format!("{prefix}{n}");
        if slot_of(tag.as_bytes()) == slot {
            return tag;
        }
        n += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc16_check_value() {
        // The standard check value of CRC-16/XMODEM, also in Redis' crc16.c.
        assert_eq!(crc16(b"123456789"), 0x31c3);
    }

    #[test]
    fn known_slots_from_redis() {
        // Each checked with `CLUSTER KEYSLOT` on redis-server 7.0.15.
        assert_eq!(slot_of(b"foo"), 12182);
        assert_eq!(slot_of(b"bar"), 5061);
        assert_eq!(slot_of(b"user1000"), 3443);
        assert_eq!(slot_of(b"user:loadtest_user_33:reservations"), 5519);
        assert_eq!(slot_of(b""), 0);
        assert_eq!(slot_of(b"t0"), 13006);
        assert_eq!(slot_of(b"t1"), 8943);
    }

    #[test]
    fn hash_tags() {
        assert_eq!(slot_of(b"{user1000}.following"), slot_of(b"user1000"));
        assert_eq!(slot_of(b"{user1000}.followers"), 3443);
        // Only the first `{` and the first `}` after it count.
        assert_eq!(slot_of(b"foo{bar}{zap}"), slot_of(b"bar"));
        assert_eq!(slot_of(b"a}b{c}"), slot_of(b"c"));
        assert_eq!(slot_of(b"a}b{c}"), 7365);
    }

    #[test]
    fn empty_or_unclosed_tag_hashes_whole_key() {
        assert_eq!(slot_of(b"foo{}{bar}"), crc16(b"foo{}{bar}") % SLOTS);
        assert_eq!(slot_of(b"foo{}{bar}"), 8363);
        assert_ne!(slot_of(b"foo{}{bar}"), slot_of(b"bar"));
        assert_eq!(slot_of(b"{}"), 15257);
        assert_eq!(slot_of(b"{a"), 10276);
    }

    #[test]
    fn binary_keys() {
        let key = [0xffu8, 0x00, b'{', 0x80, b'}'];
        assert_eq!(slot_of(&key), slot_of(&[0x80]));
    }

    #[test]
    fn key_in_slot_lands_in_slot() {
        for slot in [0, 1, 5519, 8123, 12182, SLOTS - 1] {
            let tag = key_in_slot(slot, "t");
            assert!(tag.starts_with('t'));
            assert_eq!(slot_of(tag.as_bytes()), slot, "{tag}");
            assert_eq!(slot_of(format!("{{{tag}}}:some:key").as_bytes()), slot);
            assert_eq!(key_in_slot(slot, "t"), tag, "deterministic");
        }
        assert_eq!(key_in_slot(13006, "t"), "t0");
        assert_eq!(key_in_slot(8943, "t"), "t1");
        assert_eq!(key_in_slot(SLOTS + 5, "t"), key_in_slot(5, "t"));
    }

    #[test]
    fn every_slot_has_a_short_tag() {
        // Suffixes below 2^20 reach all 16384 slots, so key_in_slot always returns fast.
        let mut seen = vec![false; usize::from(SLOTS)];
        let mut left = seen.len();
        let mut n = 0u64;
        while left > 0 {
            assert!(n < 1 << 20, "slots left unreached: {left}");
            let s = usize::from(slot_of(format!("t{n}").as_bytes()));
            if !seen[s] {
                seen[s] = true;
                left -= 1;
            }
            n += 1;
        }
    }
}
