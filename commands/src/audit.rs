//! The finance auditor's ledger replay: every wallet and payment stream read back from the
//! event store (never from read models) in one consistent snapshot, and checked:
//! - each stream's versions run 1, 2, 3... and its hash chain holds; the `streams` table's
//!   head (version and hash) is its last event's;
//! - every journal sums to zero over the wallet streams it touches (a journal is written in
//!   one transaction, so the check needs one transaction's postings at a time);
//! - no user balance ever went negative, and each wallet's held balance is what its open holds
//!   add up to; every funded, unsettled escrow is held to the tiyin, and nothing else is held
//!   for an escrow;
//! - replayed balances equal the wallets read model (where the read model has caught up);
//! - a trial balance per account type sums to zero.
//!
//! Every discrepancy names the stream, the version and the event. Memory grows with the number
//! of wallets (their balances), never with the number of events: rows are streamed.
//!
//! `as_of` replays only the events at or before a position, or recorded at or before a time:
//! the balances and trial balance then. The head and read-model checks describe the present
//! and are skipped.

use std::collections::{BTreeMap, HashMap};

use bozor_domain::aggregate::decode;
use bozor_domain::escrow;
use bozor_domain::wallet::{self, Owner, PlatformAccount};
use chrono::{DateTime, Utc};
use futures_util::{pin_mut, TryStreamExt};
use serde::Serialize;
use uuid::Uuid;

use crate::hash::GENESIS;
use crate::store::StoredEvent;

/// Discrepancies listed at most; the count goes on past it.
pub const DISCREPANCIES_MAX: usize = 1_000;

/// The point in the past to replay to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AsOf {
    /// The event at this global position and everything before it in the log's tail order
    /// (transaction, then position), whole transactions.
    Position { position: i64 },
    /// The log up to the last transaction that wrote an event recorded at or before this time
    /// (in the log's order: recorded times are the commands' clocks).
    Time { time: DateTime<Utc> },
}

impl AsOf {
    /// A position (digits) or an RFC 3339 time. None when it is neither.
    pub fn parse(s: &str) -> Option<AsOf> {
        if let Ok(position) = s.parse::<i64>() {
            return (position >= 0).then_some(AsOf::Position { position });
        }
        DateTime::parse_from_rfc3339(s).ok().map(|t| AsOf::Time { time: t.with_timezone(&Utc) })
    }
}

/// One thing found wrong, pointing at where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Discrepancy {
    /// `version_gap`, `hash_mismatch`, `head_mismatch`, `undecodable_event`, `amount_out_of_range`,
    /// `journal_unbalanced`, `negative_balance`, `held_mismatch`, `escrow_hold_mismatch`,
    /// `read_model_mismatch`, `trial_balance_nonzero`.
    pub kind: &'static str,
    pub stream_id: Option<Uuid>,
    pub version: Option<i64>,
    pub event_id: Option<Uuid>,
    pub global_position: Option<i64>,
    pub detail: String,
}

/// Totals per kind of account, in tiyin. They sum to zero on sound books.
/// Sums are 128-bit, so no forged amount can wrap them around to a balanced-looking total.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct TrialBalance {
    pub users_available: i128,
    /// Held by escrows and pending withdrawals.
    pub users_held: i128,
    /// Of `users_held`: what escrows hold.
    pub held_by_escrows: i128,
    /// Of `users_held`: what pending withdrawals hold.
    pub held_by_withdrawals: i128,
    pub platform_revenue: i128,
    pub provider_clearing: i128,
    pub payout_clearing: i128,
    /// The sum of the account balances above (not counting the two "of which" lines): zero.
    pub total: i128,
}

/// What the audit found.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LedgerReport {
    pub as_of: Option<AsOf>,
    /// True when no discrepancy was found.
    pub ok: bool,
    pub wallets: usize,
    pub payments: usize,
    pub events: u64,
    pub journals: u64,
    /// Wallets whose read-model row has not caught up with the log yet (not compared).
    pub read_model_behind: usize,
    pub trial_balance: TrialBalance,
    pub discrepancies_total: usize,
    pub discrepancies: Vec<Discrepancy>,
    /// Every wallet's replayed balances (at `as_of`), when asked for, by wallet id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub balances: Option<Vec<WalletBalance>>,
    pub seconds: f64,
    pub events_per_sec: f64,
}

