//! Reading scripts from the session: `:show NAME` (a script with line numbers, or a
//! function typed into the session) and `:show MODULE::FN` (one function of a
//! script), and the script a `MODULE::` means, for `:show` and `:help` alike.

use crate::repl::failure::{Done, Failure};
use crate::repl::session::Session;
use crate::repl::text::{self, FnSource};
use crate::script::path::{Origin, Script};

impl Session {
    /// `:show NAME`: a script with line numbers (or a function of this session).
    pub(super) fn show(&self, arg: &str) -> Done {
        if let Some((module, function)) = arg.rsplit_once("::") {
            return self.show_function(module, function);
        }
        let script = match self.path.load(arg) {
            Ok(script) => script,
            Err(e) => {
                let mine: Vec<&FnSource> = self.sources.iter().filter(|f| f.name == arg).collect();
                if mine.is_empty() {
                    return Err(Failure::Error(e));
                }
                for f in mine {
                    println!("{}", f.text);
                }
                return Ok(());
            }
        };
        let mut text = script.text;
        let mut note = None;
        if let Origin::File(p) = &script.origin {
            if self.path.is_pinned(p) {
                text = std::fs::read_to_string(p).unwrap_or(text);
                note = Some(format!(
                    "this file does not compile: the session runs the version from before the last :edit until it does (:edit {arg})"
                ));
            }
        }
        eprintln!("{}: {}", script.name, script.origin);
        print!("{}", text::numbered(&text));
        if let Some(n) = note {
            eprintln!("note: {n}");
        }
        Ok(())
    }

    /// `:show MODULE::FN`: the source of a script's function, with its line numbers.
    fn show_function(&self, module: &str, function: &str) -> Done {
        let script = self.module_script(module)?;
        let ast = self
            .engine()
            .compile(&script.text)
            .map_err(|e| does_not_compile(&script, e))?;
        let all = text::fn_sources(&ast, &script.text);
        let found: Vec<&FnSource> = all.iter().filter(|f| f.name == function).collect();
        if found.is_empty() {
            return Err(no_function(
                &script,
                function,
                all.iter().map(|f| f.name.as_str()),
            ));
        }
        eprintln!("{}: {}", script.name, script.origin);
        let last = script.text.lines().count();
        for (i, f) in found.iter().enumerate() {
            if i > 0 {
                println!();
            }
            print!("{}", text::numbered_from(&f.text, f.line, last));
        }
        Ok(())
    }

    /// The script `NAME::` means in `:help` and `:show`: an alias this session
    /// imported, else a name on the script path.
    pub(super) fn module_script(&self, module: &str) -> Result<Script, Failure> {
        let target = self
            .import_list()
            .into_iter()
            .find(|(_, alias)| alias == module)
            .map_or_else(|| module.to_string(), |(p, _)| p);
        self.path.load(&target).map_err(|_| {
            Failure::error(format!(
                "no module named {module}: neither an import of this session nor a script on the path ({})",
                self.path.describe()
            ))
        })
    }
}

/// A script `:show` or `:help` looks into that does not compile.
pub(super) fn does_not_compile(script: &Script, e: impl std::fmt::Display) -> Failure {
    Failure::error(format!(
        "{} ({}) does not compile: {e}",
        script.name, script.origin
    ))
}

/// A script without the function asked for, and the functions it has.
pub(super) fn no_function<'a>(
    script: &Script,
    function: &str,
    names: impl Iterator<Item = &'a str>,
) -> Failure {
    let mut names: Vec<&str> = names.collect();
    names.dedup();
    Failure::error(format!(
        "{} has no function {function}; it has {}",
        script.name,
        names.join(", ")
    ))
}
