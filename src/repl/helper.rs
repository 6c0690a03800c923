//! The line editor's helper: tab completion (primitives, keywords, variables, script
//! names after `:run`, node ids and addresses inside strings) and hints from history.
//! It only suggests; the session owns what the words are and refreshes them.

use std::borrow::Cow;

use rustyline::completion::{Completer, FilenameCompleter, Pair};
use rustyline::highlight::Highlighter;
use rustyline::hint::{Hinter, HistoryHinter};
use rustyline::{Context, Helper, Validator};

use super::command::COMMANDS;

/// Rhai's keywords and the built-in functions most used at the prompt.
const KEYWORDS: &[&str] = &[
    "let",
    "const",
    "fn",
    "if",
    "else",
    "while",
    "loop",
    "for",
    "in",
    "do",
    "until",
    "break",
    "continue",
    "return",
    "throw",
    "try",
    "catch",
    "import",
    "export",
    "as",
    "private",
    "switch",
    "true",
    "false",
    "this",
    "global",
    "Fn",
    "call",
    "curry",
    "is_def_var",
    "is_def_fn",
    "type_of",
    "print",
    "debug",
    "len",
    "push",
    "keys",
    "values",
    "filter",
    "map",
    "reduce",
    "contains",
    "sort",
    "to_string",
    "to_json",
    "parse_int",
    "range",
    "sum",
];

/// See the module docs. The word lists are filled by the session.
#[derive(Helper, Validator)]
pub struct ReplHelper {
    /// Primitive and helper names.
    pub functions: Vec<String>,
    /// Variables in scope and functions the session defined.
    pub variables: Vec<String>,
    /// Node ids and `host:port` of the cluster.
    pub nodes: Vec<String>,
    /// Names on the script path.
    pub scripts: Vec<String>,
    /// `alias::function` for every module the session imported.
    pub module_functions: Vec<String>,
    /// What `:help` knows: primitives, `script::function`, the session's functions.
    pub help_words: Vec<String>,
    files: FilenameCompleter,
    hinter: HistoryHinter,
}

impl ReplHelper {
    pub fn new() -> Self {
        ReplHelper {
            functions: Vec::new(),
            variables: Vec::new(),
            nodes: Vec::new(),
            scripts: Vec::new(),
            module_functions: Vec::new(),
            help_words: Vec::new(),
            files: FilenameCompleter::new(),
            hinter: HistoryHinter::new(),
        }
    }
}

impl Default for ReplHelper {
    fn default() -> Self {
        Self::new()
    }
}

fn pairs<'a>(words: impl IntoIterator<Item = &'a str>, prefix: &str) -> Vec<Pair> {
    let mut out: Vec<String> = words
        .into_iter()
        .filter(|w| w.starts_with(prefix))
        .map(str::to_string)
        .collect();
    out.sort();
    out.dedup();
    out.into_iter()
        .map(|w| Pair {
            display: w.clone(),
            replacement: w,
        })
        .collect()
}

/// Where the string literal the cursor is in starts (after its quote), if it is in one.
fn open_string(before: &str) -> Option<usize> {
    let mut open: Option<(char, usize)> = None;
    let mut escaped = false;
    for (i, c) in before.char_indices() {
        match open {
            Some(_) if escaped => escaped = false,
            Some((_, _)) if c == '\\' => escaped = true,
            Some((q, _)) if c == q => open = None,
            Some(_) => {}
            None if c == '"' || c == '`' => open = Some((c, i + 1)),
            None if c == '/' && before[i..].starts_with("//") => return None,
            None => {}
        }
    }
    open.map(|(_, start)| start)
}

impl Completer for ReplHelper {
    type Candidate = Pair;

