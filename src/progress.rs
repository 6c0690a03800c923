//! What the operator sees on stderr while a run works: the progress bar of a long
//! move (when stderr is a terminal), and the one way to say something while a bar is
//! on the screen (above it, so that one bar stays), at the level `-q` / `-v` ask for.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Instant;

/// The bar on the screen now, if any.
static ACTIVE: Mutex<Option<indicatif::ProgressBar>> = Mutex::new(None);

/// `-q`: only results and errors. `-v`: every command sent, and timings.
static QUIET: AtomicBool = AtomicBool::new(false);
static VERBOSE: AtomicBool = AtomicBool::new(false);

/// When the run began, for the times of `-v`.
static STARTED: OnceLock<Instant> = OnceLock::new();

/// Set how much this run says (`-q`, `-v`).
pub fn set_level(quiet: bool, verbose: bool) {
    STARTED.get_or_init(Instant::now);
    QUIET.store(quiet, Ordering::Relaxed);
    VERBOSE.store(verbose, Ordering::Relaxed);
}

/// Whether `-v` was given.
pub fn verbose() -> bool {
    VERBOSE.load(Ordering::Relaxed)
}

/// A note about what the run is doing (waiting for gossip, ...): hidden with `-q`.
pub fn note(text: &str) {
    if !QUIET.load(Ordering::Relaxed) {
        say(text);
    }
}

/// A line of detail, shown with `-v` only, after the milliseconds since the run began
/// (`[  12.3]`), so that where a run's time went can be read off its lines.
pub fn detail(text: &str) {
    if verbose() {
        let ms = STARTED.get_or_init(Instant::now).elapsed().as_secs_f64() * 1000.0;
        say(&format!("[{ms:7.1}] {text}"));
    }
}

/// Print a line on stderr; above the progress bar when one is showing.
pub fn say(text: &str) {
    let bar = ACTIVE.lock().unwrap_or_else(|e| e.into_inner()).clone();
    match bar {
        Some(bar) => bar.suspend(|| crate::color::eprintln(text)),
        None => crate::color::eprintln(text),
    }
}

/// Slots and keys moved so far, shown as a bar when stderr is a terminal.
pub struct Progress {
    bar: Option<indicatif::ProgressBar>,
    keys: AtomicU64,
}

impl Progress {
    pub fn new(slots: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(slots);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} slots, {msg} [{elapsed}, ETA {eta}]",
            ) {
                bar.set_style(style);
            }
            *ACTIVE.lock().unwrap_or_else(|e| e.into_inner()) = Some(bar.clone());
            bar
        });
        Progress {
            bar,
            keys: AtomicU64::new(0),
        }
    }

    /// Count slots and keys done.
    pub fn done(&self, slots: u64, keys: u64) {
        let total = self.keys.fetch_add(keys, Ordering::Relaxed) + keys;
        if let Some(bar) = &self.bar {
            bar.inc(slots);
            let secs = bar.elapsed().as_secs_f64().max(0.001);
            bar.set_message(format!("{total} keys ({:.0} keys/s)", total as f64 / secs));
        }
    }

    /// Take the bar off the screen.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            *ACTIVE.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
