//! The journal: every write slotsmith sends to a node (command, node, reply or error,
//! time, which script and run) appended as one JSON line to a file per run under
//! `$XDG_STATE_HOME/slotsmith/journal/` (else `~/.local/state/slotsmith/journal/`),
//! between a first line that says what ran (the command line, the seed node) and a
//! last line that says how it ended (the outcome, the exit code). The files are the
//! operator's own (0600, in a 0700 directory): they hold the cluster's history.
//! Passwords never reach it: commands are rendered with `conn::describe`, the command
//! line with [`command_line`].

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

/// One write, a line of a journal file.
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

/// The first line of a journal file: what ran.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Begin {
    begin: String,
    run: String,
    script: String,
    seed: String,
    command: String,
}

/// The last line of a journal file: how the run ended.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct End {
    end: String,
    run: String,
    outcome: String,
    exit_code: i32,
}

/// One run as the journal tells it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Run {
    pub run: String,
    pub file: PathBuf,
    pub script: String,
    /// The node the run was pointed at.
    pub seed: String,
    /// The command line, secrets masked.
    pub command: String,
    pub started: String,
    /// `None` while the run goes on, or when it was killed before it could say.
    pub ended: Option<String>,
    pub outcome: Option<String>,
    pub exit_code: Option<i32>,
    /// How many writes, and how many of them the node refused.
    pub writes: usize,
    pub failed: usize,
    pub entries: Vec<Entry>,
    /// The plan the run said it would carry out before moving (`record_plan`), for
    /// `resume`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plan: Option<serde_json::Value>,
}

/// The journal of one run; shared by every task that writes.
pub struct Journal {
    run: String,
    script: String,
    seed: String,
    command: String,
    path: PathBuf,
    file: Mutex<Option<File>>,
}

/// A cluster of short options that gives the password (`-a`, `-ya`, `-yaPASS`): the
/// flags before the `a` and what follows it. Only the flag options may come before it.
pub fn short_password(arg: &str) -> Option<(&str, &str)> {
    let body = arg.strip_prefix('-').filter(|b| !b.starts_with('-'))?;
    let at = body.find('a')?;
    let (flags, rest) = body.split_at(at);
    flags
        .chars()
        .all(|c| matches!(c, 'y' | 'v' | 'q'))
        .then_some((flags, &rest[1..]))
}

/// This process's command line as the journal keeps it: the value of `-a`/`--password`
/// (also in a cluster of short options, `-ya PASS`) and every secret a command would
/// carry (`conn::secret_mask`) masked.
pub fn command_line() -> String {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let mask = crate::cluster::conn::secret_mask(&args);
    let mut out: Vec<String> = Vec::new();
    let mut hide_next = false;
    for (a, keep) in args.iter().zip(mask) {
        if hide_next {
            out.push("***".into());
            hide_next = false;
            continue;
        }
        if a == "--password" {
            hide_next = true;
            out.push(a.clone());
        } else if let Some(v) = a.strip_prefix("--password=") {
            out.push(format!(
                "--password={}",
                if v.is_empty() { "" } else { "***" }
            ));
        } else if let Some((flags, rest)) = short_password(a) {
            if rest.is_empty() {
                hide_next = true;
                out.push(format!("-{flags}a"));
            } else {
                out.push(format!("-{flags}a***"));
            }
        } else if let Some(keep) = keep {
            out.push(format!("{}***", a.get(..keep).unwrap_or_default()));
        } else if a.contains(' ') || a.is_empty() {
            out.push(format!("\"{a}\""));
        } else {
            out.push(a.clone());
        }
    }
    out.join(" ")
}

/// `$XDG_STATE_HOME/slotsmith/journal`, else `~/.local/state/slotsmith/journal`.
pub fn dir() -> Option<PathBuf> {
    crate::xdg::dir(crate::xdg::Base::State, "journal")
}

/// Seconds since the epoch as `2026-11-24T23:49:05.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    let (year, month, day) = crate::civil_date::from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

impl Journal {
    /// A journal for a run of `script` against `seed`; the file is created at the
    /// first write, so runs that write nothing leave nothing behind.
    pub fn new(script: &str, seed: &str) -> Option<Journal> {
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
            seed: seed.to_string(),
            command: command_line(),
            path,
            file: Mutex::new(None),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Append one line, opening the file (0600, its directory 0700) and writing the
    /// first line at the first write. A journal that cannot be written warns and the
    /// run goes on: refusing to repair a cluster because a log file is missing would
    /// be worse.
    fn append(&self, line: &str) {
        let mut guard = self.file.lock().unwrap_or_else(|e| e.into_inner());
        if guard.is_none() {
            let opened = self
                .path
                .parent()
                .map(|d| {
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(d)
                })
                .transpose()
                .and_then(|_| {
                    OpenOptions::new()
                        .create(true)
                        .append(true)
                        .mode(0o600)
                        .open(&self.path)
                });
            match opened {
                Ok(mut f) => {
                    let begin = Begin {
                        begin: rfc3339(SystemTime::now()),
                        run: self.run.clone(),
                        script: self.script.clone(),
                        seed: self.seed.clone(),
                        command: self.command.clone(),
                    };
                    if let Ok(text) = serde_json::to_string(&begin) {
                        let _ = writeln!(f, "{text}");
                    }
                    *guard = Some(f);
                }
                Err(e) => {
                    crate::color::eprintln(&format!(
                        "[WARNING] cannot write the journal {}: {e}",
                        self.path.display()
                    ));
                    return;
                }
            }
        }
        if let Some(f) = guard.as_mut() {
            let _ = writeln!(f, "{line}");
        }
    }

    /// Append one write.
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
        if let Ok(line) = serde_json::to_string(&entry) {
            self.append(&line);
        }
    }

