//! The users read model: one row per user with their roles, a seller's plan and a courier's
//! district, folded with the domain's own `evolve`.

use bozor_commands::store::StoredEvent;
use bozor_domain::user::{self, UserAggregate};
use chrono::{DateTime, Utc};
use deadpool_postgres::Transaction;
use serde::Serialize;
use uuid::Uuid;

use crate::fold::fold;
use crate::query::ListQuery;
use crate::runtime::{one_by_one, BoxFuture, Projection, ProjectionError};

/// Most users one page lists.
pub const PAGE_LIMIT_MAX: i64 = 100;

/// The users projection.
pub struct UsersProjection;

impl Projection for UsersProjection {
    fn name(&self) -> &'static str {
        "users"
    }

    fn version(&self) -> i32 {
        1
    }

    fn stream_types(&self) -> &'static [&'static str] {
        &["user"]
    }

    fn apply_batch<'a>(
        &'a self,
        tx: &'a Transaction<'a>,
        events: &'a [&'a StoredEvent],
    ) -> BoxFuture<'a, Result<(), ProjectionError>> {
        one_by_one(events, move |e| apply(tx, e))
    }
}

fn name_of<T: Serialize>(value: &T) -> Option<String> {
    serde_json::to_value(value).ok().and_then(|v| v.as_str().map(str::to_owned))
}

async fn apply(tx: &Transaction<'_>, e: &StoredEvent) -> Result<(), ProjectionError> {
    let (state, _) = fold::<UserAggregate>(tx, "SELECT state FROM users_view WHERE user_id = $1 FOR UPDATE", e).await?;
    let user::State::Exists(u) = &state else { return Ok(()) };
    let roles: Vec<&str> = u.role_list().iter().map(|r| r.name()).collect();
    let (plan, district) = (u.plan().as_ref().and_then(name_of), u.district().as_ref().and_then(name_of));
    crate::sql::execute(tx,
        "INSERT INTO users_view (user_id, phone, roles, plan, district, registered_at, updated_at, last_position, state)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
         ON CONFLICT (user_id) DO UPDATE SET roles = excluded.roles, plan = excluded.plan,
             district = excluded.district, updated_at = excluded.updated_at,
             last_position = excluded.last_position, state = excluded.state",
        &[
            &u.id,
            &u.phone.as_str(),
            &roles,
            &plan,
            &district,
            &u.registered_at,
            &e.recorded_at,
            &e.global_position,
            &serde_json::to_value(&state)?,
        ],
    )
    .await?;
    Ok(())
}

/// A user as staff and the user themselves see them.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Profile {
    pub id: Uuid,
    pub phone: String,
    pub roles: Vec<String>,
    pub plan: Option<String>,
    pub district: Option<String>,
    pub registered_at: DateTime<Utc>,
}

const PROFILE_COLUMNS: &str = "user_id, phone, roles, plan, district, registered_at";

fn profile(r: &tokio_postgres::Row) -> Profile {
    Profile {
        id: r.get(0),
        phone: r.get(1),
        roles: r.get(2),
        plan: r.get(3),
        district: r.get(4),
        registered_at: r.get(5),
    }
}

/// One user, if registered.
pub async fn get(client: &tokio_postgres::Client, id: Uuid) -> Result<Option<Profile>, ProjectionError> {
    let sql = format!("SELECT {PROFILE_COLUMNS} FROM users_view WHERE user_id = $1");
    Ok(client.query_opt(&sql, &[&id]).await?.as_ref().map(profile))
}

/// The user who logged in with `phone` (as `Phone::as_str` writes it), if any.
pub async fn by_phone(client: &deadpool_postgres::Client, phone: &str) -> Result<Option<Profile>, ProjectionError> {
    let sql = format!(
        "SELECT {PROFILE_COLUMNS} FROM users_view WHERE user_id = (SELECT user_id FROM user_phones WHERE phone = $1)"
    );
    let stmt = client.prepare_cached(&sql).await?;
    Ok(client.query_opt(&stmt, &[&phone]).await?.as_ref().map(profile))
}

/// Users holding `role` (and serving `district`, when given), by id after `after`; the last
/// id is the next page's cursor when the page is full.
pub async fn list(
    client: &deadpool_postgres::Client,
    role: &str,
    district: Option<&str>,
    after: Option<Uuid>,
    limit: i64,
) -> Result<(Vec<Profile>, Option<Uuid>), ProjectionError> {
    let limit = limit.clamp(1, PAGE_LIMIT_MAX);
    let Some(q) = list_query(role, district, after, limit) else { return Ok((vec![], None)) };
    let stmt = client.prepare_cached(&q.sql).await?;
    let rows = client.query(&stmt, &q.refs()).await?;
    let items: Vec<Profile> = rows.iter().map(profile).collect();
    let next = (items.len() as i64 == limit).then(|| items.last().map(|p| p.id)).flatten();
    Ok((items, next))
}

/// The query of one page of users holding `role`, or `None` for an unknown role. The role is
/// written into the SQL (from the fixed list of roles, never from the request), so the
/// planner can match the role's partial index (`0011_list_indexes.sql`).
pub fn list_query(role: &str, district: Option<&str>, after: Option<Uuid>, limit: i64) -> Option<ListQuery> {
    let role = bozor_domain::Role::parse(role)?.name();
    let mut q = ListQuery { sql: String::new(), params: Vec::new() };
    let mut clauses = vec![format!("roles @> '{{{role}}}'")];
    if let Some(d) = district {
        clauses.push(format!("district = {}", q.bind(d.to_owned())));
    }
    if let Some(a) = after {
        clauses.push(format!("user_id > {}", q.bind(a)));
    }
    let limit = q.bind(limit);
    q.sql = format!(
        "SELECT {PROFILE_COLUMNS} FROM users_view WHERE {} ORDER BY user_id LIMIT {limit}",
        clauses.join(" AND ")
    );
    Some(q)
}
