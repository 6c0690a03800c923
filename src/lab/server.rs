//! Which server binary a lab runs: Debian's `redis-server` unless told otherwise
//! (`lab up --server PATH`, or `$SLOTSMITH_SERVER`), any `redis-server`-compatible
//! binary such as Valkey's `valkey-server`; and how to tell its processes and its
//! version.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::LabError;

/// The binary started when none is named.
pub const DEFAULT: &str = "redis-server";

/// The environment variable naming the server binary.
pub const ENV: &str = "SLOTSMITH_SERVER";

/// The server binary to start: `given`, else `$SLOTSMITH_SERVER`, else `redis-server`.
pub fn chosen(given: Option<&Path>) -> PathBuf {
    given
        .map(Path::to_path_buf)
        .or_else(|| {
            std::env::var_os(ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from(DEFAULT))
}

/// Fail early and clearly when `server` cannot be run.
pub fn check(server: &Path) -> Result<(), LabError> {
    match Command::new(server)
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(_) => Ok(()),
        Err(e) => Err(not_runnable(server, &e)),
    }
}

/// Why `server` could not be started, in one sentence.
pub fn not_runnable(server: &Path, e: &std::io::Error) -> LabError {
    if e.kind() == std::io::ErrorKind::NotFound && server == Path::new(DEFAULT) {
        return LabError::NotInstalled;
    }
    LabError::Spec(format!(
        "cannot run the server binary {} ({e}); give a redis-server compatible binary with --server PATH or {ENV}",
        server.display()
    ))
}

/// Whether a process command line is a server's: its process title starts with the
/// binary it was started as (`redis-server 127.0.0.1:7001 [cluster]`,
/// `/path/to/valkey-server 127.0.0.1:7001 [cluster]`).
pub fn is_server_title(cmdline: &str) -> bool {
    let first = cmdline.split([' ', '\0']).next().unwrap_or_default();
    let name = Path::new(first)
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    name.ends_with("-server")
}

/// The server's name and version from its `INFO server` text: `valkey 9.1.2`,
/// `redis 7.0.15`.
pub fn name_and_version(info: &str) -> String {
    let field = |name: &str| {
        info.lines()
            .find_map(|l| l.trim().strip_prefix(name)?.strip_prefix(':'))
            .map(str::to_string)
    };
    let name = field("server_name").unwrap_or_else(|| "redis".to_string());
    let version = field(&format!("{name}_version"))
        .or_else(|| field("redis_version"))
        .unwrap_or_else(|| "?".to_string());
    format!("{name} {version}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_versions_of_both_servers() {
        let redis = "# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\n";
        assert_eq!(name_and_version(redis), "redis 7.0.15");
        let valkey =
            "# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:9.1.2\r\n";
        assert_eq!(name_and_version(valkey), "valkey 9.1.2");
    }

    #[test]
    fn server_titles_whatever_the_path() {
        assert!(is_server_title("redis-server 127.0.0.1:7001 [cluster]"));
        assert!(is_server_title(
            "/root/.cache/slotsmith/valkey-9.1.2/valkey-server 127.0.0.1:7001 [cluster]"
        ));
        assert!(!is_server_title("sleep 7001"));
        assert!(!is_server_title(""));
    }
}
