//! Where slotsmith keeps its files: the XDG base directories (`$XDG_CONFIG_HOME`,
//! `$XDG_DATA_HOME`, `$XDG_STATE_HOME`), each with its default under `$HOME`, and
//! `slotsmith/` inside.

use std::ffi::OsString;
use std::path::PathBuf;

/// One XDG base directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Base {
    /// `$XDG_CONFIG_HOME`, else `~/.config`: the user's scripts.
    Config,
    /// `$XDG_DATA_HOME`, else `~/.local/share`: the labs.
    Data,
    /// `$XDG_STATE_HOME`, else `~/.local/state`: the journal, the REPL's history.
    State,
}

impl Base {
    fn var(self) -> &'static str {
        match self {
            Base::Config => "XDG_CONFIG_HOME",
            Base::Data => "XDG_DATA_HOME",
            Base::State => "XDG_STATE_HOME",
        }
    }

    fn under_home(self) -> &'static [&'static str] {
        match self {
            Base::Config => &[".config"],
            Base::Data => &[".local", "share"],
            Base::State => &[".local", "state"],
        }
    }
}

/// `<base>/slotsmith/<sub>`: the base's variable when set and not empty, else its
/// default under `$HOME`; `None` without either.
pub fn dir(base: Base, sub: &str) -> Option<PathBuf> {
    dir_in(base, sub, false, |v| std::env::var_os(v))
}

/// [`dir`], strictly as the XDG specification says: a relative value of the base's
/// variable is ignored, and so is an empty `$HOME`.
pub fn strict_dir(base: Base, sub: &str) -> Option<PathBuf> {
    dir_in(base, sub, true, |v| std::env::var_os(v))
}

/// [`dir`] (or [`strict_dir`]) with the environment read through `env`.
fn dir_in(
    base: Base,
    sub: &str,
    strict: bool,
    env: impl Fn(&str) -> Option<OsString>,
) -> Option<PathBuf> {
    let own = env(base.var())
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .filter(|d| !strict || d.is_absolute());
    let home = || {
        let h = env("HOME").filter(|h| !strict || !h.is_empty())?;
        Some(
            base.under_home()
                .iter()
                .fold(PathBuf::from(h), |p, part| p.join(part)),
        )
    };
    Some(own.or_else(home)?.join("slotsmith").join(sub))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&str, &str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn each_base_follows_its_variable_then_home() {
        let set = [
            ("HOME", "/home/op"),
            ("XDG_CONFIG_HOME", "/cfg"),
            ("XDG_DATA_HOME", "rel"),
            ("XDG_STATE_HOME", ""),
        ];
        let at = |base, sub, strict| dir_in(base, sub, strict, env(&set));
        assert_eq!(
            at(Base::Config, "scripts", false),
            Some("/cfg/slotsmith/scripts".into())
        );
        assert_eq!(
            at(Base::State, "journal", false),
            Some("/home/op/.local/state/slotsmith/journal".into())
        );
        assert_eq!(
            at(Base::Data, "lab", false),
            Some("rel/slotsmith/lab".into())
        );
        assert_eq!(
            at(Base::Data, "lab", true),
            Some("/home/op/.local/share/slotsmith/lab".into())
        );
        let bare = [("HOME", "")];
        let at = |strict| dir_in(Base::Config, "scripts", strict, env(&bare));
        assert_eq!(at(false), Some(".config/slotsmith/scripts".into()));
        assert_eq!(at(true), None);
        assert_eq!(dir_in(Base::State, "history", false, env(&[])), None);
    }
}
