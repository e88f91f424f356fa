//! User: who someone is on the platform and which roles they hold. A user is registered by the
//! system the first time a phone number logs in; every user is a buyer. Admins grant and revoke
//! the other roles: seller (with a plan), courier (with a district), support, admin, auditor.
//!
//! Roles held here are what access tokens are minted from; a token carries them for its short
//! life, so a revocation takes effect when the holder's next token is minted.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::context::{Context, Role};
use crate::error::{forbidden, invalid, DomainError};
use crate::money::Plan;
use crate::order::District;

/// An Uzbek mobile number in E.164 form: `+998` and nine digits.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

impl Phone {
    /// Parses `+998901234567`, `998901234567` or either with spaces, dashes and parentheses
    /// between the digits. Fails on anything that is not +998 followed by nine digits.
    pub fn parse(raw: &str) -> Result<Phone, DomainError> {
        if raw.len() > 32 {
            return invalid("phone", "is too long");
        }
        let trimmed = raw.trim();
        let body = trimmed.strip_prefix('+').unwrap_or(trimmed);
        if body.chars().any(|c| !(c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')'))) {
            return invalid("phone", "must be +998 and nine digits");
        }
        let digits: String = body.chars().filter(char::is_ascii_digit).collect();
        if !digits.starts_with("998") || digits.len() != 12 {
            return invalid("phone", "must be +998 and nine digits");
        }
        Ok(Phone(format!("+{digits}")))
    }

    /// `+998901234567`.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The twelve digits without `+`, as SMS gateways such as Eskiz take them.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }
}

impl TryFrom<String> for Phone {
    type Error = DomainError;
    fn try_from(s: String) -> Result<Phone, DomainError> {
        Phone::parse(&s)
    }
}

impl From<Phone> for String {
    fn from(p: Phone) -> String {
        p.0
    }
}

impl std::fmt::Display for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// What a granted role comes with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// Sellers: their plan, which fixes the commission on their sales.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// Couriers: the district they serve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub district: Option<District>,
}

/// A registered user.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: Uuid,
    pub phone: Phone,
    /// Roles beyond buyer, with what each came with.
    pub roles: BTreeMap<Role, Grant>,
    pub registered_at: DateTime<Utc>,
}

impl User {
    /// Every role held, buyer first.
    pub fn role_list(&self) -> Vec<Role> {
        std::iter::once(Role::Buyer).chain(self.roles.keys().copied()).collect()
    }

    /// The seller's plan, when the user sells.
    pub fn plan(&self) -> Option<Plan> {
        self.roles.get(&Role::Seller).and_then(|g| g.plan)
    }

    /// The courier's district, when the user delivers.
    pub fn district(&self) -> Option<District> {
        self.roles.get(&Role::Courier).and_then(|g| g.district)
    }
}

/// The state of a user stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    Initial,
    Exists(Box<User>),
}

/// Commands on a user.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// The system registers the owner of a phone number at their first login.
    Register { user_id: Uuid, phone: Phone },
    /// An admin (or the bootstrap CLI, as the system) grants a role; granting a held role
    /// again with other terms (a new plan, another district) changes them.
    GrantRole { role: Role, grant: Grant },
    /// An admin (or the system) takes a role away.
    RevokeRole { role: Role },
}

/// Events of a user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Event {
    UserRegistered { user_id: Uuid, phone: Phone, at: DateTime<Utc> },
    RoleGranted { role: Role, grant: Grant, by: Uuid, at: DateTime<Utc> },
    RoleRevoked { role: Role, by: Uuid, at: DateTime<Utc> },
}

/// The User aggregate.
pub struct UserAggregate;

impl Aggregate for UserAggregate {
    const STREAM_TYPE: &'static str = "user";
    const STATE_SCHEMA: i32 = 1;
    type State = State;
    type Event = Event;
    type Command = Command;

    fn initial() -> State {
        State::Initial
    }

    fn evolve(state: State, event: &Event) -> State {
        evolve(state, event)
    }

    fn decide(state: &State, command: &Command, ctx: &Context) -> Result<Vec<Event>, DomainError> {
        decide(state, command, ctx)
    }
}

