//! The whole command line: the built-in commands of [`crate::cli`] plus one command
//! per script on the script path that declares its command line (the bundled
//! `check`, `fix`, ... and the operator's runbooks). Parsed once, here.

use clap::{Arg, ArgMatches, CommandFactory, FromArgMatches};

use crate::cli::{Cli, Global};
use crate::script::command::{self, Declaration};
use crate::script::path::{Origin, Script, ScriptPath};

/// Whether `name` is a built-in command (`lab`, `repl`, `help`, ...): a script of the
/// same name is not a command.
pub fn built_in(name: &str) -> bool {
    name == "help" || reserved().commands.iter().any(|c| c == name)
}

/// What the built-in command line takes for itself, read once from clap: the
/// subcommand names, and the long and short names of the global options.
struct Reserved {
    commands: Vec<String>,
    longs: Vec<String>,
    shorts: Vec<char>,
}

fn reserved() -> &'static Reserved {
    static RESERVED: std::sync::OnceLock<Reserved> = std::sync::OnceLock::new();
    RESERVED.get_or_init(|| {
        let cli = Cli::command();
        let mut longs: Vec<String> = vec!["help".into(), "version".into()];
        let mut shorts: Vec<char> = vec!['h', 'V'];
        for a in cli.get_arguments() {
            longs.extend(a.get_long().map(str::to_string));
            longs.extend(
                a.get_all_aliases()
                    .into_iter()
                    .flatten()
                    .map(str::to_string),
            );
            shorts.extend(a.get_short());
        }
        Reserved {
            commands: cli
                .get_subcommands()
                .map(|c| c.get_name().to_string())
                .collect(),
            longs,
            shorts,
        }
    })
}

/// The id of the positional `HOST:PORT` a command gets when it takes no other.
const SEED: &str = "slotsmith-seed";

/// A script on the script path that is a command.
#[derive(Debug, Clone)]
pub struct ScriptCommand {
    pub name: String,
    pub script: Script,
    /// Its declaration, or why it cannot be used (one sentence).
    pub declaration: Result<Declaration, String>,
}

impl ScriptCommand {
    /// Shipped with slotsmith (or the operator's copy of a shipped one).
    pub fn bundled(&self) -> bool {
        crate::script::path::bundled(&self.name).is_some()
    }

    fn clap(&self) -> clap::Command {
        match &self.declaration {
            Ok(d) => {
                let mut c = d.command(&self.name);
                if !d.has_positionals() {
                    c = c.arg(
                        Arg::new(SEED)
                            .value_name("HOST:PORT")
                            .help("Any node of the cluster: the same as -c HOST:PORT"),
                    );
                }
                c
            }
            // Still a command, so that running it says what is wrong with it.
            Err(e) => clap::Command::new(self.name.clone())
                .about(format!("cannot be used: {e}"))
                .arg(
                    Arg::new("args")
                        .num_args(0..)
                        .trailing_var_arg(true)
                        .allow_hyphen_values(true),
                ),
        }
    }
}

/// Why a script on the path is not a command although it looks like one, for
/// `scripts list`: a name taken by a built-in command.
pub fn not_a_command(name: &str) -> Option<String> {
    built_in(name).then(|| {
        format!("not a command: `{name}` is a built-in command; run the script with `slotsmith run {name}`")
    })
}

/// Every command the script path holds: scripts at its top (not `lib/...`) with a
/// declaration. Reading a declaration runs nothing. A script that cannot be read, or
/// whose declaration is malformed, is listed with the reason, so that running it says
/// why instead of "unknown command".
pub fn discover(path: &ScriptPath) -> Vec<ScriptCommand> {
    let mut out = Vec::new();
    for l in path.list() {
        let name = l.name;
        if name.contains('/') || built_in(&name) {
            continue;
        }
        let script = match path.peek(&name) {
            Ok(Some(s)) => s,
            Ok(None) => continue,
            Err(e) => {
                out.push(ScriptCommand {
                    script: Script {
                        name: format!("{name}.rhai"),
                        origin: Origin::Bundled,
                        text: String::new(),
                    },
                    name,
                    declaration: Err(e),
                });
                continue;
            }
        };
        let declaration = match command::read(&script.text) {
            Ok(Some(d)) => clash(&d)
                .map(|e| format!("the script {name} ({}): {e}", script.origin))
                .map_or(Ok(d), Err),
            Ok(None) if crate::script::path::bundled(&name).is_some() && script.origin != Origin::Bundled => {
                Err(format!(
                    "your copy {} has no {} declaration, so it is not a command any more: eject the bundled one again (`slotsmith scripts eject {name} --force`) and carry your changes over, or run your copy with `slotsmith run {name}`",
                    script.origin,
                    command::CONSTANT
                ))
            }
            Ok(None) => continue,
            Err(command::ReadError::Syntax(line, col, e)) => Err(format!(
                "{}:{line}:{col}: syntax error: {e}",
                script.name
            )),
            Err(command::ReadError::Declaration(e)) => Err(format!(
                "the script {name} ({}): {e}",
                script.origin
            )),
        };
        out.push(ScriptCommand {
            name,
            script,
            declaration,
        });
    }
    out
}

