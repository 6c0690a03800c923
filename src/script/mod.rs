//! The scripting layer: a Rhai engine with the cluster primitives loaded, the script
//! path, and the rendering of script errors (file, line, column, the source line).
//! Policy lives in the scripts; this layer only runs them.

pub mod api;
pub mod host;
pub mod path;

use std::rc::Rc;

use rhai::{Dynamic, Engine, EvalAltResult, ParseError, Position, Scope};

use crate::cluster::{Cluster, ClusterError};
use host::{Host, RunOptions};
use path::{PathResolver, Script, ScriptPath, Sources};

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
        engine.on_debug(|s, src, pos| eprintln!("[debug] {}{s}", location(src, pos)));
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

    /// Run a script with its command-line arguments (the `args` array).
    pub fn run(&self, script: &Script, args: &[String]) -> Result<Outcome, ScriptError> {
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
            Err(e) => self.ended(&script.name, *e),
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
            .map_err(|e| ScriptError::Syntax(self.syntax_message(name, &e)))?;
        ast.set_source(name);
        *self.host.last_error.borrow_mut() = None;
        crate::cluster::mover::reset_retry_budget();
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
            Err(e) => self.ended(name, *e),
        }
    }

    fn ended(&self, name: &str, e: EvalAltResult) -> Result<Outcome, ScriptError> {
        if let Some(outcome) = exit_outcome(&e) {
            return Ok(outcome);
        }
        let cause = self.host.last_error.borrow_mut().take();
        let (src, pos, msg, thrown) = innermost(&e, name);
        // Only the error that ended the script unhandled counts as its cause.
        let cause = cause.filter(|c| msg.contains(&c.to_string()));
        // The sentence first; where it happened second, for the script's author. A
        // refusal is about the cluster, not the script: the sentence alone.
        let refused = matches!(
            cause,
            Some(ClusterError::Refused(_) | ClusterError::Stopped { .. })
        );
        // A bundled script's own `throw "sentence"` is its refusal, in words meant
        // for the operator; where it was thrown is for -v.
        let said = thrown && path::bundled(&src).is_some() && !self.host.opts.verbose;
        let at = location(Some(&src), pos);
        let message = if at.is_empty() || refused || said {
            msg.clone()
        } else {
            let code = self
                .source_line(&src, pos)
                .map(|l| {
                    let l = l.trim();
                    match l.char_indices().nth(100) {
                        Some((i, _)) => format!(" {}...", &l[..i]),
                        None => format!(" {l}"),
                    }
                })
                .unwrap_or_default();
            format!("{msg}\n  at {}{code}", at.trim_end())
        };
        Err(ScriptError::Runtime { message, cause })
    }

    fn syntax_message(&self, name: &str, e: &ParseError) -> String {
        let pos = e.position();
        format!(
            "{}syntax error: {}{}",
            location(Some(name), pos),
            e.err_type(),
            self.quote(name, pos)
        )
    }

    /// The offending source line with a caret under the column.
    fn quote(&self, src: &str, pos: Position) -> String {
        let (Some(line), Some(code)) = (pos.line(), self.source_line(src, pos)) else {
            return String::new();
        };
        let col = pos.position().unwrap_or(1);
        let num = line.to_string();
        format!(
            "\n {num} | {code}\n {pad} | {caret:>col$}",
            pad = " ".repeat(num.len()),
            caret = "^",
        )
    }

    fn source_line(&self, src: &str, pos: Position) -> Option<String> {
        let line = pos.line()?;
        let sources = self.sources.borrow();
        sources.get(src)?.lines().nth(line - 1).map(str::to_string)
    }
}

/// `file:line:col: ` (or nothing when unknown).
fn location(src: Option<&str>, pos: Position) -> String {
    match (src, pos.line(), pos.position()) {
        (Some(s), Some(l), Some(c)) if !s.is_empty() => format!("{s}:{l}:{c}: "),
        (Some(s), Some(l), None) if !s.is_empty() => format!("{s}:{l}: "),
        (_, Some(l), Some(c)) => format!("line {l}, column {c}: "),
        _ => String::new(),
    }
}

/// An `exit(code[, value])` that ended the script, possibly from inside a function.
fn exit_outcome(e: &EvalAltResult) -> Option<Outcome> {
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
        | EvalAltResult::ErrorInModule(_, inner, _) => exit_outcome(inner),
        _ => None,
    }
}

/// The innermost error: its source name, position, message without position, and
/// whether it was thrown (`throw`, or a primitive's error) rather than a mistake in
/// the script's code.
fn innermost(e: &EvalAltResult, src: &str) -> (String, Position, String, bool) {
    match e {
        EvalAltResult::ErrorInFunctionCall(_, fsrc, inner, _) => {
            let s = if fsrc.is_empty() { src } else { fsrc.as_str() };
            innermost(inner, s)
        }
        EvalAltResult::ErrorInModule(m, inner, _) => innermost(inner, m),
        EvalAltResult::ErrorParsing(p, pos) => {
            (src.to_string(), *pos, format!("syntax error: {p}"), false)
        }
        EvalAltResult::ErrorRuntime(d, pos) => {
            // A caught system error rethrown (`catch (e) { throw e; }`) is a map.
            let text = d
                .read_lock::<rhai::Map>()
                .and_then(|m| m.get("message").map(|v| v.to_string()))
                .unwrap_or_else(|| d.to_string());
            (src.to_string(), *pos, text, d.is_string())
        }
        other => {
            let pos = other.position();
            let text = other.to_string();
            let text = text
                .strip_suffix(&format!(" ({pos})"))
                .map(str::to_string)
                .unwrap_or(text);
            (src.to_string(), pos, text, false)
        }
    }
}
