//! The event store's properties (ARCHITECTURE.md, "The event store"), each against a real
//! PostgreSQL database of its own.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bozor_commands::hash::GENESIS;
use bozor_commands::store::{self, AppendRequest, IdempotencyWrite, StreamAppend, TailPosition};
use bozor_commands::testing::fresh_database;
use bozor_commands::{migrate, StoreError};
use bozor_domain::aggregate::{encode, EncodedEvent};
use bozor_domain::wallet::{self, Owner, Provider, WalletAggregate};
use bozor_domain::Money;
use chrono::Utc;
use rand::{Rng, SeedableRng};
use serde_json::json;
use uuid::Uuid;

fn raw(n: usize) -> Vec<EncodedEvent> {
    (0..n)
        .map(|i| EncodedEvent { event_type: "TestHappened".into(), event_version: 1, payload: json!({ "n": i }) })
        .collect()
}

fn one_stream(stream_id: Uuid, expected: i64, prev_hash: [u8; 32], events: Vec<EncodedEvent>) -> AppendRequest {
    request(vec![StreamAppend { stream_id, stream_type: "test", expected, prev_hash, events }])
}

fn request(streams: Vec<StreamAppend>) -> AppendRequest {
    AppendRequest {
        streams,
        metadata: json!({ "actor": Uuid::nil() }),
        recorded_at: Utc::now(),
        idempotency: None,
        response: json!({}),
    }
}

