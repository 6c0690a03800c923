//! One REPL session: the engine over the cluster (or, with `:dry-run`, over an
//! in-memory copy of it), and the variables, functions and imports kept from one input
//! to the next. The `:` commands are in [`super::command`]. Reading lines is the
//! caller's job (a terminal or a pipe); results go to stdout, failures to stderr
//! ([`super::failure`]).

use std::rc::Rc;

use rhai::{Dynamic, EvalAltResult, Expr, FnAccess, Module, Position, Scope, Stmt, AST};

use crate::cluster::memory::{render as render_plan, MemoryCluster};
use crate::cluster::{merged_nodes, Cluster};
use crate::script::host::RunOptions;
use crate::script::path::ScriptPath;
use crate::script::{render, Runner};

use super::failure::{self, Done, Failure};
use super::text::{self, FnSource};
use super::{show, suggest};

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
    pub(super) base: Rc<dyn Cluster>,
    pub(super) path: ScriptPath,
    pub(super) opts: RunOptions,
    pub(super) runner: Runner,
    /// The in-memory copy writes go to while `:dry-run` is on.
    pub(super) memory: Option<Rc<MemoryCluster>>,
    /// A snapshot has no live cluster to write to: dry run stays on.
    pub(super) snapshot: bool,
    pub(super) scope: Scope<'static>,
    /// Every function defined so far (a Scope keeps variables, not functions).
    pub(super) functions: AST,
    /// The source text of each of those functions, for `:save` and `:show`.
    pub(super) sources: Vec<FnSource>,
    /// `import ... as name` statements that ran, replayed before each input because
    /// imports last only as long as one evaluation. The resolver caches the modules.
    pub(super) imports: Vec<Stmt>,
    /// Print results as JSON.
    pub json: bool,
    /// Node ids and addresses, for completion; refreshed by `:reload`.
    pub(super) node_words: Vec<String>,
    /// `script::function` of every script on the path, for completing `:help`;
    /// worked out when first asked for, again after `:edit`, `:save` and `:reload`.
    pub(super) help_words: Option<Vec<String>>,
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
    pub(super) fn rebuild_runner(&mut self) {
        let cluster: Rc<dyn Cluster> = match &self.memory {
            Some(m) => m.clone(),
            None => self.base.clone(),
        };
        self.runner = Runner::new(cluster, self.opts.clone(), self.path.clone());
    }

    /// After a script changed: compile modules afresh at their next import (the kept
    /// imports are replayed before every input, so they pick up the new text).
    pub(super) fn reload_scripts(&mut self) {
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
        let before = self.plan_len();
        let done = self.evaluate(source, text);
        self.settle(before, done.map(|()| Step::Ok))
    }

    /// The end of every input: its failure on stderr (the one place the REPL says
    /// why an input failed), then what it added to a dry run's plan.
    pub(super) fn settle(&self, plan_before: usize, result: Result<Step, Failure>) -> Step {
        let step = result.unwrap_or_else(|f| {
            failure::report(&f);
            Step::Failed
        });
        self.show_plan(plan_before);
        step
    }

    /// [`Self::eval`] without the ending: the value printed, the failure returned.
    pub(super) fn evaluate(&mut self, source: Option<&str>, text: &str) -> Done {
        crate::interrupt::clear();
        // What an earlier input left open is not in flight any more; each input has
        // its own retry budget.
        crate::interrupt::forget_open();
        self.runner.start_input();
        let ast = self
            .engine()
            .compile_with_scope(&self.scope, text)
            .map_err(|e| Failure::Said(render::syntax(source, text, &e)))?;
        let sources = text::fn_sources(&ast, text);
        let mut whole = AST::new(self.imports.clone(), Module::new())
            .merge(&self.functions)
            .merge(&ast);
        if let Some(s) = source {
            whole.set_source(s);
        }
        let result = self
            .runner
            .engine()
            .eval_ast_with_scope::<Dynamic>(&mut self.scope, &whole);
        // Definitions are kept once they compile, even when the statements after them fail.
        let mut defined = ast.clone();
        defined.clear_statements();
        self.functions.combine(defined);
        self.keep_sources(sources);
        let done = match result {
            Ok(value) => {
                self.keep_imports(&ast);
                self.print(&value);
                Ok(())
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
        // Between lines nothing moves: other runs may change slots again.
        self.base.release_lease();
        crate::interrupt::clear();
        done
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
    pub(super) fn import_list(&self) -> Vec<(String, String)> {
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

    /// An evaluation that did not return a value: an interruption, `exit`, or an error.
    fn ended(&self, source: Option<&str>, text: &str, e: &EvalAltResult) -> Done {
        let Some(outcome) = crate::script::exited(e) else {
            let mut words = self.runner.error(e, source, text).to_string();
            let mut names = self.function_names();
            names.extend(self.variable_names());
            if let Some(hint) = suggest::did_you_mean(e, &names) {
                words = format!("{words}\n{hint}");
            }
            return Err(Failure::Error(words));
        };
        if crate::interrupt::requested() {
            return Err(Failure::Said("interrupted".into()));
        }
        if let Some(m) = &outcome.message {
            eprintln!("{m}");
        }
        self.print(&outcome.value);
        match outcome.code {
            0 => Ok(()),
            code => Err(Failure::Said(format!("(exit code {code})"))),
        }
    }

    pub(super) fn print(&self, value: &Dynamic) {
        print!("{}", show::render(value, self.json));
    }

    pub(super) fn plan_len(&self) -> usize {
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
}

/// A runbook loaded with `:load` may read `args`, as under `slotsmith run`: none here.
fn repl_scope() -> Scope<'static> {
    let mut scope = Scope::new();
    scope.push("args", rhai::Array::new());
    scope
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::snapshot::{Snapshot, SnapshotNode};

    /// A session on a snapshot of one master holding every slot.
    fn session() -> Session {
        let id = "a".repeat(40);
        let snap = Snapshot {
            version: 1,
            seed: "127.0.0.1:7401".into(),
            nodes: vec![SnapshotNode {
                addr: "127.0.0.1:7401".into(),
                cluster_nodes: Some(format!(
                    "{id} 127.0.0.1:7401@17401 myself,master - 0 0 1 connected 0-16383\n"
                )),
                error: None,
                keys: 0,
                slots: Default::default(),
            }],
        };
        let opts = RunOptions::default();
        Session::new(Rc::new(snap), ScriptPath::default(), opts, true, true)
    }

    fn failed(s: &mut Session, source: Option<&str>, text: &str) -> String {
        s.evaluate(source, text).expect_err("fails").to_string()
    }

    #[test]
    fn a_typed_mistake_is_the_sentence_with_the_closest_names() {
        let mut s = session();
        assert_eq!(s.evaluate(None, "let x = 2; x * 3"), Ok(()));
        assert_eq!(
            failed(&mut s, None, "nodez()"),
            "error: Function not found: nodez ()\ndid you mean node(), nodes()?"
        );
        // On the second line of a statement typed over two: which line, and its code.
        let two = failed(&mut s, None, "let y = 1;\ny.no_such_thing()");
        assert!(
            two.starts_with("error: Function not found: no_such_thing")
                && two.contains("\n  at line 2: y.no_such_thing()"),
            "{two}"
        );
    }

    #[test]
    fn a_loaded_files_mistake_names_the_file_line_and_code() {
        let mut s = session();
        let text = "let a = 1;\nlet b = a.no_such_thing();\n";
        let shown = failed(&mut s, Some("mine.rhai"), text);
        assert!(
            shown.contains("\n  at mine.rhai:2:") && shown.contains(": let b = a.no_such_thing();"),
            "{shown}"
        );
        let syntax = failed(&mut s, Some("mine.rhai"), "let b = [1, 2;\n");
        assert!(
            syntax.starts_with("mine.rhai:1:14: syntax error: ")
                && syntax.ends_with(" 1 | let b = [1, 2;\n   |              ^"),
            "{syntax}"
        );
    }

    #[test]
    fn a_refusal_is_one_sentence_and_an_exit_code_is_said() {
        let mut s = session();
        let refused = failed(&mut s, None, "import \"cancel\" as c;\nc::plan(100, #{})");
        assert!(
            refused.starts_with("error: slot 100 is not open"),
            "{refused}"
        );
        assert!(!refused.contains("\n  at "), "{refused}");
        assert_eq!(failed(&mut s, None, "exit(3)"), "(exit code 3)");
        assert_eq!(s.evaluate(None, "exit(0)"), Ok(()));
    }
}
