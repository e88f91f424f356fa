//! The read side scaled out without Kafka: two projector sets fed from the same event store
//! (two `bozor project` processes) compete for every batch while commands keep coming.

use std::sync::Arc;

use bozor_api::startup::Projectors;

use crate::support::{behind, read_models, shop_round, spawn_with, wait_for, ReadSide, User};

/// Every projection ends equal to a fresh replay: the version gate lets one of two competing
/// transactions apply a stream's events and the other skip them, and a checkpoint never moves
/// backwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_store_fed_projectors_of_one_projection_apply_each_event_once() {
    let app = Arc::new(spawn_with(ReadSide::Elsewhere).await);
    let first = Projectors::start(&app.db.pool, bozor_projections::all(), None, None, None);
    let second = Projectors::start(&app.db.pool, bozor_projections::all(), None, None, None);
    let writers: Vec<_> = (0..3)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                let seller = User::seller("free");
                for _ in 0..6 {
                    shop_round(&app, &seller).await;
                }
            })
        })
        .collect();
    for w in writers {
        w.await.unwrap();
    }
    let c = app.db.client().await;
    wait_for("both projector sets to catch up", 60, || async { behind(&c).await == 0 }).await;
    first.stop().await;
    second.stop().await;
    let live = read_models(&c).await;
    let states: Vec<(String, Option<String>)> = c
        .query("SELECT state, last_error FROM projection_checkpoints ORDER BY projection", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(states, vec![("live".to_owned(), None); bozor_projections::all().len()]);
    let (tx, position): (String, i64) = c
        .query_one("SELECT tx_id::text, position FROM projection_checkpoints WHERE projection = 'wallets'", &[])
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    let last: (String, i64) = c
        .query_one(
            "SELECT tx_id::text, global_position FROM events ORDER BY tx_id DESC, global_position DESC LIMIT 1",
            &[],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!((tx, position), last, "the checkpoint is at the head, not behind it");

    for p in bozor_projections::all() {
        bozor_projections::rebuild::rebuild(&app.db.pool, p).await.unwrap();
    }
    let replay = read_models(&c).await;
    for (table, rows) in &replay {
        assert!(!rows.is_empty(), "{table} has rows");
        assert_eq!(&live[table], rows, "{table}: equal to a fresh replay");
    }
}
