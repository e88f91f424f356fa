//! The listings read model: one row per listing, holding the domain's folded state and the
//! columns buyers filter and sort by. Queries are keyset-paginated with a bounded limit.

use bozor_commands::store::StoredEvent;
use bozor_domain::aggregate::{self, Aggregate};
use bozor_domain::listing::{self, Details, ListingAggregate};
use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use serde::Serialize;
use uuid::Uuid;

use crate::query::{micros_to_time, ListQuery};
use crate::runtime::{BoxFuture, Projection, ProjectionError};

/// Largest page of a listings query.
pub const PAGE_LIMIT_MAX: i64 = 100;
/// Page size when none is asked for.
pub const PAGE_LIMIT_DEFAULT: i64 = 20;

/// The listings projection.
pub struct ListingsProjection;

impl Projection for ListingsProjection {
    fn name(&self) -> &'static str {
        "listings"
    }

    fn version(&self) -> i32 {
        // 2: `sold_out`, `available` and `version` columns; stock counts units on hand.
        // 3: `approved_automatically`.
        3
    }

    fn stream_types(&self) -> &'static [&'static str] {
        &["listing"]
    }

    fn apply_batch<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        events: &'a [&'a StoredEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(apply_batch(tx, events))
    }
}

/// A listing's row while a batch is folded into it.
struct Folded {
    state: listing::State,
    first_at: DateTime<Utc>,
    last_at: DateTime<Utc>,
    last_position: i64,
    last_version: i64,
    sold: i64,
}

/// Reads the batch's rows with one query, folds the events in memory with the domain's
/// `evolve`, and writes every changed row back with one upsert.
async fn apply_batch(tx: &Transaction<'_>, events: &[&StoredEvent]) -> Result<(), ProjectionError> {
    let mut ids: Vec<Uuid> = events.iter().map(|e| e.stream_id).collect();
    ids.sort_unstable();
    ids.dedup();
    let rows = crate::sql::query(
        tx,
        "SELECT listing_id, state FROM listings_view WHERE listing_id = ANY($1) FOR UPDATE",
        &[&ids],
    )
    .await?;
    let mut rows_by_id = std::collections::HashMap::with_capacity(ids.len());
    for r in &rows {
        rows_by_id.insert(r.get::<_, Uuid>(0), crate::fold::stored::<listing::State>(r, 1)?);
    }
    let mut folded: std::collections::BTreeMap<Uuid, Folded> = std::collections::BTreeMap::new();
    for e in events {
        let event: listing::Event = aggregate::decode(&e.event_type, e.event_version, e.payload.clone())?;
        let f = folded.entry(e.stream_id).or_insert_with(|| Folded {
            state: rows_by_id.remove(&e.stream_id).unwrap_or(listing::State::Initial),
            first_at: e.recorded_at,
            last_at: e.recorded_at,
            last_position: e.global_position,
            last_version: e.version,
            sold: 0,
        });
        let state = std::mem::replace(&mut f.state, listing::State::Initial);
        f.state = ListingAggregate::evolve(state, &event);
        f.last_at = e.recorded_at;
        f.last_position = e.global_position;
        f.last_version = e.version;
        f.sold += i64::from(matches!(event, listing::Event::ListingSaleCompleted { .. }));
    }
    let mut c = Columns::default();
    for f in folded.values() {
        if let listing::State::Exists(l) = &f.state {
            c.push(l, f, &f.state);
        }
    }
    if c.id.is_empty() {
        return Ok(());
    }
    crate::sql::execute(
        tx,
        "INSERT INTO listings_view (listing_id, seller_id, kind, status, deleted, title, category, game, price,
                                    original_price, has_images, promoted_until, sales, created_at, updated_at,
                                    last_position, state, submitted_at, sold_out, available, version)
         SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::bool[], $6::text[], $7::text[],
                              $8::text[], $9::bigint[], $10::bigint[], $11::bool[], $12::timestamptz[], $13::bigint[],
                              $14::timestamptz[], $15::timestamptz[], $16::bigint[], $17::jsonb[], $18::timestamptz[],
                              $19::bool[], $20::bigint[], $21::bigint[])
         ON CONFLICT (listing_id) DO UPDATE SET
             status = excluded.status, deleted = excluded.deleted, title = excluded.title,
             category = excluded.category, price = excluded.price, has_images = excluded.has_images,
             promoted_until = excluded.promoted_until, sales = listings_view.sales + excluded.sales,
             updated_at = excluded.updated_at, last_position = excluded.last_position, state = excluded.state,
             submitted_at = excluded.submitted_at, sold_out = excluded.sold_out, available = excluded.available,
             version = excluded.version",
        &[
            &c.id,
            &c.seller,
            &c.kind,
            &c.status,
            &c.deleted,
            &c.title,
            &c.category,
            &c.game,
            &c.price,
            &c.original_price,
            &c.has_images,
            &c.promoted_until,
            &c.sold,
            &c.created_at,
            &c.updated_at,
            &c.position,
            &c.state,
            &c.submitted_at,
            &c.sold_out,
            &c.available,
            &c.version,
        ],
    )
    .await?;
    // Approved by the scheduler (48 h without a moderator), as its last approval says: counted
    // in the stats. Events of one listing come in version order, so the last one wins.
    let mut approvals: std::collections::BTreeMap<Uuid, bool> = Default::default();
    for e in events.iter().filter(|e| e.event_type == "ListingApproved") {
        approvals.insert(e.stream_id, e.payload.get("automatic") == Some(&serde_json::Value::Bool(true)));
    }
    if !approvals.is_empty() {
        let (ids, automatic): (Vec<Uuid>, Vec<bool>) = approvals.into_iter().unzip();
        crate::sql::execute(
            tx,
            // By the primary key, as every projector statement (see `apply_in` in `runtime`).
            "UPDATE listings_view l SET approved_automatically = t.a
             FROM unnest($1::uuid[], $2::bool[]) AS t(id, a) WHERE l.listing_id = ANY($1) AND l.listing_id = t.id",
            &[&ids, &automatic],
        )
        .await?;
    }
    Ok(())
}

