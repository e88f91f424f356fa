use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bozor_api::configuration::Settings;
use bozor_api::startup::Application;
use bozor_commands::kafka::KafkaSettings;
use bozor_commands::testing::{fresh_database, TestDb};
use bozor_commands::EventStore;
use bozor_domain::aggregate::Aggregate;
use bozor_domain::wallet::{self, PlatformAccount, WalletAggregate};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

/// The game account `active_game_account` sells.
pub const GAME_LOGIN: &str = "conqueror_uz";
pub const GAME_PASSWORD: &str = "Xk9#mP2$vL7q";

pub struct TestApp {
    pub base: String,
    pub db: TestDb,
    pub store: EventStore,
    pub http: reqwest::Client,
}

/// A user and the `Authorization` header (a token signed with the development secret, as
/// `bozor token` mints them) that speaks for them.
#[derive(Clone)]
pub struct User {
    pub id: Uuid,
    pub header: String,
}

/// An access token for `id` with comma-separated `roles`, a plan and a district.
pub fn token_for(id: Uuid, roles: &str, plan: Option<&str>, district: Option<&str>) -> String {
    let roles: Vec<String> = roles.split(',').map(|r| r.trim().to_owned()).filter(|r| !r.is_empty()).collect();
    let settings = Settings::development("postgres://unused");
    bozor_api::cli::token(&settings, id, &roles, plan, district, 15).expect("test tokens mint")
}

impl User {
    pub fn new(roles: &str) -> User {
        User::with(roles, None, None)
    }
    pub fn with(roles: &str, plan: Option<&str>, district: Option<&str>) -> User {
        let id = Uuid::new_v4();
        User { id, header: format!("Bearer {}", token_for(id, roles, plan, district)) }
    }
    pub fn seller(plan: &str) -> User {
        User::with("seller", Some(plan), None)
    }
    pub fn buyer() -> User {
        User::new("buyer")
    }
    pub fn courier(district: &str) -> User {
        User::with("courier", None, Some(district))
    }
}

pub struct Reply {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    /// The error code of an error reply.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("<no error code>")
    }
    pub fn id(&self) -> Uuid {
        self.body["id"].as_str().expect("reply has an id").parse().unwrap()
    }
    #[track_caller]
    pub fn ok(self) -> Reply {
        assert!(self.status.is_success(), "expected success, got {} {}", self.status, self.body);
        self
    }
    #[track_caller]
    pub fn err(&self, status: u16, code: &str) {
        assert_eq!((self.status.as_u16(), self.code()), (status, code), "{}", self.body);
    }
}

/// Where the server's read side runs.
pub enum ReadSide {
    /// Projectors in process, fed from the event store (`bozor up`, the default).
    Embedded,
    /// The relay and Kafka-fed projectors in process (`bozor up` with BOZOR_KAFKA_BROKERS).
    Kafka(KafkaSettings),
    /// None: the API alone (`bozor serve`); other processes run the read side.
    Elsewhere,
}

pub async fn spawn() -> TestApp {
    spawn_with(ReadSide::Embedded).await
}

pub async fn spawn_with(read_side: ReadSide) -> TestApp {
    let db = fresh_database().await;
    let (projectors, kafka) = match read_side {
        ReadSide::Embedded => (true, None),
        ReadSide::Kafka(k) => (true, Some(k)),
        ReadSide::Elsewhere => (false, None),
    };
    let mut settings = Settings::development(&db.url);
    settings.kafka = kafka;
    spawn_on(db, settings, projectors).await
}