async fn count(db: &bozor_commands::testing::TestDb) -> i64 {
    db.client().await.query_one("SELECT count(*) FROM events", &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn append_assigns_versions_positions_and_a_verifiable_hash_chain() {
    let db = fresh_database().await;
    let s = db.store(100);
    let id = Uuid::new_v4();
    let first = s.append(&one_stream(id, 0, GENESIS, raw(2))).await.unwrap();
    assert_eq!(first.outcome.streams[0].version, 2);
    let second = s.append(&one_stream(id, 2, first.heads[0], raw(3))).await.unwrap();
    assert_eq!(second.outcome.streams[0].version, 5);
    assert!(second.outcome.position > first.outcome.position);

    let events = s.read_stream(id).await.unwrap();
    assert_eq!(events.iter().map(|e| e.version).collect::<Vec<_>>(), vec![1, 2, 3, 4, 5]);
    store::verify_chain(&events).expect("chain verifies from stored fields");
    assert_eq!(events[4].hash.as_slice(), second.heads[0]);

    // Tampering with any stored field breaks the chain at that event.
    let mut tampered = events.clone();
    tampered[2].payload = json!({ "n": 99 });
    assert_eq!(store::verify_chain(&tampered), Err(3));
}

#[tokio::test]
async fn stale_expected_version_conflicts_and_appends_nothing() {
    let db = fresh_database().await;
    let s = db.store(100);
    let id = Uuid::new_v4();
    let a = s.append(&one_stream(id, 0, GENESIS, raw(1))).await.unwrap();
    s.append(&one_stream(id, 1, a.heads[0], raw(1))).await.unwrap();

    let stale = s.append(&one_stream(id, 1, a.heads[0], raw(1))).await.unwrap_err();
    assert!(matches!(stale, StoreError::Conflict { .. }), "{stale:?}");
    let exists = s.append(&one_stream(id, 0, GENESIS, raw(1))).await.unwrap_err();
    assert!(exists.is_conflict(), "creating an existing stream conflicts: {exists:?}");
    assert_eq!(count(&db).await, 2);
}

#[tokio::test]
async fn multi_stream_append_is_atomic() {
    let db = fresh_database().await;
    let s = db.store(100);
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    s.append(&one_stream(b, 0, GENESIS, raw(1))).await.unwrap();

    // `a` is new and fine, `b` is stale: neither may be written.
    let both = request(vec![
        StreamAppend { stream_id: a, stream_type: "test", expected: 0, prev_hash: GENESIS, events: raw(2) },
        StreamAppend { stream_id: b, stream_type: "test", expected: 0, prev_hash: GENESIS, events: raw(1) },
    ]);
    assert!(s.append(&both).await.unwrap_err().is_conflict());
    assert_eq!(count(&db).await, 1);
    assert!(s.read_stream(a).await.unwrap().is_empty());
    let heads: i64 = db.client().await.query_one("SELECT count(*) FROM streams", &[]).await.unwrap().get(0);
    assert_eq!(heads, 1, "the streams table rolled back too");
}

#[tokio::test]
async fn idempotency_record_is_written_with_the_events_and_only_once() {
    let db = fresh_database().await;
    let s = db.store(100);
    let mut req = one_stream(Uuid::new_v4(), 0, GENESIS, raw(1));
    req.idempotency = Some(IdempotencyWrite { scope: "u1".into(), key: "k1".into(), request_hash: vec![1, 2] });
    req.response = json!({ "id": "x" });
    let out = s.append(&req).await.unwrap();
    let (hash, stored) = s.idempotency_record("u1", "k1").await.unwrap().expect("record stored");
    assert_eq!(hash, vec![1, 2]);
    assert_eq!(stored["position"], json!(out.outcome.position));
    assert_eq!(stored["id"], json!("x"));

    let mut again = one_stream(Uuid::new_v4(), 0, GENESIS, raw(1));
    again.idempotency = req.idempotency.clone();
    assert!(matches!(s.append(&again).await.unwrap_err(), StoreError::IdempotencyRace));
    assert_eq!(count(&db).await, 1, "the second append rolled back with its key");
}

#[tokio::test]
async fn events_are_append_only() {
    let db = fresh_database().await;
    let s = db.store(100);
    s.append(&one_stream(Uuid::new_v4(), 0, GENESIS, raw(1))).await.unwrap();
    let c = db.client().await;
    for sql in ["UPDATE events SET payload = '{}'", "DELETE FROM events", "TRUNCATE events"] {
        let err = c.batch_execute(sql).await.unwrap_err();
        assert_eq!(err.as_db_error().map(|d| d.code().code()), Some("BZ403"), "{sql}");
    }
    assert_eq!(count(&db).await, 1);
}

#[tokio::test]
async fn migrations_apply_once() {
    let db = fresh_database().await;
    let mut c = db.client().await;
    assert!(migrate::migrate(&mut c).await.unwrap().is_empty(), "template was migrated already");
    assert!(migrate::migrate(&mut c).await.unwrap().is_empty());
}

/// Many writers whose transactions sleep at random before committing (so positions commit out
/// of order), some of which roll back, while a reader tails: it must see every committed event
/// exactly once and nothing rolled back.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn tail_sees_every_committed_event_exactly_once_under_concurrent_delayed_writers() {
    const WRITERS: usize = 12;
    const TXS_PER_WRITER: usize = 25;
    let db = fresh_database().await;
    let done = Arc::new(tokio::sync::Notify::new());
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let pool = db.pool.clone();
        writers.push(tokio::spawn(async move {
            let mut client = pool.get().await.unwrap();
            let mut rng = rand::rngs::StdRng::seed_from_u64(w as u64);
            let mut committed = Vec::new();
            for _ in 0..TXS_PER_WRITER {
                let id = Uuid::new_v4();
                let n = rng.gen_range(1..4);
                let tx = client.transaction().await.unwrap();
                store::append_with(&tx, &one_stream(id, 0, GENESIS, raw(n))).await.unwrap();
                tokio::time::sleep(Duration::from_millis(rng.gen_range(0..15))).await;
                if rng.gen_bool(0.15) {
                    tx.rollback().await.unwrap();
                } else {
                    tx.commit().await.unwrap();
                    committed.extend((1..=n as i64).map(|v| (id, v)));
                }
            }
            committed
        }));
    }
    let s = db.store(100);
    let reader_done = done.clone();
    let counter = db.client().await;
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        let mut at = TailPosition::default();
        let mut finished = false;
        // An empty page does not mean caught up: transaction ids are cluster-wide, so another
        // database's open transaction holds the horizon back for a while. Once the writers are
        // done, read until every committed event was seen, within a deadline.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while tokio::time::Instant::now() < deadline {
            let batch = s.read_tail(at, 7).await.unwrap();
            if let Some(last) = batch.last() {
                at = last.tail_position();
            }
            seen.extend(batch.iter().map(|e| (e.stream_id, e.version)));
            if !batch.is_empty() {
                continue;
            }
            if finished {
                let committed: i64 = counter.query_one("SELECT count(*) FROM events", &[]).await.unwrap().get(0);
                if seen.len() as i64 >= committed {
                    return seen;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            tokio::select! {
                _ = reader_done.notified() => finished = true,
                _ = tokio::time::sleep(Duration::from_millis(2)) => {}
            }
        }
        eprintln!("tail stalled at {at:?}");
        seen
    });
    let mut expected = Vec::new();
    for w in writers {
        expected.extend(w.await.unwrap());
    }
    done.notify_one();
    let seen = reader.await.unwrap();
    let unique: HashSet<_> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "no event is read twice");
    let expected: HashSet<_> = expected.iter().collect();
    let missed = expected.difference(&unique).count();
    let extra = unique.difference(&expected).count();
    if missed > 0 {
        // Say whether the reader passed them (a gap) or could not yet see them (held back).
        let c = db.client().await;
        for (id, v) in expected.difference(&unique) {
            let r = c
                .query_one(
                    "SELECT tx_id::text, global_position FROM events WHERE stream_id = $1 AND version = $2",
                    &[id, v],
                )
                .await
                .unwrap();
            eprintln!("missed {id} v{v}: tx {} position {}", r.get::<_, String>(0), r.get::<_, i64>(1));
        }
        let snap: String = c.query_one("SELECT pg_current_snapshot()::text", &[]).await.unwrap().get(0);
        eprintln!("snapshot now: {snap}");
        for r in c
            .query("SELECT pid, datname, state, backend_xid::text, backend_type, left(query, 80) FROM pg_stat_activity WHERE backend_xid IS NOT NULL", &[])
            .await
            .unwrap()
        {
            eprintln!("xid holder: {:?} {:?} {:?} {:?} {:?} {:?}", r.get::<_, i32>(0), r.get::<_, Option<String>>(1), r.get::<_, Option<String>>(2), r.get::<_, Option<String>>(3), r.get::<_, Option<String>>(4), r.get::<_, Option<String>>(5));
        }
    }
    assert_eq!((missed, extra), (0, 0), "events missed, and events read that were never committed");
    assert!(expected.len() > 200, "the test wrote enough to mean something");
}