/// Decides a user command.
pub fn decide(state: &State, command: &Command, ctx: &Context) -> Result<Vec<Event>, DomainError> {
    let user = match (state, command) {
        (State::Initial, Command::Register { user_id, phone }) => {
            if !ctx.actor.has(Role::System) {
                return forbidden("users are registered by logging in");
            }
            return Ok(vec![Event::UserRegistered { user_id: *user_id, phone: phone.clone(), at: ctx.now }]);
        }
        (State::Exists(_), Command::Register { .. }) => return Err(DomainError::AlreadyExists { what: "user" }),
        (State::Initial, _) => return Err(DomainError::NotFound { what: "user" }),
        (State::Exists(u), _) => u,
    };
    if !(ctx.actor.has(Role::Admin) || ctx.actor.has(Role::System)) {
        return forbidden("only an admin grants and revokes roles");
    }
    let by = ctx.actor.id;
    match command {
        Command::Register { .. } => unreachable!("handled above"),
        Command::GrantRole { role, grant } => {
            let grant = grant_terms(*role, grant)?;
            if user.roles.get(role) == Some(&grant) {
                return Ok(vec![]); // already held on these terms
            }
            Ok(vec![Event::RoleGranted { role: *role, grant, by, at: ctx.now }])
        }
        Command::RevokeRole { role } => {
            if matches!(role, Role::Buyer | Role::System) {
                return invalid("role", "buyer and system cannot be revoked");
            }
            if *role == Role::Admin && user.id == by {
                return invalid("role", "an admin cannot revoke their own admin role");
            }
            if !user.roles.contains_key(role) {
                return Ok(vec![]); // not held: nothing to do
            }
            Ok(vec![Event::RoleRevoked { role: *role, by, at: ctx.now }])
        }
    }
}

/// The terms a role is granted on: a plan for sellers (free by default), a district for
/// couriers (required), nothing for the others.
fn grant_terms(role: Role, grant: &Grant) -> Result<Grant, DomainError> {
    match role {
        Role::Buyer | Role::System => invalid("role", "buyer is implicit and system cannot be granted"),
        Role::Seller if grant.district.is_some() => invalid("district", "only couriers have a district"),
        Role::Seller => Ok(Grant { plan: Some(grant.plan.unwrap_or_default()), district: None }),
        Role::Courier if grant.plan.is_some() => invalid("plan", "only sellers have a plan"),
        Role::Courier if grant.district.is_none() => invalid("district", "a courier serves a district"),
        Role::Courier => Ok(grant.clone()),
        _ if *grant != (Grant { plan: None, district: None }) => {
            invalid("role", "only sellers and couriers take terms")
        }
        _ => Ok(grant.clone()),
    }
}

/// Applies a user event.
pub fn evolve(state: State, event: &Event) -> State {
    match (state, event) {
        (State::Initial, Event::UserRegistered { user_id, phone, at }) => State::Exists(Box::new(User {
            id: *user_id,
            phone: phone.clone(),
            roles: BTreeMap::new(),
            registered_at: *at,
        })),
        (State::Exists(_), Event::UserRegistered { user_id, .. }) => panic!("user {user_id} registered twice"),
        (State::Exists(mut u), Event::RoleGranted { role, grant, .. }) => {
            u.roles.insert(*role, grant.clone());
            State::Exists(u)
        }
        (State::Exists(mut u), Event::RoleRevoked { role, .. }) => {
            u.roles.remove(role);
            State::Exists(u)
        }
        (State::Initial, e) => panic!("user event {e:?} before UserRegistered"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_normalize_to_e164() {
        for raw in ["+998901234567", "998901234567", "+998 90 123-45-67", " +998 (90) 123 45 67 "] {
            assert_eq!(Phone::parse(raw).unwrap().as_str(), "+998901234567", "{raw}");
        }
        assert_eq!(Phone::parse("+998901234567").unwrap().digits(), "998901234567");
    }

    #[test]
    fn phones_outside_uzbekistan_or_malformed_are_refused() {
        for raw in ["", "+99890123456", "+9989012345678", "+79031234567", "901234567", "+998-90-abc", "++998901234567"]
        {
            assert!(Phone::parse(raw).is_err(), "{raw}");
        }
    }
}
