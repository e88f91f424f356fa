//! Money from outside: Payme's Merchant API and Click's SHOP API (the providers call these),
//! checkout links for client apps, and the reconciliation list for finance staff. The
//! protocols are in `shared/specs/payments-uz.md`; every provider transaction is a payment
//! stream (`bozor_domain::payment`).

pub mod checkout;
pub mod click;
pub mod payme;
pub mod transactions;

use actix_web::web;
use bozor_commands::CommandMeta;
use bozor_domain::wallet::Provider;
use bozor_domain::{Actor, Role};
use chrono::{DateTime, Utc};
use subtle::ConstantTimeEq;
use uuid::Uuid;

/// Registers the payment routes.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/payments/payme", web::post().to(payme::endpoint))
        .route("/payments/click/prepare", web::post().to(click::prepare))
        .route("/payments/click/complete", web::post().to(click::complete))
        .route("/payments/checkout", web::post().to(checkout::checkout))
        .route("/payments/transactions", web::get().to(transactions::list));
}

/// Namespace of the actors provider callbacks act as.
const PROVIDER_ACTOR_NS: Uuid = Uuid::from_u128(0x3e8d_0c47_a2b9_4f15_8d6e_71c0_59fa_24b3);

/// The actor a provider's callbacks act as: the system role, with an id of the provider's own
/// so the log says who created, performed or cancelled a payment.
pub fn provider_actor(provider: Provider) -> Actor {
    Actor::new(Uuid::new_v5(&PROVIDER_ACTOR_NS, provider.name().as_bytes()), &[Role::System])
}

/// The metadata of a command a provider's callback issues now.
pub fn provider_meta(provider: Provider, command: &'static str, now: DateTime<Utc>) -> CommandMeta {
    let request_id = crate::guard::current_request_id().unwrap_or_else(Uuid::new_v4);
    CommandMeta {
        actor: provider_actor(provider),
        now,
        command,
        request_id,
        correlation_id: request_id,
        idempotency: None,
        if_match: None,
    }
}

/// Compares a secret with what a caller sent, in time that does not depend on where they
/// differ (only on the length of what was sent).
pub fn same_secret(expected: &[u8], given: &[u8]) -> bool {
    expected.len() == given.len() && bool::from(expected.ct_eq(given))
}
