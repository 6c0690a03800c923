//! "did you mean": for a function that does not exist, the names closest to it.

use rhai::EvalAltResult;

/// `did you mean a(), b()?` when `e` is a call of a function that does not exist
/// and some of `names` are close to it.
pub fn did_you_mean(e: &EvalAltResult, names: &[String]) -> Option<String> {
    let mut e = e;
    while let EvalAltResult::ErrorInFunctionCall(_, _, inner, _) = e {
        e = inner;
    }
    let EvalAltResult::ErrorFunctionNotFound(sig, _) = e else {
        return None;
    };
    let wanted = sig.split([' ', '(']).next().unwrap_or_default();
    let close = closest(wanted, names);
    (!close.is_empty()).then(|| format!("did you mean {}?", close.join(", ")))
}

/// The names nearest to a misspelt one (at most two edits away, at most three names).
fn closest(wanted: &str, names: &[String]) -> Vec<String> {
    let limit = if wanted.len() <= 4 { 1 } else { 2 };
    let mut scored: Vec<(usize, &String)> = names
        .iter()
        .map(|n| (edits(wanted, n), n))
        .filter(|(d, n)| *d <= limit && n.as_str() != wanted)
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(3)
        .map(|(_, n)| format!("{n}()"))
        .collect()
}

/// Levenshtein distance.
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(row[j + 1])
            };
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_misspelt_function_gets_the_closest_names() {
        let names: Vec<String> = ["nodes", "node", "masters", "move_slot", "move_slots"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(closest("nodez", &names), ["node()", "nodes()"]);
        assert_eq!(closest("move_slt", &names), ["move_slot()", "move_slots()"]);
        assert!(closest("zzzzzz", &names).is_empty());
    }
}
