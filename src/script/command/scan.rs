//! Finding a script's declaration without parsing the rest of it: every command line
//! reads the declaration of every command on the script path, and parsing whole
//! scripts (hundreds of lines each) made every run pay for all of them. The scan
//! skips comments, strings and bracketed text to find `const COMMAND = ...;` at the
//! top level; the caller parses that statement alone, and the whole script only when
//! the scan finds nothing or the statement does not parse alone (so that errors keep
//! their line and column).

/// The text of the top-level statement `const <name> = ...;`, `;` included.
pub fn statement<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    let mut start: Option<usize> = None;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                // Block comments nest in Rhai.
                let mut nested = 0usize;
                while i < b.len() {
                    if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
                        nested += 1;
                        i += 2;
                    } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
                        nested -= 1;
                        i += 2;
                        if nested == 0 {
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            q @ (b'"' | b'\'' | b'`') => {
                i += 1;
                while i < b.len() && b[i] != q {
                    i += if b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'{' | b'[' | b'(' => depth += 1,
            b'}' | b']' | b')' => depth = depth.checked_sub(1)?,
            b';' if depth == 0 => {
                if let Some(s) = start {
                    return Some(&text[s..=i]);
                }
            }
            b'c' if depth == 0 && start.is_none() && starts_const(b, i, name) => start = Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Whether `const <name>` (then a space or `=`) begins at `i`, at a word boundary.
fn starts_const(b: &[u8], i: usize, name: &str) -> bool {
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    if i > 0 && word(b[i - 1]) {
        return false;
    }
    let rest = &b[i..];
    let Some(after) = rest.strip_prefix(b"const") else {
        return false;
    };
    let spaces = after.iter().take_while(|c| c.is_ascii_whitespace()).count();
    if spaces == 0 {
        return false;
    }
    let after = &after[spaces..];
    after.starts_with(name.as_bytes()) && after.get(name.len()).is_some_and(|c| !word(*c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_declaration_is_found_past_comments_strings_and_bodies() {
        let text = r#"
// const COMMAND = #{ in: "a comment" };
/* const COMMAND = 1; /* nested */ still a comment */
fn f() { let s = "const COMMAND = 2;"; const COMMAND = 3; }
const COMMANDS = 4;
const COMMAND = #{ summary: "a; b", help: `x}`, options: [#{name: "n"}] };
fn main(o) {}
"#;
        assert_eq!(
            statement(text, "COMMAND"),
            Some(r#"const COMMAND = #{ summary: "a; b", help: `x}`, options: [#{name: "n"}] };"#)
        );
        assert_eq!(statement("fn main(o) {}", "COMMAND"), None);
        assert_eq!(statement("const COMMAND = #{", "COMMAND"), None);
    }
}