/// One wallet's balances as the log replays them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WalletBalance {
    pub wallet_id: Uuid,
    /// The user whose wallet it is (none for a platform account).
    pub user_id: Option<Uuid>,
    /// The platform account and shard, as `platform:revenue#3` (none for a user).
    pub account: Option<String>,
    pub available: i64,
    pub held: i64,
    pub version: i64,
}

/// What the audit reports besides its checks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Replay to this point.
    pub as_of: Option<AsOf>,
    /// List every wallet's balances.
    pub balances: bool,
}

/// Why the audit could not run (a broken ledger is a report, not an error).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Db(#[from] tokio_postgres::Error),
    #[error("no database connection: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
}

/// A wallet as replayed.
#[derive(Default)]
struct Replayed {
    owner: Option<Owner>,
    available: i64,
    held: i64,
    version: i64,
    /// Open holds: id -> (amount, held for an escrow).
    holds: HashMap<Uuid, (i64, bool)>,
}

/// The audit's state across the stream pass.
struct Audit {
    found: Vec<Discrepancy>,
    found_total: usize,
    events: u64,
    journals: u64,
    wallets: HashMap<Uuid, Replayed>,
    payments: usize,
    /// Escrows funded and not settled: id -> (amount held, the funding event).
    escrows_open: HashMap<Uuid, (i64, StoredEvent)>,
}

impl Audit {
    fn report(&mut self, d: Discrepancy) {
        self.found_total += 1;
        if self.found.len() < DISCREPANCIES_MAX {
            self.found.push(d);
        }
    }

    fn at(&mut self, kind: &'static str, e: &StoredEvent, detail: String) {
        self.report(Discrepancy {
            kind,
            stream_id: Some(e.stream_id),
            version: Some(e.version),
            event_id: Some(e.event_id),
            global_position: Some(e.global_position),
            detail,
        });
    }
}

fn bound(as_of: Option<AsOf>) -> (String, Option<i64>, Option<DateTime<Utc>>) {
    match as_of {
        None => (String::new(), None, None),
        // In the log's tail order, (transaction, position), and whole transactions: a journal is
        // never cut in two (its postings share a transaction, not always neighbouring positions).
        Some(AsOf::Position { position }) => (
            " AND e.tx_id <= coalesce((SELECT tx_id FROM events WHERE global_position = $1),
                                      (SELECT max(tx_id) FROM events WHERE global_position <= $1))"
                .into(),
            Some(position),
            None,
        ),
        // Times are the commands' own clocks and may run out of order within a stream; the cut
        // is made in the log's order instead: up to the last transaction that wrote an event
        // recorded at or before the time.
        Some(AsOf::Time { time }) => {
            (" AND e.tx_id <= (SELECT max(tx_id) FROM events WHERE recorded_at <= $1)".into(), None, Some(time))
        }
    }
}

const COLUMNS: &str = "e.global_position, e.tx_id::text, e.stream_type, e.stream_id, e.version, e.event_id, \
                       e.event_type, e.event_version, e.payload, e.metadata, e.recorded_at, e.hash";

fn empty() -> Audit {
    Audit {
        found: vec![],
        found_total: 0,
        events: 0,
        journals: 0,
        wallets: HashMap::new(),
        payments: 0,
        escrows_open: HashMap::new(),
    }
}

