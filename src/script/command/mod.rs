//! A script's declared command line. A script that is a command holds one constant,
//! `const COMMAND = #{ summary, help, options: [..], positionals: [..] };`, read here
//! from the parsed script without running any of it (it must be a literal). The host
//! builds the clap command from it, parses and validates once, and hands the script's
//! `main(opts)` a typed map: ints are ints, repeated options arrays, nodes node maps.
//!
//! An option or positional is a map:
//! - `name`: the long name (`use-empty-masters`); in `opts` with `_` for `-`;
//! - `type`: `flag`, `int`, `float`, `string`, `node`, `slot` or `node=number`
//!   (`NODE=W`, collected into a map NODE -> W); `string` when left out;
//! - `help`, `placeholder` (in help: `N`), `short` (one letter), `default_value`,
//!   `min` / `max` (for numbers), `choices` (for strings), `keywords` (words a `node`
//!   option takes as they are, such as `all`), `repeated`, `required`, `conflicts`
//!   (names), `aliases` (other long names, not shown in help: redis-cli's spellings),
//!   `cluster` (a positional of addresses whose first names the cluster when `-c` is
//!   not given: `create A B C`).

use clap::{Arg, ArgAction, ArgMatches};
use rhai::{Dynamic, Map};

mod scan;
mod values;
use values::{default_text, float, node_number, nonempty, slot, whole};

/// The constant a script declares its command line in.
pub const CONSTANT: &str = "COMMAND";

/// Options shared by every script that moves slots, declared once: a script takes
/// them with `include: ["move"]` (and `"migration"` for the choice of protocol).
const GROUPS: &[(&str, &str)] = &[
    (
        "move",
        r#"[
            #{name: "pipeline", type: "int", min: 1, default_value: 100, placeholder: "N",
              aliases: ["cluster-pipeline"], help: "Keys per MIGRATE"},
            #{name: "migrate-timeout", type: "int", min: 1, default_value: 5000, placeholder: "MS",
              aliases: ["cluster-timeout"], help: "MIGRATE timeout in milliseconds (grown for big keys)"},
            #{name: "migrate-timeout-max", type: "int", min: 1, default_value: 120000, placeholder: "MS",
              help: "The most a MIGRATE timeout grows to for big keys (10 MB/s on top of --migrate-timeout)"},
            #{name: "max-key-size", type: "int", min: 1, default_value: 512, placeholder: "MB",
              help: "A slot holding a key bigger than this (MEMORY USAGE) is not moved by MIGRATE: it is named and nothing of it moves (an atomic move streams big keys in pieces and is not limited)"},
            #{name: "batch-slots", type: "int", min: 1, max: 16384, placeholder: "SLOTS",
              help: "Slots per batch of the legacy protocol: Ctrl+C finishes the batches in flight, and kill -9 may leave them open for fix (default: about 32k keys' worth, 512 to 2048 slots, when fewer pairs move than run at once, else 256; at most 64 from a source holding over 16 MB, whose keys are sized first)"},
        ]"#,
    ),
    (
        "migration",
        r#"[
            #{name: "migration", choices: ["auto", "atomic", "legacy"], default_value: "auto", placeholder: "MODE",
              help: "How slots move: atomic (the server's own slot migration, Valkey 9+), legacy (IMPORTING/MIGRATING, MIGRATE, SETSLOT), or auto: atomic when every master involved has it"},
        ]"#,
    ),
];

/// The options of a group, read as a script's would be.
fn group(name: &str) -> Result<Vec<Param>, String> {
    let (_, text) = GROUPS.iter().find(|(n, _)| *n == name).ok_or_else(|| {
        let known: Vec<&str> = GROUPS.iter().map(|(n, _)| *n).collect();
        format!(
            "its {CONSTANT} includes \"{name}\", which is not a group of options (known: {})",
            known.join(", ")
        )
    })?;
    let value = rhai::Engine::new_raw()
        .eval_expression::<rhai::Array>(text)
        .map_err(|e| format!("the options group {name} does not parse: {e}"))?;
    value.iter().map(|v| Param::from_value(v, false)).collect()
}