    /// Record the plan the run is about to carry out (its slot moves, as JSON text),
    /// before its first move, so that `resume` can finish it after a crash.
    pub fn plan(&self, plan: &str) {
        let line = format!(
            "{{\"plan\":{plan},\"run\":{},\"time\":{}}}",
            serde_json::Value::from(self.run.as_str()),
            serde_json::Value::from(rfc3339(SystemTime::now())),
        );
        self.append(&line);
    }

    /// Say how the run ended, when it wrote anything: `outcome` in words, and its exit
    /// code.
    pub fn finish(&self, outcome: &str, exit_code: i32) {
        if self
            .file
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
        {
            return;
        }
        let end = End {
            end: rfc3339(SystemTime::now()),
            run: self.run.clone(),
            outcome: outcome.to_string(),
            exit_code,
        };
        if let Ok(line) = serde_json::to_string(&end) {
            self.append(&line);
        }
    }
}

/// Every journal file, oldest first.
pub fn files() -> Vec<PathBuf> {
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

/// One journal file: the run it tells of, with its writes.
pub fn read(path: &Path) -> std::result::Result<Run, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut run = Run {
        file: path.to_path_buf(),
        ..Run::default()
    };
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        let bad = |e: serde_json::Error| format!("{}: bad line: {e}", path.display());
        let v: serde_json::Value = serde_json::from_str(l).map_err(bad)?;
        if v.get("begin").is_some() {
            let b: Begin = serde_json::from_value(v).map_err(bad)?;
            run.run = b.run;
            run.script = b.script;
            run.seed = b.seed;
            run.command = b.command;
            run.started = b.begin;
        } else if let Some(plan) = v.get("plan") {
            run.plan = Some(plan.clone());
        } else if v.get("end").is_some() {
            let e: End = serde_json::from_value(v).map_err(bad)?;
            run.ended = Some(e.end);
            run.outcome = Some(e.outcome);
            run.exit_code = Some(e.exit_code);
        } else {
            let e: Entry = serde_json::from_value(v).map_err(bad)?;
            if run.run.is_empty() {
                // A journal from before the first line said what ran.
                run.run = e.run.clone();
                run.script = e.script.clone();
                run.started = e.time.clone();
            }
            run.writes += 1;
            run.failed += usize::from(e.reply != "ok");
            run.entries.push(e);
        }
    }
    Ok(run)
}

/// The run a word names: its run id (or a unique start of it), its file, or its
/// number in `slotsmith journal` (1 is the oldest, -1 the last).
pub fn find(word: &str) -> std::result::Result<Run, String> {
    let files = files();
    if files.is_empty() {
        return Err("the journal is empty: no run has written to a cluster yet".into());
    }
    if let Ok(n) = word.parse::<i64>() {
        let i = if n < 0 { files.len() as i64 + n } else { n - 1 };
        if let Some(p) = files.get(usize::try_from(i).unwrap_or(usize::MAX)) {
            return read(p);
        }
        // Not a run number: perhaps the start of a run id (they begin with the date).
        let prefix = files.iter().any(|f| {
            f.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(word))
        });
        if !prefix {
            return Err(format!(
                "there is no run number {word}: the journal holds {} run(s)",
                files.len()
            ));
        }
    }
    let p = Path::new(word);
    if p.is_file() {
        return read(p);
    }
    let matching: Vec<&PathBuf> = files
        .iter()
        .filter(|f| {
            f.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(word))
        })
        .collect();
    match matching.as_slice() {
        [one] => read(one),
        [] => Err(format!(
            "no run {word} in the journal ({}); `slotsmith journal` lists them",
            dir().map(|d| d.display().to_string()).unwrap_or_default()
        )),
        many => Err(format!(
            "run {word} is ambiguous: it starts {} journal files",
            many.len()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_in_a_cluster_of_short_options_is_found() {
        assert_eq!(short_password("-a"), Some(("", "")));
        assert_eq!(short_password("-ya"), Some(("y", "")));
        assert_eq!(short_password("-yas3cret"), Some(("y", "s3cret")));
        assert_eq!(short_password("-c"), None);
        assert_eq!(short_password("--all"), None);
        assert_eq!(short_password("-ca"), None);
    }
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
