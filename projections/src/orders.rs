//! The orders read model: orders by buyer, by seller, and open for couriers by district, each
//! with its escrow's custody status.

use bozor_commands::store::StoredEvent;
use bozor_domain::escrow::{self, EscrowAggregate};
use bozor_domain::order::{self, Fulfilment, OrderAggregate};
use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use serde::Serialize;
use uuid::Uuid;

use tokio_postgres::types::Json;

use crate::fold::fold;
use crate::query::{micros_to_time, ListQuery};
use crate::runtime::{one_by_one, BoxFuture, Projection, ProjectionError};

/// The orders projection (order and escrow streams).
pub struct OrdersProjection;

impl Projection for OrdersProjection {
    fn name(&self) -> &'static str {
        "orders"
    }

    fn version(&self) -> i32 {
        // 2: the `version` column; order states carry the pick-up point.
        // 3: an escrow applied before its order's first event (Kafka: other topic) is copied
        //    onto the order's row when that row is created.
        // 4: `completed_automatically`.
        4
    }

    fn stream_types(&self) -> &'static [&'static str] {
        &["order", "escrow"]
    }

    fn apply_batch<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        events: &'a [&'a StoredEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        one_by_one(events, move |e| async move {
            match e.stream_type.as_str() {
                "order" => apply_order(tx, e).await,
                _ => apply_escrow(tx, e).await,
            }
        })
    }
}

async fn apply_order(tx: &Transaction<'_>, e: &StoredEvent) -> Result<(), ProjectionError> {
    let (state, event) =
        fold::<OrderAggregate>(tx, "SELECT state FROM orders_view WHERE order_id = $1 FOR UPDATE", e).await?;
    let order::State::Exists(o) = &state else { return Ok(()) };
    let district = match &o.fulfilment {
        Fulfilment::Delivery { district, .. } => serde_json::to_value(district)?.as_str().map(str::to_owned),
        Fulfilment::Digital => None,
    };
    crate::sql::execute(
        tx,
        "INSERT INTO orders_view (order_id, buyer_id, seller_id, status, digital, district, courier_id, goods_total,
                                  delivery_fee, placed_at, updated_at, state, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
         ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, courier_id = excluded.courier_id,
             updated_at = excluded.updated_at, state = excluded.state, version = excluded.version",
        &[
            &o.id,
            &o.buyer_id,
            &o.seller_id,
            &o.status.name(),
            &o.is_digital(),
            &district,
            &o.courier_id,
            &o.goods_total.tiyin(),
            &o.fulfilment.fee().tiyin(),
            &o.placed_at,
            &e.recorded_at,
            &serde_json::to_value(&state)?,
            &e.version,
        ],
    )
    .await?;
    // Fed from Kafka, order and escrow streams come through different topics: the escrow's
    // events may be applied before the order's row exists, and their update of it found none.
    crate::sql::execute(
        tx,
        "UPDATE orders_view o SET escrow_status = x.state->>'status',
                                  release_due_at = (x.state->>'release_due_at')::timestamptz
         FROM escrows_view x WHERE x.escrow_id = $2 AND o.order_id = $1 AND o.escrow_status IS NULL",
        &[&o.id, &bozor_domain::flows::escrow_id_for(o.id)],
    )
    .await?;
    if let order::Event::OrderCompleted { automatic: true, .. } = event {
        crate::sql::execute(tx, "UPDATE orders_view SET completed_automatically = true WHERE order_id = $1", &[&o.id])
            .await?;
    }
    Ok(())
}

async fn apply_escrow(tx: &Transaction<'_>, e: &StoredEvent) -> Result<(), ProjectionError> {
    let (state, _) =
        fold::<EscrowAggregate>(tx, "SELECT state FROM escrows_view WHERE escrow_id = $1 FOR UPDATE", e).await?;
    let escrow::State::Exists(x) = &state else { return Ok(()) };
    crate::sql::execute(
        tx,
        "INSERT INTO escrows_view (escrow_id, order_id, state) VALUES ($1, $2, $3)
         ON CONFLICT (escrow_id) DO UPDATE SET state = excluded.state",
        &[&x.id, &x.order_id, &serde_json::to_value(&state)?],
    )
    .await?;
    let status = serde_json::to_value(x.status)?.as_str().map(str::to_owned);
    crate::sql::execute(
        tx,
        "UPDATE orders_view SET escrow_status = $2, release_due_at = $3 WHERE order_id = $1",
        &[&x.order_id, &status, &x.release_due_at],
    )
    .await?;
    Ok(())
}

