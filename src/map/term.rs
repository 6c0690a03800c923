//! The slot map for a terminal: 32 rows of cells, each cell several slots (8 at the
//! full width of 64 cells, 16 at the half width used side by side), drawn by the owner
//! most of its slots have. With colour each owner has its own, and with a measure the
//! cells are shaded by their load (`░▒▓█`); without colour the owners are letters. A
//! cell holding an open slot is `!`, one in an atomic migration `~`, one without an
//! owner `.`. Every line fits 80 columns.

use super::{letter, Mark, SlotMap};
use crate::cluster::SLOTS;

/// Rows of every picture.
const ROWS: usize = 32;
/// Cells per row at full width.
pub const FULL: usize = 64;
/// Cells per row side by side.
pub const HALF: usize = 32;

/// 256-colour codes of the owners, in turn.
const PALETTE: &[u8] = &[
    33, 208, 40, 163, 220, 51, 196, 99, 142, 205, 30, 172, 69, 118, 125, 244,
];

fn colour(i: usize) -> u8 {
    PALETTE[i % PALETTE.len()]
}

/// One cell: the majority owner of its slots, the strongest mark among them, its load.
struct Cell {
    owner: Option<usize>,
    mark: Mark,
    load: u64,
}

fn cells(map: &SlotMap, width: usize) -> Vec<Cell> {
    let per = usize::from(SLOTS) / (width * ROWS);
    (0..width * ROWS)
        .map(|c| {
            let slots = c * per..(c + 1) * per;
            let mut votes: Vec<(Option<usize>, usize)> = Vec::new();
            let mut mark = Mark::Plain;
            let mut load = 0;
            for s in slots {
                match votes.iter_mut().find(|(o, _)| *o == map.owner[s]) {
                    Some((_, n)) => *n += 1,
                    None => votes.push((map.owner[s], 1)),
                }
                mark = match (mark, map.mark[s]) {
                    (Mark::Open, _) | (_, Mark::Open) => Mark::Open,
                    (Mark::Moving, _) | (_, Mark::Moving) => Mark::Moving,
                    _ => Mark::Plain,
                };
                load += map.load[s];
            }
            let owner = votes.iter().max_by_key(|(_, n)| *n).and_then(|(o, _)| *o);
            Cell { owner, mark, load }
        })
        .collect()
}

/// The grid's lines: each row's first slot, then its cells.
fn grid(map: &SlotMap, width: usize, colour_on: bool) -> Vec<String> {
    let cells = cells(map, width);
    let max = cells.iter().map(|c| c.load).max().unwrap_or(0);
    let shaded = map.by != "slots" && max > 0;
    let per = usize::from(SLOTS) / (width * ROWS);
    let mut lines = Vec::with_capacity(ROWS);
    for (r, row) in cells.chunks(width).enumerate() {
        let mut line = format!("{:>5} ", r * width * per);
        // The escape sequence in force, so that a run of one style is written once.
        let mut style = String::new();
        for c in row {
            let (ch, bg) = match (c.mark, c.owner) {
                (Mark::Open, _) => ('!', Some(196)),
                (Mark::Moving, _) => ('~', Some(226)),
                (Mark::Plain, None) => ('.', None),
                (Mark::Plain, Some(o)) if !colour_on => (letter(o), None),
                (Mark::Plain, Some(_)) if shaded => {
                    let level = (c.load * 4).div_ceil(max) as usize;
                    ([' ', '░', '▒', '▓', '█'][level.min(4)], None)
                }
                (Mark::Plain, Some(_)) => ('█', None),
            };
            if !colour_on {
                line.push(ch);
                continue;
            }
            let want = match (bg, c.owner) {
                (Some(bg), _) => format!("\x1b[0;1;30;48;5;{bg}m"),
                (None, Some(o)) => format!("\x1b[0;38;5;{}m", colour(o)),
                (None, None) => "\x1b[0m".to_string(),
            };
            if want != style {
                line.push_str(&want);
                style = want;
            }
            line.push(ch);
        }
        if colour_on {
            line.push_str("\x1b[0m");
        }
        lines.push(line);
    }
    lines
}

/// An owner's swatch: its colour, or its letter.
fn swatch(i: usize, colour_on: bool) -> String {
    if colour_on {
        format!("\x1b[38;5;{}m██\x1b[0m {}", colour(i), letter(i))
    } else {
        format!("{} ", letter(i))
    }
}

/// A load in the map's measure: `1200 keys`, `1.5 MB`.
pub(super) fn amount(v: u64, by: &str) -> String {
    match by {
        "keys" => format!("{v} keys"),
        _ => {
            let units = ["B", "KB", "MB", "GB", "TB"];
            let mut x = v as f64;
            let mut u = 0;
            while x >= 1024.0 && u < units.len() - 1 {
                x /= 1024.0;
                u += 1;
            }
            if u == 0 {
                format!("{v} B")
            } else {
                format!("{x:.1} {}", units[u])
            }
        }
    }
}

