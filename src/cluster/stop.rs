//! The stop check the cluster layer is given by its caller: whether to stop taking new
//! work (Ctrl+C, SIGTERM), whether a wait has run past its grace, and where to note
//! the slots a move holds open so that every way out can name them. The cluster layer
//! reads no process-wide flag of its own; the command line hands it the process's
//! interruptions (`interrupt::stop`), a test or a library user its own.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// What a caller says about stopping, and is told about slots held open.
pub trait StopSource: Send + Sync {
    /// Whether an interruption was asked for: take no new work, finish what is in
    /// flight.
    fn requested(&self) -> bool;
    /// Whether a step that must not be cut in half is running (then a retry goes on
    /// after an interruption).
    fn held(&self) -> bool;
    /// Whether a wait that began at `since` should be abandoned.
    fn overdue(&self, since: Instant) -> bool;
    /// How long work in flight may take after an interruption.
    fn grace(&self) -> Duration;
    /// Markers were (or are about to be) set on these slots.
    fn opened(&self, slots: &[u16]);
    /// These slots are settled (one owner, no marker).
    fn settled(&self, slots: &[u16]);
    /// The slots opened and not settled, ascending.
    fn open_slots(&self) -> Vec<u16>;
}

/// A caller's stop check, cheap to clone and to share between tasks.
#[derive(Clone)]
pub struct Stop(Arc<dyn StopSource>);

impl std::fmt::Debug for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stop")
            .field("requested", &self.requested())
            .finish()
    }
}

impl Stop {
    pub fn new(source: impl StopSource + 'static) -> Stop {
        Stop(Arc::new(source))
    }

    /// A stop that is never asked for; it still keeps the slots held open.
    pub fn never() -> Stop {
        Stop::new(Never::default())
    }

    pub fn requested(&self) -> bool {
        self.0.requested()
    }

    /// Whether a wait to retry gives up: an interruption was asked for outside a step
    /// that must not be cut in half.
    pub fn gives_up(&self) -> bool {
        self.0.requested() && !self.0.held()
    }

    pub fn overdue(&self, since: Instant) -> bool {
        self.0.overdue(since)
    }

    pub fn grace(&self) -> Duration {
        self.0.grace()
    }

    /// Resolves once [`Stop::overdue`] holds for a wait that began at `since`.
    pub async fn abandoned(&self, since: Instant) {
        while !self.overdue(since) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn opened(&self, slots: &[u16]) {
        self.0.opened(slots)
    }

    pub fn settled(&self, slots: &[u16]) {
        self.0.settled(slots)
    }

    pub fn open_slots(&self) -> Vec<u16> {
        self.0.open_slots()
    }
}

/// See [`Stop::never`].
#[derive(Default)]
struct Never {
    open: Mutex<BTreeSet<u16>>,
}

impl StopSource for Never {
    fn requested(&self) -> bool {
        false
    }

    fn held(&self) -> bool {
        false
    }

    fn overdue(&self, _since: Instant) -> bool {
        false
    }

    fn grace(&self) -> Duration {
        Duration::ZERO
    }

    fn opened(&self, slots: &[u16]) {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(slots);
    }

    fn settled(&self, slots: &[u16]) {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        for s in slots {
            open.remove(s);
        }
    }

    fn open_slots(&self) -> Vec<u16> {
        self.open
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .copied()
            .collect()
    }
}