    fn complete(
        &self,
        line: &str,
        pos: usize,
        ctx: &Context<'_>,
    ) -> rustyline::Result<(usize, Vec<Pair>)> {
        let before = &line[..pos];
        if let Some(rest) = before.strip_prefix(':') {
            let Some((cmd, arg)) = rest.split_once(' ') else {
                return Ok((0, pairs(COMMANDS.iter().map(|c| c.name), before)));
            };
            let arg = arg.trim_start();
            let start = pos - arg.len();
            let candidates = match cmd {
                "run" | "edit" | "show" if !arg.contains(' ') => {
                    pairs(self.scripts.iter().map(String::as_str), arg)
                }
                "help" => pairs(
                    self.functions
                        .iter()
                        .chain(&self.help_words)
                        .map(String::as_str),
                    arg,
                ),
                "dry-run" | "json" => pairs(["on", "off"], arg),
                "load" => return self.files.complete(line, pos, ctx),
                _ => Vec::new(),
            };
            return Ok((start, candidates));
        }
        if let Some(start) = open_string(before) {
            return Ok((
                start,
                pairs(self.nodes.iter().map(String::as_str), &before[start..]),
            ));
        }
        let mut start = word_start(before);
        // `fix::pro` completes from the functions of the module imported as `fix`.
        if before[..start].ends_with("::") {
            start = word_start(&before[..start - 2]);
            let word = &before[start..];
            return Ok((
                start,
                pairs(self.module_functions.iter().map(String::as_str), word),
            ));
        }
        let word = &before[start..];
        let words = self
            .functions
            .iter()
            .chain(&self.variables)
            .map(String::as_str)
            .chain(KEYWORDS.iter().copied());
        Ok((start, pairs(words, word)))
    }
}

/// Where the identifier that `text` ends with starts.
fn word_start(text: &str) -> usize {
    text.char_indices()
        .rev()
        .take_while(|(_, c)| c.is_alphanumeric() || *c == '_')
        .last()
        .map_or(text.len(), |(i, _)| i)
}

impl Hinter for ReplHelper {
    type Hint = String;

    fn hint(&self, line: &str, pos: usize, ctx: &Context<'_>) -> Option<String> {
        // A multi-line history entry would not fit after the cursor.
        self.hinter
            .hint(line, pos, ctx)
            .map(|h| h.lines().next().unwrap_or_default().to_string())
            .filter(|h| !h.is_empty())
    }
}

impl Highlighter for ReplHelper {
    fn highlight_hint<'h>(&self, hint: &'h str) -> Cow<'h, str> {
        Cow::Owned(format!("\x1b[2m{hint}\x1b[0m"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rustyline::history::DefaultHistory;

    fn complete(h: &ReplHelper, line: &str) -> (usize, Vec<String>) {
        let history = DefaultHistory::new();
        let ctx = Context::new(&history);
        let (start, c) = h.complete(line, line.len(), &ctx).unwrap();
        (start, c.into_iter().map(|p| p.replacement).collect())
    }

    fn helper() -> ReplHelper {
        let mut h = ReplHelper::new();
        h.functions = vec![
            "countkeysinslot".into(),
            "check".into(),
            "check_text".into(),
        ];
        h.variables = vec!["counted".into()];
        h.nodes = vec![
            "127.0.0.1:7001".into(),
            "07c37dfeb2352e0b2e5c7d6e3e9aa3b1a1d2c3e4".into(),
        ];
        h.scripts = vec!["fix".into(), "rebalance".into()];
        h.module_functions = vec!["fix::problems".into(), "fix::plan".into()];
        h.help_words = vec!["fix::".into(), "fix::plan".into(), "fix::problems".into()];
        h
    }

    #[test]
    fn words_from_every_source() {
        let h = helper();
        assert_eq!(
            complete(&h, "countkeysin"),
            (0, vec!["countkeysinslot".into()])
        );
        assert_eq!(
            complete(&h, "let n = coun").1,
            vec!["counted", "countkeysinslot"]
        );
        assert_eq!(complete(&h, "whi"), (0, vec!["while".into()]));
        assert_eq!(
            complete(&h, "let p = fix::pr"),
            (8, vec!["fix::problems".into()])
        );
    }

    #[test]
    fn nodes_inside_strings() {
        let h = helper();
        assert_eq!(
            complete(&h, "node(\"127"),
            (6, vec!["127.0.0.1:7001".into()])
        );
        assert_eq!(complete(&h, "node(\"07c3").1.len(), 1);
        assert_eq!(
            complete(&h, "node(\"a\", ch").1,
            vec!["check", "check_text"]
        );
    }

    #[test]
    fn commands_and_their_arguments() {
        let h = helper();
        assert_eq!(complete(&h, ":re").1, vec![":reload"]);
        assert_eq!(complete(&h, ":run re"), (5, vec!["rebalance".into()]));
        assert_eq!(complete(&h, ":dry-run o").1, vec!["off", "on"]);
        assert_eq!(complete(&h, ":edit fi"), (6, vec!["fix".into()]));
        assert_eq!(complete(&h, ":show re").1, vec!["rebalance"]);
        assert_eq!(complete(&h, ":help fix::pl"), (6, vec!["fix::plan".into()]));
    }
}
