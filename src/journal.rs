//! The journal: every write slotsmith sends to a node (command, node, reply or error,
//! time, which script and run) appended as one JSON line to a file per run under
//! `$XDG_STATE_HOME/slotsmith/journal/` (else `~/.local/state/slotsmith/journal/`).
//! Passwords never reach it: commands are rendered with `conn::describe`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// One line of a journal file.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Entry {
    /// UTC, RFC 3339.
    pub time: String,
    pub run: String,
    pub script: String,
    pub node: String,
    pub command: String,
    /// `ok`, or the error the node (or the connection) gave.
    pub reply: String,
}

/// The journal of one run; shared by every task that writes.
pub struct Journal {
    run: String,
    script: String,
    path: PathBuf,
    file: Mutex<Option<File>>,
}

/// `$XDG_STATE_HOME/slotsmith/journal`, else `~/.local/state/slotsmith/journal`.
pub fn dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))?;
    Some(base.join("slotsmith").join("journal"))
}

/// Seconds since the epoch as `2026-11-24T23:49:05.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

impl Journal {
    /// A journal for a run of `script`; the file is created at the first write, so
    /// runs that write nothing leave nothing behind.
    pub fn new(script: &str) -> Option<Journal> {
        let now = SystemTime::now();
        let stamp = rfc3339(now).replace([':', '.'], "");
        let run = format!("{stamp}-{}", std::process::id());
        let name = script
            .rsplit('/')
            .next()
            .unwrap_or(script)
            .trim_end_matches(".rhai");
        let path = dir()?.join(format!("{run}-{name}.jsonl"));
        Some(Journal {
            run,
            script: script.to_string(),
            path,
            file: Mutex::new(None),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one write. A journal that cannot be written warns once and the run goes on:
    /// refusing to repair a cluster because a log file is missing would be worse.
    pub fn record(&self, node: &str, command: &str, reply: std::result::Result<(), String>) {
        let entry = Entry {
            time: rfc3339(SystemTime::now()),
            run: self.run.clone(),
            script: self.script.clone(),
            node: node.to_string(),
            command: command.to_string(),
            reply: match reply {
                Ok(()) => "ok".into(),
                Err(e) => e,
            },
        };
        let Ok(line) = serde_json::to_string(&entry) else {
            return;
        };
        let mut guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            let opened = self
                .path
                .parent()
                .map(std::fs::create_dir_all)
                .transpose()
                .and_then(|_| {
                    OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(&self.path)
                });
            match opened {
                Ok(f) => *guard = Some(f),
                Err(e) => {
                    eprintln!(
                        "[WARNING] cannot write the journal {}: {e}",
                        self.path.display()
                    );
                    return;
                }
            }
        }
        if let Some(f) = guard.as_mut() {
            let _ = writeln!(f, "{line}");
        }
    }
}

/// Every journal file, oldest first.
pub fn runs() -> Vec<PathBuf> {
    let Some(d) = dir() else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = std::fs::read_dir(d)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// The entries of one journal file.
pub fn read(path: &Path) -> std::result::Result<Vec<Entry>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{}: bad line: {e}", path.display())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn dates_are_rfc3339_utc() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_045_745_123);
        assert_eq!(rfc3339(t), "2026-11-18T23:49:05.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }
}
