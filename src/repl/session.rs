//! One REPL session: the engine over the cluster (or, with `:dry-run`, over an
//! in-memory copy of it), the variables, functions and imports kept from one input to
//! the next, and the `:` commands. Reading lines is the caller's job (a terminal or a
//! pipe); results go to stdout, errors to stderr.

use std::rc::Rc;

use rhai::{
    Dynamic, EvalAltResult, Expr, FnAccess, Module, ParseError, Position, Scope, Stmt, AST,
};

use crate::cluster::memory::{render as render_plan, MemoryCluster};
use crate::cluster::{merged_nodes, Cluster};
use crate::script::host::RunOptions;
use crate::script::path::{self, Origin, Script, ScriptPath};
use crate::script::Runner;

use super::helper::COMMANDS;
use super::scripts::{self as text, FnDoc, FnSource};
use super::show;

/// How one input ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Ok,
    Failed,
    Quit,
}

/// See the module docs.
pub struct Session {
    /// The cluster given on the command line (live, or a snapshot).
    base: Rc<dyn Cluster>,
    path: ScriptPath,
    opts: RunOptions,
    runner: Runner,
    /// The in-memory copy writes go to while `:dry-run` is on.
    memory: Option<Rc<MemoryCluster>>,
    /// A snapshot has no live cluster to write to: dry run stays on.
    snapshot: bool,
    scope: Scope<'static>,
    /// Every function defined so far (a Scope keeps variables, not functions).
    functions: AST,
    /// The source text of each of those functions, for `:save` and `:show`.
    sources: Vec<FnSource>,
    /// `import ... as name` statements that ran, replayed before each input because
    /// imports last only as long as one evaluation. The resolver caches the modules.
    imports: Vec<Stmt>,
    /// Print results as JSON.
    pub json: bool,
    /// Node ids and addresses, for completion; refreshed by `:reload`.
    node_words: Vec<String>,
    /// `script::function` of every script on the path, for completing `:help`;
    /// worked out when first asked for, again after `:edit`, `:save` and `:reload`.
    help_words: Option<Vec<String>>,
}

impl Session {
    pub fn new(
        base: Rc<dyn Cluster>,
        path: ScriptPath,
        opts: RunOptions,
        dry_run: bool,
        snapshot: bool,
    ) -> Self {
        let memory = (dry_run || snapshot).then(|| Rc::new(MemoryCluster::new(base.clone())));
        let cluster: Rc<dyn Cluster> = match &memory {
            Some(m) => m.clone(),
            None => base.clone(),
        };
        Session {
            runner: Runner::new(cluster, opts.clone(), path.clone()),
            json: opts.json,
            base,
            path,
            opts,
            memory,
            snapshot,
            scope: repl_scope(),
            functions: AST::empty(),
            sources: Vec::new(),
            imports: Vec::new(),
            node_words: Vec::new(),
            help_words: None,
        }
    }

    /// A fresh engine over the cluster in use: new module cache, so edited scripts are
    /// read again on the next import.
    fn rebuild_runner(&mut self) {
        let cluster: Rc<dyn Cluster> = match &self.memory {
            Some(m) => m.clone(),
            None => self.base.clone(),
        };
        self.runner = Runner::new(cluster, self.opts.clone(), self.path.clone());
    }

    /// After a script changed: compile modules afresh at their next import (the kept
    /// imports are replayed before every input, so they pick up the new text).
    fn reload_scripts(&mut self) {
        self.rebuild_runner();
        self.help_words = None;
    }

    pub fn dry_run(&self) -> bool {
        self.memory.is_some()
    }

    pub fn engine(&self) -> &rhai::Engine {
        self.runner.engine()
    }