/// The clap command: the built-in ones and the script ones. For help, the operator's
/// runbooks are listed under their own heading; for completion they are ordinary
/// subcommands.
pub fn command(scripts: &[ScriptCommand], for_completion: bool) -> clap::Command {
    let mut c = Cli::command();
    let mut runbooks = Vec::new();
    for s in scripts {
        let mut sub = s.clap();
        if s.bundled() {
            sub = sub.display_order(0);
        } else if !for_completion {
            runbooks.push((s.name.clone(), sub.get_about().map(|a| a.to_string())));
            sub = sub.hide(true);
        }
        c = c.subcommand(sub);
    }
    if !runbooks.is_empty() {
        let width = runbooks.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
        let heading = anstyle::Style::new().bold().underline();
        let name = anstyle::Style::new().bold();
        let mut text = format!("{heading}Runbooks (scripts on the script path):{heading:#}\n");
        for (n, about) in runbooks {
            text.push_str(&format!(
                "  {name}{n:width$}{name:#}  {}\n",
                about.unwrap_or_default()
            ));
        }
        c = c.after_help(text.trim_end().to_string());
    }
    c
}

/// What the command line asks for.
pub enum Parsed {
    /// A built-in command.
    BuiltIn(Cli),
    /// A script command (or `run FILE` of a script with a declaration).
    Script {
        global: Global,
        script: Script,
        declaration: Declaration,
        matches: ArgMatches,
    },
    /// A script command that cannot be used: the sentence why.
    Broken(Global, String),
}

/// The global options clap parsed, whatever the command.
fn global(m: &ArgMatches) -> Result<Global, clap::Error> {
    Global::from_arg_matches(m)
}

/// Parse `argv` (with the program name first).
pub fn parse(argv: Vec<std::ffi::OsString>) -> Result<Parsed, clap::Error> {
    let path = early_path(&argv);
    if let Some(parsed) = parse_run(&path, &argv)? {
        return Ok(parsed);
    }
    let scripts = discover(&path);
    let matches = command(&scripts, false).try_get_matches_from(argv)?;
    let Some((name, sub)) = matches.subcommand() else {
        return Cli::from_arg_matches(&matches).map(Parsed::BuiltIn);
    };
    if let Some(s) = scripts.iter().find(|s| s.name == name) {
        let mut g = global(&matches)?;
        return Ok(match &s.declaration {
            Ok(d) => {
                seed(&mut g, d, &matches, sub)?;
                notice_copy(&path, name);
                Parsed::Script {
                    global: g,
                    script: s.script.clone(),
                    declaration: d.clone(),
                    matches: sub.clone(),
                }
            }
            Err(e) => Parsed::Broken(g, e.clone()),
        });
    }
    Cli::from_arg_matches(&matches).map(Parsed::BuiltIn)
}

/// `run SCRIPT ...` of a script that declares its command line: parsed by its
/// declaration (`run SCRIPT --help` shows the script's options). `None` for anything
/// else, a script without a declaration included.
fn parse_run(
    path: &ScriptPath,
    argv: &[std::ffi::OsString],
) -> Result<Option<Parsed>, clap::Error> {
    let Some(name) = run_target(argv) else {
        return Ok(None);
    };
    let Ok(script) = path.peek_or_load(&name) else {
        return Ok(None);
    };
    let Ok(Some(d)) = command::read(&script.text) else {
        return Ok(None);
    };
    if let Some(e) = clash(&d) {
        let cli = <Cli as clap::Parser>::try_parse_from(argv)?;
        return Ok(Some(Parsed::Broken(cli.global, format!("{name}: {e}"))));
    }
    let run = d.add_to(
        clap::Command::new("run").arg(
            Arg::new("script")
                .value_name("SCRIPT")
                .help("Script path or name")
                .required(true),
        ),
    );
    let matches = Cli::command()
        .mut_subcommand("run", |_| run)
        .try_get_matches_from(argv)?;
    let Some((_, sub)) = matches.subcommand() else {
        return Ok(None);
    };
    let g = global(&matches)?;
    if !crate::script::path::names_a_file(&name) {
        notice_copy(path, &name);
    }
    Ok(Some(Parsed::Script {
        global: g,
        script,
        declaration: d,
        matches: sub.clone(),
    }))
}

