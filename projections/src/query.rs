//! A list query as the read models build it: SQL and its parameters, kept together so tests
//! can EXPLAIN exactly what the API runs.

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;

/// A list query ready to run: its SQL and parameters (`EXPLAIN` them to see its plan).
pub struct ListQuery {
    pub sql: String,
    pub params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl ListQuery {
    /// The parameters as `query` takes them.
    pub fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect()
    }

    /// Appends `value` as the next parameter and returns its placeholder (`$n`).
    pub fn bind(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }
}

/// A cursor's time key (micros since the epoch) as a timestamp; out of range reads as the epoch.
pub fn micros_to_time(micros: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(micros).unwrap_or_default()
}