/// Regression: the tail once sorted transaction ids as text, so "1000" came before "998" and a
/// page ending at 1006 skipped 998 and 999 for good. Rows with explicit past transaction ids
/// across a digit boundary must come back in numeric order, every one of them.
#[tokio::test]
async fn tail_orders_transaction_ids_as_numbers_across_digit_boundaries() {
    let db = fresh_database().await;
    let c = db.client().await;
    // Small ids are always in the past, on a fresh cluster too; they cross two digit boundaries.
    let txs = [99u64, 10, 100, 9, 101, 98, 11, 8];
    for (i, tx) in txs.iter().enumerate() {
        c.execute(
            "INSERT INTO events (stream_type, stream_id, version, event_id, event_type, event_version, payload,
                                 metadata, recorded_at, tx_id, hash)
             VALUES ('test', $1, 1, $2, 'TestHappened', 1, '{}', '{}', now(), $3::text::xid8, $4)",
            &[&Uuid::new_v4(), &Uuid::new_v4(), &tx.to_string(), &vec![i as u8; 32]],
        )
        .await
        .unwrap();
    }
    let s = db.store(100);
    let mut at = TailPosition::default();
    let mut seen = Vec::new();
    for _ in 0..txs.len() {
        let page = s.read_tail(at, 2).await.unwrap();
        if let Some(last) = page.last() {
            at = last.tail_position();
        }
        seen.extend(page.iter().map(|e| e.tx_id));
    }
    let mut expected = txs.to_vec();
    expected.sort();
    assert_eq!(seen, expected);
}