/// Runs the audit on two connections of its own, which read one snapshot (the first exports
/// it, the second imports it): the stream pass on the first and the journal pass on the second
/// run at the same time.
pub async fn ledger(
    first: &mut tokio_postgres::Client,
    second: &mut tokio_postgres::Client,
    options: Options,
) -> Result<LedgerReport, AuditError> {
    let as_of = options.as_of;
    let started = std::time::Instant::now();
    let repeatable = tokio_postgres::IsolationLevel::RepeatableRead;
    let tx = first.build_transaction().read_only(true).isolation_level(repeatable).start().await?;
    let snapshot: String = tx.query_one("SELECT pg_export_snapshot()", &[]).await?.get(0);
    let tx2 = second.build_transaction().read_only(true).isolation_level(repeatable).start().await?;
    // A snapshot id is PostgreSQL's own text (hex digits and dashes).
    tx2.batch_execute(&format!("SET TRANSACTION SNAPSHOT '{}'", snapshot.replace('\'', ""))).await?;
    let (mut audit, mut journals) = (empty(), empty());
    let (streams, journal_check) = tokio::join!(
        async {
            streams_pass(&tx, as_of, &mut audit).await?;
            check_escrow_holds(&mut audit);
            Ok::<(), AuditError>(())
        },
        journals_pass(&tx2, as_of, &mut journals)
    );
    streams?;
    journal_check?;
    tx2.commit().await?;
    audit.journals = journals.journals;
    audit.found_total += journals.found_total;
    for d in journals.found {
        if audit.found.len() < DISCREPANCIES_MAX {
            audit.found.push(d);
        }
    }
    let read_model_behind = if as_of.is_none() { read_model_pass(&tx, &mut audit).await? } else { 0 };
    tx.commit().await?;
    let trial_balance = trial_balance(&audit);
    if trial_balance.total != 0 {
        audit.report(Discrepancy {
            kind: "trial_balance_nonzero",
            stream_id: None,
            version: None,
            event_id: None,
            global_position: None,
            detail: format!("the accounts sum to {} tiyin, not 0", trial_balance.total),
        });
    }
    let seconds = started.elapsed().as_secs_f64();
    let balances = options.balances.then(|| {
        let mut all: Vec<WalletBalance> = audit
            .wallets
            .iter()
            .map(|(id, w)| {
                let (user_id, account) = match w.owner {
                    Some(Owner::User { user_id }) => (Some(user_id), None),
                    Some(Owner::Platform { account, shard }) => (None, Some(format!("{}#{shard}", account.name()))),
                    None => (None, None),
                };
                WalletBalance {
                    wallet_id: *id,
                    user_id,
                    account,
                    available: w.available,
                    held: w.held,
                    version: w.version,
                }
            })
            .collect();
        all.sort_by_key(|b| b.wallet_id);
        all
    });
    Ok(LedgerReport {
        as_of,
        balances,
        ok: audit.found_total == 0,
        wallets: audit.wallets.len(),
        payments: audit.payments,
        events: audit.events,
        journals: audit.journals,
        read_model_behind,
        trial_balance,
        discrepancies_total: audit.found_total,
        discrepancies: audit.found,
        seconds: (seconds * 1000.0).round() / 1000.0,
        events_per_sec: (audit.events as f64 / seconds.max(1e-9)).round(),
    })
}

/// Stream by stream, in version order: versions, hash chains, heads, and the wallets' balances.
async fn streams_pass(
    tx: &tokio_postgres::Transaction<'_>,
    as_of: Option<AsOf>,
    audit: &mut Audit,
) -> Result<(), AuditError> {
    let (clause, position, time) = bound(as_of);
    let sql = format!(
        "SELECT {COLUMNS}, s.version, s.hash, {WALLET_FIELDS} FROM events e LEFT JOIN streams s ON s.stream_id = e.stream_id
         WHERE e.stream_type IN ('wallet', 'payment', 'escrow'){clause} ORDER BY e.stream_id, e.version"
    );
    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = match (&position, &time) {
        (Some(p), _) => vec![p],
        (_, Some(t)) => vec![t],
        _ => vec![],
    };
    let rows = tx.query_raw(&sql, params).await?;
    pin_mut!(rows);
    let mut current: Option<Reading> = None;
    while let Some(row) = rows.try_next().await? {
        let e = StoredEvent::from_row(&row);
        // A stream whose `streams` row is gone reads as head 0: a head mismatch.
        let (head_version, head_hash): (i64, Vec<u8>) =
            (row.get::<_, Option<i64>>(12).unwrap_or(0), row.get::<_, Option<Vec<u8>>>(13).unwrap_or_default());
        audit.events += 1;
        if current.as_ref().is_none_or(|c| c.stream != e.stream_id) {
            if let Some(done) = current.take() {
                check_head(audit, done, as_of);
            }
            current = Some(Reading { stream: e.stream_id, version: 0, hash: GENESIS, head_version, head_hash });
            if e.stream_type == "payment" {
                audit.payments += 1;
            }
        }
        let c = current.as_mut().expect("set above");
        if e.version != c.version + 1 {
            audit.at("version_gap", &e, format!("version {} follows version {}", e.version, c.version));
        }
        let expected = e.recompute_hash(&c.hash);
        if e.hash.as_slice() != expected {
            audit.at("hash_mismatch", &e, "the event's hash does not follow from its fields and the one before".into());
        }
        // Chain on the stored hash, so one edited event is reported once, not once per event after it.
        c.hash = e.hash.as_slice().try_into().unwrap_or(expected);
        c.version = e.version;
        if e.stream_type == "wallet" {
            let fields = [row.get(14), row.get(15), row.get(16), row.get(17)];
            replay_wallet(audit, &e, fields);
        } else if e.stream_type == "escrow" {
            replay_escrow(audit, e);
        }
    }
    if let Some(done) = current.take() {
        check_head(audit, done, as_of);
    }
    Ok(())
}