/// One line of an order as lists show it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct LineSummary {
    pub listing_id: Uuid,
    pub sku: String,
    pub title: String,
    pub quantity: u32,
    pub unit_price: i64,
}

/// An order as lists show it: enough for "my orders", a courier's decision and a staff queue
/// without a request per order.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = OrderSummary)]
pub struct Summary {
    pub id: Uuid,
    pub buyer_id: Uuid,
    pub seller_id: Uuid,
    pub status: String,
    pub digital: bool,
    pub lines: Vec<LineSummary>,
    /// Units over all lines.
    pub item_count: u64,
    pub goods_total: i64,
    pub delivery_fee: i64,
    /// Goods and delivery: what the buyer pays.
    pub total: i64,
    /// Drop-off district and address (delivery orders).
    pub district: Option<String>,
    pub address: Option<String>,
    /// Where the courier collects the goods, once the seller accepted.
    #[schema(value_type = Option<Object>)]
    pub pickup: Option<order::Pickup>,
    pub courier_id: Option<Uuid>,
    pub escrow_status: Option<String>,
    pub release_due_at: Option<DateTime<Utc>>,
    pub placed_at: DateTime<Utc>,
    /// When the order last changed (a queue's waiting time).
    pub updated_at: DateTime<Utc>,
    /// The order stream's version (send as If-Match).
    pub version: i64,
}

/// Whose orders a list shows.
#[derive(Debug, Clone)]
pub enum Scope {
    Buyer(Uuid),
    Seller(Uuid),
    /// Orders assigned to a courier (current and past deliveries).
    Courier(Uuid),
    /// Accepted delivery orders without a courier, in a district.
    OpenInDistrict(String),
    /// Every order in a status, longest unchanged first: staff queues (disputes, returns).
    Queue(String),
}

/// Every order status, for validating filters.
pub const STATUSES: &[&str] = &[
    "placed",
    "paid",
    "accepted",
    "courier_assigned",
    "picked_up",
    "delivered",
    "credentials_delivered",
    "completed",
    "cancelled",
    "return_requested",
    "returned",
    "disputed",
    "refunded",
];

/// The query of one page of orders: newest placed first, or for a `Queue` the longest
/// unchanged first. Each scope has an index led by its equality columns and ordered like the
/// page (`0005`, `0010`, `0011` migrations); the cursor compares the same columns. `after` is the
/// last (sort key in micros, id) returned.
pub fn list_query(scope: &Scope, status: Option<&str>, after: Option<(i64, Uuid)>, limit: i64) -> ListQuery {
    let mut q = ListQuery { sql: String::new(), params: Vec::new() };
    let mut clauses = Vec::new();
    let (column, order, op) = match scope {
        Scope::Queue(_) => ("updated_at", "ASC", ">"),
        _ => ("placed_at", "DESC", "<"),
    };
    match scope {
        Scope::Buyer(id) => clauses.push(format!("buyer_id = {}", q.bind(*id))),
        Scope::Seller(id) => clauses.push(format!("seller_id = {}", q.bind(*id))),
        Scope::Courier(id) => clauses.push(format!("courier_id = {}", q.bind(*id))),
        Scope::OpenInDistrict(d) => {
            clauses.push(format!("district = {} AND status = 'accepted' AND NOT digital", q.bind(d.clone())))
        }
        Scope::Queue(s) => clauses.push(format!("status = {}", q.bind(s.clone()))),
    }
    if let Some(s) = status {
        clauses.push(format!("status = {}", q.bind(s.to_owned())));
    }
    if let Some((k, id)) = after {
        let (key, id) = (q.bind(micros_to_time(k)), q.bind(id));
        clauses.push(format!("({column}, order_id) {op} ({key}, {id})"));
    }
    let limit = q.bind(limit + 1);
    q.sql = format!(
        "SELECT order_id, buyer_id, seller_id, status, digital, district, courier_id, goods_total, delivery_fee,
                escrow_status, release_due_at, placed_at, updated_at, version,
                state->'lines', state->'fulfilment'->>'address', state->'pickup', {column}
         FROM orders_view WHERE {} ORDER BY {column} {order}, order_id {order} LIMIT {limit}",
        clauses.join(" AND "),
    );
    q
}