fn credit(amount: i64) -> wallet::Event {
    wallet::Event::FundsCredited {
        journal_id: Uuid::new_v4(),
        amount: Money::from_tiyin(amount).unwrap(),
        reason: wallet::Reason::Sale { order_id: Uuid::nil() },
        at: Utc::now(),
    }
}

/// Appends a wallet stream of `n` events straight to the store, in batches.
async fn long_wallet(s: &bozor_commands::EventStore, owner: Owner, n: i64) {
    let id = owner.wallet_id();
    let mut version = 0;
    let mut head = GENESIS;
    while version < n {
        let batch = (n - version).min(1_000);
        let events: Vec<EncodedEvent> = (0..batch)
            .map(|i| {
                if version + i == 0 {
                    encode(&wallet::Event::WalletOpened { wallet_id: id, owner, at: Utc::now() })
                } else {
                    encode(&credit(1))
                }
            })
            .collect();
        let req = request(vec![StreamAppend {
            stream_id: id,
            stream_type: "wallet",
            expected: version,
            prev_hash: head,
            events,
        }]);
        head = s.append(&req).await.unwrap().heads[0];
        version += batch;
    }
}

fn admin_meta() -> bozor_commands::CommandMeta {
    bozor_commands::CommandMeta {
        actor: bozor_domain::Actor::new(Uuid::new_v4(), &[bozor_domain::Role::Admin]),
        now: Utc::now(),
        command: "deposit",
        request_id: Uuid::new_v4(),
        correlation_id: Uuid::new_v4(),
        idempotency: None,
        if_match: None,
    }
}

async fn deposit(svc: &bozor_commands::CommandService, user: Uuid, tiyin: i64) -> bozor_commands::Outcome {
    let wallet_id = wallet::user_wallet_id(user);
    let clearing = wallet::platform_owner(wallet::PlatformAccount::ProviderClearing, user).wallet_id();
    let journal = Uuid::new_v4();
    let tx = Uuid::new_v4().to_string();
    let amount = Money::from_tiyin(tiyin).unwrap();
    svc.run(
        &admin_meta(),
        wallet_id,
        move |mut l| async move {
            l.wallet(wallet_id).await?;
            l.wallet(clearing).await?;
            Ok(l)
        },
        |uow, ctx| bozor_domain::flows::deposit(uow, ctx, user, amount, Provider::Manual, &tx, journal),
    )
    .await
    .unwrap()
}

/// Loading a 10 000-event stream reads no more events than loading a 10-event one: both start
/// from a snapshot taken by the command path, at most `snapshot_every` events back.
#[tokio::test]
async fn long_streams_load_from_snapshots() {
    const EVERY: i64 = 100;
    let db = fresh_database().await;
    let s = db.store(EVERY);
    let svc = bozor_commands::CommandService::new(s.clone());
    let (long_user, short_user) = (Uuid::new_v4(), Uuid::new_v4());
    long_wallet(&s, Owner::User { user_id: long_user }, 9_995).await;
    for _ in 0..10 {
        deposit(&svc, long_user, 100).await; // crosses version 10 000: a snapshot is taken
    }
    for _ in 0..5 {
        deposit(&svc, short_user, 100).await;
    }
    let long = s.load::<WalletAggregate>(wallet::user_wallet_id(long_user)).await.unwrap();
    let short = s.load::<WalletAggregate>(wallet::user_wallet_id(short_user)).await.unwrap();
    assert_eq!(long.version, 10_005);
    assert_eq!(long.snapshot_version, Some(10_000));
    assert!(long.events_read as i64 <= EVERY, "read {} events", long.events_read);
    assert_eq!(short.version, 6);
    assert!(long.events_read <= short.events_read.max(EVERY as usize));
    // The state from the snapshot equals a full fold of the stream.
    assert_eq!(long.state.available(), 9_994 + 10 * 100);

    // A snapshot of another state schema is ignored: the load folds every event.
    db.client().await.execute("UPDATE snapshots SET schema_version = -1", &[]).await.unwrap();
    let full = s.load::<WalletAggregate>(wallet::user_wallet_id(long_user)).await.unwrap();
    assert_eq!(full.snapshot_version, None);
    assert_eq!(full.events_read, 10_005);
    assert_eq!(full.state, long.state);
}

