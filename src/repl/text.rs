//! Script text as the REPL's `:help`, `:show`, `:save` and `:edit` need it: the
//! documented functions of a script (from the compiled functions' metadata), the source
//! text of functions typed into the session, numbered listings, the file `:save`
//! writes, and running the operator's editor. Pure text in, text out, except
//! [`run_editor`].

use std::io::IsTerminal;
use std::path::Path;
use std::process::Stdio;

use rhai::{Engine, FnAccess, Position, AST};

/// One script function as `:help` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FnDoc {
    pub name: String,
    pub params: Vec<String>,
    /// The doc comment without its `///` or `/** */` leaders; empty when there is none.
    pub doc: String,
    pub private: bool,
    /// Line of the body's `{`, to list functions in the order they are defined.
    pub line: usize,
}

impl FnDoc {
    /// `prefix::name(a, b)` (or `name(a, b)` with no prefix).
    pub fn signature(&self, prefix: &str) -> String {
        let sep = if prefix.is_empty() { "" } else { "::" };
        format!("{prefix}{sep}{}({})", self.name, self.params.join(", "))
    }
}

/// Every function an AST defines, in the order of their definitions.
pub fn fn_docs(ast: &AST) -> Vec<FnDoc> {
    let mut out: Vec<FnDoc> = ast
        .shared_lib()
        .iter_script_fn_info()
        // Closures are compiled to functions too.
        .filter(|(_, _, name, ..)| !name.starts_with("anon$"))
        .map(|(_, access, name, _, def)| FnDoc {
            name: name.to_string(),
            params: def.params.iter().map(|p| p.to_string()).collect(),
            doc: doc_text(&def.comments),
            private: access == FnAccess::Private,
            line: def.body.start_position().line().unwrap_or(0),
        })
        .collect();
    out.sort_by(|a, b| (a.line, &a.name).cmp(&(b.line, &b.name)));
    out
}

/// The functions of a script's text (compiled, never run).
pub fn script_docs(engine: &Engine, text: &str) -> Result<Vec<FnDoc>, String> {
    engine
        .compile(text)
        .map(|ast| fn_docs(&ast))
        .map_err(|e| e.to_string())
}

/// Doc comments as Rhai keeps them (`/// line` merged with line breaks, or one
/// `/** block */`), as plain text.
pub fn doc_text<S: AsRef<str>>(comments: &[S]) -> String {
    let mut lines: Vec<String> = Vec::new();
    for c in comments {
        let c = c.as_ref();
        if let Some(block) = c.strip_prefix("/**") {
            let block = block.strip_suffix("*/").unwrap_or(block);
            for l in block.lines() {
                let l = l.trim();
                let l = l
                    .strip_prefix('*')
                    .map_or(l, |r| r.strip_prefix(' ').unwrap_or(r));
                lines.push(l.to_string());
            }
        } else {
            for l in c.lines() {
                let l = l.trim_start();
                let l = l.strip_prefix("///").unwrap_or(l);
                lines.push(l.strip_prefix(' ').unwrap_or(l).trim_end().to_string());
            }
        }
    }
    while lines.first().is_some_and(|l| l.is_empty()) {
        lines.remove(0);
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines.join("\n")
}

/// The source of one function typed into the session (or loaded with `:load`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FnSource {
    pub name: String,
    pub arity: usize,
    /// Its doc comment and definition, from `fn` (or `private fn`) to the closing `}`.
    pub text: String,
    /// The line of the text it came from that its first line (the doc comment's, when
    /// there is one just above the definition) is.
    pub line: usize,
}

/// The source text of every function `ast` (compiled from `text`) defines.
pub fn fn_sources(ast: &AST, text: &str) -> Vec<FnSource> {
    let mut out: Vec<(usize, FnSource)> = Vec::new();
    for (_, _, name, arity, def) in ast.shared_lib().iter_script_fn_info() {
        if name.starts_with("anon$") {
            continue;
        }
        let (Some(open), Some(close)) = (
            offset(text, def.body.start_position()),
            offset(text, def.body.end_position()),
        ) else {
            continue;
        };
        let Some(start) = definition_start(&text[..open], name) else {
            continue;
        };
        let Some(end) = text[close..].chars().next().map(|c| close + c.len_utf8()) else {
            continue;
        };
        let mut source = String::new();
        for c in def.comments.iter() {
            source.push_str(c);
            source.push('\n');
        }
        let doc_lines = source.lines().count();
        source.push_str(&text[start..end]);
        let line = text[..start].matches('\n').count() + 1;
        out.push((
            start,
            FnSource {
                name: name.to_string(),
                arity,
                text: source,
                line: line.saturating_sub(doc_lines).max(1),
            },
        ));
    }
    out.sort_by_key(|(start, _)| *start);
    out.into_iter().map(|(_, f)| f).collect()
}

