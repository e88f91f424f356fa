//! `POST /v1/payments/checkout`: the URL a client app sends the buyer to, to pay an order or
//! top up a wallet through Payme or Click. Nothing is written: the provider's callbacks create
//! the payment when the buyer pays.

use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine;
use bozor_domain::order::{self, OrderAggregate};
use bozor_domain::user::{self, UserAggregate};
use bozor_domain::{DomainError, Money};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::actor::Actor;
use crate::errors::ApiError;
use crate::routes::{unavailable, AppState};

/// Longest `return_url`.
pub const RETURN_URL_CHARS_MAX: usize = 500;

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CheckoutBody {
    /// `payme` or `click`.
    provider: String,
    /// A top-up of this user's wallet (your own).
    wallet_id: Option<Uuid>,
    /// An order of yours to pay.
    order_id: Option<Uuid>,
    /// Tiyin: required for a top-up; for an order, if given, it must be the order's total.
    amount: Option<i64>,
    /// Where the provider sends the buyer back (http or https).
    return_url: Option<String>,
    /// Payme's page language: `ru`, `uz` or `en`.
    lang: Option<String>,
}

fn invalid(field: &'static str, reason: &'static str) -> ApiError {
    DomainError::Invalid { field, reason }.into()
}

fn not_configured(provider: &str) -> ApiError {
    ApiError::new("provider_not_configured", format!("{provider} is not configured on this server"))
}

/// The Payme checkout link: `https://checkout.paycom.uz/` + base64 of `m=..;ac.<field>=..;a=..`.
pub fn payme_link(merchant: &str, field: &str, id: &str, tiyin: i64, lang: Option<&str>, back: Option<&str>) -> String {
    let mut params = format!("m={merchant};ac.{field}={id};a={tiyin}");
    if let Some(l) = lang {
        params.push_str(&format!(";l={l}"));
    }
    if let Some(c) = back {
        params.push_str(&format!(";c={c}"));
    }
    format!("https://checkout.paycom.uz/{}", base64::engine::general_purpose::STANDARD.encode(params))
}

/// The Click link: `https://my.click.uz/services/pay?service_id=..&merchant_id=..&amount=..&transaction_param=..`.
pub fn click_link(service_id: &str, merchant_id: &str, id: &str, tiyin: i64, back: Option<&str>) -> String {
    let amount = format!("{}.{:02}", tiyin / 100, tiyin % 100);
    let mut query: Vec<(&str, &str)> =
        vec![("service_id", service_id), ("merchant_id", merchant_id), ("amount", &amount), ("transaction_param", id)];
    if let Some(b) = back {
        query.push(("return_url", b));
    }
    let encoded = serde_urlencoded::to_string(&query).expect("string pairs encode");
    format!("https://my.click.uz/services/pay?{encoded}")
}

/// `POST /v1/payments/checkout`.
#[utoipa::path(
    post,
    path = "/v1/payments/checkout",
    tag = "payments",
    operation_id = "checkout_checkout",
    request_body(content = CheckoutBody, content_type = "application/json"),
    responses((status = 200, description = "Success", body = crate::openapi::CheckoutLink), crate::openapi::Refusals),
)]
pub async fn checkout(
    s: web::Data<AppState>,
    r: HttpRequest,
    b: web::Payload,
    a: Actor,
) -> Result<HttpResponse, ApiError> {
    let auth = &s.auth;
    crate::auth::Auth::limit(&auth.commands_per_user, &a.user.id.to_string())?;
    crate::auth::Auth::limit(&auth.commands_per_ip, &auth.client_ip(&r))?;
    let body: CheckoutBody = crate::request::json_body(&r, b, s.body_bytes_max).await?;
    if let Some(url) = &body.return_url {
        let ok = (url.starts_with("https://") || url.starts_with("http://"))
            && url.chars().count() <= RETURN_URL_CHARS_MAX
            && !url.contains(';')
            && !url.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            return Err(invalid("return_url", "an http(s) URL of at most 500 characters, without ';' or spaces"));
        }
    }
    if body.lang.as_deref().is_some_and(|l| !["ru", "uz", "en"].contains(&l)) {
        return Err(invalid("lang", "ru, uz or en"));
    }
    // The provider first: nothing is read for one this server cannot send the buyer to.
    match body.provider.as_str() {
        "payme" if s.payments.payme.is_none() => return Err(not_configured("payme")),
        "click" if s.payments.click.is_none() => return Err(not_configured("click")),
        "payme" | "click" => {}
        _ => return Err(invalid("provider", "payme or click")),
    }
    let (field, id, tiyin) = match (body.wallet_id, body.order_id) {
        (Some(user_id), None) => ("wallet_id", user_id, top_up(&s, &a, user_id, body.amount).await?),
        (None, Some(order_id)) => ("order_id", order_id, order_total(&s, &a, order_id, body.amount).await?),
        _ => return Err(invalid("wallet_id", "name exactly one of wallet_id and order_id")),
    };
    let back = body.return_url.as_deref();
    let url = match body.provider.as_str() {
        "payme" => {
            let payme = s.payments.payme.as_ref().ok_or_else(|| not_configured("payme"))?;
            payme_link(&payme.merchant_id, field, &id.to_string(), tiyin, body.lang.as_deref(), back)
        }
        "click" => {
            let click = s.payments.click.as_ref().ok_or_else(|| not_configured("click"))?;
            click_link(&click.service_id, &click.merchant_id, &id.to_string(), tiyin, back)
        }
        _ => return Err(invalid("provider", "payme or click")),
    };
    Ok(HttpResponse::Ok().json(json!({ "provider": body.provider, "url": url, "amount": tiyin, field: id })))
}