/// The stream being read: its id, last version and chain hash, and the head the streams table has.
struct Reading {
    stream: Uuid,
    version: i64,
    hash: [u8; 32],
    head_version: i64,
    head_hash: Vec<u8>,
}

fn check_head(audit: &mut Audit, r: Reading, as_of: Option<AsOf>) {
    if as_of.is_some() {
        return;
    }
    let Reading { stream, version, hash, head_version, head_hash } = r;
    if head_version != version || head_hash.as_slice() != hash {
        audit.report(Discrepancy {
            kind: "head_mismatch",
            stream_id: Some(stream),
            version: Some(version),
            event_id: None,
            global_position: None,
            detail: format!("the streams table says version {head_version}, the log ends at version {version}"),
        });
    }
}

/// Applies one wallet event's posting to the replayed balances, checking it as it goes.
/// What a stored wallet event does to the balances, read straight from its JSON: the
/// auditor's own reading of the log, independent of the domain's decoder (and faster, with no
/// event tree built). The signs mirror `wallet::Event::posting`; a test holds the two together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredPosting {
    pub journal_id: Uuid,
    pub available: i64,
    pub held: i64,
    /// A hold opened (`Some(true)` when an escrow's) or closed (`None` with `closes`).
    pub opens: Option<(Uuid, bool)>,
    pub closes: Option<Uuid>,
}

/// The event types that move money, and how: (available sign, held sign, opens a hold,
/// closes one). `WalletOpened` moves nothing.
fn shape(event_type: &str) -> Option<(i64, i64, bool, bool)> {
    Some(match event_type {
        "FundsDeposited" | "FundsCredited" => (1, 0, false, false),
        "FundsDebited" => (-1, 0, false, false),
        "DepositHeld" => (0, 1, true, false),
        "FundsHeld" => (-1, 1, true, false),
        "HoldReleased" => (1, -1, false, true),
        "HoldCaptured" => (0, -1, false, true),
        _ => return None,
    })
}

/// Reads a posting from a stored payload's fields (`journal_id`, `amount`, `hold_id`,
/// `reason`). `Ok(None)` for an event that moves no money; `Err` for one that should and
/// cannot be read.
pub fn stored_posting(
    event_type: &str,
    journal_id: Option<&str>,
    amount: Option<&str>,
    hold_id: Option<&str>,
    reason: Option<&str>,
) -> Result<Option<StoredPosting>, String> {
    let Some((a, h, opens, closes)) = shape(event_type) else {
        return match event_type {
            "WalletOpened" => Ok(None),
            other => Err(format!("{other} is no wallet event")),
        };
    };
    let journal_id = journal_id.and_then(|j| Uuid::parse_str(j).ok()).ok_or("no journal_id")?;
    let amount: i64 = amount.and_then(|x| x.parse().ok()).ok_or("no whole amount")?;
    let hold = || hold_id.and_then(|h| Uuid::parse_str(h).ok()).ok_or("no hold_id");
    Ok(Some(StoredPosting {
        journal_id,
        available: a * amount,
        held: h * amount,
        opens: if opens { Some((hold()?, reason == Some("escrow"))) } else { None },
        closes: if closes { Some(hold()?) } else { None },
    }))
}

/// The payload fields `stored_posting` reads, as text, and the owner of a `WalletOpened`.
const WALLET_FIELDS: &str = "e.payload->>'journal_id', e.payload->>'amount', e.payload->>'hold_id', \
                             e.payload->'reason'->>'reason'";

