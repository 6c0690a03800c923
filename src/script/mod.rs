//! The scripting layer: a Rhai engine with the cluster primitives loaded, the script
//! path, and ([`render`]) the words a script error is shown in (file, line, column,
//! the source line).
//! Policy lives in the scripts; this layer only runs them.

pub mod api;
pub mod command;
pub mod host;
pub mod path;
pub mod render;

use std::rc::Rc;

use rhai::{Dynamic, Engine, EvalAltResult, Scope};

use crate::cluster::{Cluster, ClusterError};
use host::{Host, RunOptions};
use path::{PathResolver, Script, ScriptPath, Sources};
use render::Fault;

/// How a script ended.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// 0 unless the script called `exit(code)`.
    pub code: i32,
    /// The script's last value, or the one given to `exit`.
    pub value: Dynamic,
    /// The sentence given to `fail`, for stderr.
    pub message: Option<String>,
}

/// Why a script could not finish.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ScriptError {
    /// It does not parse: the message carries file, line, column and the source line.
    #[error("{0}")]
    Syntax(String),
    /// Its declared command line refused the arguments: clap's words.
    #[error("{0}")]
    Usage(String),
    /// It raised an error, its own or a primitive's.
    #[error("{message}")]
    Runtime {
        message: String,
        /// The primitive's error when one caused it (a connection failure is exit 2).
        cause: Option<ClusterError>,
    },
}

/// A Rhai engine wired to one cluster.
pub struct Runner {
    engine: Engine,
    host: Rc<Host>,
    sources: Sources,
}

impl Runner {
    pub fn new(cluster: Rc<dyn Cluster>, opts: RunOptions, path: ScriptPath) -> Self {
        let sources: Sources = Default::default();
        let host = Rc::new(Host::new(cluster, opts.clone()));
        let mut engine = Engine::new();
        // Runbooks nest loops inside functions; the debug-build defaults are too tight.
        engine.set_max_expr_depths(256, 256);
        // The bundled steps call each other (fix::main -> apply_all -> apply -> ...):
        // the same depth in debug and release builds.
        engine.set_max_call_levels(64);
        engine.set_max_operations(opts.max_operations);
        engine.set_module_resolver(PathResolver::new(path, sources.clone()));
        let json = opts.json;
        // With --json, stdout carries only the JSON document. Tagged lines ([OK],
        // [WARNING], [ERR], >>> headings) are coloured here, on a terminal.
        engine.on_print(move |s| {
            if json {
                crate::color::eprintln(s);
            } else {
                crate::color::println(s);
            }
        });
        engine.on_debug(|s, src, pos| eprintln!("[debug] {}{s}", render::location(src, pos)));
        // An interruption (Ctrl+C, SIGTERM) ends the script at its next step; the
        // primitive it was in finishes first, so no slot is left half-moved.
        engine.on_progress(|_| {
            if crate::interrupt::held() {
                return None;
            }
            crate::interrupt::exit_code()
                .map(|code| api::runbook::exit_token(code as i64, Dynamic::UNIT))
        });
        api::register(&mut engine, &host);
        Runner {
            engine,
            host,
            sources,
        }
    }

    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    pub fn host(&self) -> &Rc<Host> {
        &self.host
    }

    /// Run a script with its command-line arguments: parsed by its declaration when it
    /// has one (then `main(opts)` runs), else given as they are in `args`.
    pub fn run(&self, script: &Script, args: &[String]) -> Result<Outcome, ScriptError> {
        let declared = match command::read(&script.text) {
            Ok(d) => d,
            Err(command::ReadError::Declaration(e)) => {
                return Err(ScriptError::Usage(format!("{}: {e}", script.name)))
            }
            // The run below says where, with the source line.
            Err(command::ReadError::Syntax(..)) => None,
        };
        if let Some(d) = declared {
            let name = script.name.trim_end_matches(".rhai");
            let matches = match d
                .command(name)
                .no_binary_name(true)
                .try_get_matches_from(args)
            {
                Ok(m) => m,
                // `--help` is an answer, not an error.
                Err(e) if !e.use_stderr() => {
                    print!("{}", e.render());
                    return Ok(Outcome {
                        code: 0,
                        value: Dynamic::UNIT,
                        message: None,
                    });
                }
                // The sentence, without clap's "error: " and its hints.
                Err(e) => {
                    let text = e.render().to_string();
                    let first = text.lines().next().unwrap_or_default();
                    let sentence = first.strip_prefix("error: ").unwrap_or(first);
                    return Err(ScriptError::Usage(sentence.to_string()));
                }
            };
            return self.run_declared(script, &d, &matches);
        }
        let mut scope = Scope::new();
        scope.push_constant(
            "args",
            args.iter()
                .cloned()
                .map(Dynamic::from)
                .collect::<rhai::Array>(),
        );
        let outcome = self.eval(&script.name, &script.text, &mut scope);
        self.report_phase();
        outcome
    }