/// An address cut to `width` characters, padded to them, to fit a legend line.
fn short(addr: &str, width: usize) -> String {
    let text = if addr.chars().count() <= width {
        addr.to_string()
    } else {
        let head: String = addr.chars().take(width - 1).collect();
        format!("{head}…")
    };
    format!("{text:<width$}")
}

/// What the marks mean, for the maps that have them.
fn marks_legend(maps: &[&SlotMap]) -> Option<String> {
    let has = |m: Mark| maps.iter().any(|map| map.mark.contains(&m));
    let uncovered = maps.iter().any(|map| map.owner.contains(&None));
    let mut parts = Vec::new();
    if has(Mark::Open) {
        parts.push("! open slot (MIGRATING/IMPORTING)");
    }
    if has(Mark::Moving) {
        parts.push("~ atomic migration in flight");
    }
    if uncovered {
        parts.push(". no owner");
    }
    (!parts.is_empty()).then(|| format!("    {}", parts.join("   ")))
}

fn heading(map: &SlotMap, width: usize) -> String {
    let per = usize::from(SLOTS) / (width * ROWS);
    let by = match map.by.as_str() {
        "keys" => ", shaded by keys",
        "memory" => ", shaded by memory (estimated)",
        _ => "",
    };
    format!(
        ">>> 16384 slots, {per} per cell, {} per row{by}",
        width * per
    )
}

/// The whole picture at full width: heading, grid, legend.
pub fn render(map: &SlotMap, colour_on: bool) -> String {
    let mut out = vec![heading(map, FULL)];
    out.extend(grid(map, FULL, colour_on));
    for (i, o) in map.owners.iter().enumerate() {
        let load = o
            .load
            .map(|l| format!("  {}", amount(l, &map.by)))
            .unwrap_or_default();
        out.push(format!(
            "  {} {} {:>5} slots{load}",
            swatch(i, colour_on),
            short(&o.addr, 40),
            o.slots
        ));
    }
    out.extend(marks_legend(&[map]));
    out.join("\n")
}

/// Two pictures side by side at half width (a plan's before and after), then one
/// legend with each owner's slots (and load) before and after.
pub fn render_pair(before: &SlotMap, after: &SlotMap, colour_on: bool) -> String {
    let per = usize::from(SLOTS) / (HALF * ROWS);
    let mut out = vec![format!(
        ">>> before, then after: {per} slots per cell, {} per row",
        HALF * per
    )];
    for (l, r) in grid(before, HALF, colour_on)
        .into_iter()
        .zip(grid(after, HALF, colour_on))
    {
        out.push(format!("{l}   {r}"));
    }
    for (i, o) in before.owners.iter().enumerate() {
        let a = &after.owners[i];
        let load = match (o.load, a.load) {
            (Some(x), Some(y)) if before.by == "keys" => {
                format!("  {x} -> {}", amount(y, "keys"))
            }
            (Some(x), Some(y)) => {
                format!("  {} -> {}", amount(x, &before.by), amount(y, &before.by))
            }
            _ => String::new(),
        };
        out.push(format!(
            "  {} {} {:>5} -> {:>5} slots{load}",
            swatch(i, colour_on),
            short(&o.addr, 24),
            o.slots,
            a.slots
        ));
    }
    out.extend(marks_legend(&[before, after]));
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::topology::parse_cluster_nodes;

    fn map() -> SlotMap {
        let text = "a 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-8191 [100->-b]\n\
                    b 127.0.0.1:7002@17002 master - 0 0 2 connected 8192-16383";
        SlotMap::of_masters(&parse_cluster_nodes(text).unwrap(), "slots")
    }

    #[test]
    fn letters_without_colour_fit_80_columns() {
        let text = render(&map(), false);
        assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
        let grid: Vec<&str> = text.lines().skip(1).take(ROWS).collect();
        assert!(grid[0].starts_with("    0 AAAAAAAAAAAA!AAA"), "{text}");
        assert!(grid[31].ends_with("BBBB"), "{text}");
        assert!(text.contains("! open slot"), "{text}");
        let cells: usize = grid.iter().map(|l| l.chars().count() - 6).sum();
        assert_eq!(cells * 8, 16384);
    }

    #[test]
    fn side_by_side_fits_80_columns() {
        let before = map();
        let after = before.after(&[(100u16, "b".to_string())].into());
        let text = render_pair(&before, &after, false);
        assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
        assert!(text.contains("8192 ->  8191 slots"), "{text}");
    }
}
