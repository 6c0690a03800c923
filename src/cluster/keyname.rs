//! Key names as the operator reads them. Keys are bytes: a name may hold terminal
//! escapes, newlines, bytes that are not UTF-8, or be a megabyte long. Human output
//! quotes them as redis-cli does (bare when plain, else in quotes with `\n`, `\xHH`,
//! ...) and cuts long ones, saying their length; JSON keeps them exact.

use super::Key;

/// Names longer than this many bytes are cut in human output.
const SHOWN_BYTES: usize = 64;

/// The name as redis-cli would print it: bare when every byte is a printable ASCII
/// character other than space, quote and backslash; else in double quotes with
/// escapes, so that it can be copied back exactly.
pub fn quote(key: &[u8]) -> String {
    let plain = !key.is_empty()
        && key
            .iter()
            .all(|b| b.is_ascii_graphic() && *b != b'"' && *b != b'\'' && *b != b'\\');
    if plain {
        return String::from_utf8_lossy(key).into_owned();
    }
    let mut out = String::with_capacity(key.len() + 2);
    out.push('"');
    for &b in key {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            0x07 => out.push_str("\\a"),
            0x08 => out.push_str("\\b"),
            b if b == b' ' || b.is_ascii_graphic() => out.push(b as char),
            b => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

/// The name for human output: [`quote`]d, and cut after 64 bytes with its length.
pub fn shown(key: &[u8]) -> String {
    if key.len() <= SHOWN_BYTES {
        return quote(key);
    }
    format!("{}... ({} bytes)", quote(&key[..SHOWN_BYTES]), key.len())
}

/// A key name as reports carry it: the exact bytes. It serializes as text when it is
/// UTF-8 and as bytes otherwise (a blob in a script, an array of numbers in JSON),
/// and displays as [`shown`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyName(pub Key);

impl serde::Serialize for KeyName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(&self.0) {
            Ok(text) => s.serialize_str(text),
            Err(_) => s.serialize_bytes(&self.0),
        }
    }
}

impl std::fmt::Display for KeyName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&shown(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_as_redis_cli_does_and_cut_when_long() {
        assert_eq!(quote(b"user:42"), "user:42");
        assert_eq!(quote(b""), "\"\"");
        assert_eq!(quote(b" with  spaces "), "\" with  spaces \"");
        assert_eq!(
            quote(b"\x1b[31mred\x1b]0;title\x07"),
            "\"\\x1b[31mred\\x1b]0;title\\a\""
        );
        assert_eq!(quote(b"two\nlines"), "\"two\\nlines\"");
        assert_eq!(quote(b"a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(quote(&[0xff, 0xfe, b'x']), "\"\\xff\\xfex\"");
        // UTF-8 that is not ASCII is escaped byte by byte: copyable, never mangled.
        assert_eq!(quote("é".as_bytes()), "\"\\xc3\\xa9\"");
        let long = vec![b'k'; 1 << 20];
        let s = shown(&long);
        assert!(s.ends_with("... (1048576 bytes)") && s.len() < 100, "{s}");
        assert_eq!(shown(b"short"), "short");
    }
}
