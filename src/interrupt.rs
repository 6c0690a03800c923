//! Ctrl+C and SIGTERM: the first one asks long operations to stop taking new work and
//! finish what is in flight (a slot move is never abandoned half-way); the process
//! then exits 130 (SIGINT) or 143 (SIGTERM). A second one ends the process at once.

use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

/// 0 when nothing was asked, else the signal number.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// Steps that must not be cut in half (a script's repair of one slot) hold this.
static HELD: AtomicU32 = AtomicU32::new(0);

/// While a `Hold` lives, an interruption does not end the running script; it takes
/// effect at the script's next step after the hold is dropped.
pub struct Hold(());

impl Hold {
    pub fn new() -> Hold {
        HELD.fetch_add(1, Ordering::SeqCst);
        Hold(())
    }
}

impl Default for Hold {
    fn default() -> Self {
        Hold::new()
    }
}

impl Drop for Hold {
    fn drop(&mut self) {
        HELD.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Whether some step is holding interruptions off.
pub fn held() -> bool {
    HELD.load(Ordering::SeqCst) > 0
}

/// Whether an interruption was asked for.
pub fn requested() -> bool {
    SIGNAL.load(Ordering::SeqCst) != 0
}

/// The exit code for the interruption asked for (130 SIGINT, 143 SIGTERM), if any.
pub fn exit_code() -> Option<i32> {
    match SIGNAL.load(Ordering::SeqCst) {
        0 => None,
        s => Some(128 + s),
    }
}

/// Forget an interruption (the REPL goes back to its prompt).
pub fn clear() {
    SIGNAL.store(0, Ordering::SeqCst);
}

/// Record an interruption; a second one exits at once.
pub fn raise(signal: i32) {
    if SIGNAL.swap(signal, Ordering::SeqCst) != 0 {
        std::process::exit(128 + signal);
    }
}

/// Listen for SIGINT and SIGTERM on the runtime.
pub fn install(rt: &tokio::runtime::Handle) {
    rt.spawn(async {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
            return;
        };
        loop {
            tokio::select! {
                _ = int.recv() => {
                    eprintln!("\ninterrupted: finishing the slots in flight (Ctrl+C again to stop at once)");
                    raise(2);
                }
                _ = term.recv() => {
                    eprintln!("\nterminated: finishing the slots in flight");
                    raise(15);
                }
            }
        }
    });
}