/// Applies one wallet event's posting to the replayed balances, checking it as it goes.
fn replay_wallet(audit: &mut Audit, e: &StoredEvent, fields: [Option<&str>; 4]) {
    if e.event_type == "WalletOpened" {
        match decode::<wallet::Event>(&e.event_type, e.event_version, e.payload.clone()) {
            Ok(wallet::Event::WalletOpened { owner, .. }) => {
                let w = audit.wallets.entry(e.stream_id).or_default();
                w.owner = Some(owner);
                w.version = e.version;
            }
            Ok(_) => {}
            Err(err) => audit.at("undecodable_event", e, err.to_string()),
        }
        return;
    }
    let [journal, amount, hold, reason] = fields;
    let p = match stored_posting(&e.event_type, journal, amount, hold, reason) {
        Ok(Some(p)) => p,
        Ok(None) => return,
        Err(err) => return audit.at("undecodable_event", e, err),
    };
    let w = audit.wallets.entry(e.stream_id).or_default();
    w.version = e.version;
    if let Some((id, escrow)) = p.opens {
        w.holds.insert(id, (p.held.max(0), escrow));
    }
    if let Some(id) = p.closes {
        w.holds.remove(&id);
    }
    let limit = bozor_domain::money::AMOUNT_MAX;
    let (available, held) = (w.available.checked_add(p.available), w.held.checked_add(p.held));
    let in_range = p.available.unsigned_abs() <= limit as u64 && p.held.unsigned_abs() <= limit as u64;
    w.available = available.unwrap_or(w.available);
    w.held = held.unwrap_or(w.held);
    if available.is_none() || held.is_none() || !in_range {
        let detail = format!("a posting of {} / {} tiyin is beyond what any command moves", p.available, p.held);
        return audit.at("amount_out_of_range", e, detail);
    }
    let (available, held) = (w.available, w.held);
    let holds: i64 = w.holds.values().map(|h| h.0).sum();
    let may_go_negative = matches!(w.owner, Some(Owner::Platform { account: PlatformAccount::ProviderClearing, .. }));
    if (available < 0 && !may_go_negative) || held < 0 {
        audit.at("negative_balance", e, format!("available {available}, held {held} after this event"));
    }
    if holds != held {
        audit.at("held_mismatch", e, format!("held is {held}, its open holds add up to {holds}"));
    }
}

/// An escrow event in the stream pass: which escrows are funded and not settled.
fn replay_escrow(audit: &mut Audit, e: StoredEvent) {
    match decode::<escrow::Event>(&e.event_type, e.event_version, e.payload.clone()) {
        Ok(escrow::Event::EscrowFunded { amount, .. }) => {
            audit.escrows_open.insert(e.stream_id, (amount.tiyin(), e));
        }
        Ok(
            escrow::Event::EscrowReleased { .. }
            | escrow::Event::EscrowRefunded { .. }
            | escrow::Event::EscrowResolved { .. },
        ) => {
            audit.escrows_open.remove(&e.stream_id);
        }
        Ok(_) => {}
        Err(err) => audit.at("undecodable_event", &e, err.to_string()),
    }
}

/// Every funded, unsettled escrow's money is held in a wallet under the escrow's id, to the
/// tiyin, and no wallet holds money for an escrow that is not (or no longer) funded. Memory
/// grows with the escrows open at once.
fn check_escrow_holds(audit: &mut Audit) {
    let open = std::mem::take(&mut audit.escrows_open);
    // What wallets hold for escrows: escrow id -> (amount, wallet).
    let mut held: HashMap<Uuid, (i64, Uuid)> = HashMap::new();
    for (wallet, w) in &audit.wallets {
        for (hold, (amount, is_escrow)) in &w.holds {
            if *is_escrow {
                held.insert(*hold, (*amount, *wallet));
            }
        }
    }
    let mut found = vec![];
    for (escrow_id, (amount, funded)) in &open {
        match held.remove(escrow_id) {
            Some((h, _)) if h == *amount => {}
            Some((h, wallet)) => found.push((
                Some(funded.clone()),
                *escrow_id,
                format!("the escrow holds {amount} tiyin, wallet {wallet} holds {h} for it"),
            )),
            None => found.push((
                Some(funded.clone()),
                *escrow_id,
                format!("the escrow holds {amount} tiyin, no wallet holds it"),
            )),
        }
    }
    for (escrow_id, (h, wallet)) in held {
        found.push((None, escrow_id, format!("wallet {wallet} holds {h} tiyin for an escrow that is not funded")));
    }
    for (event, escrow_id, detail) in found {
        match event {
            Some(e) => audit.at("escrow_hold_mismatch", &e, detail),
            None => audit.report(Discrepancy {
                kind: "escrow_hold_mismatch",
                stream_id: Some(escrow_id),
                version: None,
                event_id: None,
                global_position: None,
                detail,
            }),
        }
    }
}

