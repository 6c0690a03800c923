//! Build facts for `slotsmith --version`: the git commit the binary was built from and
//! the build date (UTC; `SOURCE_DATE_EPOCH` when set, for reproducible builds).

use std::process::Command;

#[path = "src/civil_date.rs"]
mod civil_date;

fn main() {
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown commit".to_string());
    let secs = std::env::var("SOURCE_DATE_EPOCH")
        .ok()
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        });
    println!("cargo:rustc-env=SLOTSMITH_COMMIT={commit}");
    println!("cargo:rustc-env=SLOTSMITH_BUILD_DATE={}", date(secs));
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs");
    println!("cargo:rerun-if-env-changed=SOURCE_DATE_EPOCH");
}

/// `YYYY-MM-DD` of a Unix time.
fn date(secs: i64) -> String {
    let (year, month, day) = civil_date::from_days(secs.div_euclid(86_400));
    format!("{year:04}-{month:02}-{day:02}")
}
