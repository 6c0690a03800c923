//! How the REPL prints a value: node maps as an aligned table, a `check()` report as
//! `check` prints it, arrays of keys one per line with a count, arrays of other maps
//! as tables, anything else as Rhai shows it; or JSON. Pure text in, text out.

use rhai::{Array, Dynamic, Map};

use crate::cluster::check::{render as render_check, CheckReport};
use crate::cluster::topology::format_ranges;

/// The text for a value, ending in a newline, or nothing for `()`.
pub fn render(value: &Dynamic, json: bool) -> String {
    if value.is_unit() {
        return String::new();
    }
    if json {
        return match rhai::serde::from_dynamic::<serde_json::Value>(value) {
            Ok(v) => format!("{}\n", serde_json::to_string_pretty(&v).unwrap_or_default()),
            Err(e) => format!("(cannot be written as JSON: {e})\n{value}\n"),
        };
    }
    if let Some(map) = value.read_lock::<Map>() {
        if is_node(&map) {
            return node_table(&[&map]);
        }
        if let Some(report) = check_report(value, &map) {
            return render_check(&report);
        }
    }
    if let Some(arr) = value.read_lock::<Array>() {
        if let Some(text) = array(&arr) {
            return text;
        }
    }
    if let Some(s) = value.read_lock::<rhai::ImmutableString>() {
        let s = printable(s.as_str());
        return if s.ends_with('\n') {
            s
        } else {
            format!("{s}\n")
        };
    }
    format!("{}\n", printable(&value.to_string()))
}

/// Text with its control characters (terminal escapes above all: a key name or a
/// value may hold any) shown as `\xHH`, newlines and tabs kept.
fn printable(s: &str) -> String {
    if !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
        return s.to_string();
    }
    s.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                format!("\\x{:02x}", c as u32)
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn array(arr: &Array) -> Option<String> {
    if arr.is_empty() {
        return None;
    }
    if arr.iter().all(|v| v.is_string() || v.is_blob()) {
        let mut out: String = arr.iter().map(|v| format!("{}\n", key_text(v))).collect();
        out.push_str(&format!(
            "({} {})\n",
            arr.len(),
            if arr.len() == 1 { "item" } else { "items" }
        ));
        return Some(out);
    }
    let maps: Vec<_> = arr.iter().filter_map(|v| v.read_lock::<Map>()).collect();
    if maps.len() != arr.len() {
        return None;
    }
    let maps: Vec<&Map> = maps.iter().map(|m| &**m).collect();
    if maps.iter().all(|m| is_node(m)) {
        return Some(node_table(&maps));
    }
    Some(map_table(&maps))
}

/// A key as redis-cli would print it (quoted and escaped when it needs to be, cut
/// when long): a key name may hold terminal escapes or newlines.
fn key_text(v: &Dynamic) -> String {
    match v.read_lock::<rhai::Blob>() {
        Some(b) => crate::cluster::keyname::shown(&b),
        None => crate::cluster::keyname::shown(v.to_string().as_bytes()),
    }
}

fn is_node(m: &Map) -> bool {
    ["id", "addr", "role", "slots"]
        .iter()
        .all(|k| m.contains_key(*k))
}

fn check_report(value: &Dynamic, m: &Map) -> Option<CheckReport> {
    if !["ok", "open_slots", "uncovered", "masters"]
        .iter()
        .all(|k| m.contains_key(*k))
    {
        return None;
    }
    rhai::serde::from_dynamic(value).ok()
}

fn text(m: &Map, field: &str) -> String {
    match m.get(field) {
        Some(v) if v.is_unit() => String::new(),
        Some(v) => printable(&v.to_string()).replace('\n', "\\n"),
        None => String::new(),
    }
}

/// Columns an operator scans: where, who, what role, which slots, what is open.
fn node_table(nodes: &[&Map]) -> String {
    let addr_of = |id: &str| -> String {
        nodes
            .iter()
            .find(|n| text(n, "id") == id)
            .map(|n| text(n, "addr"))
            .unwrap_or_else(|| id.chars().take(8).collect())
    };
    let mut rows: Vec<Vec<String>> = Vec::new();
    for n in nodes {
        let master = n
            .get("master_id")
            .filter(|v| !v.is_unit())
            .map(|v| addr_of(&v.to_string()))
            .unwrap_or_default();
        let flags: Vec<String> = n
            .get("flags")
            .and_then(|f| {
                f.read_lock::<Array>()
                    .map(|a| a.iter().map(|x| x.to_string()).collect())
            })
            .unwrap_or_default();
        let flags: Vec<String> = flags
            .into_iter()
            .filter(|f| !matches!(f.as_str(), "myself" | "master" | "slave" | "noflags"))
            .collect();
        let mut open = Vec::new();
        for (field, arrow) in [("migrating", "->"), ("importing", "<-")] {
            if let Some(m) = n
                .get(field)
                .and_then(|v| v.read_lock::<Map>().map(|m| m.clone()))
            {
                for (slot, peer) in m {
                    open.push(format!("{slot}{arrow}{}", addr_of(&peer.to_string())));
                }
            }
        }
        rows.push(vec![
            text(n, "addr"),
            text(n, "id"),
            text(n, "role"),
            master,
            slots(n),
            flags.join(","),
            open.join(" "),
        ]);
    }
    table(
        &["ADDR", "ID", "ROLE", "MASTER", "SLOTS", "FLAGS", "OPEN"],
        rows,
    )
}

