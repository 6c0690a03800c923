//! `:help`: the primitives and helpers, the commands, the bundled modules and the
//! session's own functions; `:help NAME` for one of them in full; `:help MODULE::`
//! and `:help MODULE::FN` for the functions of a script. Nothing is run, only compiled.

use super::listing::{does_not_compile, no_function};
use super::COMMANDS;
use crate::repl::failure::{Done, Failure};
use crate::repl::session::Session;
use crate::repl::text::{self, FnDoc};
use crate::script::path;

impl Session {
    /// `:help [NAME]`.
    pub(super) fn help(&self, arg: &str) -> Done {
        if arg.is_empty() {
            self.help_all();
            return Ok(());
        }
        let docs = crate::script::api::docs(self.engine());
        let name = arg.trim_end_matches("()");
        let command = format!(":{}", name.trim_start_matches(':'));
        if let Some(c) = COMMANDS.iter().find(|c| c.name == command) {
            println!("{}  {}", c.name, c.help);
            return Ok(());
        }
        if let Some((module, function)) = name.rsplit_once("::") {
            return self.help_module(module, function);
        }
        let matching: Vec<_> = docs.iter().filter(|d| d.name == name).collect();
        if matching.is_empty() {
            let mine: Vec<FnDoc> = text::fn_docs(&self.functions)
                .into_iter()
                .filter(|d| d.name == name)
                .collect();
            if !mine.is_empty() {
                print_docs(&mine, "", "defined in this session");
                return Ok(());
            }
            if matches!(self.path.find(name), Ok(Some(_))) {
                return self.help_module(name, "");
            }
            let mut close: Vec<&str> = docs
                .iter()
                .map(|d| d.name.as_str())
                .filter(|n| n.contains(name))
                .collect();
            close.dedup();
            let hint = if close.is_empty() {
                ":help lists them".to_string()
            } else {
                format!("did you mean {}?", close.join(", "))
            };
            return Err(Failure::error(format!("no primitive, command, function or script named {name}; {hint} (:help NAME:: for a script's functions)")));
        }
        for d in matching {
            println!("{}\n    {}", d.signature, d.doc.replace('\n', "\n    "));
        }
        Ok(())
    }

    /// `:help` alone: everything, one line each.
    fn help_all(&self) {
        let docs = crate::script::api::docs(self.engine());
        let width = docs.iter().map(|d| d.name.len()).max().unwrap_or(0);
        println!("Primitives and helpers (:help NAME for one in full):");
        for (i, d) in docs.iter().enumerate() {
            if i > 0 && docs[i - 1].name == d.name {
                continue;
            }
            // Of several overloads, the fullest doc says what the function is for.
            let doc = docs[i..]
                .iter()
                .take_while(|o| o.name == d.name)
                .map(|o| o.doc.as_str())
                .max_by_key(|doc| doc.len())
                .unwrap_or_default();
            println!("  {:width$}  {}", d.name, summary(doc));
        }
        println!("\nCommands:");
        let width = COMMANDS.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for c in COMMANDS {
            println!("  {:width$}  {}", c.name, c.help);
        }
        let modules: Vec<&str> = path::BUNDLED
            .iter()
            .map(|(n, _)| *n)
            .filter(|n| !n.starts_with("lib/"))
            .collect();
        println!(
            "\nModules (import \"NAME\" as NAME; :help NAME:: lists its functions, :help NAME::FN shows one):\n  {}",
            modules.join(", ")
        );
        if !self.sources.is_empty() {
            let mut mine: Vec<&str> = self.sources.iter().map(|f| f.name.as_str()).collect();
            mine.dedup();
            println!(
                "\nDefined in this session (:save NAME keeps them):\n  {}",
                mine.join(", ")
            );
        }
        println!("\nTab completes names, node ids inside strings, scripts after :run, :edit and :show,\nand module functions after :help.");
        println!("A statement left open continues on the next line; a blank line ends it.");
    }

    /// `:help MODULE::` (every public function of a script, with the first sentence of
    /// its doc) and `:help MODULE::FN` (its signatures and whole doc). MODULE is an
    /// alias the session imported or a script name.
    fn help_module(&self, module: &str, function: &str) -> Done {
        let script = self.module_script(module)?;
        let target = script.name.trim_end_matches(".rhai").to_string();
        let docs = text::script_docs(self.engine(), &script.text)
            .map_err(|e| does_not_compile(&script, e))?;
        let public: Vec<FnDoc> = docs.into_iter().filter(|d| !d.private).collect();
        if function.is_empty() {
            let alias = target.rsplit('/').next().unwrap_or(&target);
            println!(
                "{} ({}), as a module: import \"{target}\" as {alias};",
                script.name, script.origin
            );
            let sigs: Vec<String> = public.iter().map(|d| d.signature(module)).collect();
            let width = sigs.iter().map(String::len).max().unwrap_or(0);
            for (d, sig) in public.iter().zip(&sigs) {
                println!("  {sig:width$}  {}", summary(&d.doc));
            }
            if public.is_empty() {
                println!("  (no public functions)");
            }
            return Ok(());
        }
        let matching: Vec<FnDoc> = public
            .iter()
            .filter(|d| d.name == function)
            .cloned()
            .collect();
        if matching.is_empty() {
            return Err(no_function(
                &script,
                function,
                public.iter().map(|d| d.name.as_str()),
            ));
        }
        print_docs(&matching, module, &format!("in {}", script.name));
        Ok(())
    }
}

/// Each function's signature, then its doc indented (or where it comes from).
fn print_docs(docs: &[FnDoc], prefix: &str, undocumented: &str) {
    for d in docs {
        let doc = if d.doc.is_empty() {
            format!("({undocumented}; no doc comment)")
        } else {
            d.doc.clone()
        };
        println!(
            "{}\n    {}",
            d.signature(prefix),
            doc.replace('\n', "\n    ")
        );
    }
}

/// The first sentence of a doc, on one line and at most about 100 characters.
fn summary(doc: &str) -> String {
    const MAX: usize = 100;
    let flat = doc.split_whitespace().collect::<Vec<_>>().join(" ");
    let first = match flat.find(". ") {
        Some(i) => &flat[..=i],
        None => flat.as_str(),
    };
    if first.chars().count() <= MAX {
        return first.to_string();
    }
    let cut: String = first.chars().take(MAX).collect();
    let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head);
    format!("{}...", cut.trim_end_matches([',', ';', ':']))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn help_summaries_are_one_sentence() {
        assert_eq!(
            summary("Pause for ms\nmilliseconds."),
            "Pause for ms milliseconds."
        );
        assert_eq!(summary("One thing. Another thing."), "One thing.");
        let long = summary(&"word ".repeat(40));
        assert!(long.ends_with("...") && long.len() <= 103, "{long}");
    }
}
