//! What a decision knows about the world besides the aggregate's state: the time, who acts,
//! and with which roles. The domain never reads a clock or a random source itself.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::money::Plan;

/// A role a user may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Buys and pays; every user is a buyer.
    Buyer,
    /// Lists goods and receives payouts.
    Seller,
    /// Picks up and delivers orders.
    Courier,
    /// Support staff: moderation and customer help.
    Support,
    /// Administrator: moderation, disputes, blocking, platform money.
    Admin,
    /// Reads the ledger and the audit log.
    Auditor,
    /// bozor itself: timers such as auto-approval and auto-release.
    System,
}

impl Role {
    /// The role's API name (`buyer`, `seller`, ...), the inverse of `parse`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Buyer => "buyer",
            Role::Seller => "seller",
            Role::Courier => "courier",
            Role::Support => "support",
            Role::Admin => "admin",
            Role::Auditor => "auditor",
            Role::System => "system",
        }
    }

    /// Parses a role name as used in the API (`buyer`, `seller`, ...).
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "buyer" => Role::Buyer,
            "seller" => Role::Seller,
            "courier" => Role::Courier,
            "support" => Role::Support,
            "admin" => Role::Admin,
            "auditor" => Role::Auditor,
            "system" => Role::System,
            _ => return None,
        })
    }
}

/// Who issues a command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    /// The user id (or a fixed id for the system).
    pub id: Uuid,
    /// Roles held while issuing this command.
    pub roles: Vec<Role>,
    /// The seller's plan, when the actor is a seller.
    pub plan: Option<Plan>,
}

impl Actor {
    /// An actor with the given roles and no plan.
    pub fn new(id: Uuid, roles: &[Role]) -> Actor {
        Actor { id, roles: roles.to_vec(), plan: None }
    }

    /// bozor's own timers.
    pub fn system() -> Actor {
        Actor::new(Uuid::nil(), &[Role::System])
    }

    /// True when the actor holds `role`.
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// True for admins (and support where `support_too`).
    pub fn is_staff(&self, support_too: bool) -> bool {
        self.has(Role::Admin) || (support_too && self.has(Role::Support))
    }
}

/// The world as a decision sees it.
#[derive(Clone, Debug)]
pub struct Context {
    /// The time of the command, taken once by the caller.
    pub now: DateTime<Utc>,
    /// Who issues the command.
    pub actor: Actor,
}
