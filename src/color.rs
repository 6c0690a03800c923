//! Colour on a terminal, as `redis-cli --cluster check` has it: a line that starts
//! with `[OK]` in green, `[WARNING]` in yellow, `[ERR]` in red, a `>>>` heading in
//! bold. Whether a stream gets colour is decided once per run (`--color`, `NO_COLOR`,
//! `CLICOLOR_FORCE`, a terminal or not); a stream that gets none gets its text exactly
//! as written. The `--json` document is never coloured: it is printed elsewhere.

use std::sync::atomic::{AtomicBool, Ordering};

use anstream::{AutoStream, ColorChoice};
use anstyle::{AnsiColor, Style};

/// `--color WHEN`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    /// On a terminal, unless NO_COLOR is set (to anything but the empty string).
    #[default]
    Auto,
    /// Always, also in a pipe or a file.
    Always,
    /// Never.
    Never,
}

/// Whether stdout and stderr get colour in this run (none until `init`).
static STDOUT: AtomicBool = AtomicBool::new(false);
static STDERR: AtomicBool = AtomicBool::new(false);

/// Decide, once per run, which streams get colour.
pub fn init(when: ColorWhen) {
    let choice = match when {
        ColorWhen::Auto => ColorChoice::Auto,
        ColorWhen::Always => ColorChoice::Always,
        ColorWhen::Never => ColorChoice::Never,
    };
    choice.write_global();
    let coloured = |c: ColorChoice| c != ColorChoice::Never;
    STDOUT.store(
        coloured(AutoStream::choice(&std::io::stdout())),
        Ordering::Relaxed,
    );
    STDERR.store(
        coloured(AutoStream::choice(&std::io::stderr())),
        Ordering::Relaxed,
    );
}

/// Whether stdout gets colour in this run.
pub fn stdout_coloured() -> bool {
    STDOUT.load(Ordering::Relaxed)
}

/// The style of a line, by the tag it starts with after its indentation.
fn style_of(line: &str) -> Option<Style> {
    let text = line.trim_start();
    if text.starts_with(">>>") {
        return Some(Style::new().bold());
    }
    let tag = text.strip_prefix('[')?.split_once(']')?.0;
    let color = match tag {
        "OK" => AnsiColor::Green,
        "WARNING" | "SKIPPED" | "STALE" | "CANCELLED" => AnsiColor::Yellow,
        "ERR" | "FAILED" | "REFUSED" | "STOPPED" => AnsiColor::Red,
        _ => return None,
    };
    Some(Style::new().fg_color(Some(color.into())))
}

/// `text` with every line that starts with a known tag or `>>>` in its style (the
/// line's indentation left plain), as redis-cli colours its cluster reports.
pub fn paint(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        match style_of(line) {
            Some(style) => {
                let body = line.trim_start();
                out.push_str(&line[..line.len() - body.len()]);
                out.push_str(&format!("{}{body}{}", style.render(), style.render_reset()));
            }
            None => out.push_str(line),
        }
    }
    out
}

/// A line (or lines) on stdout, coloured when stdout gets colour.
pub fn println(text: &str) {
    if STDOUT.load(Ordering::Relaxed) {
        println!("{}", paint(text));
    } else {
        println!("{text}");
    }
}

/// A line (or lines) on stderr, coloured when stderr gets colour.
pub fn eprintln(text: &str) {
    if STDERR.load(Ordering::Relaxed) {
        eprintln!("{}", paint(text));
    } else {
        eprintln!("{text}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_and_headings_take_their_colour_and_nothing_else_does() {
        let green = Style::new().fg_color(Some(AnsiColor::Green.into()));
        let red = Style::new().fg_color(Some(AnsiColor::Red.into()));
        let bold = Style::new().bold();
        let text = ">>> Check slots coverage...\n[OK] All 16384 slots covered.\n    [REFUSED] slot 9\nplain [OK] inside\n[PLAN] slot 1";
        let out = paint(text);
        let lines: Vec<&str> = out.split('\n').collect();
        assert_eq!(
            lines[0],
            format!(
                "{}>>> Check slots coverage...{}",
                bold.render(),
                bold.render_reset()
            )
        );
        assert_eq!(
            lines[1],
            format!(
                "{}[OK] All 16384 slots covered.{}",
                green.render(),
                green.render_reset()
            )
        );
        assert_eq!(
            lines[2],
            format!("    {}[REFUSED] slot 9{}", red.render(), red.render_reset())
        );
        assert_eq!(lines[3], "plain [OK] inside");
        assert_eq!(lines[4], "[PLAN] slot 1");
        assert_eq!(paint("no tag\n"), "no tag\n");
    }
}
