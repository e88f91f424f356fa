//! The orders read model: orders by buyer, by seller, and open for couriers by district, each
//! with its escrow's custody status.

use bozor_commands::store::StoredEvent;
use bozor_domain::escrow::{self, EscrowAggregate};
use bozor_domain::order::{self, Fulfilment, OrderAggregate};
use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use serde::Serialize;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::fold::fold;
use crate::runtime::{BoxFuture, Projection, ProjectionError};

/// The orders projection (order and escrow streams).
pub struct OrdersProjection;

impl Projection for OrdersProjection {
    fn name(&self) -> &'static str {
        "orders"
    }

    fn version(&self) -> i32 {
        1
    }

    fn stream_types(&self) -> &'static [&'static str] {
        &["order", "escrow"]
    }

    fn apply<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        event: &'a StoredEvent,
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        Box::pin(async move {
            match event.stream_type.as_str() {
                "order" => apply_order(tx, event).await,
                _ => apply_escrow(tx, event).await,
            }
        })
    }
}

async fn apply_order(tx: &Transaction<'_>, e: &StoredEvent) -> Result<(), ProjectionError> {
    let (state, _) =
        fold::<OrderAggregate>(tx, "SELECT state FROM orders_view WHERE order_id = $1 FOR UPDATE", e).await?;
    let order::State::Exists(o) = &state else { return Ok(()) };
    let district = match &o.fulfilment {
        Fulfilment::Delivery { district, .. } => serde_json::to_value(district)?.as_str().map(str::to_owned),
        Fulfilment::Digital => None,
    };
    tx.execute(
        "INSERT INTO orders_view (order_id, buyer_id, seller_id, status, digital, district, courier_id, goods_total,
                                  delivery_fee, placed_at, updated_at, state)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (order_id) DO UPDATE SET status = excluded.status, courier_id = excluded.courier_id,
             updated_at = excluded.updated_at, state = excluded.state",
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
        ],
    )
    .await?;
    Ok(())
}

async fn apply_escrow(tx: &Transaction<'_>, e: &StoredEvent) -> Result<(), ProjectionError> {
    let (state, _) =
        fold::<EscrowAggregate>(tx, "SELECT state FROM escrows_view WHERE escrow_id = $1 FOR UPDATE", e).await?;
    let escrow::State::Exists(x) = &state else { return Ok(()) };
    tx.execute(
        "INSERT INTO escrows_view (escrow_id, order_id, state) VALUES ($1, $2, $3)
         ON CONFLICT (escrow_id) DO UPDATE SET state = excluded.state",
        &[&x.id, &x.order_id, &serde_json::to_value(&state)?],
    )
    .await?;
    let status = serde_json::to_value(x.status)?.as_str().map(str::to_owned);
    tx.execute(
        "UPDATE orders_view SET escrow_status = $2, release_due_at = $3 WHERE order_id = $1",
        &[&x.order_id, &status, &x.release_due_at],
    )
    .await?;
    Ok(())
}

/// An order as lists show it.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub id: Uuid,
    pub buyer_id: Uuid,
    pub seller_id: Uuid,
    pub status: String,
    pub digital: bool,
    pub district: Option<String>,
    pub courier_id: Option<Uuid>,
    pub goods_total: i64,
    pub delivery_fee: i64,
    pub escrow_status: Option<String>,
    pub release_due_at: Option<DateTime<Utc>>,
    pub placed_at: DateTime<Utc>,
}

/// Whose orders a list shows.
#[derive(Debug, Clone)]
pub enum Scope {
    Buyer(Uuid),
    Seller(Uuid),
    /// Accepted delivery orders without a courier, in a district.
    OpenInDistrict(String),
}

/// One page of orders, newest first. `after` is the last (placed_at micros, id) returned.
pub async fn list(
    client: &tokio_postgres::Client,
    scope: &Scope,
    status: Option<&str>,
    after: Option<(i64, Uuid)>,
    limit: i64,
) -> Result<(Vec<Summary>, Option<(i64, Uuid)>), ProjectionError> {
    let mut params: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
    let mut clauses = Vec::new();
    match scope {
        Scope::Buyer(id) => {
            params.push(Box::new(*id));
            clauses.push(format!("buyer_id = ${}", params.len()));
        }
        Scope::Seller(id) => {
            params.push(Box::new(*id));
            clauses.push(format!("seller_id = ${}", params.len()));
        }
        Scope::OpenInDistrict(d) => {
            params.push(Box::new(d.clone()));
            clauses.push(format!("district = ${} AND status = 'accepted' AND NOT digital", params.len()));
        }
    }
    if let Some(s) = status {
        params.push(Box::new(s.to_owned()));
        clauses.push(format!("status = ${}", params.len()));
    }
    let key = "(extract(epoch FROM placed_at) * 1000000)::bigint";
    if let Some((k, id)) = after {
        params.push(Box::new(k));
        params.push(Box::new(id));
        clauses.push(format!("({key}, order_id) < (${}, ${})", params.len() - 1, params.len()));
    }
    params.push(Box::new(limit + 1));
    let sql = format!(
        "SELECT order_id, buyer_id, seller_id, status, digital, district, courier_id, goods_total, delivery_fee,
                escrow_status, release_due_at, placed_at, {key}
         FROM orders_view WHERE {} ORDER BY {key} DESC, order_id DESC LIMIT ${}",
        clauses.join(" AND "),
        params.len()
    );
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
    let rows = client.query(&sql, &refs).await?;
    let more = rows.len() as i64 > limit;
    let items: Vec<Summary> = rows.iter().take(limit as usize).map(summary).collect();
    let next = if more { rows.get(limit as usize - 1).map(|r| (r.get(12), r.get(0))) } else { None };
    Ok((items, next))
}

fn summary(r: &tokio_postgres::Row) -> Summary {
    Summary {
        id: r.get(0),
        buyer_id: r.get(1),
        seller_id: r.get(2),
        status: r.get(3),
        digital: r.get(4),
        district: r.get(5),
        courier_id: r.get(6),
        goods_total: r.get(7),
        delivery_fee: r.get(8),
        escrow_status: r.get(9),
        release_due_at: r.get(10),
        placed_at: r.get(11),
    }
}

/// An order's full detail: the folded order and its escrow, if any.
#[derive(Debug, Clone, Serialize)]
pub struct Detail {
    pub order: order::Order,
    pub escrow: Option<escrow::Escrow>,
}

/// One order, or `None` when unknown.
pub async fn get(client: &tokio_postgres::Client, id: Uuid) -> Result<Option<Detail>, ProjectionError> {
    let row = client
        .query_opt(
            "SELECT o.state, e.state FROM orders_view o LEFT JOIN escrows_view e ON e.order_id = o.order_id
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
    Ok(Some(Detail { order: *order, escrow }))
}