async fn top_up(s: &AppState, a: &Actor, user_id: Uuid, amount: Option<i64>) -> Result<i64, ApiError> {
    if user_id != a.user.id {
        return Err(ApiError::from(DomainError::Forbidden { reason: "you top up your own wallet" }));
    }
    let amount = amount.ok_or_else(|| invalid("amount", "a top-up needs an amount in tiyin"))?;
    let m = Money::from_tiyin(amount).map_err(|_| invalid("amount", "must be positive"))?;
    if m.is_zero() {
        return Err(invalid("amount", "must be positive"));
    }
    m.within_limit()?;
    match s.commands.store().load::<UserAggregate>(user_id).await {
        Ok(l) if matches!(l.state, user::State::Exists(_)) => Ok(amount),
        Ok(_) | Err(bozor_commands::StoreError::WrongStreamType { .. }) => {
            Err(DomainError::NotFound { what: "user" }.into())
        }
        Err(e) => Err(unavailable(e)),
    }
}

async fn order_total(s: &AppState, a: &Actor, order_id: Uuid, amount: Option<i64>) -> Result<i64, ApiError> {
    let o = match s.commands.store().load::<OrderAggregate>(order_id).await {
        Ok(l) => match l.state {
            order::State::Exists(o) => o,
            order::State::Initial => return Err(DomainError::NotFound { what: "order" }.into()),
        },
        Err(bozor_commands::StoreError::WrongStreamType { .. }) => {
            return Err(DomainError::NotFound { what: "order" }.into())
        }
        Err(e) => return Err(unavailable(e)),
    };
    if o.buyer_id != a.user.id {
        return Err(DomainError::Forbidden { reason: "only the order's buyer pays it" }.into());
    }
    if o.status != order::Status::Placed {
        let status = o.status.name();
        return Err(DomainError::InvalidTransition { what: "order", action: "pay", status }.into());
    }
    let total = o.total().tiyin();
    if amount.is_some_and(|a| a != total) {
        return Err(DomainError::AmountMismatch { expected: o.total() }.into());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_specs_payme_link_vector_holds() {
        let url = payme_link("587f72c72cac0d162c722ae2", "order_id", "197", 500, None, None);
        assert_eq!(url, "https://checkout.paycom.uz/bT01ODdmNzJjNzJjYWMwZDE2MmM3MjJhZTI7YWMub3JkZXJfaWQ9MTk3O2E9NTAw");
    }

    #[test]
    fn click_links_carry_the_amount_in_sum_and_encode_the_return_url() {
        let url = click_link("123", "456", "abc", 150_005, Some("https://shop.uz/back?a=1&b=2"));
        assert_eq!(
            url,
            "https://my.click.uz/services/pay?service_id=123&merchant_id=456&amount=1500.05&transaction_param=abc\
             &return_url=https%3A%2F%2Fshop.uz%2Fback%3Fa%3D1%26b%3D2"
        );
    }
}
