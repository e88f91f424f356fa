//! The ledger audit: replayed from the event store, the books balance; each kind of tampering
//! (an edited payload, a deleted last event, two events swapped, an edited read-model balance)
//! is found and named by stream, version and event.

use bozor_domain::wallet::{self, PlatformAccount};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::support::{behind, bozor_bin, provider_top_up, register_seller, spawn, wait_for, TestApp, User};

const PRICE: i64 = 10_000_000;

/// Books with some life in them: top-ups (manual and through a provider), a sale settled with
/// commission and a courier's fee, a withdrawal paid out. Returns the buyer and seller.
async fn books(app: &TestApp) -> (User, User) {
    let (seller, buyer) = (User::seller("premium"), User::buyer());
    let courier = app.courier("chilonzor").await;
    let payer = register_seller(app).await;
    provider_top_up(app, payer, 500_000).await;
    app.deposit(&buyer, 30_000_000).await;
    let listing = app.active_product(&seller, PRICE, 2).await;
    let body = json!({ "items": [{ "listing_id": listing, "quantity": 1 }],
                       "delivery": { "district": "chilonzor", "address": "Bunyodkor 1" } });
    let order = app.post(&buyer, "/v1/orders", body).await.ok().id();
    app.post(&buyer, &format!("/v1/orders/{order}/pay"), json!({})).await.ok();
    app.accept(&seller, order).await.ok();
    app.post(&courier, &format!("/v1/orders/{order}/assign-courier"), json!({})).await.ok();
    app.post(&courier, &format!("/v1/orders/{order}/pick-up"), json!({})).await.ok();
    app.post(&courier, &format!("/v1/orders/{order}/deliver"), json!({})).await.ok();
    app.post(&buyer, &format!("/v1/orders/{order}/confirm"), json!({})).await.ok();
    let w = app
        .post(
            &seller,
            &format!("/v1/wallets/{}/withdrawals", seller.id),
            json!({ "amount": 1_000_000, "card_last4": "4242" }),
        )
        .await
        .ok()
        .id();
    app.post(&User::new("admin"), &format!("/v1/wallets/{}/withdrawals/{w}/complete", seller.id), json!({})).await.ok();
    let c = app.db.client().await;
    wait_for("the read models to catch up", 20, || async { behind(&c).await == 0 }).await;
    (buyer, seller)
}

async fn audit(app: &TestApp, query: &str) -> Value {
    app.get_as(&User::new("auditor"), &format!("/v1/audit/ledger{query}")).await.ok().body
}

/// Runs SQL on the test database with the append-only triggers off, as an attacker with the
/// database's keys would.
async fn tamper(app: &TestApp, sql: &str) {
    let c = app.db.client().await;
    c.batch_execute(&format!("SET session_replication_role = replica; {sql}; SET session_replication_role = origin;"))
        .await
        .unwrap();
}

fn kinds(report: &Value) -> Vec<String> {
    report["discrepancies"].as_array().unwrap().iter().map(|d| d["kind"].as_str().unwrap().to_owned()).collect()
}

/// The discrepancy of `kind`, which must be there.
fn found<'a>(report: &'a Value, kind: &str) -> &'a Value {
    report["discrepancies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {report:#}"))
}

#[tokio::test]
async fn sound_books_replay_to_a_zero_trial_balance_now_and_in_the_past() {
    let app = spawn().await;
    let (buyer, seller) = books(&app).await;
    let report = audit(&app, "").await;
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(report["trial_balance"]["total"], 0);
    assert_eq!(report["read_model_behind"], 0);
    assert!(report["journals"].as_i64().unwrap() >= 6);
    assert_eq!(report["payments"], 1);
    let t = &report["trial_balance"];
    assert_eq!(t["payout_clearing"], 1_000_000);
    assert_eq!(t["provider_clearing"], -(500_000 + 30_000_000));
    assert_eq!(t["platform_revenue"], app.platform(PlatformAccount::Revenue).await);
    let (b, s) = (app.balance(buyer.id).await, app.balance(seller.id).await);
    assert_eq!(b.1 + s.1, t["users_held"].as_i64().unwrap());
    // As of the buyer's top-up: nothing sold yet, 30 500 000 tiyin in users' hands.
    let c = app.db.client().await;
    let position: i64 = c
        .query_one(
            "SELECT max(global_position) FROM events WHERE stream_id = $1 AND event_type = 'FundsDeposited'",
            &[&wallet::user_wallet_id(buyer.id)],
        )
        .await
        .unwrap()
        .get(0);
    let past = audit(&app, &format!("?as_of={position}&balances=true")).await;
    assert_eq!(past["ok"], true, "{past:#}");
    assert_eq!(past["trial_balance"]["users_available"], 30_500_000);
    let of_buyer =
        past["balances"].as_array().unwrap().iter().find(|b| b["user_id"] == json!(buyer.id)).unwrap().clone();
    assert_eq!((of_buyer["available"].clone(), of_buyer["held"].clone()), (json!(30_000_000), json!(0)));
    assert!(report.get("balances").is_none(), "only when asked for");
    assert_eq!(past["trial_balance"]["total"], 0);
    let past_time = audit(&app, "?as_of=2000-01-01T00:00:00Z").await;
    assert_eq!((past_time["events"].clone(), past_time["ok"].clone()), (json!(0), json!(true)));
    app.get_as(&buyer, "/v1/audit/ledger").await.err(403, "forbidden");
    app.get_as(&User::new("auditor"), "/v1/audit/ledger?as_of=yesterday").await.err(400, "invalid_query");
    // The CLI says the same, and exits 0.
    let out = std::process::Command::new(bozor_bin())
        .args(["audit", "ledger", "--json"])
        .env("BOZOR_DATABASE_URL", &app.db.url)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let cli: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((cli["ok"].clone(), cli["events"].clone()), (json!(true), report["events"].clone()));
}