    pub fn scope(&self) -> &Scope<'static> {
        &self.scope
    }

    /// Names of the primitives and helpers.
    pub fn function_names(&self) -> Vec<String> {
        let mut names: Vec<String> = crate::script::api::docs(self.engine())
            .into_iter()
            .map(|d| d.name)
            .collect();
        names.dedup();
        names
    }

    /// Variables in scope and the functions this session defined.
    pub fn variable_names(&self) -> Vec<String> {
        self.scope
            .iter_raw()
            .map(|(name, ..)| name.to_string())
            .chain(self.functions.iter_functions().map(|f| f.name.to_string()))
            .chain(self.imports.iter().filter_map(|s| match s {
                Stmt::Import(x, _) => Some(x.1.name.to_string()),
                _ => None,
            }))
            .collect()
    }

    /// `alias::function` for the public functions of every kept import, and the aliases.
    pub fn module_functions(&self) -> Vec<String> {
        let engine = self.engine();
        let mut out = Vec::new();
        for stmt in &self.imports {
            let Stmt::Import(x, _) = stmt else { continue };
            let Expr::StringConstant(path, _) = &x.0 else {
                continue;
            };
            // Cached by the resolver since the import ran.
            let Ok(module) = engine
                .module_resolver()
                .resolve(engine, None, path, Position::NONE)
            else {
                continue;
            };
            let alias = &x.1.name;
            out.extend(
                module
                    .iter_script_fn_info()
                    .filter(|(_, access, ..)| *access == FnAccess::Public)
                    .map(|(_, _, name, ..)| format!("{alias}::{name}")),
            );
        }
        out
    }

    pub fn script_names(&self) -> Vec<String> {
        self.path.list().into_iter().map(|l| l.name).collect()
    }

    /// What `:help` can show: the primitives, `script::function` for the public
    /// functions of every script on the path, and the session's own functions.
    pub fn help_words(&mut self) -> Vec<String> {
        if self.help_words.is_none() {
            let mut words = Vec::new();
            for name in self.script_names() {
                let Ok(script) = self.path.load(&name) else {
                    continue;
                };
                let Ok(docs) = text::script_docs(self.engine(), &script.text) else {
                    continue;
                };
                words.push(format!("{name}::"));
                words.extend(
                    docs.iter()
                        .filter(|d| !d.private)
                        .map(|d| format!("{name}::{}", d.name)),
                );
            }
            self.help_words = Some(words);
        }
        let mut out = self.function_names();
        out.extend(self.help_words.iter().flatten().cloned());
        out.extend(self.module_functions());
        out.extend(self.sources.iter().map(|f| f.name.clone()));
        out
    }

    pub fn node_words(&self) -> &[String] {
        &self.node_words
    }

    /// Read the topology again: the nodes for completion, and a one-line summary.
    pub fn refresh_topology(&mut self) -> Result<String, String> {
        let views = self.base.views().map_err(|e| e.to_string())?;
        let nodes = merged_nodes(&views);
        self.node_words = nodes
            .iter()
            .flat_map(|n| [n.id.clone(), n.addr()])
            .collect();
        let masters = nodes.iter().filter(|n| n.is_master()).count();
        let unreachable = views.iter().filter(|v| v.state.is_err()).count();
        let mut text = format!(
            "{} nodes ({masters} masters, {} replicas)",
            nodes.len(),
            nodes.len() - masters
        );
        if unreachable > 0 {
            text.push_str(&format!(", {unreachable} unreachable"));
        }
        Ok(text)
    }

    /// The prompt, which says when writes only reach the in-memory copy.
    pub fn prompt(&self) -> &'static str {
        if self.dry_run() {
            "slotsmith (dry run)> "
        } else {
            "slotsmith> "
        }
    }

    /// Evaluate Rhai text: `source` names a file (`:load`), `None` is typed input.
    /// Variables, functions and imports it defines stay for the next input.
    pub fn eval(&mut self, source: Option<&str>, text: &str) -> Step {
        crate::interrupt::clear();
        // What an earlier input left open is not in flight any more; each input has
        // its own retry budget.
        crate::interrupt::forget_open();
        crate::cluster::mover::reset_retry_budget();
        let ast = match self.engine().compile_with_scope(&self.scope, text) {
            Ok(ast) => ast,
            Err(e) => {
                eprintln!("{}", syntax_message(source, text, &e));
                return Step::Failed;
            }
        };
        let sources = text::fn_sources(&ast, text);
        let mut whole = AST::new(self.imports.clone(), Module::new())
            .merge(&self.functions)
            .merge(&ast);
        if let Some(s) = source {
            whole.set_source(s);
        }
        let before = self.plan_len();
        let result = self
            .runner
            .engine()
            .eval_ast_with_scope::<Dynamic>(&mut self.scope, &whole);
        // Definitions are kept once they compile, even when the statements after them fail.
        let mut defined = ast.clone();
        defined.clear_statements();
        self.functions.combine(defined);
        self.keep_sources(sources);
        let step = match result {
            Ok(value) => {
                self.keep_imports(&ast);
                self.print(&value);
                Step::Ok
            }
            Err(e) => {
                if !matches!(
                    *e,
                    EvalAltResult::ErrorModuleNotFound(..) | EvalAltResult::ErrorInModule(..)
                ) {
                    self.keep_imports(&ast);
                }
                self.forget_broken_import(&e);
                self.ended(source, text, &e)
            }
        };
        self.show_plan(before);
        // Between lines nothing moves: other runs may change slots again.
        self.base.release_lease();
        crate::interrupt::clear();
        step
    }

    /// Keep the text of each function defined, replacing an earlier one of the same
    /// name and number of parameters (as the definition itself does).
    fn keep_sources(&mut self, sources: Vec<FnSource>) {
        for f in sources {
            match self
                .sources
                .iter_mut()
                .find(|o| o.name == f.name && o.arity == f.arity)
            {
                Some(old) => *old = f,
                None => self.sources.push(f),
            }
        }
    }

    /// The kept imports as (path, alias).
    fn import_list(&self) -> Vec<(String, String)> {
        self.imports
            .iter()
            .filter_map(|s| match s {
                Stmt::Import(x, _) => match &x.0 {
                    Expr::StringConstant(p, _) => Some((p.to_string(), x.1.name.to_string())),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    /// Keep the input's top-level `import "x" as y`, replacing an earlier one of `y`.
    fn keep_imports(&mut self, ast: &AST) {
        for stmt in ast.statements() {
            let Stmt::Import(x, _) = stmt else { continue };
            if x.1.name.is_empty() {
                continue;
            }
            self.imports
                .retain(|s| !matches!(s, Stmt::Import(y, _) if y.1.name == x.1.name));
            self.imports.push(stmt.clone());
        }
    }

    /// A kept import whose module is gone or broken would fail every input after it.
    fn forget_broken_import(&mut self, e: &EvalAltResult) {
        let (EvalAltResult::ErrorModuleNotFound(path, _) | EvalAltResult::ErrorInModule(path, ..)) =
            e
        else {
            return;
        };
        let path = path.strip_suffix(".rhai").unwrap_or(path);
        self.imports.retain(|s| {
            !matches!(s, Stmt::Import(x, _)
                if matches!(&x.0, Expr::StringConstant(p, _) if p.strip_suffix(".rhai").unwrap_or(p) == path))
        });
    }

    /// Report an evaluation that did not return a value: an interruption, `exit`, or an error.
    fn ended(&self, source: Option<&str>, text: &str, e: &EvalAltResult) -> Step {
        if let Some(token) = terminated(e) {
            if crate::interrupt::requested() {
                eprintln!("interrupted");
                return Step::Failed;
            }
            let map = token
                .read_lock::<rhai::Map>()
                .map(|m| m.clone())
                .unwrap_or_default();
            let code = map.get("exit").and_then(|c| c.as_int().ok()).unwrap_or(0);
            if let Some(m) = map.get("message") {
                eprintln!("{m}");
            }
            if let Some(v) = map.get("value") {
                self.print(v);
            }
            if code == 0 {
                return Step::Ok;
            }
            eprintln!("(exit code {code})");
            return Step::Failed;
        }
        eprintln!("error: {}", runtime_message(source, text, e));
        if let Some(hint) = self.did_you_mean(e) {
            eprintln!("{hint}");
        }
        Step::Failed
    }

    /// For a function that does not exist, the closest names that do.
    fn did_you_mean(&self, e: &EvalAltResult) -> Option<String> {
        let mut e = e;
        while let EvalAltResult::ErrorInFunctionCall(_, _, inner, _) = e {
            e = inner;
        }
        let EvalAltResult::ErrorFunctionNotFound(sig, _) = e else {
            return None;
        };
        let wanted = sig.split([' ', '(']).next().unwrap_or_default();
        let mut names = self.function_names();
        names.extend(self.variable_names());
        let close = closest(wanted, &names);
        (!close.is_empty()).then(|| format!("did you mean {}?", close.join(", ")))
    }

    fn print(&self, value: &Dynamic) {
        print!("{}", show::render(value, self.json));
    }

    fn plan_len(&self) -> usize {
        self.memory.as_ref().map_or(0, |m| m.plan().len())
    }

    /// The commands an evaluation added to the dry run's plan.
    fn show_plan(&self, before: usize) {
        let Some(m) = &self.memory else { return };
        let plan = m.plan();
        if plan.len() <= before {
            return;
        }
        let new = &plan[before..];
        let text = format!(
            "dry run: nothing was written; the plan grew by {} command{}:\n{}",
            new.len(),
            if new.len() == 1 { "" } else { "s" },
            render_plan(new)
        );
        // With --json, stdout holds only the results.
        if self.json {
            eprint!("{text}");
        } else {
            print!("{text}");
        }
    }

    /// Run one `:` command (without `:history`, which belongs to the line editor).
    pub fn command(&mut self, line: &str) -> Step {
        let line = line.trim();
        let (cmd, arg) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let arg = arg.trim();
        match cmd {
            ":help" | ":h" | ":?" => self.help(arg),
            ":nodes" => self.eval(None, "nodes()"),
            ":check" => self.eval(None, "check()"),
            ":run" => self.run_script(arg),
            ":load" => match arg {
                "" => usage(":load FILE"),
                file => match self.path.load(file) {
                    Ok(script) => self.eval(Some(&script.name), &script.text),
                    Err(e) => {
                        eprintln!("error: {e}");
                        Step::Failed
                    }
                },
            },
            ":reload" => {
                self.release_pins();
                self.reload_scripts();
                match self.refresh_topology() {
                    Ok(summary) => {
                        println!(
                            "reloaded: {summary}; scripts are read again at their next import"
                        );
                        Step::Ok
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        Step::Failed
                    }
                }
            }
            ":edit" => self.edit(arg),
            ":show" => self.show_script(arg),
            ":save" => self.save(arg),
            ":dry-run" => self.set_dry_run(arg),
            ":json" => {
                self.json = match arg {
                    "on" => true,
                    "off" => false,
                    "" => !self.json,
                    _ => return usage(":json [on|off]"),
                };
                println!("results as JSON: {}", if self.json { "on" } else { "off" });
                Step::Ok
            }
            ":history" => {
                eprintln!("no history: stdin is not a terminal");
                Step::Ok
            }
            ":quit" | ":q" | ":exit" => Step::Quit,
            _ => {
                eprintln!("error: unknown command {cmd}; :help lists the commands");
                Step::Failed
            }
        }
    }

    fn run_script(&mut self, arg: &str) -> Step {
        let words = split_args(arg);
        let Some((name, args)) = words.split_first() else {
            return usage(":run NAME [ARGS]");
        };
        let script = match self.path.load(name) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: {e}");
                return Step::Failed;
            }
        };
        crate::interrupt::clear();
        let before = self.plan_len();
        let outcome = self.runner.run(&script, args);
        let step = match outcome {
            Ok(_) if crate::interrupt::requested() => {
                eprintln!("interrupted");
                Step::Failed
            }
            Ok(o) => {
                if let Some(m) = &o.message {
                    eprintln!("{m}");
                }
                // A script prints its own report; its value is for JSON, as with `slotsmith run`.
                if self.json {
                    self.print(&o.value);
                }
                if o.code == 0 {
                    Step::Ok
                } else {
                    eprintln!("({name} ended with exit code {})", o.code);
                    Step::Failed
                }
            }
            Err(e) => {
                eprintln!("error: {e}");
                Step::Failed
            }
        };
        self.show_plan(before);
        // Between lines nothing moves: other runs may change slots again.
        self.base.release_lease();
        crate::interrupt::clear();
        step
    }

    /// `:edit NAME`: the script NAME resolves to (a bundled one copied into the user
    /// directory first, a new one created there), in the operator's editor; then the
    /// session uses the new text, or, when it does not compile, the text it had.
    fn edit(&mut self, arg: &str) -> Step {
        if arg.is_empty() {
            return usage(
                ":edit NAME (a script on the path; a bundled one is copied to your scripts first)",
            );
        }
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
            }) => match path::eject(name, false) {
                Ok(p) => {
                    println!(
                        "copied the bundled {name}.rhai to {} (as `slotsmith scripts eject {name}` does)",
                        p.display()
                    );
                    (p, Some(text), Fresh::Ejected)
                }
                Err(e) => {
                    eprintln!("error: cannot copy the bundled {name}.rhai to edit it: {e}");
                    return Step::Failed;
                }
            },
            // Only a name that resolves to nothing is a new script: a script that is
            // there but refused (its permissions) is never written over.
            Err(e) if !e.starts_with("no script named") && !e.ends_with("does not exist") => {
                eprintln!("error: {e}");
                return Step::Failed;
            }
            Err(_) => match new_script(arg) {
                Ok((p, template)) => {
                    println!("new script {}", p.display());
                    (p, None, Fresh::Created(template))
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return Step::Failed;
                }
            },
        };
        if let Err(e) = text::run_editor(&file) {
            eprintln!("warning: {e}");
        }
        let new = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("error: cannot read {}: {e}", file.display());
                return Step::Failed;
            }
        };
        // A copy made for this edit and left as it was goes away again, so the name
        // resolves as before (a bundled script keeps its upgrades).
        match &fresh {
            Fresh::Ejected if old.as_deref() == Some(new.as_str()) => {
                let _ = std::fs::remove_file(&file);
                println!("{name}.rhai is unchanged: removed the copy; {name} is the bundled script again");
                return Step::Ok;
            }
            Fresh::Created(template) if *template == new => {
                let _ = std::fs::remove_file(&file);
                println!("nothing written: {} was not created", file.display());
                return Step::Ok;
            }
            _ => {}
        }
        let label = file.display().to_string();
        match self.engine().compile(&new) {
            Ok(_) => {
                self.path.unpin(&file);
                self.reload_scripts();
                println!("reloaded {label}: the next :run {name} or import \"{name}\" uses it");
                Step::Ok
            }
            Err(e) => {
                eprintln!("{}", syntax_message(Some(&label), &new, &e));
                match old.filter(|o| self.engine().compile(o).is_ok()) {
                    Some(o) => {
                        self.path.pin(&file, o);
                        self.reload_scripts();
                        eprintln!(
                            "{name} is not reloaded: this session keeps using the version from before this edit until the file compiles (:edit {name} to fix it)"
                        );
                    }
                    None => eprintln!(
                        "no earlier version of {name} compiles either: :run {name} and import \"{name}\" fail until the file is fixed (:edit {name})"
                    ),
                }
                Step::Failed
            }
        }
    }

    /// Files kept at an earlier text by `:edit` that compile again are used again.
    fn release_pins(&mut self) {
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

    /// `:show NAME`: a script with line numbers (or a function of this session).
    fn show_script(&self, arg: &str) -> Step {
        if arg.is_empty() {
            return usage(":show NAME (a script on the path, a function of one as fix::owner, or a function defined in this session)");
        }
        if let Some((module, function)) = arg.rsplit_once("::") {
            return self.show_function(module, function);
        }
        match self.path.load(arg) {
            Ok(script) => {
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
                Step::Ok
            }
            Err(e) => {
                let mine: Vec<&FnSource> = self.sources.iter().filter(|f| f.name == arg).collect();
                if mine.is_empty() {
                    eprintln!("error: {e}");
                    return Step::Failed;
                }
                for f in mine {
                    println!("{}", f.text);
                }
                Step::Ok
            }
        }
    }

    /// `:show MODULE::FN`: the source of a script's function, with its line numbers.
    fn show_function(&self, module: &str, function: &str) -> Step {
        let Some(script) = self.module_or_report(module) else {
            return Step::Failed;
        };
        let ast = match self.engine().compile(&script.text) {
            Ok(a) => a,
            Err(e) => {
                eprintln!(
                    "error: {} ({}) does not compile: {e}",
                    script.name, script.origin
                );
                return Step::Failed;
            }
        };
        let all = text::fn_sources(&ast, &script.text);
        let found: Vec<&FnSource> = all.iter().filter(|f| f.name == function).collect();
        if found.is_empty() {
            let mut names: Vec<&str> = all.iter().map(|f| f.name.as_str()).collect();
            names.dedup();
            eprintln!(
                "error: {} has no function {function}; it has {}",
                script.name,
                names.join(", ")
            );
            return Step::Failed;
        }
        eprintln!("{}: {}", script.name, script.origin);
        let last = script.text.lines().count();
        for (i, f) in found.iter().enumerate() {
            if i > 0 {
                println!();
            }
            print!("{}", text::numbered_from(&f.text, f.line, last));
        }
        Step::Ok
    }

    /// The script `NAME::` means in `:help` and `:show`: an alias this session
    /// imported, else a name on the script path.
    /// [`Self::module_script`], or the reason printed.
    fn module_or_report(&self, module: &str) -> Option<Script> {
        self.module_script(module)
            .map_err(|e| eprintln!("error: {e}"))
            .ok()
    }

    fn module_script(&self, module: &str) -> Result<Script, String> {
        let target = self
            .import_list()
            .into_iter()
            .find(|(_, alias)| alias == module)
            .map_or_else(|| module.to_string(), |(p, _)| p);
        self.path.load(&target).map_err(|_| {
            format!(
                "no module named {module}: neither an import of this session nor a script on the path ({})",
                self.path.describe()
            )
        })
    }

    /// `:save NAME`: the functions defined in this session (with the imports they
    /// use) as the user script NAME.rhai.
    fn save(&mut self, arg: &str) -> Step {
        if arg.is_empty() {
            return usage(":save NAME (writes this session's functions to NAME.rhai in your scripts directory)");
        }
        let name = arg.strip_suffix(".rhai").unwrap_or(arg);
        if !text::valid_name(name) {
            eprintln!("error: \"{name}\" cannot be a script name: use letters, digits, _ and -, with / between folders");
            return Step::Failed;
        }
        if path::bundled(name).is_some() {
            eprintln!("error: {name} is a bundled script and a saved {name}.rhai would hide it; choose another name (:edit {name} changes the bundled one)");
            return Step::Failed;
        }
        if self.sources.is_empty() {
            eprintln!(
                "error: no function is defined in this session yet (fn name(args) {{ ... }})"
            );
            return Step::Failed;
        }
        let file = match path::user_file(name) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("error: {e}");
                return Step::Failed;
            }
        };
        if let Ok(existing) = std::fs::read_to_string(&file) {
            if !existing.starts_with(text::SAVED_MARK) {
                eprintln!(
                    "error: {} exists and was not written by :save; choose another name, or :edit {name}",
                    file.display()
                );
                return Step::Failed;
            }
        }
        let saved = text::saved_script(name, &self.import_list(), &self.sources);
        if let Err(e) = self.engine().compile(&saved) {
            eprintln!("error: the session's functions do not compile as one script ({e}); nothing was written");
            return Step::Failed;
        }
        if let Err(e) = path::write_user_script(&file, &saved) {
            eprintln!("error: {e}");
            return Step::Failed;
        }
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
        Step::Ok
    }

    fn set_dry_run(&mut self, arg: &str) -> Step {
        match (arg, &self.memory) {
            ("on", Some(_)) => println!("dry run is already on"),
            ("on", None) => {
                self.memory = Some(Rc::new(MemoryCluster::new(self.base.clone())));
                self.rebuild_runner();
                println!("dry run on: writes change an in-memory copy of the cluster and are shown as a plan; nothing is written");
            }
            ("off", None) => println!("dry run is already off"),
            ("off", Some(_)) if self.snapshot => {
                eprintln!(
                    "error: this session runs on a snapshot: there is no live cluster to write to"
                );
                return Step::Failed;
            }
            ("off", Some(m)) => {
                let n = m.plan().len();
                self.memory = None;
                self.rebuild_runner();
                println!(
                    "dry run off: the plan of {n} command{} is discarded; writes now go to the cluster at {}",
                    if n == 1 { "" } else { "s" },
                    self.base.seed()
                );
            }
            ("", None) => println!(
                "dry run is off: writes go to the cluster at {}",
                self.base.seed()
            ),
            ("", Some(m)) => {
                let plan = m.plan();
                println!("dry run is on; the plan so far ({} commands):", plan.len());
                print!("{}", render_plan(&plan));
            }
            _ => return usage(":dry-run on|off"),
        }
        Step::Ok
    }

    /// `:help MODULE::` (every public function of a script, with the first sentence of
    /// its doc) and `:help MODULE::FN` (its signatures and whole doc). MODULE is an
    /// alias the session imported or a script name; nothing is run, only compiled.
    fn help_module(&self, module: &str, function: &str) -> Step {
        let Some(script) = self.module_or_report(module) else {
            return Step::Failed;
        };
        let target = script.name.trim_end_matches(".rhai").to_string();
        let docs = match text::script_docs(self.engine(), &script.text) {
            Ok(d) => d,
            Err(e) => {
                eprintln!(
                    "error: {} ({}) does not compile: {e}",
                    script.name, script.origin
                );
                return Step::Failed;
            }
        };
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
            return Step::Ok;
        }
        let matching: Vec<FnDoc> = public
            .iter()
            .filter(|d| d.name == function)
            .cloned()
            .collect();
        if matching.is_empty() {
            let mut names: Vec<&str> = public.iter().map(|d| d.name.as_str()).collect();
            names.dedup();
            eprintln!(
                "error: {} has no function {function}; it has {}",
                script.name,
                names.join(", ")
            );
            return Step::Failed;
        }
        print_docs(&matching, module, &format!("in {}", script.name));
        Step::Ok
    }

    fn help(&self, arg: &str) -> Step {
        let docs = crate::script::api::docs(self.engine());
        if arg.is_empty() {
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
            let width = COMMANDS.iter().map(|(c, _)| c.len()).max().unwrap_or(0);
            for (c, text) in COMMANDS {
                println!("  {c:width$}  {text}");
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
            return Step::Ok;
        }
        let name = arg.trim_end_matches("()");
        let command = format!(":{}", name.trim_start_matches(':'));
        if let Some((c, text)) = COMMANDS.iter().find(|(c, _)| *c == command) {
            println!("{c}  {text}");
            return Step::Ok;
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
                return Step::Ok;
            }
            if matches!(self.path.find(name), Ok(Some(_))) {
                return self.help_module(name, "");
            }
            let close: Vec<&str> = docs
                .iter()
                .map(|d| d.name.as_str())
                .filter(|n| n.contains(name))
                .collect();
            let mut close = close;
            close.dedup();
            let hint = if close.is_empty() {
                ":help lists them".to_string()
            } else {
                format!("did you mean {}?", close.join(", "))
            };
            eprintln!("error: no primitive, command, function or script named {name}; {hint} (:help NAME:: for a script's functions)");
            return Step::Failed;
        }
        for d in matching {
            println!("{}\n    {}", d.signature, d.doc.replace('\n', "\n    "));
        }
        Step::Ok
    }
}