/// Commands without an expected version retry on conflict: concurrent deposits into one wallet
/// all land and the balance is their sum.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_commands_retry_on_conflict_and_lose_nothing() {
    let db = fresh_database().await;
    let svc = bozor_commands::CommandService::new(db.store(100));
    let user = Uuid::new_v4();
    deposit(&svc, user, 1).await;
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move { deposit(&svc, user, 100).await })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let w = svc.store().load::<WalletAggregate>(wallet::user_wallet_id(user)).await.unwrap();
    assert_eq!(w.state.available(), 601);
    let streams = svc.store().read_stream(wallet::user_wallet_id(user)).await.unwrap();
    store::verify_chain(&streams).unwrap();
    let mut by_version = BTreeMap::new();
    for e in &streams {
        assert!(by_version.insert(e.version, e.event_id).is_none());
    }
}

#[tokio::test]
async fn if_match_with_a_stale_version_is_refused_without_retry() {
    let db = fresh_database().await;
    let svc = bozor_commands::CommandService::new(db.store(100));
    let user = Uuid::new_v4();
    let first = deposit(&svc, user, 5).await;
    assert_eq!(first.version, 2);
    let wallet_id = wallet::user_wallet_id(user);
    let clearing = wallet::platform_owner(wallet::PlatformAccount::ProviderClearing, user).wallet_id();
    let mut meta = admin_meta();
    meta.if_match = Some(1);
    let journal = Uuid::new_v4();
    let err = svc
        .run(
            &meta,
            wallet_id,
            move |mut l| async move {
                l.wallet(wallet_id).await?;
                l.wallet(clearing).await?;
                Ok(l)
            },
            |uow, ctx| {
                bozor_domain::flows::deposit(
                    uow,
                    ctx,
                    user,
                    Money::from_tiyin(5).unwrap(),
                    Provider::Manual,
                    "t",
                    journal,
                )
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(err, bozor_commands::CommandError::VersionMismatch { expected: 1, actual: 2 }), "{err:?}");
}

/// Deposits of different users all touch the provider clearing account. Spread over its shards,
/// 64 concurrent deposits land, none running out of retries (on one stream, some did).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_deposits_contending_on_the_clearing_account_all_land() {
    const USERS: usize = 64;
    let db = fresh_database().await;
    let svc = bozor_commands::CommandService::new(db.store(100));
    let tasks: Vec<_> = (0..USERS)
        .map(|_| {
            let svc = svc.clone();
            tokio::spawn(async move {
                let user = Uuid::new_v4();
                deposit(&svc, user, 250).await;
                user
            })
        })
        .collect();
    for t in tasks {
        let user = t.await.unwrap();
        let w = svc.store().load::<WalletAggregate>(wallet::user_wallet_id(user)).await.unwrap();
        assert_eq!(w.state.available(), 250);
    }
    let mut clearing = 0;
    for id in wallet::platform_wallet_ids(wallet::PlatformAccount::ProviderClearing) {
        clearing += svc.store().load::<WalletAggregate>(id).await.unwrap().state.available();
    }
    assert_eq!(clearing, -250 * USERS as i64);
}