#[tokio::test]
async fn an_edited_payload_is_named_by_stream_version_and_event() {
    let app = spawn().await;
    let (buyer, _) = books(&app).await;
    let wallet = wallet::user_wallet_id(buyer.id);
    let c = app.db.client().await;
    let row = c
        .query_one(
            "SELECT version, event_id FROM events WHERE stream_id = $1 AND event_type = 'FundsDeposited'",
            &[&wallet],
        )
        .await
        .unwrap();
    let (version, event_id): (i64, Uuid) = (row.get(0), row.get(1));
    tamper(
        &app,
        &format!(
            "UPDATE events SET payload = jsonb_set(payload, '{{amount}}', '90000000') WHERE event_id = '{event_id}'"
        ),
    )
    .await;
    let report = audit(&app, "").await;
    assert_eq!(report["ok"], false);
    let d = found(&report, "hash_mismatch");
    assert_eq!(
        (d["stream_id"].clone(), d["version"].clone(), d["event_id"].clone()),
        (json!(wallet), json!(version), json!(event_id))
    );
    assert!(kinds(&report).contains(&"journal_unbalanced".to_owned()), "{report:#}");
    // The CLI exits 1 and names the stream.
    let out = std::process::Command::new(bozor_bin())
        .args(["audit", "ledger"])
        .env("BOZOR_DATABASE_URL", &app.db.url)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains(&wallet.to_string()));
}

#[tokio::test]
async fn a_deleted_last_event_is_found_at_the_streams_head() {
    let app = spawn().await;
    let (_, seller) = books(&app).await;
    let wallet = wallet::user_wallet_id(seller.id);
    tamper(
        &app,
        &format!(
            "DELETE FROM events WHERE stream_id = '{wallet}' AND version = (SELECT max(version) FROM events WHERE stream_id = '{wallet}')"
        ),
    )
    .await;
    let report = audit(&app, "").await;
    let d = found(&report, "head_mismatch");
    assert_eq!(d["stream_id"], json!(wallet));
    // Its `streams` row deleted as well: still found, and the stream is still replayed.
    tamper(&app, &format!("DELETE FROM streams WHERE stream_id = '{wallet}'")).await;
    let report = audit(&app, "").await;
    assert_eq!(found(&report, "head_mismatch")["stream_id"], json!(wallet));
}

#[tokio::test]
async fn two_swapped_events_break_the_chain_where_they_stand() {
    let app = spawn().await;
    let (buyer, _) = books(&app).await;
    let wallet = wallet::user_wallet_id(buyer.id);
    tamper(
        &app,
        &format!(
            "UPDATE events SET version = 1000000 WHERE stream_id = '{wallet}' AND version = 2;
             UPDATE events SET version = 2 WHERE stream_id = '{wallet}' AND version = 3;
             UPDATE events SET version = 3 WHERE stream_id = '{wallet}' AND version = 1000000"
        ),
    )
    .await;
    let report = audit(&app, "").await;
    let d = found(&report, "hash_mismatch");
    assert_eq!((d["stream_id"].clone(), d["version"].clone()), (json!(wallet), json!(2)));
}

#[tokio::test]
async fn an_edited_read_model_balance_is_found_against_the_log() {
    let app = spawn().await;
    let (_, seller) = books(&app).await;
    let wallet = wallet::user_wallet_id(seller.id);
    tamper(&app, &format!("UPDATE wallets_view SET available = available + 1 WHERE wallet_id = '{wallet}'")).await;
    let report = audit(&app, "").await;
    assert_eq!(kinds(&report), vec!["read_model_mismatch"], "{report:#}");
    assert_eq!(found(&report, "read_model_mismatch")["stream_id"], json!(wallet));
    // Nor does a row that claims to be ahead of the log pass as one that is behind.
    tamper(&app, &format!("UPDATE wallets_view SET version = version + 1 WHERE wallet_id = '{wallet}'")).await;
    let report = audit(&app, "").await;
    assert_eq!(
        (kinds(&report), report["read_model_behind"].clone()),
        (vec!["read_model_mismatch".to_owned()], json!(0))
    );
}

