//! Structured logs to stderr; `RUST_LOG` filters (default `info`). `BOZOR_LOG_FORMAT=json`
//! writes one JSON object per line (time, level, target, message and the event's fields, such
//! as a failed request's `request_id`) for log collectors; `text` (the default) is for people.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once. Fails, naming the variable, on an unknown
/// `BOZOR_LOG_FORMAT`.
pub fn init() -> Result<(), String> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    match std::env::var("BOZOR_LOG_FORMAT").ok().filter(|v| !v.trim().is_empty()).as_deref() {
        None | Some("text") => {
            let _ = builder.try_init();
        }
        Some("json") => {
            let _ = builder.json().flatten_event(true).with_current_span(true).with_span_list(false).try_init();
        }
        Some(other) => return Err(format!("BOZOR_LOG_FORMAT={other:?} is not valid (hint: text or json)")),
    }
    Ok(())
}