/// Several streams read in one statement fold exactly as each read alone: a long stream from
/// its snapshot, a short one, one that does not exist, and an id wanted as the wrong type
/// (which loads as "not that type", as alone).
#[tokio::test]
async fn streams_loaded_together_fold_as_each_loaded_alone() {
    let db = fresh_database().await;
    let s = db.store(100); // wallets are snapshotted every 20 events
    let svc = bozor_commands::CommandService::new(s.clone());
    let (long_user, short_user, nobody) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
    long_wallet(&s, Owner::User { user_id: long_user }, 119).await;
    deposit(&svc, long_user, 100).await; // reaches version 120: a snapshot is taken
    deposit(&svc, long_user, 100).await; // and one event after it
    deposit(&svc, short_user, 7).await;
    let (long, short, missing) =
        (wallet::user_wallet_id(long_user), wallet::user_wallet_id(short_user), wallet::user_wallet_id(nobody));
    let alone = s.load::<WalletAggregate>(long).await.unwrap();
    assert_eq!((alone.version, alone.snapshot_version, alone.events_read), (121, Some(120), 1));

    let wants = [
        store::Want::of::<WalletAggregate>(long),
        store::Want::of::<WalletAggregate>(short),
        store::Want::of::<WalletAggregate>(missing),
        store::Want::of::<bozor_domain::payment::PaymentAggregate>(short),
        store::Want::of::<WalletAggregate>(long),
    ];
    let mut fetched = s.load_many(&wants).await.unwrap();
    let together = fetched.take::<WalletAggregate>(long).expect("fetched").unwrap();
    assert_eq!(
        (together.version, together.hash, together.snapshot_version, together.events_read),
        (alone.version, alone.hash, alone.snapshot_version, alone.events_read)
    );
    assert_eq!(together.state, alone.state);
    assert!(fetched.take::<WalletAggregate>(long).is_none(), "taken once");

    // Wanted as a wallet and then as a payment: read once, as a wallet.
    let short_alone = s.load::<WalletAggregate>(short).await.unwrap();
    let short_together = fetched.take::<WalletAggregate>(short).expect("fetched").unwrap();
    assert_eq!((short_together.version, short_together.state), (short_alone.version, short_alone.state));
    assert!(fetched.take::<bozor_domain::payment::PaymentAggregate>(short).is_none());
    // Taken as another type than wanted, it is not there (the caller reads it alone).
    assert!(fetched.take::<bozor_domain::payment::PaymentAggregate>(missing).is_none());

    // An id of a stream of another type: refused as that type, as when loaded alone.
    let mut foreign = s.load_many(&[store::Want::of::<bozor_domain::payment::PaymentAggregate>(long)]).await.unwrap();
    match foreign.take::<bozor_domain::payment::PaymentAggregate>(long).expect("fetched") {
        Err(StoreError::WrongStreamType { expected: "payment", .. }) => {}
        other => panic!("a wallet loaded as a payment: {:?}", other.map(|l| l.version)),
    }

    let none = fetched.take::<WalletAggregate>(missing).expect("fetched").unwrap();
    assert_eq!((none.version, none.hash, none.events_read), (0, GENESIS, 0));

    // Nothing wanted: no statement, nothing fetched.
    let mut empty = s.load_many(&[]).await.unwrap();
    assert!(empty.take::<WalletAggregate>(long).is_none());
}

/// bozor's connections run without PostgreSQL's JIT (a URL's own options may turn it on
/// again), and the read side's commits are asynchronous.
#[tokio::test]
async fn pools_turn_jit_off_and_the_read_side_commits_asynchronously() {
    let db = fresh_database().await;
    let show = |pool: deadpool_postgres::Pool, what: &'static str| async move {
        let client = pool.get().await.unwrap();
        client.query_one(&format!("SHOW {what}"), &[]).await.unwrap().get::<_, String>(0)
    };
    let requests = bozor_commands::db::pool_for_requests(&db.url, 2, Duration::from_secs(5)).unwrap();
    assert_eq!(show(requests.clone(), "jit").await, "off");
    assert_eq!(show(requests, "synchronous_commit").await, "on");
    let workers = bozor_commands::db::pool(&db.url, 2).unwrap();
    assert_eq!(show(workers, "jit").await, "off");
    let read_side = bozor_commands::db::read_side_pool(&db.url, 2).unwrap();
    assert_eq!(show(read_side.clone(), "jit").await, "off");
    assert_eq!(show(read_side, "synchronous_commit").await, "off");
    let url = format!("{}?options=-c%20jit%3Don", db.url);
    assert_eq!(show(bozor_commands::db::pool(&url, 2).unwrap(), "jit").await, "on");
}

