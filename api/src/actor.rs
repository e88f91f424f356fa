//! Who is calling. Until authentication lands, the actor comes from an `X-Actor` header:
//! `X-Actor: id=<uuid>; roles=seller,courier; plan=premium`. This extractor is the only place
//! that knows it, so replacing it with JWTs changes nothing else. Every user is a buyer.

use std::future::{ready, Ready};

use actix_web::{dev::Payload, FromRequest, HttpRequest};
use bozor_domain::{Plan, Role};
use uuid::Uuid;

use crate::errors::ApiError;

/// The header carrying the actor.
pub const ACTOR_HEADER: &str = "X-Actor";

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Actor(pub bozor_domain::Actor);

/// Parses the header's value. Fails with `invalid_actor` and says which part is wrong.
pub fn parse_actor(value: &str) -> Result<bozor_domain::Actor, ApiError> {
    let bad =
        |what: &str| ApiError::new("invalid_actor", format!("X-Actor: {what} (hint: id=<uuid>; roles=seller,courier)"));
    let mut id = None;
    let mut roles = vec![Role::Buyer];
    let mut plan = None;
    for part in value.split(';').map(str::trim).filter(|p| !p.is_empty()) {
        let (key, val) = part.split_once('=').ok_or_else(|| bad("each part is key=value"))?;
        match key.trim() {
            "id" => id = Some(Uuid::parse_str(val.trim()).map_err(|_| bad("id is not a UUID"))?),
            "roles" => {
                for r in val.split(',').map(str::trim).filter(|r| !r.is_empty()) {
                    let role = Role::parse(r).filter(|r| *r != Role::System).ok_or_else(|| bad("unknown role"))?;
                    if !roles.contains(&role) {
                        roles.push(role);
                    }
                }
            }
            "plan" => plan = Some(Plan::parse(val.trim()).ok_or_else(|| bad("plan is free, premium or pro"))?),
            _ => return Err(bad("unknown key")),
        }
    }
    let id = id.ok_or_else(|| bad("id is missing"))?;
    Ok(bozor_domain::Actor { id, roles, plan })
}

impl FromRequest for Actor {
    type Error = ApiError;
    type Future = Ready<Result<Actor, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let header = req.headers().get(ACTOR_HEADER);
        ready(match header.map(|h| h.to_str()) {
            None => Err(ApiError::new("unauthenticated", "send X-Actor: id=<uuid>; roles=...")),
            Some(Err(_)) => Err(ApiError::new("invalid_actor", "X-Actor is not ASCII")),
            Some(Ok(v)) => parse_actor(v).map(Actor),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_id_roles_and_plan() {
        let id = Uuid::new_v4();
        let a = parse_actor(&format!("id={id}; roles=seller, courier; plan=pro")).unwrap();
        assert_eq!(a.id, id);
        assert_eq!(a.roles, vec![Role::Buyer, Role::Seller, Role::Courier]);
        assert_eq!(a.plan, Some(Plan::Pro));
    }

    #[test]
    fn refuses_malformed_values_and_the_system_role() {
        for v in ["", "roles=admin", "id=nope", "id=00000000-0000-0000-0000-000000000001; roles=god", "id", "x=1"] {
            assert_eq!(parse_actor(v).unwrap_err().code, "invalid_actor", "{v}");
        }
        let sys = "id=00000000-0000-0000-0000-000000000001; roles=system";
        assert_eq!(parse_actor(sys).unwrap_err().code, "invalid_actor");
    }
}
