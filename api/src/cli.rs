//! Operator subcommands: `bozor admin grant` (bootstrap the first admin) and `bozor token`.

use bozor_commands::{CommandMeta, CommandService, EventStore};
use bozor_domain::order::District;
use bozor_domain::user::{Grant, Phone};
use bozor_domain::{Plan, Role};
use chrono::Utc;
use uuid::Uuid;

use crate::auth::jwt::{Claims, Keys, ISSUER};
use crate::configuration::Settings;

/// A role and its terms from the command line. Fails on unknown names.
pub fn grant_terms(role: &str, plan: Option<&str>, district: Option<&str>) -> Result<(Role, Grant), String> {
    let role = Role::parse(role).filter(|r| *r != Role::System).ok_or(format!("unknown role {role:?}"))?;
    let plan = plan.map(|p| Plan::parse(p).ok_or(format!("unknown plan {p:?} (free, premium, pro)"))).transpose()?;
    let district = district.map(|d| District::parse(d).ok_or(format!("unknown district {d:?}"))).transpose()?;
    Ok((role, Grant { plan, district }))
}

/// Grants a role as the system to `user`, or to the owner of `phone` (registered first if
/// needed). Returns a JSON line saying what was written.
pub async fn grant(
    pool: &deadpool_postgres::Pool,
    settings: &Settings,
    user: Option<Uuid>,
    phone: Option<&str>,
    (role, grant): (Role, Grant),
) -> Result<String, String> {
    let commands = CommandService::new(EventStore::new(pool.clone(), settings.snapshot_every));
    let now = Utc::now();
    let user_id = match (user, phone) {
        (Some(id), _) => id,
        (None, Some(p)) => {
            let phone = Phone::parse(p).map_err(|e| e.to_string())?;
            commands.user_for_phone(&phone, now).await.map_err(|e| e.to_string())?.0
        }
        (None, None) => return Err("give --user or --phone".into()),
    };
    let meta = CommandMeta::system("grant_role", now);
    let outcome = commands.grant_role(&meta, user_id, role, grant).await.map_err(|e| e.to_string())?;
    Ok(serde_json::json!({ "user_id": user_id, "role": role, "version": outcome.version }).to_string())
}

/// An access token for `user` with `roles` (buyer implied) under the configured secret.
pub fn token(
    settings: &Settings,
    user: Uuid,
    roles: &[String],
    plan: Option<&str>,
    district: Option<&str>,
    minutes: i64,
) -> Result<String, String> {
    if !(1..=1_440).contains(&minutes) {
        return Err("--minutes is 1 to 1440".into());
    }
    let mut all = vec![Role::Buyer];
    for r in roles {
        let (role, _) = grant_terms(r, None, None)?;
        if !all.contains(&role) {
            all.push(role);
        }
    }
    let (_, terms) = grant_terms("buyer", plan, district)?;
    let iat = Utc::now().timestamp();
    let claims = Claims {
        sub: user,
        roles: all,
        plan: terms.plan,
        district: terms.district,
        iat,
        exp: iat + minutes * 60,
        iss: ISSUER.into(),
    };
    Ok(Keys::new(&settings.auth.jwt_secret).mint(&claims))
}