/// The kinds of value an option takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Flag,
    Int,
    Float,
    Str,
    Node,
    Slot,
    NodeNumber,
}

impl Kind {
    fn parse(word: &str) -> Option<Kind> {
        Some(match word {
            "flag" => Kind::Flag,
            "int" => Kind::Int,
            "float" => Kind::Float,
            "string" => Kind::Str,
            "node" => Kind::Node,
            "slot" => Kind::Slot,
            "node=number" => Kind::NodeNumber,
            _ => return None,
        })
    }
}

/// One option or positional as declared.
#[derive(Debug, Clone)]
pub struct Param {
    pub name: String,
    pub kind: Kind,
    pub help: String,
    pub value_name: Option<String>,
    pub short: Option<char>,
    pub default: Option<Dynamic>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub choices: Vec<String>,
    pub keywords: Vec<String>,
    pub repeated: bool,
    pub required: bool,
    pub conflicts: Vec<String>,
    pub aliases: Vec<String>,
    pub positional: bool,
    /// Its first value names the cluster when `-c` is not given.
    pub names_cluster: bool,
}

/// A script's command line.
#[derive(Debug, Clone)]
pub struct Declaration {
    pub summary: String,
    pub help: Option<String>,
    pub params: Vec<Param>,
}

/// Why a declaration cannot be read.
#[derive(Debug, Clone)]
pub enum ReadError {
    /// The script does not parse: line, column, what is wrong.
    Syntax(usize, usize, String),
    /// The declaration is not well formed: one sentence.
    Declaration(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Syntax(l, c, e) => {
                write!(f, "it does not parse (line {l}, column {c}: {e})")
            }
            ReadError::Declaration(e) => write!(f, "{e}"),
        }
    }
}

/// The declaration in a script's text: `None` when it declares none; an error when the
/// text does not parse or the declaration is not well formed. No part of the script
/// runs.
pub fn read(text: &str) -> Result<Option<Declaration>, ReadError> {
    let mut engine = rhai::Engine::new_raw();
    engine.set_max_expr_depths(256, 256);
    engine.set_optimization_level(rhai::OptimizationLevel::None);
    // The declaration alone, when it can be found and parses by itself (see scan).
    if let Some(ast) = scan::statement(text, CONSTANT).and_then(|s| engine.compile(s).ok()) {
        return declaration(&ast).map_err(ReadError::Declaration);
    }
    let ast = engine.compile(text).map_err(|e| {
        let pos = e.position();
        ReadError::Syntax(
            pos.line().unwrap_or(0),
            pos.position().unwrap_or(0),
            e.err_type().to_string(),
        )
    })?;
    declaration(&ast).map_err(ReadError::Declaration)
}

fn declaration(ast: &rhai::AST) -> Result<Option<Declaration>, String> {
    for stmt in ast.statements() {
        let rhai::Stmt::Var(x, flags, _) = stmt else {
            continue;
        };
        if x.0.name != CONSTANT {
            continue;
        }
        if !flags.contains(rhai::ASTFlags::CONSTANT) {
            return Err(format!(
                "declare its command line with `const {CONSTANT} = #{{...}};`, not `let`"
            ));
        }
        let value = x.1.get_literal_value(None).ok_or_else(|| {
            format!("its {CONSTANT} must be written out in full: literal text, numbers, arrays and maps, no variables, calls or `${{}}`")
        })?;
        return Declaration::from_value(value).map(Some);
    }
    Ok(None)
}

fn text(m: &Map, key: &str, what: &str) -> Result<Option<String>, String> {
    match m.get(key) {
        None => Ok(None),
        Some(v) if v.is_unit() => Ok(None),
        Some(v) => v
            .clone()
            .into_immutable_string()
            .map(|s| Some(s.to_string()))
            .map_err(|t| format!("{what}: `{key}` must be text, not {t}")),
    }
}