/// Serves `settings` (on `db`) with or without projectors in process.
pub async fn spawn_on(db: TestDb, settings: Settings, projectors: bool) -> TestApp {
    let app = Application::build(settings, projectors).await.expect("server builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let store = db.store(100);
    TestApp { base, db, store, http: reqwest::Client::new() }
}

impl TestApp {
    /// POSTs raw bytes with the given headers.
    pub async fn raw(&self, path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Reply {
        let mut req = self.http.post(format!("{}{path}", self.base)).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply { status, body, headers }
    }

    pub async fn post_with(&self, user: &User, path: &str, body: Value, extra: &[(&str, &str)]) -> Reply {
        let mut headers = vec![("Authorization", user.header.as_str()), ("Content-Type", "application/json")];
        headers.extend_from_slice(extra);
        self.raw(path, &headers, serde_json::to_vec(&body).unwrap()).await
    }

    pub async fn post(&self, user: &User, path: &str, body: Value) -> Reply {
        self.post_with(user, path, body, &[]).await
    }

    pub async fn events(&self) -> i64 {
        self.db.client().await.query_one("SELECT count(*) FROM events", &[]).await.unwrap().get(0)
    }

    pub async fn load<A: Aggregate>(&self, id: Uuid) -> A::State {
        self.store.load::<A>(id).await.expect("stream loads").state
    }

    /// (available, held) of a user's wallet.
    pub async fn balance(&self, user: Uuid) -> (i64, i64) {
        let w = self.load::<WalletAggregate>(wallet::user_wallet_id(user)).await;
        (w.available(), w.held())
    }

    pub async fn platform(&self, account: PlatformAccount) -> i64 {
        let mut total = 0;
        for id in wallet::platform_wallet_ids(account) {
            total += self.load::<WalletAggregate>(id).await.available();
        }
        total
    }

    pub async fn deposit(&self, user: &User, tiyin: i64) {
        let admin = User::new("admin");
        let body = json!({ "amount": tiyin, "provider_tx_id": Uuid::new_v4().to_string() });
        self.post(&admin, &format!("/v1/wallets/{}/deposit", user.id), body).await.ok();
    }

    /// A product listing, submitted and approved: active.
    pub async fn active_product(&self, seller: &User, price: i64, stock: u32) -> Uuid {
        let body = json!({
            "title": "Samsung Galaxy S24", "description": "Yangi, karobkada", "category": "phones",
            "price": price, "details": { "kind": "product", "variants": [{ "sku": "std", "label": "128GB", "stock": stock }] }
        });
        self.activate(seller, body).await
    }

    /// A game account with credentials (login `GAME_LOGIN`, password `GAME_PASSWORD`), active.
    pub async fn active_game_account(&self, seller: &User, price: i64) -> Uuid {
        let body = json!({
            "title": "PUBG Mobile, Conqueror", "category": "game_accounts", "price": price,
            "details": { "kind": "game_account", "game": "PUBG Mobile", "level": 72, "rank": "Conqueror" }
        });
        let id = self.post(seller, "/v1/listings", body).await.ok().id();
        let credentials = json!({ "login": GAME_LOGIN, "password": GAME_PASSWORD });
        self.post(seller, &format!("/v1/listings/{id}/credentials"), credentials).await.ok();
        self.post(seller, &format!("/v1/listings/{id}/submit"), json!({})).await.ok();
        self.post(&User::new("support"), &format!("/v1/listings/{id}/approve"), json!({})).await.ok();
        id
    }

    pub async fn activate(&self, seller: &User, body: Value) -> Uuid {
        let id = self.post(seller, "/v1/listings", body).await.ok().id();
        self.post(seller, &format!("/v1/listings/{id}/submit"), json!({})).await.ok();
        self.post(&User::new("support"), &format!("/v1/listings/{id}/approve"), json!({})).await.ok();
        id
    }

    /// Every journal's postings over all wallet streams, summed: each must be zero.
    pub async fn journal_sums(&self) -> BTreeMap<Uuid, i64> {
        let rows = self
            .db
            .client()
            .await
            .query("SELECT event_type, event_version, payload FROM events WHERE stream_type = 'wallet'", &[])
            .await
            .unwrap();
        let mut sums = BTreeMap::new();
        for r in rows {
            let e: wallet::Event = bozor_domain::aggregate::decode(r.get(0), r.get(1), r.get(2)).unwrap();
            if let Some(p) = e.posting() {
                *sums.entry(p.journal_id).or_insert(0) += p.available + p.held;
            }
        }
        sums
    }

    pub async fn assert_books_balance(&self) {
        let sums = self.journal_sums().await;
        assert!(!sums.is_empty());
        for (j, s) in sums {
            assert_eq!(s, 0, "journal {j} does not balance");
        }
    }
}

impl TestApp {
    /// GETs a path (with query string) as no one in particular.
    pub async fn get(&self, path_and_query: &str) -> Reply {
        self.get_with(path_and_query, &[]).await
    }

    /// GETs a path as `user`.
    pub async fn get_as(&self, user: &User, path_and_query: &str) -> Reply {
        self.get_with(path_and_query, &[("Authorization", user.header.as_str())]).await
    }

    /// GETs a path with headers.
    pub async fn get_with(&self, path_and_query: &str, headers: &[(&str, &str)]) -> Reply {
        let mut req = self.http.get(format!("{}{path_and_query}", self.base));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.expect("request sent");
        let status = res.status();
        let headers = res.headers().clone();
        let text = res.text().await.unwrap();
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Reply { status, body, headers }
    }

    /// The listings read model as rows, for comparisons.
    pub async fn listings_view(&self) -> Vec<String> {
        let rows = self
            .db
            .client()
            .await
            .query(
                "SELECT listing_id, status, price, sales, deleted, state::text FROM listings_view ORDER BY listing_id",
                &[],
            )
            .await
            .unwrap();
        rows.iter()
            .map(|r| {
                format!(
                    "{} {} {} {} {} {}",
                    r.get::<_, Uuid>(0),
                    r.get::<_, String>(1),
                    r.get::<_, i64>(2),
                    r.get::<_, i64>(3),
                    r.get::<_, bool>(4),
                    r.get::<_, String>(5)
                )
            })
            .collect()
    }
}

/// Polls `done` until it holds, failing after `seconds`.
pub async fn wait_for<F, Fut>(what: &str, seconds: u64, mut done: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(seconds);
    while !done().await {
        assert!(Instant::now() < deadline, "timed out after {seconds} s waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Streams whose last version a projection has not applied (0: caught up with the store).
pub async fn behind(c: &tokio_postgres::Client) -> i64 {
    let mut total = 0;
    for p in bozor_projections::all() {
        let types: Vec<&str> = p.stream_types().to_vec();
        let n: i64 = c
            .query_one(
                "SELECT count(*) FROM streams s WHERE s.stream_type = ANY($2) AND NOT EXISTS (
                     SELECT 1 FROM projection_stream_versions v
                     WHERE v.projection = $1 AND v.stream_id = s.stream_id AND v.version = s.version)",
                &[&p.name(), &types],
            )
            .await
            .unwrap()
            .get(0);
        total += n;
    }
    total
}

/// Every read-model table, row by row, as JSON.
pub async fn read_models(c: &tokio_postgres::Client) -> BTreeMap<String, Vec<String>> {
    let mut all = BTreeMap::new();
    for p in bozor_projections::all() {
        for table in bozor_projections::rebuild::tables_of(p.name()) {
            let rows = c.query(&format!("SELECT to_jsonb(t)::text FROM {table} t ORDER BY 1"), &[]).await.unwrap();
            all.insert(table.to_string(), rows.iter().map(|r| r.get(0)).collect());
        }
    }
    all
}

/// Registers a user with a fresh phone number through the command side, as a first login
/// does, and grants them the seller role as the system: user streams for the read side.
pub async fn register_seller(app: &TestApp) -> Uuid {
    let grant = bozor_domain::user::Grant { plan: Some(bozor_domain::Plan::Premium), district: None };
    register(app, bozor_domain::Role::Seller, grant).await
}

/// Registers a user with a fresh phone number and grants them `role` with `grant`, through the
/// command side as a first login and an admin's grant do. Returns the user's id.
pub async fn register(app: &TestApp, role: bozor_domain::Role, grant: bozor_domain::user::Grant) -> Uuid {
    let commands = bozor_commands::CommandService::new(app.store.clone());
    let digits = Uuid::new_v4().as_u128() % 1_000_000_000;
    let phone = bozor_domain::user::Phone::parse(&format!("+998{digits:09}")).expect("a valid number");
    let now = chrono::Utc::now();
    let (id, _) = commands.user_for_phone(&phone, now).await.expect("registers");
    let meta = bozor_commands::CommandMeta::system("grant_role", now);
    commands.grant_role(&meta, id, role, grant).await.expect("grants");
    id
}

impl TestApp {
    /// A registered courier of `district`, with a token as a login would give them.
    pub async fn courier(&self, district: &str) -> User {
        let d = bozor_domain::order::District::parse(district).expect("a district");
        let grant = bozor_domain::user::Grant { plan: None, district: Some(d) };
        let id = register(self, bozor_domain::Role::Courier, grant).await;
        User { id, header: format!("Bearer {}", token_for(id, "buyer,courier", None, Some(district))) }
    }

    /// Makes a listing unreadable to commands: a snapshot at its head that does not decode, so
    /// a command that loads the listing fails (500 `internal`) and one that does not is unaware.
    pub async fn unreadable_listing(&self, listing: Uuid) {
        use bozor_domain::aggregate::Aggregate;
        let c = self.db.client().await;
        let schema = bozor_domain::listing::ListingAggregate::STATE_SCHEMA;
        c.execute(
            "INSERT INTO snapshots (stream_id, stream_type, schema_version, version, hash, state)
             SELECT stream_id, stream_type, $2, version, hash, '{\"unreadable\": true}' FROM streams WHERE stream_id = $1
             ON CONFLICT (stream_id) DO UPDATE SET schema_version = excluded.schema_version,
                 version = excluded.version, hash = excluded.hash, state = excluded.state",
            &[&listing, &schema],
        )
        .await
        .unwrap();
    }

    /// The seller accepts `order`, to be collected at a shop in Yunusobod.
    pub async fn accept(&self, seller: &User, order: Uuid) -> Reply {
        let pickup = json!({ "pickup": { "district": "yunusobod", "address": "Amir Temur 108" } });
        self.post(seller, &format!("/v1/orders/{order}/accept"), pickup).await
    }
}

/// One round of shop traffic: a seller registered and topped up through a provider, a product
/// listed and approved, a buyer's top-up, an order paid, a withdrawal requested.
pub async fn shop_round(app: &TestApp, seller: &User) {
    let payer = register_seller(app).await;
    provider_top_up(app, payer, 100_000).await;
    let buyer = User::buyer();
    let listing = app.active_product(seller, 1_000_000, 5).await;
    app.post(seller, &format!("/v1/listings/{listing}/update"), json!({ "price": 900_000 })).await.ok();
    app.deposit(&buyer, 10_000_000).await;
    let order = app
        .post(
            &buyer,
            "/v1/orders",
            json!({ "items": [{ "listing_id": listing, "quantity": 1 }],
                    "delivery": { "district": "chilonzor", "address": "Bunyodkor 5" } }),
        )
        .await
        .ok()
        .id();
    app.post(&buyer, &format!("/v1/orders/{order}/pay"), json!({})).await.ok();
    let withdrawal = json!({ "amount": 1_000, "card_last4": "4242" });
    app.post(&buyer, &format!("/v1/wallets/{}/withdrawals", buyer.id), withdrawal).await.ok();
}

/// A Payme top-up of `user_id`'s wallet created and performed through the command side, as the
/// provider's callbacks do.
pub async fn provider_top_up(app: &TestApp, user_id: Uuid, tiyin: i64) {
    use bozor_domain::payment::{payment_id_for, Target};
    use bozor_domain::wallet::Provider;
    let commands = bozor_commands::CommandService::new(app.store.clone());
    let meta = bozor_commands::CommandMeta::system("payme_create_transaction", chrono::Utc::now());
    let tx = Uuid::new_v4().simple().to_string();
    let amount = bozor_domain::Money::from_tiyin(tiyin).expect("an amount");
    let time = chrono::Utc::now().timestamp_millis();
    let target = Target::Wallet { user_id };
    commands.create_payment(&meta, Provider::Payme, &tx, target, amount, time).await.expect("created");
    commands.perform_payment(&meta, payment_id_for(Provider::Payme, &tx), None).await.expect("performed");
}

/// A process a test started, killed (SIGKILL) when dropped: however the test ends, nothing it
/// started outlives it.
pub struct Proc(pub std::process::Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The `bozor` binary the test command builds.
pub fn bozor_bin() -> std::path::PathBuf {
    if let Ok(p) = std::env::var("BOZOR_BIN").map(|p| p.trim().to_owned()).as_deref() {
        if !p.is_empty() {
            return p.into();
        }
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let bin = target.join("debug/bozor");
    assert!(bin.exists(), "{} is missing: run `cargo build --bin bozor` (./dev test does)", bin.display());
    bin
}
