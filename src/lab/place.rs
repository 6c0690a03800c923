//! Where labs live: one directory per lab under the lab root, named by the lab's base
//! port.

use std::path::{Path, PathBuf};

/// Where labs live: `$SLOTSMITH_LAB_DIR`, else `$XDG_DATA_HOME/slotsmith/lab`, else
/// `~/.local/share/slotsmith/lab`. Each lab is the sub-directory named by its base port.
pub fn lab_root() -> PathBuf {
    let var = |name: &str| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(dir) = var("SLOTSMITH_LAB_DIR") {
        return dir;
    }
    if let Some(dir) = var("XDG_DATA_HOME").filter(|d| d.is_absolute()) {
        return dir.join("slotsmith").join("lab");
    }
    match var("HOME") {
        Some(home) => home
            .join(".local")
            .join("share")
            .join("slotsmith")
            .join("lab"),
        None => std::env::temp_dir().join("slotsmith-lab"),
    }
}

/// The directory of the lab whose base port is `port`, under [`lab_root`].
pub fn lab_dir(port: u16) -> PathBuf {
    lab_root().join(port.to_string())
}

pub(super) fn port_of_dir(dir: &Path) -> Option<u16> {
    dir.file_name()?.to_str()?.parse().ok()
}
