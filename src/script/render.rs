//! How a script's error reads on the operator's screen, the same under `slotsmith run`,
//! the operational commands and the REPL: a mistake in a script's own code is the
//! sentence, then where it happened (file:line:col) and the source line; a refusal (a
//! primitive that refuses on the cluster's state, a bundled script's own
//! `throw "sentence"`) is the sentence alone, since it is about the cluster, not the
//! script. A syntax error quotes its line with a caret under the column.

use rhai::{EvalAltResult, ParseError, Position};

use crate::cluster::ClusterError;

/// Source lines longer than this are cut when quoted after `at`.
const QUOTE_MAX: usize = 100;

/// The error at the bottom of a chain of function calls and imports, and where it
/// happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Fault {
    /// The file or script it happened in; `None` for text typed into the REPL.
    pub source: Option<String>,
    /// The innermost function called on the way there, if any.
    pub function: Option<String>,
    pub pos: Position,
    /// The sentence, without Rhai's `(line 3, position 5)`.
    pub message: String,
    /// Raised on purpose (`throw "..."`, a primitive's error) rather than a mistake
    /// in the code.
    pub thrown: bool,
}

impl Fault {
    /// The innermost error of `e`, raised while evaluating the text named `source`.
    pub fn of(e: &EvalAltResult, source: Option<&str>) -> Fault {
        let mut source = source.filter(|s| !s.is_empty()).map(str::to_string);
        let mut function = None;
        let mut e = e;
        loop {
            match e {
                EvalAltResult::ErrorInFunctionCall(f, fsrc, inner, _) => {
                    function = Some(f.clone());
                    if !fsrc.is_empty() {
                        source = Some(fsrc.clone());
                    }
                    e = inner;
                }
                EvalAltResult::ErrorInModule(m, inner, _) => {
                    source = Some(m.clone());
                    e = inner;
                }
                _ => break,
            }
        }
        let pos = e.position();
        let (message, thrown) = match e {
            EvalAltResult::ErrorParsing(p, _) => (format!("syntax error: {p}"), false),
            EvalAltResult::ErrorRuntime(d, _) => {
                // A caught system error rethrown (`catch (e) { throw e; }`) is a map.
                let text = d
                    .read_lock::<rhai::Map>()
                    .and_then(|m| m.get("message").map(|v| v.to_string()))
                    .unwrap_or_else(|| d.to_string());
                (text, d.is_string())
            }
            other => {
                let text = other.to_string();
                let text = text
                    .strip_suffix(&format!(" ({pos})"))
                    .map(str::to_string)
                    .unwrap_or(text);
                (text, false)
            }
        };
        Fault {
            source,
            function,
            pos,
            message,
            thrown,
        }
    }

    /// Whether the operator sees the sentence alone: a refusal (`cause`, the
    /// cluster error a primitive raised, when it is what ended the run), or a
    /// bundled script's own `throw "sentence"` (where it was thrown is for `-v`).
    pub fn is_refusal(&self, cause: Option<&ClusterError>, verbose: bool) -> bool {
        let refused = matches!(
            cause,
            Some(ClusterError::Refused(_) | ClusterError::Stopped { .. })
        );
        let said = self.thrown
            && !verbose
            && self
                .source
                .as_deref()
                .is_some_and(|s| super::path::bundled(s).is_some());
        refused || said
    }

    /// The words the operator sees: the sentence, then (unless `alone`) where it
    /// happened, with `code`, the source line there, when it is known: `at
    /// file:line:col: code` in a named source, `in f(), line N of its definition` in
    /// a function typed into the REPL earlier, `at line N: code` in typed text.
    pub fn words(&self, alone: bool, code: Option<&str>) -> String {
        let msg = self.message.clone();
        let Some(line) = self.pos.line() else {
            return msg;
        };
        if alone {
            return msg;
        }
        let code = code.map(clip).unwrap_or_default();
        match (&self.source, &self.function) {
            (Some(s), _) => format!(
                "{msg}\n  at {}{code}",
                location(Some(s), self.pos).trim_end()
            ),
            (None, Some(f)) => format!("{msg}\n  in {f}(), line {line} of its definition"),
            (None, None) if !code.is_empty() => format!("{msg}\n  at line {line}:{code}"),
            (None, None) => msg,
        }
    }
}

/// ` code`, trimmed, cut after about [`QUOTE_MAX`] characters.
fn clip(code: &str) -> String {
    let code = code.trim();
    match code.char_indices().nth(QUOTE_MAX) {
        Some((i, _)) => format!(" {}...", &code[..i]),
        None => format!(" {code}"),
    }
}

/// `file:line:col: ` (or `line L, column C: ` with no file, or nothing when unknown).
pub fn location(src: Option<&str>, pos: Position) -> String {
    match (src, pos.line(), pos.position()) {
        (Some(s), Some(l), Some(c)) if !s.is_empty() => format!("{s}:{l}:{c}: "),
        (Some(s), Some(l), None) if !s.is_empty() => format!("{s}:{l}: "),
        (_, Some(l), Some(c)) => format!("line {l}, column {c}: "),
        _ => String::new(),
    }
}