    /// Run a script that declares its command line with what clap parsed: every node
    /// named is resolved to its node map first (a node not in the cluster is a usage
    /// error naming the option), then [`Runner::call_main`].
    pub fn run_declared(
        &self,
        script: &Script,
        d: &command::Declaration,
        matches: &clap::ArgMatches,
    ) -> Result<Outcome, ScriptError> {
        let mut opts = d.values(matches).map_err(ScriptError::Usage)?;
        if !d.nodes(&opts).is_empty() {
            let nodes = self.host.topology().map_err(|e| ScriptError::Runtime {
                message: e.to_string(),
                cause: self.host.last_error.borrow_mut().take(),
            })?;
            d.resolve_nodes(&mut opts, |option, word| {
                host::resolve_word(&nodes, word)
                    .map(|n| host::node_map(&n).into())
                    .map_err(|e| format!("{option} {word}: {e}"))
            })
            .map_err(ScriptError::Usage)?;
        }
        self.call_main(script, opts)
    }

    /// Run a script that declares its command line: its top level (imports,
    /// constants), then `main(opts)` with the options the host parsed.
    pub fn call_main(&self, script: &Script, opts: rhai::Map) -> Result<Outcome, ScriptError> {
        let mut scope = Scope::new();
        let ast = self.compile(&script.name, &script.text, &scope)?;
        let options = rhai::CallFnOptions::new().eval_ast(true);
        let result = self.engine.call_fn_with_options::<Dynamic>(
            options,
            &mut scope,
            &ast,
            "main",
            (Dynamic::from_map(opts),),
        );
        let outcome = match result {
            Ok(value) => Ok(Outcome {
                code: 0,
                value,
                message: None,
            }),
            Err(e) => self.ended(&script.name, &script.text, *e),
        };
        self.report_phase();
        outcome
    }

    /// The last phase a script named (`phase(..)`) and how long it took, with -v.
    fn report_phase(&self) {
        if let Some((name, began)) = self.host.phase.borrow_mut().take() {
            crate::progress::detail(&format!(
                "-- {name}: {:.2} s",
                began.elapsed().as_secs_f64()
            ));
        }
    }

    /// Parse `text` as the source `name`, ready to run.
    fn compile(&self, name: &str, text: &str, scope: &Scope) -> Result<rhai::AST, ScriptError> {
        self.sources
            .borrow_mut()
            .insert(name.to_string(), text.to_string());
        let mut ast = self
            .engine
            .compile_with_scope(scope, text)
            .map_err(|e| ScriptError::Syntax(render::syntax(Some(name), text, &e)))?;
        ast.set_source(name);
        self.start_input();
        Ok(ast)
    }

    /// Compile and evaluate `text` as the source `name` in `scope`.
    pub fn eval(&self, name: &str, text: &str, scope: &mut Scope) -> Result<Outcome, ScriptError> {
        let ast = self.compile(name, text, scope)?;
        match self.engine.eval_ast_with_scope::<Dynamic>(scope, &ast) {
            Ok(value) => Ok(Outcome {
                code: 0,
                value,
                message: None,
            }),
            Err(e) => self.ended(name, text, *e),
        }
    }

    fn ended(&self, name: &str, text: &str, e: EvalAltResult) -> Result<Outcome, ScriptError> {
        match exited(&e) {
            Some(outcome) => Ok(outcome),
            None => Err(self.error(&e, Some(name), text)),
        }
    }

    /// Forget what an earlier run left behind: the cluster error a primitive raised
    /// (see [`Self::error`]) and the retry budget.
    pub fn start_input(&self) {
        *self.host.last_error.borrow_mut() = None;
        crate::cluster::mover::reset_retry_budget();
    }

    /// The words for an error that ended the evaluation of `text` (named `source`, or
    /// typed into the REPL), as [`render`] makes them, with the cluster error that
    /// caused it.
    pub fn error(&self, e: &EvalAltResult, source: Option<&str>, text: &str) -> ScriptError {
        let fault = Fault::of(e, source);
        // Only the error that ended the script unhandled counts as its cause.
        let cause = self
            .host
            .last_error
            .borrow_mut()
            .take()
            .filter(|c| fault.message.contains(&c.to_string()));
        let alone = fault.is_refusal(cause.as_ref(), self.host.opts.verbose);
        let code = fault.pos.line().and_then(|line| {
            if fault.source.as_deref() == source {
                // Text typed on one line is in front of the operator already.
                (source.is_some() || text.trim().lines().count() > 1)
                    .then(|| text.lines().nth(line - 1).map(str::to_string))
                    .flatten()
            } else {
                let sources = self.sources.borrow();
                let s = fault.source.as_deref()?;
                sources.get(s)?.lines().nth(line - 1).map(str::to_string)
            }
        });
        ScriptError::Runtime {
            message: fault.words(alone, code.as_deref()),
            cause,
        }
    }
}

/// An `exit(code[, value])` that ended the script, possibly from inside a function.
pub fn exited(e: &EvalAltResult) -> Option<Outcome> {
    match e {
        EvalAltResult::ErrorTerminated(token, _) => {
            let map = token.read_lock::<rhai::Map>()?;
            let code = map.get("exit")?.as_int().ok()? as i32;
            Some(Outcome {
                code,
                value: map.get("value").cloned().unwrap_or(Dynamic::UNIT),
                message: map.get("message").map(|m| m.to_string()),
            })
        }
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
        | EvalAltResult::ErrorInModule(_, inner, _) => exited(inner),
        _ => None,
    }
}