/// The script `slotsmith [GLOBAL...] run [GLOBAL...] SCRIPT` names, read before clap
/// parses: clap needs the script's declaration to parse what follows.
fn run_target(argv: &[std::ffi::OsString]) -> Option<String> {
    let cli = Cli::command();
    let mut valued: Vec<String> = Vec::new();
    for a in cli
        .get_arguments()
        .filter(|a| a.get_action().takes_values())
    {
        valued.extend(a.get_long().map(|l| format!("--{l}")));
        valued.extend(a.get_short().map(|c| format!("-{c}")));
    }
    let mut run = false;
    let mut it = argv.iter().skip(1).map(|a| a.to_string_lossy().to_string());
    while let Some(t) = it.next() {
        if t.starts_with('-') && t.len() > 1 && t != "--" {
            if valued.contains(&t) {
                it.next();
            }
            continue;
        }
        if run {
            return Some(t);
        }
        if t != "run" {
            return None;
        }
        run = true;
    }
    None
}

/// Why a declaration cannot be a command: one of its options is spelled like a
/// global option (`--timeout`, `-c`, ...), which clap would take for it.
pub fn clash(d: &Declaration) -> Option<String> {
    let Reserved { longs, shorts, .. } = reserved();
    for p in d.params.iter().filter(|p| !p.positional) {
        if let Some(l) = std::iter::once(&p.name)
            .chain(&p.aliases)
            .find(|l| longs.contains(l))
        {
            return Some(format!(
                "its option --{l} has the name of a global option of slotsmith; give it another name"
            ));
        }
        if let Some(c) = p.short.filter(|c| shorts.contains(c)) {
            return Some(format!(
                "its option -{c} (--{}) has the letter of a global option of slotsmith; give it another",
                p.name
            ));
        }
    }
    None
}

/// Say, once, that the operator's copy of a bundled script is used in its place.
fn notice_copy(path: &ScriptPath, name: &str) {
    let _ = path.find(name);
}

/// A positional `HOST:PORT` names the cluster as `-c` does; both on the command line
/// and different is a usage error.
fn seed(
    g: &mut Global,
    declared: &Declaration,
    top: &ArgMatches,
    sub: &ArgMatches,
) -> Result<(), clap::Error> {
    let Some(addr) = sub.try_get_one::<String>(SEED).ok().flatten() else {
        // A command that takes addresses (`create A B C`) may name the cluster by them.
        if g.cluster.is_none() {
            g.cluster = declared.cluster_word(sub);
        }
        return Ok(());
    };
    // The command line beats the environment (SLOTSMITH_CLUSTER), as -c does.
    let typed = top.value_source("cluster") == Some(clap::parser::ValueSource::CommandLine);
    if let Some(c) = g.cluster.as_ref().filter(|c| typed && *c != addr) {
        return Err(clap::Error::raw(
            clap::error::ErrorKind::ArgumentConflict,
            format!("the cluster is named twice, as -c {c} and as {addr}: give one\n"),
        ));
    }
    g.cluster = Some(addr.clone());
    Ok(())
}

/// The script path as the command line will set it, read before clap parses (clap
/// needs the script commands it holds): `--scripts DIR` (repeatable),
/// `--allow-unsafe-scripts`, `-q`.
fn early_path(argv: &[std::ffi::OsString]) -> ScriptPath {
    let mut dirs = Vec::new();
    let (mut unsafe_ok, mut quiet) = (false, false);
    let mut it = argv.iter().skip(1).map(|a| a.to_string_lossy().to_string());
    while let Some(a) = it.next() {
        if a == "--" {
            break;
        }
        if a == "--scripts" {
            if let Some(d) = it.next() {
                dirs.push(std::path::PathBuf::from(d));
            }
        } else if let Some(d) = a.strip_prefix("--scripts=") {
            dirs.push(std::path::PathBuf::from(d));
        } else if a == "--allow-unsafe-scripts" {
            unsafe_ok = true;
        } else if a == "-q" || a == "--quiet" {
            quiet = true;
        }
    }
    ScriptPath::new(&dirs).with_options(unsafe_ok, quiet)
}

impl Parsed {
    /// The global options, whatever the command.
    pub fn global(&self) -> &Global {
        match self {
            Parsed::BuiltIn(cli) => &cli.global,
            Parsed::Script { global, .. } | Parsed::Broken(global, _) => global,
        }
    }
}