/// More streams than one statement reads are read in several, each stream still matched to its
/// own rows; a snapshot of another state schema is ignored, as by a single load.
#[tokio::test]
async fn many_streams_are_read_in_chunks_and_other_schemas_snapshots_are_ignored() {
    let db = fresh_database().await;
    let s = db.store(100);
    let svc = bozor_commands::CommandService::new(s.clone());
    let users: Vec<Uuid> = (0..20).map(|_| Uuid::new_v4()).collect();
    // Every other user has a wallet, with as many deposits as its place.
    for (i, user) in users.iter().enumerate().filter(|(i, _)| i % 2 == 1) {
        for _ in 0..i {
            deposit(&svc, *user, 10).await;
        }
    }
    let long_user = users[18]; // in the second statement's streams, with a snapshot
    long_wallet(&s, Owner::User { user_id: long_user }, 119).await;
    deposit(&svc, long_user, 100).await;
    let wants: Vec<store::Want> =
        users.iter().map(|u| store::Want::of::<WalletAggregate>(wallet::user_wallet_id(*u))).collect();
    let mut fetched = s.load_many(&wants).await.unwrap();
    for user in &users {
        let id = wallet::user_wallet_id(*user);
        let alone = s.load::<WalletAggregate>(id).await.unwrap();
        let together = fetched.take::<WalletAggregate>(id).expect("fetched").unwrap();
        assert_eq!(
            (together.version, together.hash, together.snapshot_version, &together.state),
            (alone.version, alone.hash, alone.snapshot_version, &alone.state),
            "wallet of user {user}"
        );
    }
    let long_id = wallet::user_wallet_id(long_user);
    assert!(s.load::<WalletAggregate>(long_id).await.unwrap().snapshot_version.is_some());

    // Wanted with another state schema: its snapshot is not used, every event is folded.
    let other_schema = store::Want { schema: -1, ..store::Want::of::<WalletAggregate>(long_id) };
    let mut fetched = s.load_many(&[other_schema]).await.unwrap();
    assert!(fetched.take::<WalletAggregate>(long_id).is_none(), "not the schema it was wanted as");
    db.client().await.execute("UPDATE snapshots SET schema_version = -1", &[]).await.unwrap();
    let mut fetched = s.load_many(&wants).await.unwrap();
    let full = fetched.take::<WalletAggregate>(long_id).expect("fetched").unwrap();
    assert_eq!((full.snapshot_version, full.events_read as i64), (None, full.version));
}