/// Transaction by transaction: every journal's postings sum to zero.
async fn journals_pass(
    tx: &tokio_postgres::Transaction<'_>,
    as_of: Option<AsOf>,
    audit: &mut Audit,
) -> Result<(), AuditError> {
    let (clause, position, time) = bound(as_of);
    // Only what a posting needs, as text: no payload is parsed here, and the hash is not read.
    let sql = format!(
        "SELECT e.global_position, e.tx_id::text, e.stream_id, e.version, e.event_id, e.event_type, {WALLET_FIELDS}
         FROM events e WHERE e.stream_type = 'wallet'{clause} ORDER BY e.tx_id, e.global_position"
    );
    let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = match (&position, &time) {
        (Some(p), _) => vec![p],
        (_, Some(t)) => vec![t],
        _ => vec![],
    };
    let rows = tx.query_raw(&sql, params).await?;
    pin_mut!(rows);
    // One transaction's journals: id -> (sum, where the first of its postings is).
    let mut tx_id: Option<String> = None;
    let mut open: BTreeMap<Uuid, (i128, Place)> = BTreeMap::new();
    while let Some(row) = rows.try_next().await? {
        let tx: String = row.get(1);
        if tx_id.as_deref() != Some(tx.as_str()) {
            close_journals(audit, &mut open);
            tx_id = Some(tx);
        }
        let event_type: &str = row.get(5);
        // An unreadable posting is reported by the stream pass; here it counts for nothing.
        let Ok(Some(p)) = stored_posting(event_type, row.get(6), row.get(7), row.get(8), row.get(9)) else { continue };
        {
            let entry = open.entry(p.journal_id).or_insert_with(|| {
                (
                    0,
                    Place {
                        global_position: row.get(0),
                        stream_id: row.get(2),
                        version: row.get(3),
                        event_id: row.get(4),
                    },
                )
            });
            entry.0 += i128::from(p.available) + i128::from(p.held);
        }
    }
    close_journals(audit, &mut open);
    Ok(())
}

/// Where an event is, for a discrepancy.
struct Place {
    global_position: i64,
    stream_id: Uuid,
    version: i64,
    event_id: Uuid,
}

fn close_journals(audit: &mut Audit, open: &mut BTreeMap<Uuid, (i128, Place)>) {
    for (journal, (sum, first)) in std::mem::take(open) {
        audit.journals += 1;
        if sum != 0 {
            audit.report(Discrepancy {
                kind: "journal_unbalanced",
                stream_id: Some(first.stream_id),
                version: Some(first.version),
                event_id: Some(first.event_id),
                global_position: Some(first.global_position),
                detail: format!("journal {journal} sums to {sum} tiyin, not 0"),
            });
        }
    }
}

/// Replayed balances against the wallets read model, where it has caught up.
async fn read_model_pass(tx: &tokio_postgres::Transaction<'_>, audit: &mut Audit) -> Result<usize, AuditError> {
    let rows = tx
        .query_raw(
            "SELECT wallet_id, available, held, version FROM wallets_view",
            Vec::<&(dyn tokio_postgres::types::ToSql + Sync)>::new(),
        )
        .await?;
    pin_mut!(rows);
    let mut behind = 0;
    let mut found = vec![];
    while let Some(row) = rows.try_next().await? {
        let (id, available, held, version): (Uuid, i64, i64, i64) = (row.get(0), row.get(1), row.get(2), row.get(3));
        let Some(w) = audit.wallets.get(&id) else { continue };
        if version < w.version {
            behind += 1;
            continue;
        }
        if version > w.version || available != w.available || held != w.held {
            found.push(Discrepancy {
                kind: "read_model_mismatch",
                stream_id: Some(id),
                version: Some(version),
                event_id: None,
                global_position: None,
                detail: format!(
                    "wallets_view says available {available}, held {held} at version {version}; the log says {}, {} \
                     at version {}",
                    w.available, w.held, w.version
                ),
            });
        }
    }
    for d in found {
        audit.report(d);
    }
    Ok(behind)
}

