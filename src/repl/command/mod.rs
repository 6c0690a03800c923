//! The REPL's `:` commands: what each is called, takes and does in one line of help
//! ([`COMMANDS`]), the [`Command`] a typed line is parsed into once, and
//! [`Session::command`], the one place they are dispatched. What each does is in the
//! file of its group:
//!
//! - [`run`]: running scripts (`:run`, `:load`) and reading them and the topology
//!   again (`:reload`);
//! - [`edit`]: writing scripts (`:edit`, `:save`);
//! - [`listing`]: reading them (`:show`);
//! - [`help`]: the primitives', commands' and scripts' docs (`:help`);
//! - [`settings`]: how the session runs (`:dry-run`, `:json`).

mod edit;
mod help;
mod listing;
mod run;
mod settings;

use super::failure::Failure;
use super::session::{Session, Step};

/// One `:` command, with its arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `:help [TOPIC]`: everything, or one primitive, command, script or function.
    Help(String),
    Nodes,
    Check,
    /// `:map [slots|keys|memory]`: the picture of the slots.
    Map(String),
    /// `:run NAME [ARGS]`, split by [`run::arguments`].
    Run {
        name: String,
        args: Vec<String>,
    },
    Load(String),
    Show(String),
    Edit(String),
    Save(String),
    Reload,
    /// `:dry-run on|off`, or where writes go now.
    DryRun(Option<bool>),
    /// `:json on|off`, or the other way round from now.
    Json(Option<bool>),
    /// `:history` when the line editor does not answer it: stdin is not a terminal.
    History,
    Quit,
}

/// One row of the command table.
pub struct Spec {
    pub name: &'static str,
    /// Other names that run it (`:h`, `:q`), not listed.
    aliases: &'static [&'static str],
    /// What `usage:` says when the arguments do not fit.
    usage: &'static str,
    /// Its line in `:help`.
    pub help: &'static str,
    /// The command from its (trimmed) arguments; `None` when they do not fit.
    parse: fn(&str) -> Option<Command>,
}

/// The REPL's own commands, in the order `:help` lists them.
pub const COMMANDS: &[Spec] = &[
    Spec {
        name: ":help",
        aliases: &[":h", ":?"],
        usage: ":help [NAME]",
        help: "every primitive with its doc; :help NAME for one; :help fix:: for a module's functions, :help fix::plan for one",
        parse: |a| Some(Command::Help(a.to_string())),
    },
    Spec {
        name: ":nodes",
        aliases: &[],
        usage: ":nodes",
        help: "every node as a table",
        parse: |_| Some(Command::Nodes),
    },
    Spec {
        name: ":check",
        aliases: &[],
        usage: ":check",
        help: "the cluster's health, as `slotsmith check` reports it",
        parse: |_| Some(Command::Check),
    },
    Spec {
        name: ":map",
        aliases: &[],
        usage: ":map [slots|keys|memory]",
        help: ":map [keys|memory]: who owns the 16384 slots, as `slotsmith map` draws them (shaded by keys or memory)",
        parse: |a| match a {
            "" => Some(Command::Map("slots".into())),
            "slots" | "keys" | "memory" => Some(Command::Map(a.into())),
            _ => None,
        },
    },
    Spec {
        name: ":run",
        aliases: &[],
        usage: ":run NAME [ARGS]",
        help: ":run NAME [ARGS]: run a script from the script path",
        parse: |a| run::arguments(a).map(|(name, args)| Command::Run { name, args }),
    },
    Spec {
        name: ":load",
        aliases: &[],
        usage: ":load FILE",
        help: ":load FILE: evaluate a file into this session",
        parse: |a| given(a).map(Command::Load),
    },
    Spec {
        name: ":show",
        aliases: &[],
        usage: ":show NAME (a script on the path, a function of one as fix::owner, or a function defined in this session)",
        help: ":show NAME: print a script with line numbers (or a function of this session)",
        parse: |a| given(a).map(Command::Show),
    },
    Spec {
        name: ":edit",
        aliases: &[],
        usage: ":edit NAME (a script on the path; a bundled one is copied to your scripts first)",
        help: ":edit NAME: open a script in $VISUAL/$EDITOR (a bundled one is copied to your scripts first), then reload it",
        parse: |a| given(a).map(Command::Edit),
    },
    Spec {
        name: ":save",
        aliases: &[],
        usage: ":save NAME (writes this session's functions to NAME.rhai in your scripts directory)",
        help: ":save NAME: write the functions defined in this session to NAME.rhai in your scripts",
        parse: |a| given(a).map(Command::Save),
    },
    Spec {
        name: ":reload",
        aliases: &[],
        usage: ":reload",
        help: "re-read the topology and the scripts",
        parse: |_| Some(Command::Reload),
    },
    Spec {
        name: ":dry-run",
        aliases: &[],
        usage: ":dry-run on|off",
        help: ":dry-run on|off: writes go to an in-memory copy and are shown as a plan",
        parse: |a| on_off(a).map(Command::DryRun),
    },
    Spec {
        name: ":json",
        aliases: &[],
        usage: ":json [on|off]",
        help: ":json [on|off]: print results as JSON",
        parse: |a| on_off(a).map(Command::Json),
    },
    Spec {
        name: ":history",
        aliases: &[],
        usage: ":history",
        help: "the statements entered so far",
        parse: |_| Some(Command::History),
    },
    Spec {
        name: ":quit",
        aliases: &[":q", ":exit"],
        usage: ":quit",
        help: "leave (Ctrl+D does too)",
        parse: |_| Some(Command::Quit),
    },
];

