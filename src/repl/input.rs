//! When a statement typed over several lines is complete: the Rhai parser decides,
//! not bracket counting. Owns no evaluation; the session evaluates what this lets
//! through.

use rhai::{Engine, LexError, ParseErrorType, Position, Scope};

/// What the lines typed so far amount to.
#[derive(Debug, PartialEq, Eq)]
pub enum Input {
    /// Parses, or fails for a reason more lines cannot fix: evaluate it now.
    Complete,
    /// The parser ran out of input (an open brace, an unfinished expression, a
    /// multi-line string): ask for another line.
    Incomplete,
}

/// Whether `text` is ready to evaluate. An error the parser reports at the very end
/// of the text is one more input can fix; any other error is reported now.
pub fn completeness(engine: &Engine, scope: &Scope, text: &str) -> Input {
    if text.trim().is_empty() {
        return Input::Complete;
    }
    let Err(e) = engine.compile_with_scope(scope, text) else {
        return Input::Complete;
    };
    let pos = e.position();
    let incomplete = match e.err_type() {
        ParseErrorType::UnexpectedEOF => true,
        // A doc comment waits for the function it documents.
        ParseErrorType::WrongDocComment => text
            .lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .is_some_and(|l| l.starts_with("///") || (l.starts_with("/**") && !l.ends_with("*/"))),
        // A back-tick string spans lines; a quoted one continues after a final `\`.
        ParseErrorType::BadInput(LexError::UnterminatedString) => {
            char_at(text, pos) == Some('`') || text.trim_end_matches(['\n', '\r']).ends_with('\\')
        }
        _ => at_end(text, pos),
    };
    if incomplete {
        Input::Incomplete
    } else {
        Input::Complete
    }
}

/// Whether `pos` is where the tokenizer's end of input sits (past the last character).
fn at_end(text: &str, pos: Position) -> bool {
    let (Some(line), Some(col)) = (pos.line(), pos.position()) else {
        return false;
    };
    let last_line = text.split('\n').count();
    let last_col = text.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    line > last_line || (line == last_line && col >= last_col)
}

fn char_at(text: &str, pos: Position) -> Option<char> {
    let line = text.split('\n').nth(pos.line()? - 1)?;
    line.chars().nth(pos.position()? - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> Input {
        completeness(&Engine::new(), &Scope::new(), text)
    }

    #[test]
    fn open_constructs_ask_for_more() {
        for text in [
            "fn f(x) {",
            "let x = ",
            "let x = 1 +",
            "foo(1,",
            "[1, 2",
            "#{a: 1,",
            "if x { 1 } else",
            "while true {\n",
            "x.",
            "let s = `two\nlines",
            "let s = \"ab\\",
            "fn f(x) {\n  let y = x * 2;\n",
            "/// Three times x.",
            "/// Three times x.\n/// Really.",
        ] {
            assert_eq!(check(text), Input::Incomplete, "{text:?}");
        }
    }

    #[test]
    fn finished_or_broken_input_is_evaluated() {
        for text in [
            "let x = 1",
            "fn f(x) {\n  x\n}",
            "1 +* 2",
            "}",
            "\"abc",
            "let x = 1; )",
            "/// A doc.\nlet x = 1;",
            "",
        ] {
            assert_eq!(check(text), Input::Complete, "{text:?}");
        }
    }
}