/// Where the `fn NAME(` (or `private fn NAME(`) whose body starts at the end of
/// `before` begins.
fn definition_start(before: &str, name: &str) -> Option<usize> {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    for (i, _) in before.rmatch_indices("fn") {
        if before[..i].chars().next_back().is_some_and(ident) {
            continue;
        }
        let rest = &before[i + 2..];
        if !rest.starts_with(char::is_whitespace) {
            continue;
        }
        let Some(after) = rest.trim_start().strip_prefix(name) else {
            continue;
        };
        if !after.trim_start().starts_with('(') {
            continue;
        }
        let head = before[..i].trim_end();
        return Some(match head.strip_suffix("private") {
            Some(h) if !h.chars().next_back().is_some_and(ident) => h.len(),
            _ => i,
        });
    }
    None
}

/// The byte offset of a position (line and column count from 1, columns in characters).
pub fn offset(text: &str, pos: Position) -> Option<usize> {
    let (line, col) = (pos.line()?, pos.position()?);
    let mut start = 0;
    for _ in 1..line {
        start += text[start..].find('\n')? + 1;
    }
    let line_text = text[start..].split('\n').next().unwrap_or_default();
    line_text
        .char_indices()
        .nth(col - 1)
        .map(|(i, _)| start + i)
}

/// A script with line numbers, as `:show` prints it.
pub fn numbered(text: &str) -> String {
    numbered_from(text, 1, text.lines().count())
}

/// Lines numbered from `first`, the numbers as wide as `last`'s.
pub fn numbered_from(text: &str, first: usize, last: usize) -> String {
    let width = last.max(1).to_string().len();
    text.lines()
        .enumerate()
        .map(|(i, l)| format!("{:>width$}  {l}\n", first + i))
        .collect()
}

/// The first line of a file `:save` writes; a file that starts with it may be
/// replaced by the next `:save` of the same name.
pub const SAVED_MARK: &str = "// Saved from a slotsmith repl session";

/// The text of a script holding the session's functions, with the imports (`path`,
/// `alias`) that those functions use.
pub fn saved_script(name: &str, imports: &[(String, String)], functions: &[FnSource]) -> String {
    let mut out = format!(
        "{SAVED_MARK} with `:save {name}`; `:save {name}` again replaces this file.\n\
         // Use it with `import \"{name}\" as m;` then `m::f()`, or `:load {name}` in the REPL.\n"
    );
    let used: Vec<&(String, String)> = imports
        .iter()
        .filter(|(_, alias)| {
            let call = format!("{alias}::");
            functions.iter().any(|f| f.text.contains(&call))
        })
        .collect();
    if !used.is_empty() {
        out.push('\n');
        for (path, alias) in used {
            out.push_str(&format!("import {path:?} as {alias};\n"));
        }
    }
    for f in functions {
        out.push('\n');
        out.push_str(&f.text);
        out.push('\n');
    }
    out
}

/// Whether a name can be a user script: letters, digits, `_`, `-`, and `/` between
/// folder names.
pub fn valid_name(name: &str) -> bool {
    let name = name.strip_suffix(".rhai").unwrap_or(name);
    !name.is_empty()
        && name.split('/').all(|part| {
            !part.is_empty()
                && part != ".."
                && part
                    .chars()
                    .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '.')
                && !part.starts_with('.')
        })
}