fn words(m: &Map, key: &str, what: &str) -> Result<Vec<String>, String> {
    match m.get(key) {
        None => Ok(Vec::new()),
        Some(v) => match v.read_lock::<rhai::Array>() {
            Some(a) => a
                .iter()
                .map(|w| {
                    w.clone()
                        .into_immutable_string()
                        .map(|s| s.to_string())
                        .map_err(|t| {
                            format!("{what}: `{key}` must be an array of text, not of {t}")
                        })
                })
                .collect(),
            None => Err(format!("{what}: `{key}` must be an array of text")),
        },
    }
}

fn flag(m: &Map, key: &str, what: &str) -> Result<Option<bool>, String> {
    match m.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_bool()
            .map(Some)
            .map_err(|t| format!("{what}: `{key}` must be true or false, not {t}")),
    }
}

fn number(m: &Map, key: &str, what: &str) -> Result<Option<f64>, String> {
    match m.get(key) {
        None => Ok(None),
        Some(v) => match (v.as_int(), v.as_float()) {
            (Ok(i), _) => Ok(Some(i as f64)),
            (_, Ok(f)) => Ok(Some(f)),
            _ => Err(format!("{what}: `{key}` must be a number")),
        },
    }
}

const PARAM_KEYS: &[&str] = &[
    "name",
    "type",
    "help",
    "placeholder",
    "short",
    "default_value",
    "min",
    "max",
    "choices",
    "keywords",
    "repeated",
    "required",
    "conflicts",
    "aliases",
    "cluster",
];

impl Param {
    fn from_value(v: &Dynamic, positional: bool) -> Result<Param, String> {
        let kind_word = if positional { "positional" } else { "option" };
        let m = v
            .read_lock::<Map>()
            .ok_or_else(|| format!("each {kind_word} must be a map #{{name: .., ..}}"))?;
        let name = text(&m, "name", kind_word)?
            .filter(|n| !n.is_empty())
            .ok_or_else(|| format!("each {kind_word} needs a `name`"))?;
        let what = if positional {
            format!("positional {name}")
        } else {
            format!("option --{name}")
        };
        if let Some(k) = m.keys().find(|k| !PARAM_KEYS.contains(&k.as_str())) {
            return Err(format!(
                "{what}: unknown field `{k}` (known: {})",
                PARAM_KEYS.join(", ")
            ));
        }
        let kind_text = text(&m, "type", &what)?.unwrap_or_else(|| "string".into());
        let kind = Kind::parse(&kind_text).ok_or_else(|| {
            format!("{what}: unknown type \"{kind_text}\" (known: flag, int, float, string, node, slot, node=number)")
        })?;
        if positional && kind == Kind::Flag {
            return Err(format!("{what}: a positional cannot be a flag"));
        }
        let short = match text(&m, "short", &what)? {
            None => None,
            Some(s) => {
                let mut cs = s.chars();
                match (cs.next(), cs.next()) {
                    (Some(c), None) if c.is_ascii_alphanumeric() => Some(c),
                    _ => return Err(format!("{what}: `short` must be one letter")),
                }
            }
        };
        let p = Param {
            kind,
            help: text(&m, "help", &what)?.unwrap_or_default(),
            value_name: text(&m, "placeholder", &what)?,
            short,
            default: m.get("default_value").filter(|d| !d.is_unit()).cloned(),
            min: number(&m, "min", &what)?,
            max: number(&m, "max", &what)?,
            choices: words(&m, "choices", &what)?,
            keywords: words(&m, "keywords", &what)?,
            repeated: flag(&m, "repeated", &what)?.unwrap_or(kind == Kind::NodeNumber),
            required: flag(&m, "required", &what)?.unwrap_or(positional),
            conflicts: words(&m, "conflicts", &what)?,
            aliases: words(&m, "aliases", &what)?,
            names_cluster: flag(&m, "cluster", &what)?.unwrap_or(false),
            positional,
            name,
        };
        if let Some(d) = &p.default {
            p.check_default(d)
                .map_err(|e| format!("{what}: its default {e}"))?;
        }
        Ok(p)
    }