/// The upsert's columns, one array each.
#[derive(Default)]
struct Columns<'a> {
    id: Vec<Uuid>,
    seller: Vec<Uuid>,
    kind: Vec<&'static str>,
    status: Vec<&'static str>,
    deleted: Vec<bool>,
    title: Vec<String>,
    category: Vec<String>,
    game: Vec<Option<String>>,
    price: Vec<i64>,
    original_price: Vec<i64>,
    has_images: Vec<bool>,
    promoted_until: Vec<Option<DateTime<Utc>>>,
    sold: Vec<i64>,
    created_at: Vec<DateTime<Utc>>,
    updated_at: Vec<DateTime<Utc>>,
    position: Vec<i64>,
    state: Vec<tokio_postgres::types::Json<&'a listing::State>>,
    submitted_at: Vec<Option<DateTime<Utc>>>,
    sold_out: Vec<bool>,
    available: Vec<Option<i64>>,
    version: Vec<i64>,
}

impl<'a> Columns<'a> {
    fn push(&mut self, l: &listing::Listing, f: &Folded, state: &'a listing::State) {
        self.id.push(l.id);
        self.seller.push(l.seller_id);
        self.kind.push(l.details.kind());
        self.status.push(l.status.name());
        self.deleted.push(l.deleted);
        self.title.push(l.title.clone());
        self.category.push(l.category.clone());
        self.game.push(match &l.details {
            Details::GameAccount { game, .. } => Some(game.clone()),
            _ => None,
        });
        self.price.push(l.price.tiyin());
        self.original_price.push(l.original_price.tiyin());
        self.has_images.push(!l.images.is_empty());
        self.promoted_until.push(l.promoted.as_ref().map(|p| p.until));
        self.sold.push(f.sold);
        self.created_at.push(f.first_at);
        self.updated_at.push(f.last_at);
        self.position.push(f.last_position);
        self.state.push(tokio_postgres::types::Json(state));
        self.submitted_at.push(l.submitted_at);
        self.sold_out.push(l.sold_out());
        self.available.push(available(l));
        self.version.push(f.last_version);
    }
}