fn trial_balance(audit: &Audit) -> TrialBalance {
    let mut t = TrialBalance::default();
    for w in audit.wallets.values() {
        match w.owner {
            Some(Owner::User { .. }) | None => {
                t.users_available += i128::from(w.available);
                t.users_held += i128::from(w.held);
                for (amount, escrow) in w.holds.values() {
                    if *escrow {
                        t.held_by_escrows += i128::from(*amount);
                    } else {
                        t.held_by_withdrawals += i128::from(*amount);
                    }
                }
            }
            Some(Owner::Platform { account, .. }) => {
                let slot = match account {
                    PlatformAccount::Revenue => &mut t.platform_revenue,
                    PlatformAccount::ProviderClearing => &mut t.provider_clearing,
                    PlatformAccount::PayoutClearing => &mut t.payout_clearing,
                };
                *slot += i128::from(w.available) + i128::from(w.held);
            }
        }
    }
    t.total = t.users_available + t.users_held + t.platform_revenue + t.provider_clearing + t.payout_clearing;
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use bozor_domain::aggregate::encode;
    use bozor_domain::Money;
    use chrono::Utc;

    /// The auditor's reading of a stored event gives the domain's own posting, for every wallet
    /// event type at its current version.
    #[test]
    fn stored_postings_match_the_domains() {
        let (j, h, m) = (Uuid::new_v4(), Uuid::new_v4(), Money::from_tiyin(1_234).unwrap());
        let at = Utc::now();
        let escrow = wallet::Reason::Escrow { order_id: Uuid::nil() };
        let events = [
            wallet::Event::FundsDeposited {
                journal_id: j,
                amount: m,
                provider: wallet::Provider::Payme,
                provider_tx_id: "t".into(),
                at,
            },
            wallet::Event::FundsCredited { journal_id: j, amount: m, reason: escrow.clone(), at },
            wallet::Event::FundsDebited { journal_id: j, amount: m, reason: escrow.clone(), at },
            wallet::Event::FundsHeld { journal_id: j, hold_id: h, amount: m, reason: escrow.clone(), at },
            wallet::Event::DepositHeld {
                journal_id: j,
                hold_id: h,
                amount: m,
                provider: wallet::Provider::Click,
                provider_tx_id: "c".into(),
                reason: escrow,
                at,
            },
            wallet::Event::HoldReleased { journal_id: j, hold_id: h, amount: m, at },
            wallet::Event::HoldCaptured { journal_id: j, hold_id: h, amount: m, at },
        ];
        for e in events {
            let enc = encode(&e);
            assert_eq!(
                enc.event_version,
                bozor_domain::upcast::current_version(&enc.event_type),
                "{}: a new version needs the auditor's reading updated",
                enc.event_type
            );
            let text =
                |k: &str| enc.payload.get(k).map(|v| v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string()));
            let reason =
                enc.payload.get("reason").and_then(|r| r.get("reason")).and_then(|r| r.as_str()).map(str::to_owned);
            let read = stored_posting(
                &enc.event_type,
                text("journal_id").as_deref(),
                text("amount").as_deref(),
                text("hold_id").as_deref(),
                reason.as_deref(),
            )
            .unwrap()
            .unwrap();
            let domain = e.posting().unwrap();
            assert_eq!(
                (read.journal_id, read.available, read.held),
                (domain.journal_id, domain.available, domain.held),
                "{}",
                enc.event_type
            );
        }
        assert_eq!(stored_posting("WalletOpened", None, None, None, None), Ok(None));
        assert!(stored_posting("FundsCredited", Some("x"), Some("5"), None, None).is_err());
        assert!(stored_posting("FundsCredited", Some(&j.to_string()), Some("5.5"), None, None).is_err());
        assert!(stored_posting("Forged", None, None, None, None).is_err());
    }
}