/// `0-5460 (5461)`, shortened when a node holds many ranges.
fn slots(n: &Map) -> String {
    let Some(arr) = n
        .get("slots")
        .and_then(|v| v.read_lock::<Array>().map(|a| a.clone()))
    else {
        return String::new();
    };
    let ranges: Vec<(u16, u16)> = arr
        .iter()
        .filter_map(|r| {
            let r = r.read_lock::<Array>()?;
            Some((
                r.first()?.as_int().ok()? as u16,
                r.get(1)?.as_int().ok()? as u16,
            ))
        })
        .collect();
    if ranges.is_empty() {
        return String::new();
    }
    let count: u32 = ranges.iter().map(|(a, b)| u32::from(b - a) + 1).sum();
    const SHOWN: usize = 3;
    let shown = format_ranges(&ranges[..ranges.len().min(SHOWN)]);
    if ranges.len() > SHOWN {
        format!("{shown},... ({count} in {} ranges)", ranges.len())
    } else {
        format!("{shown} ({count})")
    }
}

/// One column per field any map has, in first-seen order.
fn map_table(maps: &[&Map]) -> String {
    let mut cols: Vec<String> = Vec::new();
    for m in maps {
        for k in m.keys() {
            if !cols.iter().any(|c| c == k.as_str()) {
                cols.push(k.to_string());
            }
        }
    }
    let rows = maps
        .iter()
        .map(|m| cols.iter().map(|c| text(m, c)).collect())
        .collect();
    let heads: Vec<String> = cols.iter().map(|c| c.to_uppercase()).collect();
    let heads: Vec<&str> = heads.iter().map(String::as_str).collect();
    table(&heads, rows)
}

/// Columns padded to their widest cell; columns empty in every row are left out.
fn table(heads: &[&str], rows: Vec<Vec<String>>) -> String {
    let keep: Vec<usize> = (0..heads.len())
        .filter(|&i| rows.iter().any(|r| !r[i].is_empty()))
        .collect();
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].chars().count())
            .chain([heads[i].len()])
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = keep.iter().map(|&i| width(i)).collect();
    let line = |cells: Vec<&str>| -> String {
        let mut l = String::new();
        for (j, cell) in cells.iter().enumerate() {
            if j + 1 == cells.len() {
                l.push_str(cell);
            } else {
                l.push_str(&format!("{cell:<w$}  ", w = widths[j]));
            }
        }
        format!("{}\n", l.trim_end())
    };
    let mut out = line(keep.iter().map(|&i| heads[i]).collect());
    for r in &rows {
        out.push_str(&line(keep.iter().map(|&i| r[i].as_str()).collect()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(
        id: &str,
        port: i64,
        role: &str,
        master: Option<&str>,
        slots: &[(i64, i64)],
    ) -> Dynamic {
        let mut m = Map::new();
        m.insert("id".into(), id.into());
        m.insert("addr".into(), format!("127.0.0.1:{port}").into());
        m.insert("role".into(), role.into());
        m.insert(
            "master_id".into(),
            master
                .map(|m| Dynamic::from(m.to_string()))
                .unwrap_or(Dynamic::UNIT),
        );
        m.insert(
            "flags".into(),
            Dynamic::from(vec![Dynamic::from(
                if role == "replica" { "slave" } else { role }.to_string(),
            )]),
        );
        let s: Array = slots
            .iter()
            .map(|(a, b)| Dynamic::from(vec![Dynamic::from(*a), Dynamic::from(*b)]))
            .collect();
        m.insert("slots".into(), s.into());
        m.insert("migrating".into(), Map::new().into());
        m.insert("importing".into(), Map::new().into());
        m.into()
    }

    #[test]
    fn nodes_make_an_aligned_table() {
        let a = "a".repeat(40);
        let nodes: Array = vec![
            node(&a, 7001, "master", None, &[(0, 5460)]),
            node(&"b".repeat(40), 7004, "replica", Some(&a), &[]),
        ];
        let out = render(&nodes.into(), false);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(lines[0].starts_with("ADDR "), "{out}");
        assert!(
            !lines[0].contains("FLAGS"),
            "empty columns are left out: {out}"
        );
        assert!(lines[1].contains("0-5460 (5461)"), "{out}");
        assert!(
            lines[2].contains("replica") && lines[2].contains("127.0.0.1:7001"),
            "{out}"
        );
        let col = lines[0].find("ROLE").unwrap();
        assert_eq!(&lines[1][col..col + 6], "master", "{out}");
    }

    #[test]
    fn terminal_escapes_never_reach_the_terminal() {
        let v: Dynamic = "\x1b]0;pwned\x07\x1b[2J".into();
        let out = render(&v, false);
        assert!(
            !out.contains('\x1b') && out.contains("\\x1b]0;pwned"),
            "{out:?}"
        );
    }

    #[test]
    fn keys_one_per_line_with_a_count() {
        let keys: Array = vec!["k1".into(), "k2".into()];
        assert_eq!(render(&keys.into(), false), "k1\nk2\n(2 items)\n");
    }

    #[test]
    fn other_values_as_rhai_shows_them() {
        assert_eq!(render(&Dynamic::from(7_i64), false), "7\n");
        assert_eq!(render(&Dynamic::UNIT, false), "");
        assert_eq!(render(&Dynamic::from(7_i64), true), "7\n");
        let arr: Array = vec![Dynamic::from(1_i64), Dynamic::from(2_i64)];
        assert_eq!(render(&arr.into(), false), "[1, 2]\n");
    }
}
