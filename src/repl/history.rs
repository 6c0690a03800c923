//! The REPL's history: where it is kept, and what is kept of each statement: the
//! statement as typed, with secrets masked as the journal masks them.

use std::path::PathBuf;

use rustyline::history::DefaultHistory;
use rustyline::Editor;

use super::helper::ReplHelper;
use crate::cluster::conn::secret_mask;

/// `$XDG_STATE_HOME/slotsmith/history`, else `~/.local/state/slotsmith/history`.
pub fn history_path() -> Option<PathBuf> {
    crate::xdg::dir(crate::xdg::Base::State, "history")
}

/// Add a statement (its secrets masked) to the history and the history file at once,
/// so a session that is killed keeps what was typed.
pub fn remember(
    editor: &mut Editor<ReplHelper, DefaultHistory>,
    path: Option<&PathBuf>,
    entry: &str,
) {
    if editor.add_history_entry(masked(entry)).unwrap_or(false) {
        if let Some(p) = path {
            save_history(editor, p);
        }
    }
}

pub fn save_history(editor: &mut Editor<ReplHelper, DefaultHistory>, path: &PathBuf) {
    if let Some(dir) = path.parent() {
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = editor.append_history(path) {
        eprintln!(
            "warning: cannot save the history to {}: {e}",
            path.display()
        );
    }
}

/// A statement with the secrets among its string literals masked (`"masterauth",
/// "pw"` keeps `"masterauth", "***"`; `">EvePass123"` after `"ACL", "SETUSER", name`
/// becomes `">***"`), by the rules of [`secret_mask`].
pub fn masked(text: &str) -> String {
    // Every string literal: where its contents start and end.
    let mut spans: Vec<(usize, usize)> = Vec::new();
    let mut chars = text.char_indices();
    while let Some((i, c)) = chars.next() {
        // A character literal ('"', '\'') must not start a string.
        if c == '\'' {
            if let Some((_, '\\')) = chars.next() {
                chars.next();
            }
            chars.next();
            continue;
        }
        if c != '"' && c != '`' {
            continue;
        }
        let start = i + 1;
        let mut end = text.len();
        while let Some((j, d)) = chars.next() {
            if d == '\\' {
                chars.next();
            } else if d == c {
                end = j;
                break;
            }
        }
        spans.push((start, end));
    }
    let words: Vec<&str> = spans.iter().map(|(a, b)| &text[*a..*b]).collect();
    let mask = secret_mask(&words);
    let mut out = String::with_capacity(text.len());
    let mut at = 0;
    for ((a, b), keep) in spans.iter().zip(mask) {
        if let Some(keep) = keep {
            let word = &text[*a..*b];
            out.push_str(&text[at..*a]);
            out.push_str(word.get(..keep).unwrap_or_default());
            out.push_str("***");
            at = *b;
        }
    }
    out.push_str(&text[at..]);
    out
}

#[cfg(test)]
mod tests {
    use super::masked;

    #[test]
    fn secrets_are_masked_in_history() {
        assert_eq!(
            masked(r#"command(n, "CONFIG", "SET", "masterauth", "s3cret")"#),
            r#"command(n, "CONFIG", "SET", "masterauth", "***")"#
        );
        assert_eq!(
            masked(r#"command(n, ["ACL", "SETUSER", "eve", "on", ">EvePass123", "~*"])"#),
            r#"command(n, ["ACL", "SETUSER", "eve", "on", ">***", "~*"])"#
        );
        assert_eq!(masked("nodes().len()"), "nodes().len()");
        assert_eq!(
            masked(r#"let q = '"'; command(n, "AUTH", "pw")"#),
            r#"let q = '"'; command(n, "AUTH", "***")"#
        );
        assert_eq!(
            masked(r#"print("a \" quote"); command(n, "AUTH", "pw")"#),
            r#"print("a \" quote"); command(n, "AUTH", "***")"#
        );
    }
}
