//! The slot map as a standalone SVG, for a report or a ticket: 128 rows of 128 slots,
//! one cell per slot, neighbours of the same owner and mark drawn as one rectangle
//! (`data-slots` says how many it stands for; together they are 16384). Open slots
//! are red, slots in an atomic migration gold; with a measure, a slot's opacity
//! follows its load. A legend names each owner with its slots (and load).

use super::{Mark, SlotMap};
use crate::cluster::SLOTS;

const PER_ROW: usize = 128;
const CELL: usize = 5;
const TOP: usize = 40;
const LEFT: usize = 50;

/// Distinct fills of the owners, in turn.
const FILLS: &[&str] = &[
    "#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#e6ab02", "#17becf", "#8c564b", "#e377c2",
    "#7f7f7f", "#bcbd22", "#393b79", "#637939", "#843c39", "#7b4173", "#3182bd", "#31a354",
];
const OPEN: &str = "#d62728";
const MOVING: &str = "#ffd700";
const NONE: &str = "#ffffff";

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn fill(map: &SlotMap, slot: usize) -> &'static str {
    match (map.mark[slot], map.owner[slot]) {
        (Mark::Open, _) => OPEN,
        (Mark::Moving, _) => MOVING,
        (Mark::Plain, Some(o)) => FILLS[o % FILLS.len()],
        (Mark::Plain, None) => NONE,
    }
}

/// The opacity of a slot's load, in tenths (10 when not shaded).
fn opacity(map: &SlotMap, slot: usize, max: u64) -> u64 {
    if map.by == "slots" || max == 0 || map.mark[slot] != Mark::Plain {
        return 10;
    }
    2 + (map.load[slot] * 8).div_ceil(max)
}

/// The picture as an SVG document.
pub fn render(map: &SlotMap, title: &str) -> String {
    let max = map.load.iter().copied().max().unwrap_or(0);
    let legend_x = LEFT + PER_ROW * CELL + 20;
    let width = legend_x + 420;
    let rows = usize::from(SLOTS) / PER_ROW;
    let height = (TOP + rows * CELL + 20).max(TOP + 22 * (map.owners.len() + 4));
    let mut out = String::new();
    out.push_str(&format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"monospace\" font-size=\"12\">\n"
    ));
    out.push_str(&format!(
        "<rect width=\"{width}\" height=\"{height}\" fill=\"#fafafa\"/>\n<text x=\"{LEFT}\" y=\"24\" font-size=\"14\">{}</text>\n",
        escape(title)
    ));
    out.push_str(&format!(
        "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#999\"/>\n",
        LEFT - 1,
        TOP - 1,
        PER_ROW * CELL + 2,
        rows * CELL + 2
    ));
    out.push_str("<g id=\"slots\">\n");
    for r in 0..rows {
        if r % 16 == 0 {
            out.push_str(&format!(
                "<text x=\"{}\" y=\"{}\" text-anchor=\"end\" font-size=\"10\">{}</text>\n",
                LEFT - 4,
                TOP + r * CELL + 8,
                r * PER_ROW
            ));
        }
        let mut s = r * PER_ROW;
        let end = s + PER_ROW;
        while s < end {
            let key = (fill(map, s), opacity(map, s, max), map.owner[s]);
            let mut n = 1;
            while s + n < end
                && (fill(map, s + n), opacity(map, s + n, max), map.owner[s + n]) == key
            {
                n += 1;
            }
            let owner = map.owner[s].map_or("no owner".to_string(), |o| map.owners[o].addr.clone());
            let what = match map.mark[s] {
                Mark::Open => " (open)",
                Mark::Moving => " (atomic migration)",
                Mark::Plain => "",
            };
            let range = if n == 1 {
                format!("{s}")
            } else {
                format!("{s}-{}", s + n - 1)
            };
            out.push_str(&format!(
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{CELL}\" fill=\"{}\" fill-opacity=\"{:.1}\" data-slots=\"{n}\"><title>slots {range}: {}{what}</title></rect>\n",
                LEFT + (s - r * PER_ROW) * CELL,
                TOP + r * CELL,
                n * CELL,
                key.0,
                key.1 as f64 / 10.0,
                escape(&owner),
            ));
            s += n;
        }
    }
    out.push_str("</g>\n<g id=\"legend\">\n");
    let mut y = TOP + 10;
    let mut item = |fill: &str, text: String, out: &mut String| {
        out.push_str(&format!(
            "<rect x=\"{legend_x}\" y=\"{}\" width=\"14\" height=\"14\" fill=\"{fill}\" stroke=\"#333\"/><text x=\"{}\" y=\"{}\">{}</text>\n",
            y - 11,
            legend_x + 22,
            y,
            escape(&text)
        ));
        y += 22;
    };
    for (i, o) in map.owners.iter().enumerate() {
        let load = o
            .load
            .map(|l| format!(", {}", super::term::amount(l, &map.by)))
            .unwrap_or_default();
        item(
            FILLS[i % FILLS.len()],
            format!("{}: {} slots{load}", o.addr, o.slots),
            &mut out,
        );
    }
    if map.mark.contains(&Mark::Open) {
        item(OPEN, "open slot (MIGRATING/IMPORTING)".into(), &mut out);
    }
    if map.mark.contains(&Mark::Moving) {
        item(MOVING, "atomic migration in flight".into(), &mut out);
    }
    if map.owner.contains(&None) {
        item(NONE, "no owner".into(), &mut out);
    }
    out.push_str("</g>\n</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::topology::parse_cluster_nodes;

    #[test]
    fn cells_add_up_to_every_slot() {
        let text = "a 127.0.0.1:7001@17001 myself,master - 0 0 1 connected 0-8191 [100->-b]\n\
                    b 127.0.0.1:7002@17002 master - 0 0 2 connected 8192-16382";
        let map = SlotMap::of_masters(&parse_cluster_nodes(text).unwrap(), "slots");
        let svg = render(&map, "a <test> & more");
        let total: usize = svg
            .split("data-slots=\"")
            .skip(1)
            .map(|p| p.split('"').next().unwrap().parse::<usize>().unwrap())
            .sum();
        assert_eq!(total, 16384);
        assert!(svg.contains("slots 100: 127.0.0.1:7001 (open)"));
        assert!(svg.contains("slots 16383: no owner"));
        assert!(svg.contains("a &lt;test&gt; &amp; more"));
    }
}