/// Snapshots and read-model states are compressed with lz4 when they are stored out of line
/// (migration 18), where the server has lz4; a server without it keeps pglz and migrates all the
/// same.
#[tokio::test]
async fn large_states_are_compressed_with_lz4_where_the_server_has_it() {
    let db = fresh_database().await;
    let client = db.pool.get().await.unwrap();
    let has_lz4: bool = client
        .query_one("SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'", &[])
        .await
        .unwrap()
        .get(0);
    // A state well over the 2 kB at which PostgreSQL compresses a row's values, and repetitive
    // enough for either method to keep its compressed form.
    let holds: serde_json::Map<String, serde_json::Value> =
        (0..200).map(|i| (format!("hold-{i:05}"), serde_json::json!(1_000_000))).collect();
    let state = serde_json::json!({ "holds": holds });
    let stream = Uuid::new_v4();
    client
        .execute(
            "INSERT INTO snapshots (stream_id, stream_type, schema_version, version, hash, state)
             VALUES ($1, 'wallet', 1, 1, $2, $3)",
            &[&stream, &vec![0u8; 32], &state],
        )
        .await
        .unwrap();
    let row = client
        .query_one(
            "SELECT pg_column_compression(state), state = $2 FROM snapshots WHERE stream_id = $1",
            &[&stream, &state],
        )
        .await
        .unwrap();
    assert!(row.get::<_, bool>(1), "the state reads back as written");
    let method: Option<String> = row.get(0);
    assert_eq!(method.as_deref(), Some(if has_lz4 { "lz4" } else { "pglz" }));
    let settings: Vec<(String, String)> = client
        .query(
            "SELECT attrelid::regclass::text, attcompression::text FROM pg_attribute
             WHERE attname IN ('state', 'doc') AND attnum > 0
               AND attrelid::regclass::text IN ('snapshots', 'wallets_view', 'listings_view', 'orders_view',
                   'escrows_view', 'users_view', 'payments_view', 'search_states', 'search_listings')",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(settings.len(), 9);
    let expected = if has_lz4 { "l" } else { "" };
    assert!(settings.iter().all(|(_, c)| c == expected), "{settings:?}");
}

/// A projector's read of its batch carries the payload and metadata of the stream types it
/// reads; events of other types come in tail order with their positions, to move its
/// checkpoint past, and JSON nulls for the rest.
#[tokio::test]
async fn a_projections_batch_carries_bodies_only_for_its_own_stream_types() {
    let db = fresh_database().await;
    let s = db.store(100);
    let (mine, other) = (Uuid::new_v4(), Uuid::new_v4());
    s.append(&one_stream(mine, 0, GENESIS, raw(2))).await.unwrap();
    let mut theirs = one_stream(other, 0, GENESIS, raw(3));
    theirs.streams[0].stream_type = "other";
    s.append(&theirs).await.unwrap();
    let client = db.pool.get().await.unwrap();
    assert!(store::read_tail_after_checkpoint(&client, "probe", &["test"], 100).await.unwrap().is_none());
    client.execute("INSERT INTO projection_checkpoints (projection, version) VALUES ('probe', 1)", &[]).await.unwrap();
    // The tail stops at the oldest transaction open on the cluster (other tests run beside this
    // one): wait until all five events are visible.
    let mut batch = Vec::new();
    for _ in 0..200 {
        batch = store::read_tail_after_checkpoint(&client, "probe", &["test"], 100).await.unwrap().unwrap();
        if batch.len() == 5 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen: Vec<(&str, i64, serde_json::Value, serde_json::Value)> = batch
        .iter()
        .map(|e| (e.stream_type.as_str(), e.version, e.payload.clone(), e.metadata["actor"].clone()))
        .collect();
    let actor = json!(Uuid::nil());
    let null = serde_json::Value::Null;
    assert_eq!(
        seen,
        vec![
            ("test", 1, json!({ "n": 0 }), actor.clone()),
            ("test", 2, json!({ "n": 1 }), actor.clone()),
            ("other", 1, null.clone(), null.clone()),
            ("other", 2, null.clone(), null.clone()),
            ("other", 3, null.clone(), null),
        ]
    );
    assert!(batch.windows(2).all(|w| w[0].tail_position() < w[1].tail_position()), "in tail order");
    // Asked for both types, both come whole.
    let both = store::read_tail_after_checkpoint(&client, "probe", &["test", "other"], 100).await.unwrap().unwrap();
    assert!(both.iter().all(|e| e.payload["n"].is_number() && e.metadata["actor"] == actor));
}

/// A snapshot that does not decode as the state it claims to be fails the load with an error
/// (the command is refused), never a panic.
#[tokio::test]
async fn a_snapshot_that_does_not_decode_fails_the_load_without_a_panic() {
    use bozor_domain::aggregate::Aggregate;
    let db = fresh_database().await;
    let s = db.store(100);
    let id = wallet::user_wallet_id(Uuid::new_v4());
    let client = db.pool.get().await.unwrap();
    client
        .execute(
            "INSERT INTO snapshots (stream_id, stream_type, schema_version, version, hash, state)
             VALUES ($1, 'wallet', $2, 3, $3, '{\"held\": \"lots\"}')",
            &[&id, &WalletAggregate::STATE_SCHEMA, &vec![0u8; 32]],
        )
        .await
        .unwrap();
    assert!(s.load::<WalletAggregate>(id).await.is_err());
    let mut fetched = s.load_many(&[store::Want::of::<WalletAggregate>(id)]).await.unwrap();
    assert!(matches!(fetched.take::<WalletAggregate>(id), Some(Err(_))));
}
