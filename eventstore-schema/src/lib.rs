//! The SQL migrations of bozor's event store and read models, in the order they are applied.
//!
//! `bozor migrate` (and every start of the server) applies the ones a database has not seen,
//! recording each in `schema_migrations`. A shipped migration is never edited: a change is a
//! new file with the next number. A test checks the list matches the folder.

/// One migration: its number, name and SQL.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Applied in increasing order; unique.
    pub version: i32,
    /// File name without the number, for humans.
    pub name: &'static str,
    /// The SQL, run in one transaction.
    pub sql: &'static str,
}

/// Every migration, in order.
pub const MIGRATIONS: &[Migration] = &[
    Migration { version: 1, name: "event_store", sql: include_str!("../migrations/0001_event_store.sql") },
    Migration { version: 2, name: "lean_append", sql: include_str!("../migrations/0002_lean_append.sql") },
    Migration {
        version: 3,
        name: "append_single_event",
        sql: include_str!("../migrations/0003_append_single_event.sql"),
    },
    Migration { version: 4, name: "read_models", sql: include_str!("../migrations/0004_read_models.sql") },
    Migration {
        version: 5,
        name: "orders_wallets_views",
        sql: include_str!("../migrations/0005_orders_wallets_views.sql"),
    },
    Migration { version: 6, name: "moderation_queue", sql: include_str!("../migrations/0006_moderation_queue.sql") },
    Migration { version: 7, name: "kafka_fan_out", sql: include_str!("../migrations/0007_kafka_fan_out.sql") },
    Migration { version: 8, name: "auth", sql: include_str!("../migrations/0008_auth.sql") },
    Migration { version: 9, name: "users_view", sql: include_str!("../migrations/0009_users_view.sql") },
    Migration { version: 10, name: "client_reads", sql: include_str!("../migrations/0010_client_reads.sql") },
    Migration { version: 11, name: "list_indexes", sql: include_str!("../migrations/0011_list_indexes.sql") },
    Migration { version: 12, name: "search", sql: include_str!("../migrations/0012_search.sql") },
    Migration { version: 13, name: "payments", sql: include_str!("../migrations/0013_payments.sql") },
    Migration { version: 14, name: "timers", sql: include_str!("../migrations/0014_timers.sql") },
    Migration { version: 15, name: "exports", sql: include_str!("../migrations/0015_exports.sql") },
    Migration { version: 16, name: "automatic", sql: include_str!("../migrations/0016_automatic.sql") },
    Migration {
        version: 17,
        name: "search_word_starts",
        sql: include_str!("../migrations/0017_search_word_starts.sql"),
    },
    Migration { version: 18, name: "lz4_state", sql: include_str!("../migrations/0018_lz4_state.sql") },
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_and_match_the_folder() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .expect("migrations folder exists")
            .map(|e| e.expect("readable entry").file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".sql"))
            .collect();
        files.sort();
        assert_eq!(files.len(), MIGRATIONS.len(), "every file in migrations/ is listed in MIGRATIONS");
        for (i, (m, f)) in MIGRATIONS.iter().zip(&files).enumerate() {
            assert_eq!(m.version, i as i32 + 1);
            assert_eq!(f, &format!("{:04}_{}.sql", m.version, m.name));
        }
    }
}