/// A required argument.
fn given(arg: &str) -> Option<String> {
    (!arg.is_empty()).then(|| arg.to_string())
}

/// `on`, `off`, or nothing.
fn on_off(arg: &str) -> Option<Option<bool>> {
    match arg {
        "on" => Some(Some(true)),
        "off" => Some(Some(false)),
        "" => Some(None),
        _ => None,
    }
}

impl Command {
    /// The command a line starting with `:` names, with its arguments.
    pub fn parse(line: &str) -> Result<Command, Failure> {
        let line = line.trim();
        let (word, arg) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
        let spec = COMMANDS
            .iter()
            .find(|s| s.name == word || s.aliases.contains(&word))
            .ok_or_else(|| {
                Failure::error(format!("unknown command {word}; :help lists the commands"))
            })?;
        (spec.parse)(arg.trim()).ok_or(Failure::Usage(spec.usage))
    }
}

impl Session {
    /// Run one `:` command (`:history` on a terminal belongs to the line editor).
    pub fn command(&mut self, line: &str) -> Step {
        let before = self.plan_len();
        let result = Command::parse(line).and_then(|c| self.dispatch(c));
        self.settle(before, result)
    }

    fn dispatch(&mut self, command: Command) -> Result<Step, Failure> {
        match command {
            Command::Help(topic) => self.help(&topic),
            Command::Nodes => self.evaluate(None, "nodes()"),
            Command::Check => self.evaluate(None, "check()"),
            Command::Map(by) => self.evaluate(None, &format!("print(slot_map(#{{by: \"{by}\"}}))")),
            Command::Run { name, args } => self.run_script(&name, &args),
            Command::Load(file) => self.load(&file),
            Command::Show(name) => self.show(&name),
            Command::Edit(name) => self.edit(&name),
            Command::Save(name) => self.save(&name),
            Command::Reload => self.reload(),
            Command::DryRun(on) => self.set_dry_run(on),
            Command::Json(on) => {
                self.set_json(on);
                Ok(())
            }
            Command::History => {
                eprintln!("no history: stdin is not a terminal");
                Ok(())
            }
            Command::Quit => return Ok(Step::Quit),
        }?;
        Ok(Step::Ok)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_is_parsed_once_into_its_command() {
        assert_eq!(Command::parse(":h"), Ok(Command::Help(String::new())));
        assert_eq!(
            Command::parse("  :help   fix::plan "),
            Ok(Command::Help("fix::plan".into()))
        );
        assert_eq!(
            Command::parse(":run fix --replace \"a b\""),
            Ok(Command::Run {
                name: "fix".into(),
                args: vec!["--replace".into(), "a b".into()]
            })
        );
        assert_eq!(Command::parse(":exit"), Ok(Command::Quit));
        assert_eq!(Command::parse(":json"), Ok(Command::Json(None)));
        assert_eq!(
            Command::parse(":dry-run off"),
            Ok(Command::DryRun(Some(false)))
        );
        assert_eq!(
            Command::parse(":load  f.rhai"),
            Ok(Command::Load("f.rhai".into()))
        );
    }

    #[test]
    fn bad_arguments_are_the_usage_and_unknown_names_an_error() {
        assert_eq!(Command::parse(":load"), Err(Failure::Usage(":load FILE")));
        assert_eq!(
            Command::parse(":run  "),
            Err(Failure::Usage(":run NAME [ARGS]"))
        );
        assert_eq!(
            Command::parse(":dry-run maybe"),
            Err(Failure::Usage(":dry-run on|off"))
        );
        assert_eq!(
            Command::parse(":frobnicate x").unwrap_err().to_string(),
            "error: unknown command :frobnicate; :help lists the commands"
        );
    }

    #[test]
    fn every_command_is_listed_once_with_its_help() {
        for (i, c) in COMMANDS.iter().enumerate() {
            assert!(c.name.starts_with(':') && !c.help.is_empty(), "{}", c.name);
            assert!(c.usage.starts_with(c.name), "{}", c.name);
            let others = COMMANDS[i + 1..].iter();
            assert!(
                others
                    .clone()
                    .all(|o| o.name != c.name && !o.aliases.contains(&c.name)),
                "{} twice",
                c.name
            );
        }
    }
}
