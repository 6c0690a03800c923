//! Writing scripts from the session: `:edit NAME` (the operator's editor on a script
//! of the path, then the session uses the new text, or keeps the old one while the
//! file does not compile) and `:save NAME` (the session's functions as a script).

use crate::repl::failure::{Done, Failure};
use crate::repl::session::Session;
use crate::repl::text;
use crate::script::path::{self, Origin, Script};
use crate::script::render;

/// How `:edit` came by the file it opens.
enum Fresh {
    /// It was there already.
    No,
    /// A copy of the bundled script, made for this edit.
    Ejected,
    /// A new script, holding this template.
    Created(String),
}

impl Session {
    /// `:edit NAME`: the script NAME resolves to (a bundled one copied into the user
    /// directory first, a new one created there), in the operator's editor; then the
    /// session uses the new text, or, when it does not compile, the text it had.
    pub(super) fn edit(&mut self, arg: &str) -> Done {
        let name = arg.strip_suffix(".rhai").unwrap_or(arg);
        // What the file is, and what was in use before the editor ran.
        let (file, old, fresh) = match self.path.load(arg) {
            Ok(Script {
                origin: Origin::File(p),
                text,
                ..
            }) => (p, Some(text), Fresh::No),
            Ok(Script {
                origin: Origin::Bundled,
                text,
                ..
            }) => {
                let p = path::eject(name, false).map_err(|e| {
                    Failure::error(format!(
                        "cannot copy the bundled {name}.rhai to edit it: {e}"
                    ))
                })?;
                println!(
                    "copied the bundled {name}.rhai to {} (as `slotsmith scripts eject {name}` does)",
                    p.display()
                );
                (p, Some(text), Fresh::Ejected)
            }
            // Only a name that resolves to nothing is a new script: a script that is
            // there but refused (its permissions) is never written over.
            Err(e) if !e.starts_with("no script named") && !e.ends_with("does not exist") => {
                return Err(Failure::Error(e));
            }
            Err(_) => {
                let (p, template) = new_script(arg).map_err(Failure::Error)?;
                println!("new script {}", p.display());
                (p, None, Fresh::Created(template))
            }
        };
        if let Err(e) = text::run_editor(&file) {
            eprintln!("warning: {e}");
        }
        let new = std::fs::read_to_string(&file)
            .map_err(|e| Failure::error(format!("cannot read {}: {e}", file.display())))?;
        // A copy made for this edit and left as it was goes away again, so the name
        // resolves as before (a bundled script keeps its upgrades).
        match &fresh {
            Fresh::Ejected if old.as_deref() == Some(new.as_str()) => {
                let _ = std::fs::remove_file(&file);
                println!("{name}.rhai is unchanged: removed the copy; {name} is the bundled script again");
                return Ok(());
            }
            Fresh::Created(template) if *template == new => {
                let _ = std::fs::remove_file(&file);
                println!("nothing written: {} was not created", file.display());
                return Ok(());
            }
            _ => {}
        }
        let label = file.display().to_string();
        let e = match self.engine().compile(&new) {
            Ok(_) => {
                self.path.unpin(&file);
                self.reload_scripts();
                println!("reloaded {label}: the next :run {name} or import \"{name}\" uses it");
                return Ok(());
            }
            Err(e) => e,
        };
        let syntax = render::syntax(Some(&label), &new, &e);
        let next = match old.filter(|o| self.engine().compile(o).is_ok()) {
            Some(o) => {
                self.path.pin(&file, o);
                self.reload_scripts();
                format!(
                    "{name} is not reloaded: this session keeps using the version from before this edit until the file compiles (:edit {name} to fix it)"
                )
            }
            None => format!(
                "no earlier version of {name} compiles either: :run {name} and import \"{name}\" fail until the file is fixed (:edit {name})"
            ),
        };
        Err(Failure::Said(format!("{syntax}\n{next}")))
    }