/// How `:edit` came by the file it opens.
enum Fresh {
    /// It was there already.
    No,
    /// A copy of the bundled script, made for this edit.
    Ejected,
    /// A new script, holding this template.
    Created(String),
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

/// A runbook loaded with `:load` may read `args`, as under `slotsmith run`: none here.
fn repl_scope() -> Scope<'static> {
    let mut scope = Scope::new();
    scope.push("args", rhai::Array::new());
    scope
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

fn usage(text: &str) -> Step {
    eprintln!("usage: {text}");
    Step::Failed
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

/// The `exit` or interruption token that ended an evaluation, if one did.
fn terminated(e: &EvalAltResult) -> Option<&Dynamic> {
    match e {
        EvalAltResult::ErrorTerminated(token, _) => Some(token),
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
        | EvalAltResult::ErrorInModule(_, inner, _) => terminated(inner),
        _ => None,
    }
}

/// `syntax error: ...` with the offending line and a caret under the column.
fn syntax_message(source: Option<&str>, text: &str, e: &ParseError) -> String {
    let pos = e.position();
    let mut out = match source {
        Some(s) => format!(
            "{s}:{}:{}: syntax error: {}",
            pos.line().unwrap_or(0),
            pos.position().unwrap_or(0),
            e.err_type()
        ),
        None => format!("syntax error: {}", e.err_type()),
    };
    if let (Some(line), Some(col)) = (pos.line(), pos.position()) {
        if let Some(code) = text.lines().nth(line - 1) {
            let num = line.to_string();
            out.push_str(&format!(
                "\n {num} | {code}\n {pad} | {caret:>col$}",
                pad = " ".repeat(num.len()),
                caret = "^"
            ));
        }
    }
    out
}

/// The innermost error's sentence, and where it happened when that helps: in a
/// script file, in a function defined earlier, or on a line of a multi-line input.
fn runtime_message(source: Option<&str>, text: &str, e: &EvalAltResult) -> String {
    let mut functions: Vec<&str> = Vec::new();
    let mut src: Option<&str> = source;
    let mut e = e;
    loop {
        match e {
            EvalAltResult::ErrorInFunctionCall(f, fsrc, inner, _) => {
                functions.push(f);
                if !fsrc.is_empty() {
                    src = Some(fsrc);
                }
                e = inner;
            }
            EvalAltResult::ErrorInModule(m, inner, _) => {
                src = Some(m);
                e = inner;
            }
            _ => break,
        }
    }
    let pos = e.position();
    let msg = match e {
        EvalAltResult::ErrorRuntime(d, _) => d.to_string(),
        other => {
            let t = other.to_string();
            t.strip_suffix(&format!(" ({pos})"))
                .map(str::to_string)
                .unwrap_or(t)
        }
    };
    let Some(line) = pos.line() else {
        return msg;
    };
    let col = pos.position().map(|c| format!(":{c}")).unwrap_or_default();
    match (src, functions.last()) {
        (Some(s), _) => format!("{msg}\n  at {s}:{line}{col}"),
        (None, Some(f)) => format!("{msg}\n  in {f}(), line {line} of its definition"),
        (None, None) if text.trim().lines().count() > 1 => {
            let code = text.lines().nth(line - 1).unwrap_or_default().trim();
            format!("{msg}\n  at line {line}: {code}")
        }
        (None, None) => msg,
    }
}

/// The names nearest to a misspelt one (at most two edits away, at most three names).
fn closest(wanted: &str, names: &[String]) -> Vec<String> {
    let limit = if wanted.len() <= 4 { 1 } else { 2 };
    let mut scored: Vec<(usize, &String)> = names
        .iter()
        .map(|n| (edits(wanted, n), n))
        .filter(|(d, n)| *d <= limit && n.as_str() != wanted)
        .collect();
    scored.sort();
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(3)
        .map(|(_, n)| format!("{n}()"))
        .collect()
}

/// Levenshtein distance.
fn edits(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = if ca == *cb {
                prev
            } else {
                1 + prev.min(row[j]).min(row[j + 1])
            };
            prev = cur;
        }
    }
    row[b.len()]
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

    #[test]
    fn a_misspelt_function_gets_the_closest_names() {
        let names: Vec<String> = ["nodes", "node", "masters", "move_slot", "move_slots"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(closest("nodez", &names), ["node()", "nodes()"]);
        assert_eq!(closest("move_slt", &names), ["move_slot()", "move_slots()"]);
        assert!(closest("zzzzzz", &names).is_empty());
    }

    #[test]
    fn args_split_like_a_shell() {
        assert_eq!(split_args("fix --replace"), vec!["fix", "--replace"]);
        assert_eq!(split_args(" a  \"b c\" 'd'  "), vec!["a", "b c", "d"]);
        assert_eq!(split_args("x \"\""), vec!["x", ""]);
        assert!(split_args("  ").is_empty());
    }
}
