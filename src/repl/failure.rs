//! Why one input failed, and the one place that says so on stderr. A command or an
//! evaluation returns a [`Failure`]; the session prints it with [`report`] once the
//! input is over, before the plan a dry run grew.

use std::fmt;

/// Why one input failed, in the words the operator sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Something the session could not do: `error: SENTENCE`.
    Error(String),
    /// A command given the wrong arguments: `usage: ...`.
    Usage(&'static str),
    /// Words that need no label, printed as they are: a syntax error with its source
    /// line, `interrupted`, the exit code a script ended with.
    Said(String),
}

/// What a command or an evaluation comes to.
pub type Done = Result<(), Failure>;

impl Failure {
    pub fn error(text: impl Into<String>) -> Self {
        Failure::Error(text.into())
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Error(text) => write!(f, "error: {text}"),
            Failure::Usage(text) => write!(f, "usage: {text}"),
            Failure::Said(text) => f.write_str(text),
        }
    }
}

/// Say on stderr why an input failed.
pub fn report(failure: &Failure) {
    eprintln!("{failure}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_reads_as_the_operator_sees_it() {
        assert_eq!(
            Failure::error("no script named \"x\"").to_string(),
            "error: no script named \"x\""
        );
        assert_eq!(
            Failure::Usage(":load FILE").to_string(),
            "usage: :load FILE"
        );
        assert_eq!(
            Failure::Said("interrupted".into()).to_string(),
            "interrupted"
        );
    }
}