    /// Whether a declared default is a value of the option's type.
    fn check_default(&self, d: &Dynamic) -> Result<(), String> {
        let ok = match self.kind {
            Kind::Flag => d.is_bool(),
            Kind::Int | Kind::Slot => d.is_int(),
            Kind::Float => d.is_int() || d.is_float(),
            Kind::Str | Kind::Node => d.is_string(),
            Kind::NodeNumber => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!("{d} is not a {}", self.type_word()))
        }
    }

    fn type_word(&self) -> &'static str {
        match self.kind {
            Kind::Flag => "flag (true or false)",
            Kind::Int => "whole number",
            Kind::Float => "number",
            Kind::Str => "text",
            Kind::Node => "node",
            Kind::Slot => "slot",
            Kind::NodeNumber => "NODE=NUMBER",
        }
    }

    /// Its key in `opts`: `use-empty-masters` -> `use_empty_masters`.
    pub fn key(&self) -> String {
        self.name.replace('-', "_")
    }

    /// How the operator writes it, for messages: `--from`, or `SLOT`.
    pub fn shown(&self) -> String {
        if self.positional {
            self.placeholder()
        } else {
            format!("--{}", self.name)
        }
    }

    fn placeholder(&self) -> String {
        self.value_name.clone().unwrap_or_else(|| match self.kind {
            Kind::Int => "N".into(),
            Kind::Float => "NUMBER".into(),
            Kind::Node => "NODE".into(),
            Kind::Slot => "SLOT".into(),
            Kind::NodeNumber => "NODE=NUMBER".into(),
            _ => self.name.to_uppercase(),
        })
    }

    /// The clap argument.
    fn arg(&self) -> Arg {
        let mut a = Arg::new(self.name.clone()).help(self.help.clone());
        if !self.positional {
            a = a.long(self.name.clone());
            for alias in &self.aliases {
                a = a.alias(alias.clone());
            }
        }
        if let Some(c) = self.short {
            a = a.short(c);
        }
        for c in &self.conflicts {
            a = a.conflicts_with(c.clone());
        }
        if self.kind == Kind::Flag {
            return a.action(ArgAction::SetTrue);
        }
        a = a.value_name(self.placeholder()).required(self.required);
        if self.repeated {
            a = a.action(ArgAction::Append);
            if !self.positional {
                a = a.value_delimiter(',');
            } else {
                a = a.num_args(1..);
            }
        } else {
            a = a.action(ArgAction::Set);
        }
        if let Some(d) = &self.default {
            a = a.default_value(default_text(d));
        }
        // A negative number is a value (refused by the range with a clear sentence),
        // not an unknown option.
        if matches!(self.kind, Kind::Int | Kind::Float | Kind::Slot) {
            a = a.allow_negative_numbers(true);
        }
        let (min, max) = (self.min, self.max);
        match self.kind {
            Kind::Flag => a,
            Kind::Int => a.value_parser(move |s: &str| whole(s, min, max)),
            Kind::Slot => a.value_parser(slot),
            Kind::Float => a.value_parser(move |s: &str| float(s, min, max)),
            Kind::Str if !self.choices.is_empty() => {
                a.value_parser(clap::builder::PossibleValuesParser::new(
                    self.choices
                        .iter()
                        .map(|c| clap::builder::PossibleValue::new(c.clone())),
                ))
            }
            Kind::Str | Kind::Node => a.value_parser(nonempty),
            Kind::NodeNumber => a.value_parser(move |s: &str| node_number(s, min, max)),
        }
    }

    /// The typed value clap parsed: `()` when not given and without a default.
    fn value(&self, m: &ArgMatches) -> Dynamic {
        let id = self.name.as_str();
        fn all<T: Clone + Send + Sync + 'static>(m: &ArgMatches, id: &str) -> Vec<T> {
            m.get_many::<T>(id)
                .map(|v| v.cloned().collect())
                .unwrap_or_default()
        }
        fn one<T: Clone + Send + Sync + 'static>(m: &ArgMatches, id: &str) -> Option<T> {
            m.get_one::<T>(id).cloned()
        }
        let array = |v: Vec<Dynamic>| Dynamic::from_array(v);
        match (self.kind, self.repeated) {
            (Kind::Flag, _) => m.get_flag(id).into(),
            (Kind::Int | Kind::Slot, false) => one::<i64>(m, id).map_or(Dynamic::UNIT, Into::into),
            (Kind::Int | Kind::Slot, true) => {
                array(all::<i64>(m, id).into_iter().map(Into::into).collect())
            }
            (Kind::Float, false) => one::<f64>(m, id).map_or(Dynamic::UNIT, Into::into),
            (Kind::Float, true) => array(all::<f64>(m, id).into_iter().map(Into::into).collect()),
            (Kind::Str | Kind::Node, false) => {
                one::<String>(m, id).map_or(Dynamic::UNIT, Into::into)
            }
            (Kind::Str | Kind::Node, true) => {
                array(all::<String>(m, id).into_iter().map(Into::into).collect())
            }
            (Kind::NodeNumber, _) => {
                let mut map = Map::new();
                for (node, w) in all::<(String, f64)>(m, id) {
                    map.insert(node.into(), w.into());
                }
                map.into()
            }
        }
    }
}

