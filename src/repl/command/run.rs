//! Running scripts from the session: `:run NAME [ARGS]` (as `slotsmith run` does),
//! `:load FILE` (its definitions stay in the session), and `:reload`, which reads the
//! topology and the scripts again.

use crate::repl::failure::{Done, Failure};
use crate::repl::session::Session;

/// The script name and its arguments, from what follows `:run`: words split at
/// spaces, with `"..."` and `'...'` kept whole. `None` when no name is given.
pub fn arguments(text: &str) -> Option<(String, Vec<String>)> {
    let mut words = split_args(text);
    if words.is_empty() {
        return None;
    }
    let name = words.remove(0);
    Some((name, words))
}

impl Session {
    /// `:run NAME [ARGS]`: the script with `args` set, as `slotsmith run` runs it.
    pub(super) fn run_script(&mut self, name: &str, args: &[String]) -> Done {
        let script = self.path.load(name).map_err(Failure::Error)?;
        crate::interrupt::clear();
        let outcome = self.runner.run(&script, args);
        let done = match outcome {
            Ok(_) if crate::interrupt::requested() => Err(Failure::Said("interrupted".into())),
            Ok(o) => {
                if let Some(m) = &o.message {
                    eprintln!("{m}");
                }
                // A script prints its own report; its value is for JSON, as with `slotsmith run`.
                if self.json {
                    self.print(&o.value);
                }
                match o.code {
                    0 => Ok(()),
                    code => Err(Failure::Said(format!(
                        "({name} ended with exit code {code})"
                    ))),
                }
            }
            Err(e) => Err(Failure::error(e.to_string())),
        };
        // Between lines nothing moves: other runs may change slots again.
        self.base.release_lease();
        crate::interrupt::clear();
        done
    }

    /// `:load FILE`: evaluate a script into this session.
    pub(super) fn load(&mut self, file: &str) -> Done {
        let script = self.path.load(file).map_err(Failure::Error)?;
        self.evaluate(Some(&script.name), &script.text)
    }

    /// `:reload`: scripts kept at an earlier text that compile again are used again,
    /// every script is read again at its next import, and the topology is read again.
    pub(super) fn reload(&mut self) -> Done {
        self.release_pins();
        self.reload_scripts();
        let summary = self.refresh_topology().map_err(Failure::Error)?;
        println!("reloaded: {summary}; scripts are read again at their next import");
        Ok(())
    }
}

/// Words split at spaces, with `"..."` and `'...'` kept whole.
fn split_args(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word: Option<String> = None;
    let mut quote: Option<char> = None;
    for c in text.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => word.get_or_insert_with(String::new).push(c),
            None if c == '"' || c == '\'' => {
                quote = Some(c);
                word.get_or_insert_with(String::new);
            }
            None if c.is_whitespace() => out.extend(word.take()),
            None => word.get_or_insert_with(String::new).push(c),
        }
    }
    out.extend(word);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_split_like_a_shell() {
        assert_eq!(split_args("fix --replace"), vec!["fix", "--replace"]);
        assert_eq!(split_args(" a  \"b c\" 'd'  "), vec!["a", "b c", "d"]);
        assert_eq!(split_args("x \"\""), vec!["x", ""]);
        assert!(split_args("  ").is_empty());
        assert_eq!(
            arguments("rebalance --weight 'a b=2'"),
            Some(("rebalance".into(), vec!["--weight".into(), "a b=2".into()]))
        );
        assert_eq!(arguments(""), None);
    }
}
