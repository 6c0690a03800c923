//! The `--json` documents every command prints, and the words of commands that report.

use crate::cli::Global;
use crate::script::ScriptError;

use super::AppError;

/// The version of every `--json` document's shape; bumped when a field changes meaning.
pub const JSON_SCHEMA: u32 = 1;

/// The one JSON document of a run: the script's result (a map gets `schema_version`
/// and `exit_code` added; anything else goes under `result`), or, when it failed or
/// refused without a result, `{schema_version, exit_code, error}`.
pub(super) fn result_doc(
    outcome: &Result<crate::script::Outcome, ScriptError>,
) -> serde_json::Value {
    let (value, code, message) = match outcome {
        Ok(o) => (
            rhai::serde::from_dynamic::<serde_json::Value>(&o.value)
                .unwrap_or_else(|e| serde_json::json!({ "unprintable_result": e.to_string() })),
            o.code,
            o.message.clone(),
        ),
        Err(e) => {
            let e = AppError::from(e.clone());
            (serde_json::Value::Null, e.exit_code(), Some(e.to_string()))
        }
    };
    let mut doc = match value {
        serde_json::Value::Object(m) => m,
        serde_json::Value::Null => serde_json::Map::new(),
        other => {
            let mut m = serde_json::Map::new();
            m.insert("result".into(), other);
            m
        }
    };
    doc.insert("schema_version".into(), JSON_SCHEMA.into());
    doc.insert("exit_code".into(), code.into());
    if let Some(m) = message {
        doc.insert("error".into(), m.into());
    }
    serde_json::Value::Object(doc)
}

/// The exit code of a run whose JSON document is already printed; a failure's
/// sentence still goes to stderr.
pub(super) fn said_code(outcome: Result<crate::script::Outcome, ScriptError>) -> i32 {
    match outcome {
        Ok(o) => o.code,
        Err(e) => {
            let e = AppError::from(e);
            eprintln!("slotsmith: {e}");
            e.exit_code()
        }
    }
}

/// Print one `--json` document: `value` with `schema_version` added when it is an
/// object, else `{schema_version, <key>: value}`.
pub(super) fn print_doc<T: serde::Serialize>(key: &str, value: &T) {
    let value = serde_json::to_value(value).unwrap_or_default();
    let doc = match value {
        serde_json::Value::Object(mut m) => {
            m.insert("schema_version".into(), JSON_SCHEMA.into());
            serde_json::Value::Object(m)
        }
        other => serde_json::json!({ "schema_version": JSON_SCHEMA, key: other }),
    };
    println!("{}", json_text(&doc));
}

/// What a command that reports in words says: the words, or with `--json` one
/// document holding them (`{schema_version, <key>: text}`).
pub(super) fn say(g: &Global, key: &str, text: String) {
    if g.json {
        print_doc(key, &text);
    } else {
        println!("{text}");
    }
}

/// A JSON document as printed.
pub(super) fn json_text(doc: &serde_json::Value) -> String {
    serde_json::to_string_pretty(doc).unwrap_or_default()
}

/// The JSON document of a run that ended before its script could run (bad options,
/// an unreachable cluster): `{schema_version, exit_code, error}`.
pub fn error_doc(e: &AppError) -> String {
    json_text(&serde_json::json!({
        "schema_version": JSON_SCHEMA,
        "exit_code": e.exit_code(),
        "error": e.to_string(),
    }))
}
