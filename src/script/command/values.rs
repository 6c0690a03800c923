//! The values an option takes, checked as clap parses them: numbers in their range,
//! slots, `NODE=NUMBER`; each refusal is one sentence naming the value.

use rhai::Dynamic;

pub(super) fn default_text(d: &Dynamic) -> String {
    match d.as_float() {
        Ok(f) => f.to_string(),
        Err(_) => d.to_string(),
    }
}

fn range_text(min: Option<f64>, max: Option<f64>) -> String {
    match (min, max) {
        (Some(a), Some(b)) => format!("from {a} to {b}"),
        (Some(a), None) => format!("{a} or more"),
        (None, Some(b)) => format!("{b} or less"),
        (None, None) => String::new(),
    }
}

fn in_range(v: f64, min: Option<f64>, max: Option<f64>) -> Result<(), String> {
    if min.is_some_and(|m| v < m) || max.is_some_and(|m| v > m) {
        return Err(format!(
            "{v} is out of range: it must be {}",
            range_text(min, max)
        ));
    }
    Ok(())
}

pub(super) fn whole(s: &str, min: Option<f64>, max: Option<f64>) -> Result<i64, String> {
    let n: i64 = s
        .trim()
        .parse()
        .map_err(|_| format!("\"{s}\" is not a whole number"))?;
    in_range(n as f64, min, max)?;
    Ok(n)
}

pub(super) fn float(s: &str, min: Option<f64>, max: Option<f64>) -> Result<f64, String> {
    let f: f64 = s
        .trim()
        .parse()
        .ok()
        .filter(|f: &f64| f.is_finite())
        .ok_or_else(|| format!("\"{s}\" is not a number"))?;
    in_range(f, min, max)?;
    Ok(f)
}

pub(super) fn slot(s: &str) -> Result<i64, String> {
    let n: i64 = s
        .trim()
        .parse()
        .map_err(|_| format!("\"{s}\" is not a slot number: slots are 0 to 16383"))?;
    if !(0..16384).contains(&n) {
        return Err(format!("slot {n} is out of range: slots are 0 to 16383"));
    }
    Ok(n)
}

pub(super) fn nonempty(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("the value is empty".into());
    }
    Ok(s.to_string())
}

pub(super) fn node_number(
    s: &str,
    min: Option<f64>,
    max: Option<f64>,
) -> Result<(String, f64), String> {
    let (node, w) = s
        .rsplit_once('=')
        .filter(|(n, _)| !n.is_empty())
        .ok_or_else(|| format!("\"{s}\" is not NODE=NUMBER (for example 127.0.0.1:7001=2)"))?;
    let w = float(w, min, max).map_err(|e| format!("{s}: {e}"))?;
    Ok((node.to_string(), w))
}