/// Units buyers can still order: summed over a product's variants; 1 or 0 for a game account;
/// none for a classified ad, which is not ordered.
pub fn available(l: &listing::Listing) -> Option<i64> {
    match &l.details {
        Details::Product { variants } => Some(variants.iter().map(|v| i64::from(l.available_of(&v.sku))).sum()),
        Details::GameAccount { .. } => Some(i64::from(l.available_of(listing::GAME_ACCOUNT_SKU))),
        Details::Classified { .. } => None,
    }
}

/// How a page of listings is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Newest,
    PriceAsc,
    PriceDesc,
    Popular,
    /// Oldest submission first: the moderation queue (with `status=pending`).
    Submitted,
}

impl Sort {
    /// Parses `newest`, `price_asc`, `price_desc` or `popular`.
    pub fn parse(s: &str) -> Option<Sort> {
        Some(match s {
            "newest" => Sort::Newest,
            "price_asc" => Sort::PriceAsc,
            "price_desc" => Sort::PriceDesc,
            "popular" => Sort::Popular,
            "submitted" => Sort::Submitted,
            _ => return None,
        })
    }
}

/// Filters of a listings query. Absent filters match everything.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub kind: Option<String>,
    pub category: Option<String>,
    pub game: Option<String>,
    /// Defaults to `active`.
    pub status: Option<String>,
    pub seller_id: Option<Uuid>,
    pub price_min: Option<i64>,
    pub price_max: Option<i64>,
    pub has_images: Option<bool>,
    /// Only listings whose promotion runs at `now`.
    pub premium: Option<bool>,
    /// `true`: only listings that can still be ordered (or contacted); `false`: only sold-out ones.
    pub in_stock: Option<bool>,
}

/// A position in a sorted listings query: the sort key and the id of the last row returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    /// The sort key of the last row returned.
    pub key: i64,
    /// Its id, breaking ties.
    pub id: Uuid,
}

impl Cursor {
    /// Parses a cursor returned by an earlier page. `None` when it is not one.
    pub fn parse(s: &str) -> Option<Cursor> {
        let (key, id) = s.split_once('_')?;
        Some(Cursor { key: key.parse().ok()?, id: Uuid::parse_str(id).ok()? })
    }

    /// The text form clients pass back.
    pub fn encode(self) -> String {
        format!("{}_{}", self.key, self.id)
    }
}

/// A listing as lists show it.
#[derive(Debug, Clone, Serialize, PartialEq, utoipa::ToSchema)]
#[schema(as = ListingSummary)]
pub struct Summary {
    pub id: Uuid,
    pub seller_id: Uuid,
    pub kind: String,
    pub status: String,
    pub title: String,
    pub category: String,
    pub game: Option<String>,
    pub price: i64,
    pub original_price: i64,
    pub has_images: bool,
    pub premium: bool,
    pub sales: i64,
    /// Nothing left to order: every unit is sold or held by open orders.
    pub sold_out: bool,
    /// Units that can still be ordered (absent for classified ads).
    pub available: Option<i64>,
    pub created_at: DateTime<Utc>,
}

/// One page and where the next one starts.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl Sort {
    /// The sort's columns: ORDER BY terms and the keyset comparison's left side, whether it
    /// descends, and whether its key is a time.
    fn columns(self) -> (&'static str, bool, bool) {
        match self {
            Sort::Newest => ("created_at", true, true),
            Sort::PriceAsc => ("price", false, false),
            Sort::PriceDesc => ("price", true, false),
            Sort::Popular => ("sales", true, false),
            Sort::Submitted => ("coalesce(submitted_at, created_at)", false, true),
        }
    }
}

