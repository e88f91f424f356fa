//! Who may do what, per route, in one place.
//!
//! Commands: `COMMANDS` names the roles one of which a caller must hold to try each command;
//! `routes::input`, which every command goes through, checks it before anything is loaded.
//! Whose resource it is (only this listing's seller, this order's buyer, the courier assigned)
//! needs the resource's state, so the domain decides that and refuses with the same 403
//! `forbidden`. Queries check here too, through the helpers below, at the top of each handler.

use bozor_domain::Role;
use serde_json::json;
use uuid::Uuid;

use crate::actor::Actor;
use crate::errors::ApiError;

/// Every user is a buyer: a command open to any signed-in user.
const ANYONE: &[Role] = &[Role::Buyer];
const SELLER: &[Role] = &[Role::Seller];
const ADMIN: &[Role] = &[Role::Admin];
const MODERATOR: &[Role] = &[Role::Support, Role::Admin];

/// Each command and the roles that may try it (the domain then checks ownership).
pub const COMMANDS: &[(&str, &[Role])] = &[
    ("create_listing", SELLER),
    ("update_listing", SELLER),
    ("submit_listing", SELLER),
    ("archive_listing", SELLER),
    ("promote_listing", SELLER),
    ("set_credentials", SELLER),
    ("delete_listing", &[Role::Seller, Role::Admin]),
    ("erase_credentials", &[Role::Seller, Role::Admin]),
    ("approve_listing", MODERATOR),
    ("reject_listing", MODERATOR),
    ("block_listing", ADMIN),
    ("reveal_credentials", ANYONE),
    ("place_order", ANYONE),
    ("pay_order", ANYONE),
    ("confirm_order", ANYONE),
    ("cancel_order", ANYONE),
    ("request_return", ANYONE),
    ("open_dispute", ANYONE),
    ("accept_order", SELLER),
    ("refund_order", &[Role::Seller, Role::Admin]),
    ("assign_courier", &[Role::Courier, Role::Support, Role::Admin]),
    ("pick_up_order", &[Role::Courier]),
    ("deliver_order", &[Role::Courier, Role::Seller]),
    ("resolve_dispute", ADMIN),
    ("deposit", ADMIN),
    ("request_withdrawal", ANYONE),
    ("complete_withdrawal", ADMIN),
    ("fail_withdrawal", ADMIN),
    ("grant_role", ADMIN),
    ("revoke_role", ADMIN),
];

fn forbidden(reason: &'static str) -> ApiError {
    ApiError::new("forbidden", reason).with_details(json!({ "reason": reason }))
}

/// Refuses (403) a caller who holds none of `roles`.
pub fn any_of(actor: &Actor, roles: &[Role], reason: &'static str) -> Result<(), ApiError> {
    match roles.iter().any(|r| actor.user.has(*r)) {
        true => Ok(()),
        false => Err(forbidden(reason)),
    }
}

/// Refuses a caller who may not try `command`. A command missing from the table is a bug:
/// refused in release builds, a panic in tests.
pub fn command(actor: &Actor, command: &str) -> Result<(), ApiError> {
    let Some((_, roles)) = COMMANDS.iter().find(|(c, _)| *c == command) else {
        debug_assert!(false, "command {command} has no policy in authz::COMMANDS");
        return Err(forbidden("this command has no policy"));
    };
    if roles.iter().any(|r| actor.user.has(*r)) {
        return Ok(());
    }
    let names: Vec<&str> = roles.iter().map(|r| r.name()).collect();
    let reason = "your roles do not allow this command";
    Err(ApiError::new("forbidden", format!("{command} needs one of these roles: {}", names.join(", ")))
        .with_details(json!({ "reason": reason, "command": command, "roles": names })))
}

/// Refuses anyone but `owner` and holders of `staff` roles.
pub fn owner_or(actor: &Actor, owner: Uuid, staff: &[Role], reason: &'static str) -> Result<(), ApiError> {
    if actor.user.id == owner {
        return Ok(());
    }
    any_of(actor, staff, reason)
}

/// Support and admins see any order and any listing, whatever its status.
pub const STAFF: &[Role] = MODERATOR;
/// Who may read someone else's money: support (read-only help), admins, auditors.
pub const MONEY_READERS: &[Role] = &[Role::Support, Role::Admin, Role::Auditor];
/// Who may read the raw event log.
pub const AUDIT_READERS: &[Role] = &[Role::Auditor, Role::Admin];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_are_listed_once() {
        for (i, (c, roles)) in COMMANDS.iter().enumerate() {
            assert!(!COMMANDS[..i].iter().any(|(d, _)| d == c), "{c} listed twice");
            assert!(!roles.is_empty() && !roles.contains(&Role::System), "{c}");
        }
    }
}
