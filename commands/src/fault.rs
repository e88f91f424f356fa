//! Crash points for the crash tests: `BOZOR_FAULT=<point>` makes the process abort the first
//! time it reaches that point, as a power cut would, leaving no chance to clean up. Unset (as
//! in every deployment) they cost one atomic load.
//!
//! Points: `relay_after_ack` (the broker has acknowledged a batch, the relay's checkpoint has
//! not moved) and `projector_after_commit` (a Kafka-fed batch is committed to the read model,
//! its offsets not yet to Kafka). `command_panic`: a command panics after it was decided and
//! before it is appended (the API's panic guard must answer 500 and write nothing); unlike the
//! others it does not abort, and it fires on every command.

use std::sync::OnceLock;

fn configured() -> Option<&'static str> {
    static POINT: OnceLock<Option<String>> = OnceLock::new();
    POINT.get_or_init(|| std::env::var("BOZOR_FAULT").ok().filter(|p| !p.is_empty())).as_deref()
}

/// Whether this process is to crash at `point`.
pub fn armed(point: &str) -> bool {
    configured() == Some(point)
}

/// Aborts the process at `point`.
pub fn crash(point: &str) -> ! {
    eprintln!("BOZOR_FAULT: crashing at {point}");
    std::process::abort()
}