async fn text(app: &TestApp, user: &User, path: &str) -> (u16, String, String) {
    let res =
        app.http.get(format!("{}{path}", app.base)).header("Authorization", user.header.as_str()).send().await.unwrap();
    let status = res.status().as_u16();
    let kind = res.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    (status, kind, res.text().await.unwrap())
}

#[tokio::test]
async fn the_journal_and_statements_export_as_csv_and_ndjson_and_balance() {
    let app = spawn().await;
    let (buyer, seller) = books(&app).await;
    let auditor = User::new("auditor");
    let (status, kind, csv) = text(&app, &auditor, "/v1/audit/journal").await;
    assert_eq!((status, kind.starts_with("text/csv")), (200, true));
    let mut lines = csv.lines();
    assert_eq!(lines.next().unwrap(), "time,journal_id,account,debit,credit,cause,order_id,provider_tx_id");
    let mut per_journal: std::collections::BTreeMap<String, i64> = Default::default();
    let mut rows = 0;
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), 8, "{line}");
        let (debit, credit): (i64, i64) = (f[3].parse().unwrap(), f[4].parse().unwrap());
        assert!((debit == 0) != (credit == 0), "one side per line: {line}");
        *per_journal.entry(f[1].to_owned()).or_default() += credit - debit;
        rows += 1;
    }
    assert!(rows > 10);
    assert!(per_journal.values().all(|s| *s == 0), "every journal's debits equal its credits: {per_journal:?}");
    assert!(csv.contains(",sale,"), "a sale line names its cause");
    assert!(csv.contains("platform:provider_clearing#"), "platform accounts by shard");
    let (_, kind, nd) = text(&app, &auditor, "/v1/audit/journal?format=ndjson&from=2000-01-01T00:00:00Z").await;
    assert_eq!(kind, "application/x-ndjson");
    assert_eq!(nd.lines().count(), rows);
    for line in nd.lines() {
        let v: Value = serde_json::from_str(line).unwrap();
        assert!(v["account"].is_string() && v["debit"].is_i64());
    }
    let (_, _, none) = text(&app, &auditor, "/v1/audit/journal?from=2100-01-01T00:00:00Z").await;
    assert_eq!(none.lines().count(), 1, "the header alone");
    // A wallet statement: each line with the balances after it, ending at the balance.
    let (status, _, st) = text(&app, &seller, &format!("/v1/wallets/{}/statement", seller.id)).await;
    assert_eq!(status, 200);
    let last: Vec<&str> = st.lines().last().unwrap().split(',').collect();
    let (available, held) = app.balance(seller.id).await;
    assert_eq!((last[5].parse::<i64>().unwrap(), last[6].parse::<i64>().unwrap()), (available, held));
    assert!(st.contains("withdrawal"));
    for (user, path, code) in [
        (&buyer, "/v1/audit/journal".to_owned(), 403),
        (&buyer, format!("/v1/wallets/{}/statement", seller.id), 403),
        (&auditor, "/v1/audit/journal?format=xlsx".to_owned(), 400),
        (&auditor, "/v1/audit/journal?from=2026-12-01T00:00:00Z&to=2026-01-01T00:00:00Z".to_owned(), 400),
        (&seller, format!("/v1/wallets/{}/statement?format=ndjson", seller.id), 400),
    ] {
        assert_eq!(text(&app, user, &path).await.0, code, "{path}");
    }
}

#[tokio::test]
async fn an_open_escrow_must_be_held_to_the_tiyin() {
    let app = spawn().await;
    let (seller, buyer) = (User::seller("free"), User::buyer());
    app.deposit(&buyer, 30_000_000).await;
    let listing = app.active_product(&seller, PRICE, 2).await;
    let body = json!({ "items": [{ "listing_id": listing, "quantity": 1 }],
                       "delivery": { "district": "chilonzor", "address": "Bunyodkor 1" } });
    let order = app.post(&buyer, "/v1/orders", body).await.ok().id();
    app.post(&buyer, &format!("/v1/orders/{order}/pay"), json!({})).await.ok();
    let c = app.db.client().await;
    wait_for("the read models to catch up", 20, || async { behind(&c).await == 0 }).await;
    let report = audit(&app, "").await;
    assert_eq!(report["ok"], true, "{report:#}");
    assert_eq!(report["trial_balance"]["held_by_escrows"], PRICE + 1_800_000);
    let escrow = bozor_domain::flows::escrow_id_for(order);
    tamper(
        &app,
        &format!(
            "UPDATE events SET payload = jsonb_set(payload, '{{amount}}', '1') WHERE stream_id = '{escrow}'
               AND event_type = 'EscrowFunded'"
        ),
    )
    .await;
    let report = audit(&app, "").await;
    let d = found(&report, "escrow_hold_mismatch");
    assert_eq!(d["stream_id"], json!(escrow));
    assert!(kinds(&report).contains(&"hash_mismatch".to_owned()), "{report:#}");
}
