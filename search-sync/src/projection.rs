//! The search-sync projection: folds listing events (store or Kafka feed, on the read side's
//! runtime like every read model) into `search_listings`, one row per listing with its search
//! document while it is active. The PostgreSQL backend searches this table; the Meilisearch
//! sync pushes its changes, in `seq` order, to the engine.

use bozor_commands::store::StoredEvent;
use bozor_domain::aggregate::{self, Aggregate};
use bozor_domain::listing::{self, ListingAggregate};
use bozor_projections::runtime::{BoxFuture, Projection, ProjectionError};
use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use uuid::Uuid;

use crate::document::{to_document, Document, Facts};

/// The projection's name: its checkpoint and its row in the admin status.
pub const NAME: &str = "search";

/// The search-sync projection.
pub struct SearchProjection;

impl Projection for SearchProjection {
    fn name(&self) -> &'static str {
        NAME
    }

    fn version(&self) -> i32 {
        1
    }

    fn stream_types(&self) -> &'static [&'static str] {
        &["listing"]
    }

    fn tables(&self) -> &'static [&'static str] {
        &["search_states", "search_listings"]
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
    created_at: DateTime<Utc>,
    sales: i64,
}

async fn apply_batch(tx: &Transaction<'_>, events: &[&StoredEvent]) -> Result<(), ProjectionError> {
    let mut ids: Vec<Uuid> = events.iter().map(|e| e.stream_id).collect();
    ids.sort_unstable();
    ids.dedup();
    // One writer at a time takes `seq` numbers, so they commit in the order they are taken and
    // the Meilisearch sync, reading past its checkpoint, never skips a change committed late.
    bozor_projections::sql::execute(tx, "SELECT pg_advisory_xact_lock(hashtext('search_listings_seq'))", &[]).await?;
    let rows = tx
        .query(
            "SELECT listing_id, state, created_at, sales FROM search_states
             WHERE listing_id = ANY($1) FOR UPDATE",
            &[&ids],
        )
        .await?;
    let mut folded: std::collections::BTreeMap<Uuid, Folded> = rows
        .iter()
        .map(|r| {
            let state = serde_json::from_value::<listing::State>(r.get(1))?;
            Ok((r.get(0), Folded { state, created_at: r.get(2), sales: r.get(3) }))
        })
        .collect::<Result<_, serde_json::Error>>()?;
    for e in events {
        let event: listing::Event = aggregate::decode(&e.event_type, e.event_version, e.payload.clone())?;
        let f = folded.entry(e.stream_id).or_insert_with(|| Folded {
            state: listing::State::Initial,
            created_at: e.recorded_at,
            sales: 0,
        });
        let state = std::mem::replace(&mut f.state, listing::State::Initial);
        f.state = ListingAggregate::evolve(state, &event);
        f.sales += i64::from(matches!(event, listing::Event::ListingSaleCompleted { .. }));
    }
    let mut c = Columns::default();
    for (id, f) in &folded {
        let listing::State::Exists(l) = &f.state else { continue };
        let doc = to_document(l, Facts { created_at: f.created_at, sales: f.sales });
        let doc_json = doc.as_ref().map(serde_json::to_value).transpose()?;
        c.push(*id, serde_json::to_value(&f.state)?, f, doc.as_ref(), doc_json);
    }
    if c.id.is_empty() {
        return Ok(());
    }
    bozor_projections::sql::execute(
        tx,
        "INSERT INTO search_states AS s (listing_id, state, sales, created_at)
         SELECT * FROM unnest($1::uuid[], $2::jsonb[], $3::bigint[], $4::timestamptz[])
         ON CONFLICT (listing_id) DO UPDATE SET state = excluded.state, sales = excluded.sales",
        &[&c.id, &c.state, &c.sales, &c.created_at],
    )
    .await?;
    bozor_projections::sql::execute(
        tx,
        "INSERT INTO search_listings AS s (listing_id, created_at, seq, active, doc, title, kind, category, game,
                                          city, price, premium, popularity, title_key, text_key)
         SELECT t.id, t.created_at, nextval('search_listings_seq'), t.doc IS NOT NULL, t.doc, t.doc->>'title',
                t.kind, t.category, t.game, t.city, t.price, t.premium, t.sales, t.title_key, t.text_key
         FROM unnest($1::uuid[], $2::bigint[], $3::timestamptz[], $4::jsonb[], $5::text[], $6::text[],
                     $7::text[], $8::text[], $9::bigint[], $10::bool[], $11::text[], $12::text[])
              AS t(id, sales, created_at, doc, kind, category, game, city, price, premium, title_key, text_key)
         ORDER BY t.id
         ON CONFLICT (listing_id) DO UPDATE SET
             active = excluded.active, doc = excluded.doc, title = excluded.title,
             kind = excluded.kind, category = excluded.category, game = excluded.game, city = excluded.city,
             price = excluded.price, premium = excluded.premium, popularity = excluded.popularity,
             title_key = excluded.title_key, text_key = excluded.text_key,
             -- A change buyers cannot see (a reservation, credentials) is not sent to the engine again.
             seq = CASE WHEN s.doc IS NOT DISTINCT FROM excluded.doc THEN s.seq ELSE excluded.seq END",
        &[
            &c.id,
            &c.sales,
            &c.created_at,
            &c.doc,
            &c.kind,
            &c.category,
            &c.game,
            &c.city,
            &c.price,
            &c.premium,
            &c.title_key,
            &c.text_key,
        ],
    )
    .await?;
    Ok(())
}

/// The upsert's columns, one array each.
#[derive(Default)]
struct Columns {
    id: Vec<Uuid>,
    state: Vec<serde_json::Value>,
    sales: Vec<i64>,
    created_at: Vec<DateTime<Utc>>,
    doc: Vec<Option<serde_json::Value>>,
    kind: Vec<Option<String>>,
    category: Vec<Option<String>>,
    game: Vec<Option<String>>,
    city: Vec<Option<String>>,
    price: Vec<Option<i64>>,
    premium: Vec<Option<bool>>,
    title_key: Vec<Option<String>>,
    text_key: Vec<Option<String>>,
}

impl Columns {
    fn push(
        &mut self,
        id: Uuid,
        state: serde_json::Value,
        f: &Folded,
        doc: Option<&Document>,
        doc_json: Option<serde_json::Value>,
    ) {
        self.id.push(id);
        self.state.push(state);
        self.sales.push(f.sales);
        self.created_at.push(f.created_at);
        self.doc.push(doc_json);
        self.kind.push(doc.map(|d| d.kind.clone()));
        self.category.push(doc.map(|d| d.category.clone()));
        self.game.push(doc.and_then(|d| d.game.clone()));
        self.city.push(doc.and_then(|d| d.city.clone()));
        self.price.push(doc.map(|d| d.price));
        self.premium.push(doc.map(|d| d.premium));
        self.title_key.push(doc.map(|d| d.title_key.clone()));
        self.text_key.push(doc.map(|d| d.text_key.clone()));
    }
}
