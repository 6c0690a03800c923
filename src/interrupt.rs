//! Ctrl+C and SIGTERM: the first one asks long operations to stop taking new work and
//! finish what is in flight; the process then exits 130 (SIGINT) or 143 (SIGTERM). A
//! second one ends the process at once. Also the slots this process has opened and
//! not yet settled, so that every way out can say which slots it leaves open.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// 0 when nothing was asked, else the signal number.
static SIGNAL: AtomicI32 = AtomicI32::new(0);

/// When the interruption was asked for.
static ASKED_AT: Mutex<Option<Instant>> = Mutex::new(None);

/// Steps that must not be cut in half (a script's repair of one slot) hold this.
static HELD: AtomicU32 = AtomicU32::new(0);

/// Slots this process has set a migrating or importing marker on and not yet settled.
static OPEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// How long work in flight may take after an interruption before its waits are
/// abandoned: a node that stopped answering must not hold the operator's Ctrl+C.
pub const GRACE: Duration = Duration::from_secs(3);

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

/// Whether a wait that began at `since` should give up: an interruption was asked
/// for [`GRACE`] ago. Inside a step that must not be cut in half (`Hold`), each wait
/// gets the grace of its own: the step goes on while it keeps getting answers, and
/// only a wait for a node that stopped answering gives up.
pub fn overdue(since: Instant) -> bool {
    ASKED_AT
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .is_some_and(|t| {
            let from = if held() { t.max(since) } else { t };
            from.elapsed() >= GRACE
        })
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
    *ASKED_AT.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// While an `AtPrompt` lives the operator is being asked a question: an interruption
/// then means no, and ends the process at once (nothing is in flight).
pub struct AtPrompt(());

static PROMPT: AtomicU32 = AtomicU32::new(0);

impl AtPrompt {
    pub fn new() -> AtPrompt {
        PROMPT.fetch_add(1, Ordering::SeqCst);
        AtPrompt(())
    }
}

impl Default for AtPrompt {
    fn default() -> Self {
        AtPrompt::new()
    }
}

impl Drop for AtPrompt {
    fn drop(&mut self) {
        PROMPT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Record an interruption; a second one exits at once, naming the slots it may leave
/// open. At a prompt, the first one exits at once: the answer is no.
pub fn raise(signal: i32) {
    if PROMPT.load(Ordering::SeqCst) > 0 {
        eprintln!("\nNothing was changed.");
        std::process::exit(128 + signal);
    }
    if SIGNAL.swap(signal, Ordering::SeqCst) != 0 {
        let open = open_slots();
        if open.is_empty() {
            crate::progress::say("\nstopped at once: no slot is left open");
        } else {
            crate::progress::say(&format!(
                "\nstopped at once: {} may be left open ({}); run `slotsmith fix` to settle them",
                crate::cluster::topology::n_slots(open.len()),
                crate::cluster::topology::format_ranges(&crate::cluster::topology::ranges_of(
                    &open
                ))
            ));
        }
        std::process::exit(128 + signal);
    }
    *ASKED_AT.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
}

/// The process's interruptions as the cluster layer's stop check.
pub fn stop() -> crate::cluster::Stop {
    crate::cluster::Stop::new(Process)
}

/// See [`stop`].
struct Process;

impl crate::cluster::stop::StopSource for Process {
    fn requested(&self) -> bool {
        requested()
    }

    fn held(&self) -> bool {
        held()
    }

    fn overdue(&self, since: Instant) -> bool {
        overdue(since)
    }

    fn grace(&self) -> Duration {
        GRACE
    }

    fn opened(&self, slots: &[u16]) {
        opened(slots)
    }

    fn settled(&self, slots: &[u16]) {
        settled(slots)
    }

    fn open_slots(&self) -> Vec<u16> {
        open_slots()
    }
}

/// Note that markers were (or are about to be) set on these slots.
pub fn opened(slots: &[u16]) {
    OPEN.lock()
        .unwrap_or_else(|e| e.into_inner())
        .extend(slots.iter().copied());
}

/// Note that these slots are settled (owned by one master, no marker left).
pub fn settled(slots: &[u16]) {
    let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
    for s in slots {
        open.remove(s);
    }
}

/// Forget every slot noted as open (the REPL, before each input: what an earlier
/// input left open is no longer in flight).
pub fn forget_open() {
    OPEN.lock().unwrap_or_else(|e| e.into_inner()).clear();
}

/// The slots this process has opened and not settled, ascending.
pub fn open_slots() -> Vec<u16> {
    OPEN.lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .copied()
        .collect()
}

/// What the first Ctrl+C or SIGTERM says: what happens next, and how to stop at once.
fn first_message(what: &str) -> String {
    let open = open_slots().len();
    if open == 0 {
        format!("\n{what}: stopping (again to stop at once)")
    } else {
        format!(
            "\n{what}: finishing the {} in flight (again to stop at once, leaving them open)",
            crate::cluster::topology::n_slots(open)
        )
    }
}

/// Listen for SIGINT and SIGTERM on the runtime.
pub fn install(rt: &tokio::runtime::Handle) {
    rt.spawn(async {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        loop {
            tokio::select! {
                _ = int.recv() => {
                    if !requested() && PROMPT.load(Ordering::SeqCst) == 0 {
                        crate::progress::say(&first_message("interrupted"));
                    }
                    raise(2);
                }
                _ = term.recv() => {
                    if !requested() && PROMPT.load(Ordering::SeqCst) == 0 {
                        crate::progress::say(&first_message("terminated"));
                    }
                    raise(15);
                }
            }
        }
    });
}
