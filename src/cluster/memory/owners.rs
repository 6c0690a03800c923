//! Slot ownership in the model's copy of a node's view: its slot ranges, split and
//! merged one slot at a time.

use crate::cluster::NodeInfo;

/// Remove one slot from sorted inclusive ranges.
fn remove_slot(ranges: &mut Vec<(u16, u16)>, slot: u16) {
    if let Some(i) = ranges.iter().position(|(a, b)| *a <= slot && slot <= *b) {
        let (a, b) = ranges[i];
        match (a == slot, b == slot) {
            (true, true) => {
                ranges.remove(i);
            }
            (true, false) => ranges[i].0 = slot + 1,
            (false, true) => ranges[i].1 = slot - 1,
            (false, false) => {
                ranges[i].1 = slot - 1;
                ranges.insert(i + 1, (slot + 1, b));
            }
        }
    }
}

/// Add one slot to sorted inclusive ranges, merging neighbours.
fn add_slot(ranges: &mut Vec<(u16, u16)>, slot: u16) {
    ranges.sort_unstable();
    let i = ranges.partition_point(|(a, _)| *a < slot);
    ranges.insert(i, (slot, slot));
    // Merge with the next, then the previous range when they touch.
    if i + 1 < ranges.len() && ranges[i].1.saturating_add(1) >= ranges[i + 1].0 {
        ranges[i].1 = ranges[i].1.max(ranges[i + 1].1);
        ranges.remove(i + 1);
    }
    if i > 0 && ranges[i - 1].1.saturating_add(1) >= ranges[i].0 {
        ranges[i - 1].1 = ranges[i - 1].1.max(ranges[i].1);
        ranges.remove(i);
    }
}

/// Set (or clear, with `None`) the owner of a slot in one view.
pub(super) fn set_owner(view: &mut [NodeInfo], slot: u16, owner: Option<&str>) {
    for n in view.iter_mut() {
        let mine = Some(n.id.as_str()) == owner;
        if n.owns(slot) != mine {
            if mine {
                add_slot(&mut n.slots, slot);
            } else {
                remove_slot(&mut n.slots, slot);
            }
        }
    }
}

pub(super) fn owner_in(view: &[NodeInfo], slot: u16) -> Option<String> {
    view.iter().find(|n| n.owns(slot)).map(|n| n.id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_ranges_split_and_merge() {
        let mut r = vec![(0, 10), (20, 30)];
        remove_slot(&mut r, 5);
        assert_eq!(r, vec![(0, 4), (6, 10), (20, 30)]);
        remove_slot(&mut r, 0);
        remove_slot(&mut r, 30);
        assert_eq!(r, vec![(1, 4), (6, 10), (20, 29)]);
        add_slot(&mut r, 5);
        assert_eq!(r, vec![(1, 10), (20, 29)]);
        add_slot(&mut r, 15);
        add_slot(&mut r, 0);
        add_slot(&mut r, 16383);
        assert_eq!(r, vec![(0, 10), (15, 15), (20, 29), (16383, 16383)]);
        remove_slot(&mut r, 15);
        remove_slot(&mut r, 12);
        assert_eq!(r, vec![(0, 10), (20, 29), (16383, 16383)]);
    }
}