/// `file:line:col: syntax error: ...` (no location for text typed into the REPL),
/// then the offending line of `text` with a caret under the column.
pub fn syntax(source: Option<&str>, text: &str, e: &ParseError) -> String {
    let pos = e.position();
    let at = source.map(|s| location(Some(s), pos)).unwrap_or_default();
    format!("{at}syntax error: {}{}", e.err_type(), quote(text, pos))
}

/// Line `pos` of `text` with a caret under the column (nothing when unknown).
fn quote(text: &str, pos: Position) -> String {
    let Some(line) = pos.line() else {
        return String::new();
    };
    let Some(code) = text.lines().nth(line - 1) else {
        return String::new();
    };
    let col = pos.position().unwrap_or(1);
    let num = line.to_string();
    format!(
        "\n {num} | {code}\n {pad} | {caret:>col$}",
        pad = " ".repeat(num.len()),
        caret = "^",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use rhai::Engine;

    fn failure(engine: &Engine, source: Option<&str>, text: &str) -> Fault {
        let mut ast = engine.compile(text).expect("compiles");
        if let Some(s) = source {
            ast.set_source(s);
        }
        let e = engine.eval_ast::<rhai::Dynamic>(&ast).expect_err("fails");
        Fault::of(&e, source)
    }

    #[test]
    fn a_mistake_in_a_file_names_the_file_line_and_code() {
        let engine = Engine::new();
        let text = "let a = 1;\nlet b = a + \"x\" * 2;\n";
        let f = failure(&engine, Some("mine.rhai"), text);
        assert_eq!(f.source.as_deref(), Some("mine.rhai"));
        assert!(!f.thrown);
        let words = f.words(false, text.lines().nth(1));
        let (sentence, at) = words.split_once('\n').expect("two lines");
        assert!(!sentence.contains("line 2"), "{words}");
        assert!(
            at.starts_with("  at mine.rhai:2:") && at.ends_with(": let b = a + \"x\" * 2;"),
            "{words}"
        );
        // Without the code: where alone.
        assert!(f
            .words(false, None)
            .ends_with(&format!("at mine.rhai:2:{}:", f.pos.position().unwrap())));
    }

    #[test]
    fn a_refusal_is_the_sentence_alone() {
        let engine = Engine::new();
        let f = failure(
            &engine,
            Some("mine.rhai"),
            "\nthrow \"slot 100 is not open\";",
        );
        assert!(f.thrown);
        assert_eq!(f.words(true, Some("throw")), "slot 100 is not open");
        let refused = ClusterError::Refused("slot 100 is not open".into());
        assert!(f.is_refusal(Some(&refused), false));
        // A user's script's own throw is not a refusal: where it was thrown helps.
        assert!(!f.is_refusal(None, false));
    }

    #[test]
    fn typed_text_and_session_functions() {
        let engine = Engine::new();
        let one = failure(&engine, None, "1 + \"a\" * 2");
        assert!(one.source.is_none() && one.function.is_none());
        assert_eq!(one.words(false, None), one.message);
        let two = failure(&engine, None, "let x = 1;\nx + \"a\" * 2");
        assert_eq!(
            two.words(false, Some("x + \"a\" * 2")),
            format!("{}\n  at line 2: x + \"a\" * 2", two.message)
        );
        let inner = failure(&engine, None, "fn f() {\n  1 + \"a\" * 2\n}\nf()");
        assert_eq!(inner.function.as_deref(), Some("f"));
        assert_eq!(
            inner.words(false, None),
            format!("{}\n  in f(), line 2 of its definition", inner.message)
        );
    }

    #[test]
    fn a_rethrown_error_map_is_its_message() {
        let engine = Engine::new();
        let f = failure(
            &engine,
            Some("x"),
            "try { throw #{message: \"gone\"}; } catch (e) { throw e; }",
        );
        assert_eq!(f.message, "gone");
    }

    #[test]
    fn long_lines_are_cut_and_syntax_errors_get_a_caret() {
        let long = format!("let x = [{}];", "1, ".repeat(60));
        assert!(clip(&long).ends_with("...") && clip(&long).len() <= 105);
        let engine = Engine::new();
        let text = "let a = 1;\nlet b = [1, 2;\n";
        let e = engine.compile(text).expect_err("does not parse");
        let shown = syntax(Some("s.rhai"), text, &e);
        assert!(shown.starts_with("s.rhai:2:14: syntax error: "), "{shown}");
        assert!(
            shown.ends_with("\n 2 | let b = [1, 2;\n   |              ^"),
            "{shown}"
        );
        let typed = syntax(None, text, &e);
        assert!(typed.starts_with("syntax error: "), "{typed}");
        assert_eq!(location(None, Position::NONE), "");
    }
}