/// The query of one page of listings: every filter is an equality or a range the chosen index
/// leads with or checks while walking it in the sort's order (see `0011_list_indexes.sql`), and
/// the cursor compares the sort's own columns, so a page reads about its own rows, page 50 as
/// page one. `limit` is clamped to 1..=PAGE_LIMIT_MAX; one more row is read to know whether
/// another page follows.
pub fn list_query(filter: &Filter, sort: Sort, cursor: Option<Cursor>, limit: i64, now: DateTime<Utc>) -> ListQuery {
    let mut q = ListQuery { sql: String::new(), params: Vec::new() };
    let mut clauses = vec!["NOT deleted".to_owned()];
    let status = q.bind(filter.status.clone().unwrap_or_else(|| "active".into()));
    clauses.push(format!("status = {status}"));
    if let Some(v) = &filter.kind {
        clauses.push(format!("kind = {}", q.bind(v.clone())));
    }
    if let Some(v) = &filter.category {
        clauses.push(format!("category = {}", q.bind(v.clone())));
    }
    if let Some(v) = &filter.game {
        // `game IS NOT NULL` lets the game indexes (partial on it) serve.
        clauses.push(format!("game = {} AND game IS NOT NULL", q.bind(v.clone())));
    }
    if let Some(v) = filter.seller_id {
        clauses.push(format!("seller_id = {}", q.bind(v)));
    }
    if let Some(v) = filter.price_min {
        clauses.push(format!("price >= {}", q.bind(v)));
    }
    if let Some(v) = filter.price_max {
        clauses.push(format!("price <= {}", q.bind(v)));
    }
    if let Some(v) = filter.has_images {
        clauses.push(format!("has_images = {}", q.bind(v)));
    }
    if let Some(v) = filter.in_stock {
        clauses.push(format!("sold_out = {}", q.bind(!v)));
    }
    match filter.premium {
        // Promoted listings are few and have their own index (partial on `promoted_until`).
        Some(true) => clauses.push(format!("promoted_until > {} AND promoted_until IS NOT NULL", q.bind(now))),
        Some(false) => clauses.push(format!("(promoted_until IS NULL OR promoted_until <= {})", q.bind(now))),
        None => {}
    }
    let (column, descending, time) = sort.columns();
    let (order, op) = if descending { ("DESC", "<") } else { ("ASC", ">") };
    if let Some(c) = cursor {
        let key = if time { q.bind(micros_to_time(c.key)) } else { q.bind(c.key) };
        let id = q.bind(c.id);
        clauses.push(format!("({column}, listing_id) {op} ({key}, {id})"));
    }
    let limit = q.bind(limit.clamp(1, PAGE_LIMIT_MAX) + 1);
    q.sql = format!(
        "SELECT listing_id, seller_id, kind, status, title, category, game, price, original_price, has_images,
                promoted_until, sales, created_at, sold_out, available, {column}
         FROM listings_view WHERE {} ORDER BY {column} {order}, listing_id {order} LIMIT {limit}",
        clauses.join(" AND "),
    );
    q
}

/// One page of listings. `limit` is clamped to 1..=PAGE_LIMIT_MAX.
pub async fn list(
    client: &deadpool_postgres::Client,
    filter: &Filter,
    sort: Sort,
    cursor: Option<Cursor>,
    limit: i64,
    now: DateTime<Utc>,
) -> Result<Page<Summary>, ProjectionError> {
    let limit = limit.clamp(1, PAGE_LIMIT_MAX);
    let q = list_query(filter, sort, cursor, limit, now);
    let stmt = client.prepare_cached(&q.sql).await?;
    let rows = client.query(&stmt, &q.refs()).await?;
    let more = rows.len() as i64 > limit;
    let time = sort.columns().2;
    let mut items = Vec::with_capacity(rows.len());
    let mut last = None;
    for r in rows.iter().take(limit as usize) {
        let promoted: Option<DateTime<Utc>> = r.get(10);
        let key = if time { r.get::<_, DateTime<Utc>>(15).timestamp_micros() } else { r.get(15) };
        last = Some(Cursor { key, id: r.get(0) });
        items.push(Summary {
            id: r.get(0),
            seller_id: r.get(1),
            kind: r.get(2),
            status: r.get(3),
            title: r.get(4),
            category: r.get(5),
            game: r.get(6),
            price: r.get(7),
            original_price: r.get(8),
            has_images: r.get(9),
            premium: promoted.is_some_and(|p| p > now),
            sales: r.get(11),
            sold_out: r.get(13),
            available: r.get(14),
            created_at: r.get(12),
        });
    }
    Ok(Page { items, next_cursor: if more { last.map(Cursor::encode) } else { None } })
}