impl Declaration {
    fn from_value(v: Dynamic) -> Result<Declaration, String> {
        let m = v.try_cast::<Map>().ok_or_else(|| {
            format!("its {CONSTANT} must be a map #{{summary: .., options: [..]}}")
        })?;
        const KEYS: &[&str] = &["summary", "help", "options", "include", "positionals"];
        if let Some(k) = m.keys().find(|k| !KEYS.contains(&k.as_str())) {
            return Err(format!(
                "its {CONSTANT} has an unknown field `{k}` (known: {})",
                KEYS.join(", ")
            ));
        }
        let summary = text(&m, "summary", CONSTANT)?
            .ok_or_else(|| format!("its {CONSTANT} needs a one-line `summary`"))?;
        let mut params = Vec::new();
        for (key, positional) in [("options", false), ("positionals", true)] {
            let Some(list) = m.get(key) else { continue };
            let list = list
                .read_lock::<rhai::Array>()
                .ok_or_else(|| format!("its {CONSTANT}.{key} must be an array of maps"))?;
            for v in list.iter() {
                params.push(Param::from_value(v, positional)?);
            }
        }
        for g in words(&m, "include", CONSTANT)? {
            params.extend(group(&g)?);
        }
        let mut seen = std::collections::BTreeSet::new();
        for p in &params {
            if !seen.insert(p.key()) {
                return Err(format!("{} is declared twice", p.shown()));
            }
        }
        for p in &params {
            if let Some(c) = p
                .conflicts
                .iter()
                .find(|c| !params.iter().any(|q| &q.name == *c))
            {
                return Err(format!(
                    "{}: it conflicts with --{c}, which is not declared",
                    p.shown()
                ));
            }
        }
        Ok(Declaration {
            summary,
            help: text(&m, "help", CONSTANT)?,
            params,
        })
    }

    /// The address that names the cluster when `-c` is not given: the first value of a
    /// positional declared with `cluster: true`.
    pub fn cluster_word(&self, m: &ArgMatches) -> Option<String> {
        let p = self
            .params
            .iter()
            .find(|p| p.positional && p.names_cluster)?;
        m.try_get_many::<String>(&p.name)
            .ok()
            .flatten()
            .and_then(|mut v| v.next().cloned())
    }

    /// Whether it takes any positional argument.
    pub fn has_positionals(&self) -> bool {
        self.params.iter().any(|p| p.positional)
    }

    /// The clap command `name` with these options (the global ones are added by the
    /// caller).
    pub fn command(&self, name: &str) -> clap::Command {
        self.add_to(clap::Command::new(name.to_string()))
    }

