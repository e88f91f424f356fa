//! `bozor bench audit --events N`: on BOZOR_DATABASE_URL (a database of its own), writes about
//! N wallet events through the real append path (hash chain, streams table) in balanced
//! journals (a deposit to one of 10 000 users against a provider clearing shard), untimed; then
//! times `bozor audit ledger` over them: events verified per second and the process's peak
//! resident memory.

use std::time::Instant;

use bozor_commands::hash::GENESIS;
use bozor_commands::store::{append_with, AppendRequest, StreamAppend};
use bozor_domain::aggregate::encode;
use bozor_domain::wallet::{self, Owner, PlatformAccount, Provider, Reason};
use bozor_domain::Money;
use chrono::Utc;
use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::configuration::Settings;

/// Users whose wallets the journals credit.
const USERS: usize = 10_000;
/// Journals per append (each writes an event to the user's wallet and one to clearing).
const JOURNALS_PER_APPEND: usize = 50;
/// Concurrent writers; writer `w` owns clearing shards `w` and `w + 8`.
const WRITERS: usize = 8;

#[derive(Debug, Serialize)]
pub struct AuditReport {
    pub events_written: u64,
    pub seed_seconds: f64,
    pub audit: bozor_commands::audit::LedgerReport,
    /// Peak resident memory of this process (VmHWM), after the audit.
    pub peak_rss_mb: f64,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

struct Head {
    version: i64,
    hash: [u8; 32],
}

/// Writer `w`'s share: its users (`w`, `w + WRITERS`, ...) and its two clearing shards.
async fn write(pool: deadpool_postgres::Pool, w: usize, appends: usize) -> Result<u64, String> {
    let client = pool.get().await.map_err(err)?;
    let users: Vec<Uuid> =
        (w..USERS).step_by(WRITERS).map(|i| Uuid::from_u128(0x4000_8000_0000_0000_0000 + i as u128)).collect();
    let mut heads: std::collections::HashMap<Uuid, Head> = Default::default();
    let mut written = 0u64;
    for n in 0..appends {
        let user = users[n % users.len()];
        let shard = if n % 2 == 0 { w as u8 } else { (w + WRITERS) as u8 };
        let (user_owner, clearing) =
            (Owner::User { user_id: user }, Owner::Platform { account: PlatformAccount::ProviderClearing, shard });
        let at = Utc::now();
        let mut streams = vec![];
        for owner in [user_owner, clearing] {
            let id = owner.wallet_id();
            let head = heads.entry(id).or_insert(Head { version: 0, hash: GENESIS });
            let mut events = vec![];
            if head.version == 0 {
                events.push(encode(&wallet::Event::WalletOpened { wallet_id: id, owner, at }));
            }
            for j in 0..JOURNALS_PER_APPEND {
                let journal_id = Uuid::from_u128((w as u128) << 96 | (n as u128) << 32 | j as u128);
                let amount = Money::from_tiyin(100 + j as i64).map_err(err)?;
                let event = match owner {
                    Owner::User { .. } => wallet::Event::FundsDeposited {
                        journal_id,
                        amount,
                        provider: Provider::Payme,
                        provider_tx_id: format!("{w}-{n}-{j}"),
                        at,
                    },
                    Owner::Platform { .. } => wallet::Event::FundsDebited {
                        journal_id,
                        amount,
                        reason: Reason::Deposit { wallet_id: user_owner.wallet_id() },
                        at,
                    },
                };
                events.push(encode(&event));
            }
            streams.push(StreamAppend {
                stream_id: id,
                stream_type: "wallet",
                expected: head.version,
                prev_hash: head.hash,
                events,
            });
        }
        streams.sort_by_key(|s| s.stream_id);
        let req = AppendRequest {
            streams,
            metadata: json!({ "actor": Uuid::nil(), "command": "bench_audit" }),
            recorded_at: at,
            idempotency: None,
            response: json!({}),
        };
        let appended = append_with(&client, &req).await.map_err(err)?;
        for (s, hash) in req.streams.iter().zip(appended.heads) {
            let head = heads.get_mut(&s.stream_id).expect("entered above");
            head.version += s.events.len() as i64;
            head.hash = hash;
            written += s.events.len() as u64;
        }
    }
    Ok(written)
}

fn peak_rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    (kb / 1024.0 * 10.0).round() / 10.0
}

pub async fn run(settings: &Settings, events: u64) -> Result<AuditReport, String> {
    let pool = crate::startup::connect_and_migrate(settings).await.map_err(err)?;
    let appends = (events as usize / (2 * JOURNALS_PER_APPEND)).div_ceil(WRITERS);
    let started = Instant::now();
    let tasks: Vec<_> = (0..WRITERS).map(|w| tokio::spawn(write(pool.clone(), w, appends))).collect();
    let mut events_written = 0;
    for t in tasks {
        events_written += t.await.map_err(err)??;
    }
    let seed_seconds = (started.elapsed().as_secs_f64() * 10.0).round() / 10.0;
    let mut clients = vec![];
    for _ in 0..2 {
        let (client, conn) =
            tokio_postgres::connect(&settings.database_url, tokio_postgres::NoTls).await.map_err(err)?;
        tokio::spawn(conn);
        clients.push(client);
    }
    let (mut first, mut second) = (clients.remove(0), clients.remove(0));
    let audit = bozor_commands::audit::ledger(&mut first, &mut second, Default::default()).await.map_err(err)?;
    Ok(AuditReport { events_written, seed_seconds, audit, peak_rss_mb: peak_rss_mb() })
}