/// One page of orders (see `list_query`).
pub async fn list(
    client: &deadpool_postgres::Client,
    scope: &Scope,
    status: Option<&str>,
    after: Option<(i64, Uuid)>,
    limit: i64,
) -> Result<(Vec<Summary>, Option<(i64, Uuid)>), ProjectionError> {
    let q = list_query(scope, status, after, limit);
    let stmt = client.prepare_cached(&q.sql).await?;
    let rows = client.query(&stmt, &q.refs()).await?;
    let more = rows.len() as i64 > limit;
    let mut items = Vec::with_capacity(rows.len());
    let mut last = None;
    for r in rows.iter().take(limit as usize) {
        let item = summary(r)?;
        last = Some((r.get::<_, DateTime<Utc>>(17).timestamp_micros(), item.id));
        items.push(item);
    }
    Ok((items, if more { last } else { None }))
}

/// A list item from its row: the columns, and from the state only the lines, the drop-off
/// address and the pick-up point, decoded straight from the row's bytes.
fn summary(r: &tokio_postgres::Row) -> Result<Summary, ProjectionError> {
    let Json(lines) = r.try_get::<_, Json<Vec<order::Line>>>(14)?;
    let pickup = r.try_get::<_, Option<Json<Option<order::Pickup>>>>(16)?.and_then(|p| p.0);
    let lines: Vec<LineSummary> = lines
        .into_iter()
        .map(|l| LineSummary {
            listing_id: l.listing_id,
            sku: l.sku,
            title: l.title,
            quantity: l.quantity,
            unit_price: l.unit_price.tiyin(),
        })
        .collect();
    let (goods_total, fee): (i64, i64) = (r.get(7), r.get(8));
    Ok(Summary {
        id: r.get(0),
        buyer_id: r.get(1),
        seller_id: r.get(2),
        status: r.get(3),
        digital: r.get(4),
        item_count: lines.iter().map(|l| u64::from(l.quantity)).sum(),
        lines,
        goods_total,
        delivery_fee: fee,
        // Both at most AMOUNT_MAX together (checked when the order was placed).
        total: goods_total.saturating_add(fee),
        district: r.get(5),
        address: r.get(15),
        pickup,
        courier_id: r.get(6),
        escrow_status: r.get(9),
        release_due_at: r.get(10),
        placed_at: r.get(11),
        updated_at: r.get(12),
        version: r.get(13),
    })
}

/// An order's full detail: the folded order and its escrow, if any, and the order stream's
/// version.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = OrderDetail)]
pub struct Detail {
    /// The order aggregate's state: lines, delivery, status and its history.
    #[schema(value_type = Object)]
    pub order: order::Order,
    #[schema(value_type = Option<Object>)]
    pub escrow: Option<escrow::Escrow>,
    pub version: i64,
}

/// One order, or `None` when unknown.
pub async fn get(client: &tokio_postgres::Client, id: Uuid) -> Result<Option<Detail>, ProjectionError> {
    let row = client
        .query_opt(
            "SELECT o.state, e.state, o.version FROM orders_view o LEFT JOIN escrows_view e ON e.order_id = o.order_id
             WHERE o.order_id = $1",
            &[&id],
        )
        .await?;
    let Some(row) = row else { return Ok(None) };
    let order::State::Exists(order) = serde_json::from_value(row.get(0))? else { return Ok(None) };
    let escrow = match row.get::<_, Option<serde_json::Value>>(1) {
        Some(v) => match serde_json::from_value(v)? {
            escrow::State::Exists(e) => Some(*e),
            escrow::State::Initial => None,
        },
        None => None,
    };
    Ok(Some(Detail { order: *order, escrow, version: row.get(2) }))
}