    /// `cmd` with this summary, help and these options added after its own.
    pub fn add_to(&self, cmd: clap::Command) -> clap::Command {
        let mut cmd = cmd.about(self.summary.clone());
        if let Some(h) = &self.help {
            cmd = cmd.long_about(format!("{}\n\n{}", self.summary, h.trim()));
        }
        for p in &self.params {
            cmd = cmd.arg(p.arg());
        }
        cmd
    }

    /// The options as parsed, typed; node options are still the words given (see
    /// [`Declaration::nodes`]).
    pub fn values(&self, m: &ArgMatches) -> Result<Map, String> {
        let mut out = Map::new();
        for p in &self.params {
            if p.kind == Kind::NodeNumber {
                let mut seen = std::collections::BTreeSet::new();
                if let Some(twice) = m
                    .get_many::<(String, f64)>(&p.name)
                    .into_iter()
                    .flatten()
                    .find(|(n, _)| !seen.insert(n.clone()))
                {
                    return Err(format!("{} {}: given twice", p.shown(), twice.0));
                }
            }
            out.insert(p.key().into(), p.value(m));
        }
        Ok(out)
    }

    /// Every node word given, with the option it was given to: what must resolve.
    pub fn nodes(&self, opts: &Map) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for p in self
            .params
            .iter()
            .filter(|p| matches!(p.kind, Kind::Node | Kind::NodeNumber))
        {
            let Some(v) = opts.get(p.key().as_str()) else {
                continue;
            };
            let given: Vec<String> = if let Some(m) = v.read_lock::<Map>() {
                m.keys().map(|k| k.to_string()).collect()
            } else if let Some(a) = v.read_lock::<rhai::Array>() {
                a.iter().map(|w| w.to_string()).collect()
            } else if v.is_string() {
                vec![v.to_string()]
            } else {
                Vec::new()
            };
            for w in given.into_iter().filter(|w| !p.keywords.contains(w)) {
                out.push((p.shown(), w));
            }
        }
        out
    }

    /// Replace each node word of a `node` option by what `resolve` gives for it (a node
    /// map); keywords stay as they are. `node=number` maps keep their words as keys.
    pub fn resolve_nodes(
        &self,
        opts: &mut Map,
        mut resolve: impl FnMut(&str, &str) -> Result<Dynamic, String>,
    ) -> Result<(), String> {
        for p in &self.params {
            let Some(v) = opts.get_mut(p.key().as_str()) else {
                continue;
            };
            match p.kind {
                Kind::Node => {
                    let mut one = |w: &Dynamic| -> Result<Dynamic, String> {
                        let w = w.to_string();
                        if p.keywords.contains(&w) {
                            return Ok(w.into());
                        }
                        resolve(&p.shown(), &w)
                    };
                    if v.is_string() {
                        *v = one(v)?;
                    } else if let Some(mut a) = v.write_lock::<rhai::Array>() {
                        for w in a.iter_mut() {
                            *w = one(w)?;
                        }
                    }
                }
                Kind::NodeNumber => {
                    if let Some(m) = v.read_lock::<Map>() {
                        for k in m.keys() {
                            let _ = resolve(&p.shown(), k)?;
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(text: &str) -> Result<Option<Declaration>, String> {
        read(text).map_err(|e| e.to_string())
    }

    const SAMPLE: &str = r#"
        // a runbook
        const COMMAND = #{
            summary: "Drain a node.",
            help: `Longer
            text.`,
            options: [
                #{name: "to", type: "node", help: "Target.", keywords: ["all"], repeated: true},
                #{name: "batch", type: "int", min: 1, max: 100, default_value: 10, help: "Slots at a time."},
                #{name: "dry", type: "flag", short: "n", aliases: ["cluster-dry"]},
                #{name: "ratio", type: "float", min: 0, default_value: 2.5},
                #{name: "weight", type: "node=number", min: 0},
                #{name: "mode", choices: ["a", "b"], default_value: "a"},
            ],
            positionals: [#{name: "slot", type: "slot"}],
            include: ["move"],
        };
        fn main(opts) { opts }
    "#;

    fn parse(args: &[&str]) -> Result<Map, clap::Error> {
        let d = decl(SAMPLE).unwrap().unwrap();
        let m = d
            .command("drain")
            .try_get_matches_from(std::iter::once("drain").chain(args.iter().copied()))?;
        Ok(d.values(&m).expect("values"))
    }

    #[test]
    fn a_declaration_is_read_without_running_the_script() {
        let d = decl(SAMPLE).unwrap().unwrap();
        assert_eq!(d.summary, "Drain a node.");
        assert_eq!(d.params.len(), 12);
        for name in [
            "migrate-timeout",
            "migrate-timeout-max",
            "max-key-size",
            "batch-slots",
        ] {
            assert!(d.params.iter().any(|p| p.name == name), "{name}");
        }
        assert!(d.has_positionals());
        assert!(decl("fn main(opts) { 1 }").unwrap().is_none());
    }

    #[test]
    fn values_come_typed() {
        let o = parse(&["5", "--to", "a:1,all", "--weight", "x:1=2", "-n"]).unwrap();
        assert_eq!(o["slot"].as_int().unwrap(), 5);
        assert_eq!(o["batch"].as_int().unwrap(), 10);
        assert!(o["dry"].as_bool().unwrap());
        assert_eq!(o["ratio"].as_float().unwrap(), 2.5);
        assert_eq!(o["mode"].to_string(), "a");
        let to = o["to"].read_lock::<rhai::Array>().unwrap().clone();
        assert_eq!(to.len(), 2);
        let w = o["weight"].read_lock::<Map>().unwrap().clone();
        assert_eq!(w["x:1"].as_float().unwrap(), 2.0);
        let d = decl(SAMPLE).unwrap().unwrap();
        assert_eq!(
            d.nodes(&o),
            vec![
                ("--to".to_string(), "a:1".to_string()),
                ("--weight".to_string(), "x:1".to_string())
            ]
        );
    }

    #[test]
    fn bad_values_name_the_option() {
        for (args, words) in [
            (vec!["16384"], "slot 16384 is out of range"),
            (vec!["1", "--batch", "0"], "--batch"),
            (vec!["1", "--batch", "abc"], "is not a whole number"),
            (vec!["1", "--ratio", "-1"], "0 or more"),
            (vec!["1", "--weight", "nonsense"], "is not NODE=NUMBER"),
            (vec!["1", "--mode", "c"], "--mode"),
            (vec!["1", "--cluster-dry", "--nope"], "--nope"),
        ] {
            let e = parse(&args).unwrap_err().to_string();
            assert!(e.contains(words), "{args:?}: {e}");
        }
        assert!(parse(&["1", "--cluster-dry"]).unwrap()["dry"]
            .as_bool()
            .unwrap());
    }

    #[test]
    fn a_bad_declaration_is_one_sentence() {
        for (text, words) in [
            ("let COMMAND = #{summary: \"x\"};", "not `let`"),
            ("const COMMAND = #{summary: `a ${1}`};", "written out in full"),
            ("const COMMAND = #{};", "summary"),
            ("const COMMAND = #{summary: \"x\", options: [#{name: \"a\", type: \"big\"}]};", "unknown type"),
            ("const COMMAND = #{summary: \"x\", options: [#{name: \"a\", colour: 1}]};", "unknown field `colour`"),
            ("const COMMAND = #{summary: \"x\", options: [#{name: \"a\", type: \"int\", default_value: \"x\"}]};", "default"),
            ("const COMMAND = #{summary: \"x\", options: [#{name: \"a\"}, #{name: \"a\"}]};", "twice"),
            ("fn (", "does not parse"),
        ] {
            let e = decl(text).unwrap_err();
            assert!(e.contains(words), "{text}: {e}");
        }
    }
}