    /// Files kept at an earlier text by `:edit` that compile again are used again.
    pub(super) fn release_pins(&mut self) {
        for file in self.path.pinned_files() {
            let Ok(now) = std::fs::read_to_string(&file) else {
                continue;
            };
            if self.engine().compile(&now).is_ok() {
                self.path.unpin(&file);
                println!("{} compiles now: using it", file.display());
            } else {
                eprintln!(
                    "{} still does not compile: the version from before the last :edit stays in use",
                    file.display()
                );
            }
        }
    }

    /// `:save NAME`: the functions defined in this session (with the imports they
    /// use) as the user script NAME.rhai.
    pub(super) fn save(&mut self, arg: &str) -> Done {
        let name = arg.strip_suffix(".rhai").unwrap_or(arg);
        if !text::valid_name(name) {
            return Err(Failure::error(format!(
                "\"{name}\" cannot be a script name: use letters, digits, _ and -, with / between folders"
            )));
        }
        if path::bundled(name).is_some() {
            return Err(Failure::error(format!(
                "{name} is a bundled script and a saved {name}.rhai would hide it; choose another name (:edit {name} changes the bundled one)"
            )));
        }
        if self.sources.is_empty() {
            return Err(Failure::error(
                "no function is defined in this session yet (fn name(args) { ... })",
            ));
        }
        let file = path::user_file(name).map_err(Failure::Error)?;
        if let Ok(existing) = std::fs::read_to_string(&file) {
            if !existing.starts_with(text::SAVED_MARK) {
                return Err(Failure::error(format!(
                    "{} exists and was not written by :save; choose another name, or :edit {name}",
                    file.display()
                )));
            }
        }
        let saved = text::saved_script(name, &self.import_list(), &self.sources);
        if let Err(e) = self.engine().compile(&saved) {
            return Err(Failure::error(format!(
                "the session's functions do not compile as one script ({e}); nothing was written"
            )));
        }
        path::write_user_script(&file, &saved).map_err(Failure::Error)?;
        self.path.unpin(&file);
        self.reload_scripts();
        let names: Vec<String> = self
            .sources
            .iter()
            .map(|f| format!("{}/{}", f.name, f.arity))
            .collect();
        let alias = name
            .rsplit('/')
            .next()
            .unwrap_or(name)
            .replace(['-', '.'], "_");
        println!(
            "saved {} function{} ({}) to {}",
            names.len(),
            if names.len() == 1 { "" } else { "s" },
            names.join(", "),
            file.display()
        );
        println!(
            "use them with `import \"{name}\" as {alias};` ({alias}::f()), `:load {name}` in a later session, or `slotsmith run` a script that imports it"
        );
        if let Ok(Some(s)) = self.path.find(name) {
            if s.origin != Origin::File(file.clone()) {
                eprintln!(
                    "warning: the name {name} resolves to {} first, which hides the saved file",
                    s.origin
                );
            }
        }
        Ok(())
    }
}

/// The file and first text of a script `:edit` creates: `NAME.rhai` in the user
/// directory, or the path given.
fn new_script(arg: &str) -> Result<(std::path::PathBuf, String), String> {
    let is_path = arg.starts_with('.') || arg.starts_with('/') || arg.ends_with(".rhai");
    let file = if is_path {
        std::path::PathBuf::from(arg)
    } else if text::valid_name(arg) {
        path::user_file(arg)?
    } else {
        return Err(format!(
            "\"{arg}\" cannot be a script name: use letters, digits, _ and -, with / between folders"
        ));
    };
    let name = arg.strip_suffix(".rhai").unwrap_or(arg);
    let template = format!(
        "// {name}: `slotsmith run {name}` runs this script; `import \"{name}\" as m;` gives its functions.\n"
    );
    if file.exists() {
        return Err(format!(
            "{} exists and is not a script slotsmith can read",
            file.display()
        ));
    }
    path::write_user_script(&file, &template)?;
    Ok((file, template))
}