/// A listing's full detail: the folded domain state, the position of its last event applied
/// and its stream version.
#[derive(Debug, Clone)]
pub struct Detail {
    pub listing: listing::Listing,
    pub position: i64,
    pub version: i64,
}

/// A listing's detail, or `None` when unknown or deleted.
pub async fn get(client: &tokio_postgres::Client, id: Uuid) -> Result<Option<Detail>, ProjectionError> {
    let row = client
        .query_opt(
            "SELECT state, last_position, version FROM listings_view WHERE listing_id = $1 AND NOT deleted",
            &[&id],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    match serde_json::from_value(row.get(0))? {
        listing::State::Exists(l) => Ok(Some(Detail { listing: *l, position: row.get(1), version: row.get(2) })),
        listing::State::Initial => Ok(None),
    }
}

/// True for statuses a buyer may filter by.
pub fn is_status(s: &str) -> bool {
    ["draft", "pending", "active", "rejected", "reserved", "sold", "archived", "blocked"].contains(&s)
}

/// A seller's figures.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SellerStats {
    pub seller_id: Uuid,
    pub active_listings: i64,
    pub completed_orders: i64,
    /// Goods total of completed orders, in tiyin.
    pub sales_tiyin: i64,
    /// Of `completed_orders`: released by the scheduler 24 h after delivery (the buyer was silent).
    pub completed_automatically: i64,
    /// Their goods total, in tiyin.
    pub released_automatically_tiyin: i64,
    /// Listings the scheduler approved after 48 h without a moderator.
    pub listings_approved_automatically: i64,
    /// Reviews do not exist yet: always null.
    pub rating: Option<f64>,
}

/// What the scheduler settled, platform-wide, for the admin overview.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Settled {
    pub listings_approved_automatically: i64,
    pub orders_completed_automatically: i64,
    /// Goods total of those orders, in tiyin.
    pub released_automatically_tiyin: i64,
    pub timers_pending: i64,
    /// Pending after a failed attempt (see `GET /v1/admin/timers?state=failing`).
    pub timers_failing: i64,
}

/// The platform-wide figures of what the scheduler settled.
pub async fn settled(client: &tokio_postgres::Client) -> Result<Settled, ProjectionError> {
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM listings_view WHERE approved_automatically),
                    (SELECT count(*) FROM orders_view WHERE completed_automatically),
                    (SELECT coalesce(sum(goods_total), 0)::bigint FROM orders_view WHERE completed_automatically),
                    (SELECT count(*) FROM timers WHERE state = 'pending'),
                    (SELECT count(*) FROM timers WHERE state = 'pending' AND attempts > 0)",
            &[],
        )
        .await?;
    Ok(Settled {
        listings_approved_automatically: row.get(0),
        orders_completed_automatically: row.get(1),
        released_automatically_tiyin: row.get(2),
        timers_pending: row.get(3),
        timers_failing: row.get(4),
    })
}

/// A seller's figures from the listings and orders read models.
pub async fn seller_stats(client: &tokio_postgres::Client, seller_id: Uuid) -> Result<SellerStats, ProjectionError> {
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM listings_view WHERE seller_id = $1 AND status = 'active' AND NOT deleted),
                    (SELECT count(*) FROM orders_view WHERE seller_id = $1 AND status = 'completed'),
                    (SELECT coalesce(sum(goods_total), 0)::bigint FROM orders_view WHERE seller_id = $1 AND status = 'completed'),
                    (SELECT count(*) FROM orders_view WHERE seller_id = $1 AND completed_automatically),
                    (SELECT coalesce(sum(goods_total), 0)::bigint FROM orders_view
                     WHERE seller_id = $1 AND completed_automatically),
                    (SELECT count(*) FROM listings_view WHERE seller_id = $1 AND approved_automatically)",
            &[&seller_id],
        )
        .await?;
    Ok(SellerStats {
        seller_id,
        active_listings: row.get(0),
        completed_orders: row.get(1),
        sales_tiyin: row.get(2),
        completed_automatically: row.get(3),
        released_automatically_tiyin: row.get(4),
        listings_approved_automatically: row.get(5),
        rating: None,
    })
}