/// Open `file` in `$VISUAL`, else `$EDITOR`, else `vi`, on this terminal, and wait.
/// The variable may hold arguments (`code --wait`): it is run by `sh`.
pub fn run_editor(file: &Path) -> Result<(), String> {
    let editor = ["VISUAL", "EDITOR"]
        .iter()
        .filter_map(|v| std::env::var(v).ok())
        .find(|e| !e.trim().is_empty())
        .unwrap_or_else(|| "vi".to_string());
    // With statements piped in, the editor must not read (and swallow) the rest of
    // them: it gets the terminal if there is one, else nothing.
    let stdin = if std::io::stdin().is_terminal() {
        Stdio::inherit()
    } else {
        std::fs::File::open("/dev/tty").map_or_else(|_| Stdio::null(), Stdio::from)
    };
    let status = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!("{editor} \"$1\""))
        .arg("sh")
        .arg(file)
        .stdin(stdin)
        .status()
        .map_err(|e| format!("cannot start the editor ({editor}): {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!(
            "the editor ({editor}) ended with {}",
            match status.code() {
                Some(c) => format!("exit code {c}"),
                None => "a signal".to_string(),
            }
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "let a = 1;\n/// Three times x.\n/// Really.\nfn triple(x) {\n    x * 3\n}\nprivate  fn helper(fname, y) { `${fname} ${y}` }\n/** Block\n * doc. */\nfn nothing() {}\nfn accent(s) { \"é\" + s + \"é}\" }\n";

    #[test]
    fn sources_run_from_fn_to_the_closing_brace() {
        let ast = Engine::new().compile(TEXT).unwrap();
        let got = fn_sources(&ast, TEXT);
        let lines: Vec<usize> = got.iter().map(|f| f.line).collect();
        assert_eq!(lines, vec![2, 7, 8, 11]);
        let texts: Vec<(&str, usize, &str)> = got
            .iter()
            .map(|f| (f.name.as_str(), f.arity, f.text.as_str()))
            .collect();
        assert_eq!(
            texts,
            vec![
                (
                    "triple",
                    1,
                    "/// Three times x.\n/// Really.\nfn triple(x) {\n    x * 3\n}"
                ),
                (
                    "helper",
                    2,
                    "private  fn helper(fname, y) { `${fname} ${y}` }"
                ),
                ("nothing", 0, "/** Block\n * doc. */\nfn nothing() {}"),
                ("accent", 1, "fn accent(s) { \"é\" + s + \"é}\" }"),
            ]
        );
    }

    #[test]
    fn docs_come_from_the_metadata() {
        let docs = script_docs(&Engine::new(), TEXT).unwrap();
        let summary: Vec<(String, &str, bool)> = docs
            .iter()
            .map(|d| (d.signature("m"), d.doc.as_str(), d.private))
            .collect();
        assert_eq!(
            summary,
            vec![
                ("m::triple(x)".to_string(), "Three times x.\nReally.", false),
                ("m::helper(fname, y)".to_string(), "", true),
                ("m::nothing()".to_string(), "Block\ndoc.", false),
                ("m::accent(s)".to_string(), "", false),
            ]
        );
    }

    #[test]
    fn every_bundled_step_is_documented() {
        let mut engine = Engine::new();
        engine.set_max_expr_depths(256, 256);
        let mut missing = Vec::new();
        for (name, text) in crate::script::path::BUNDLED {
            let docs = script_docs(&engine, text).unwrap();
            for d in docs.iter().filter(|d| !d.private && d.doc.is_empty()) {
                missing.push(d.signature(name));
            }
        }
        assert!(missing.is_empty(), "no doc comment: {missing:?}");
    }

    #[test]
    fn saved_scripts_compile_and_keep_the_imports_they_use() {
        let ast = Engine::new().compile(TEXT).unwrap();
        let mut fns = fn_sources(&ast, TEXT);
        fns.push(FnSource {
            name: "share".into(),
            arity: 0,
            text: "fn share() { rb::plan(()).expected }".into(),
            line: 1,
        });
        let imports = vec![
            ("rebalance".to_string(), "rb".to_string()),
            ("fix".to_string(), "fix".to_string()),
        ];
        let text = saved_script("mine", &imports, &fns);
        assert!(text.starts_with(SAVED_MARK), "{text}");
        assert!(text.contains("import \"rebalance\" as rb;\n"), "{text}");
        assert!(!text.contains("as fix"), "{text}");
        let docs = script_docs(&Engine::new(), &text).unwrap();
        assert_eq!(docs.len(), 5, "{text}");
        assert_eq!(docs[0].doc, "Three times x.\nReally.");
    }

    #[test]
    fn listings_and_names() {
        assert_eq!(numbered("a\nb\n"), "1  a\n2  b\n");
        assert!(numbered(&"x\n".repeat(10)).starts_with(" 1  x\n"));
        assert!(valid_name("mine") && valid_name("lib/my-plan") && valid_name("x.rhai"));
        assert!(
            !valid_name("../x") && !valid_name("/etc/x") && !valid_name("") && !valid_name("a b")
        );
    }
}
