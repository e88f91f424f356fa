//! Listing: what is sold. Products (stock, variants, delivery), classified ads (contact-only)
//! and game accounts (sold once, through a deal).
//!
//! Lifecycle: draft -> pending (moderation) -> active | rejected(reason); active -> reserved
//! (a deal in progress) -> sold; active/rejected -> archived; any -> blocked (admin); soft delete.
//! Pending listings are approved automatically 48 h after submission.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::aggregate::Aggregate;
use crate::context::{Context, Role};
use crate::error::{forbidden, invalid, DomainError};
use crate::money::{Money, Plan};

/// How long a listing may wait in moderation before it is approved automatically.
pub const AUTO_APPROVE_AFTER_HOURS: i64 = 48;
/// Bounds on listing content.
pub const TITLE_CHARS_MAX: usize = 200;
/// Longest description, in characters.
pub const DESCRIPTION_CHARS_MAX: usize = 10_000;
/// Most images per listing.
pub const IMAGES_MAX: usize = 20;
/// Most attributes per listing.
pub const ATTRIBUTES_MAX: usize = 50;
/// Most variants per product.
pub const VARIANTS_MAX: usize = 100;
/// The one sku of a game account.
pub const GAME_ACCOUNT_SKU: &str = "account";
/// Longest promotion bought at once.
pub const PROMOTION_DAYS_MAX: u32 = 30;

/// What kind of thing is listed, with the fields only that kind has.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Details {
    /// Goods with stock, delivered by courier.
    Product { variants: Vec<Variant> },
    /// A classified ad (car, flat, service): buyers contact the seller, no orders.
    Classified { contact_phone: Option<String> },
    /// A game account, sold once with digital delivery of its credentials.
    GameAccount { game: String, level: u32, rank: Option<String> },
}

impl Details {
    /// `product`, `classified` or `game_account`.
    pub fn kind(&self) -> &'static str {
        match self {
            Details::Product { .. } => "product",
            Details::Classified { .. } => "classified",
            Details::GameAccount { .. } => "game_account",
        }
    }
}

/// One purchasable variant of a product (size, colour, ...) with its own stock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variant {
    /// Seller's stock-keeping unit, unique within the listing.
    pub sku: String,
    /// What the buyer sees, e.g. "42, black".
    pub label: String,
    /// Units on hand that are not yet sold. Units held by open orders count here until their
    /// sale completes; what buyers can still order is `stock` less those (`Listing::available_of`).
    pub stock: u32,
}

/// A quantity of one variant.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemQuantity {
    /// The variant's sku (game accounts use `"account"`).
    pub sku: String,
    /// Units.
    pub quantity: u32,
}

/// Promotion tiers, paid per day from the seller's wallet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromotionTier {
    /// Raised to the top of its category.
    Top,
    /// Top plus a highlighted card on the home page.
    Vip,
}

impl PromotionTier {
    /// Price of one day: Top 5 000 sum, VIP 15 000 sum.
    pub fn price_per_day(self) -> Money {
        match self {
            PromotionTier::Top => Money::from_tiyin(500_000).expect("constant is positive"),
            PromotionTier::Vip => Money::from_tiyin(1_500_000).expect("constant is positive"),
        }
    }
}

/// Where a listing is in its lifecycle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// Being written by the seller.
    Draft,
    /// Waiting for moderation.
    Pending,
    /// Visible and purchasable.
    Active,
    /// Refused by a moderator; the seller may edit and resubmit.
    Rejected { reason: String },
    /// A game account in a deal.
    Reserved { order_id: Uuid },
    /// A game account sold.
    Sold,
    /// Withdrawn by the seller.
    Archived,
    /// Blocked by an admin.
    Blocked { reason: String },
}

impl Status {
    /// The status name used in errors and read models.
    pub fn name(&self) -> &'static str {
        match self {
            Status::Draft => "draft",
            Status::Pending => "pending",
            Status::Active => "active",
            Status::Rejected { .. } => "rejected",
            Status::Reserved { .. } => "reserved",
            Status::Sold => "sold",
            Status::Archived => "archived",
            Status::Blocked { .. } => "blocked",
        }
    }
}

/// A listing that exists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listing {
    pub id: Uuid,
    pub seller_id: Uuid,
    /// The seller's plan when the listing was created (sets the commission of its sales).
    pub seller_plan: Plan,
    pub details: Details,
    pub title: String,
    pub description: String,
    pub category: String,
    pub price: Money,
    /// The first price, kept to show discounts.
    pub original_price: Money,
    pub images: Vec<String>,
    pub attributes: BTreeMap<String, String>,
    pub status: Status,
    pub deleted: bool,
    pub submitted_at: Option<DateTime<Utc>>,
    pub promoted: Option<Promotion>,
    /// What orders in progress hold, per order, to give back on cancel or return
    /// (a game account's whole unit, or product stock).
    pub reservations: BTreeMap<Uuid, Vec<ItemQuantity>>,
    /// A game account's login and password, sealed; absent until the seller sets them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials: Option<Credentials>,
}

/// Longest sealed credential field (nonce or ciphertext, base64) accepted.
pub const SEALED_CHARS_MAX: usize = 4_096;

/// A game account's credentials sealed with AES-256-GCM under a per-listing data key. The
/// domain keeps them opaque: only the command side, which holds the keys, seals and opens
/// them. The data key is kept outside the log, so deleting it shreds every copy of these.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedCredentials {
    /// The data key that sealed them.
    pub key_id: Uuid,
    /// The AES-GCM nonce, base64.
    pub nonce: String,
    /// The ciphertext and its tag, base64.
    pub ciphertext: String,
}

/// Where a game account's credentials stand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Credentials {
    /// Readable by the buyer once delivered, and by admins.
    Sealed(SealedCredentials),
    /// The data key was deleted: the ciphertext in the log can never be opened again.
    Erased,
}

/// What a buyer's order says about their right to a game account's credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Purchase {
    pub order_id: Uuid,
    pub buyer_id: Uuid,
    /// The seller has handed the account over (credentials delivered, completed or disputed).
    pub delivered: bool,
}

/// A paid promotion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Promotion {
    pub tier: PromotionTier,
    pub until: DateTime<Utc>,
}

/// The state of a listing stream.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    /// No events yet.
    Initial,
    /// Created.
    Exists(Box<Listing>),
}

/// The content fields of a new listing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Content {
    pub title: String,
    pub description: String,
    pub category: String,
    pub images: Vec<String>,
    pub attributes: BTreeMap<String, String>,
}

/// A change of content; absent fields stay as they are.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContentPatch {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub category: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub images: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attributes: Option<BTreeMap<String, String>>,
    /// Products only: the new variants and stock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variants: Option<Vec<Variant>>,
}

impl ContentPatch {
    fn is_empty(&self) -> bool {
        *self == ContentPatch::default()
    }
}

/// Commands on a listing.
#[derive(Clone, Debug, PartialEq)]
pub enum Command {
    /// A seller creates a draft.
    Create { listing_id: Uuid, details: Details, content: Content, price: Money },
    /// The seller edits content; an active or rejected listing goes back to moderation.
    Update { patch: ContentPatch },
    /// The seller changes the price; the original price is kept.
    ChangePrice { price: Money },
    /// The seller sends a draft or rejected listing to moderation.
    Submit,
    /// A moderator approves a pending listing.
    Approve,
    /// A moderator rejects a pending listing.
    Reject { reason: String },
    /// The system approves a listing pending for 48 h.
    AutoApprove,
    /// The seller archives an active or rejected listing.
    Archive,
    /// An admin blocks a listing, whatever its status.
    Block { reason: String },
    /// The seller (or an admin) deletes a listing softly.
    Delete,
    /// An order reserves stock (product) or the whole listing (game account).
    Reserve { order_id: Uuid, items: Vec<ItemQuantity> },
    /// An order was cancelled or returned: its reservation goes back.
    ReleaseReservation { order_id: Uuid },
    /// An order completed: products keep the stock taken, game accounts become sold.
    CompleteSale { order_id: Uuid },
    /// The seller buys a promotion (paid by the flow that debits the wallet).
    Promote { tier: PromotionTier, days: u32, journal_id: Uuid },
    /// The seller sets (or replaces) a game account's sealed login and password.
    SetCredentials { sealed: SealedCredentials },
    /// Someone reads the credentials: an admin, or the buyer of a delivered order
    /// (`purchase`, as the order says). Every read is recorded.
    RevealCredentials { purchase: Option<Purchase> },
    /// The seller or an admin erases the credentials (crypto-shredding); the data key goes.
    EraseCredentials,
}

/// Events of a listing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data")]
pub enum Event {
    ListingCreated {
        listing_id: Uuid,
        seller_id: Uuid,
        seller_plan: Plan,
        details: Details,
        content: Content,
        price: Money,
        at: DateTime<Utc>,
    },
    ListingUpdated {
        patch: ContentPatch,
        at: DateTime<Utc>,
    },
    ListingPriceChanged {
        price: Money,
        previous_price: Money,
        at: DateTime<Utc>,
    },
    ListingSubmitted {
        at: DateTime<Utc>,
    },
    ListingApproved {
        by: Uuid,
        automatic: bool,
        at: DateTime<Utc>,
    },
    ListingRejected {
        by: Uuid,
        reason: String,
        at: DateTime<Utc>,
    },
    ListingArchived {
        at: DateTime<Utc>,
    },
    ListingBlocked {
        by: Uuid,
        reason: String,
        at: DateTime<Utc>,
    },
    ListingDeleted {
        by: Uuid,
        at: DateTime<Utc>,
    },
    ListingStockReserved {
        order_id: Uuid,
        items: Vec<ItemQuantity>,
    },
    ListingReserved {
        order_id: Uuid,
    },
    ListingReservationReleased {
        order_id: Uuid,
    },
    ListingSaleCompleted {
        order_id: Uuid,
    },
    ListingPromoted {
        tier: PromotionTier,
        days: u32,
        until: DateTime<Utc>,
        price: Money,
        journal_id: Uuid,
    },
    CredentialsSet {
        sealed: SealedCredentials,
        at: DateTime<Utc>,
    },
    CredentialsRevealed {
        to: Uuid,
        order_id: Option<Uuid>,
        at: DateTime<Utc>,
    },
    CredentialsErased {
        key_id: Uuid,
        by: Uuid,
        at: DateTime<Utc>,
    },
}

/// The Listing aggregate.
pub struct ListingAggregate;

impl Aggregate for ListingAggregate {
    const STREAM_TYPE: &'static str = "listing";
    // 2: `Variant::stock` counts units on hand (reservations no longer subtract from it).
    const STATE_SCHEMA: i32 = 2;
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

/// Decides a listing command.
pub fn decide(state: &State, command: &Command, ctx: &Context) -> Result<Vec<Event>, DomainError> {
    let listing = match (state, command) {
        (State::Initial, Command::Create { listing_id, details, content, price }) => {
            return create(*listing_id, details, content, *price, ctx)
        }
        (State::Exists(_), Command::Create { .. }) => return Err(DomainError::AlreadyExists { what: "listing" }),
        (State::Initial, _) => return Err(DomainError::NotFound { what: "listing" }),
        (State::Exists(l), _) => l,
    };
    if listing.deleted {
        return Err(DomainError::NotFound { what: "listing" });
    }
    let now = ctx.now;
    match command {
        Command::Create { .. } => unreachable!("handled above"),
        Command::Update { patch } => update(listing, patch, ctx),
        Command::ChangePrice { price } => change_price(listing, *price, ctx),
        Command::Submit => {
            require_seller(listing, ctx)?;
            require_status(listing, "submit", matches!(listing.status, Status::Draft | Status::Rejected { .. }))?;
            Ok(vec![Event::ListingSubmitted { at: now }])
        }
        Command::Approve => {
            require_moderator_of(listing, ctx)?;
            require_status(listing, "approve", listing.status == Status::Pending)?;
            Ok(vec![Event::ListingApproved { by: ctx.actor.id, automatic: false, at: now }])
        }
        Command::AutoApprove => auto_approve(listing, ctx),
        Command::Reject { reason } => {
            require_moderator_of(listing, ctx)?;
            require_status(listing, "reject", listing.status == Status::Pending)?;
            let reason = reason_text(reason)?;
            Ok(vec![Event::ListingRejected { by: ctx.actor.id, reason, at: now }])
        }
        Command::Archive => {
            require_seller(listing, ctx)?;
            require_status(listing, "archive", matches!(listing.status, Status::Active | Status::Rejected { .. }))?;
            Ok(vec![Event::ListingArchived { at: now }])
        }
        Command::Block { reason } => {
            if !ctx.actor.is_staff(false) {
                return forbidden("only an admin blocks listings");
            }
            require_status(listing, "block", !matches!(listing.status, Status::Blocked { .. }))?;
            Ok(vec![Event::ListingBlocked { by: ctx.actor.id, reason: reason_text(reason)?, at: now }])
        }
        Command::Delete => {
            if listing.seller_id != ctx.actor.id && !ctx.actor.is_staff(false) {
                return forbidden("only the seller or an admin deletes a listing");
            }
            require_status(listing, "delete", listing.reservations.is_empty())?;
            Ok(vec![Event::ListingDeleted { by: ctx.actor.id, at: now }])
        }
        Command::Reserve { order_id, items } => reserve(listing, *order_id, items),
        Command::ReleaseReservation { order_id } => release(listing, *order_id),
        Command::CompleteSale { order_id } => complete_sale(listing, *order_id),
        Command::Promote { tier, days, journal_id } => promote(listing, *tier, *days, *journal_id, ctx),
        Command::SetCredentials { sealed } => set_credentials(listing, sealed, ctx),
        Command::RevealCredentials { purchase } => reveal_credentials(listing, purchase.as_ref(), ctx),
        Command::EraseCredentials => erase_credentials(listing, ctx),
    }
}

fn set_credentials(listing: &Listing, sealed: &SealedCredentials, ctx: &Context) -> Result<Vec<Event>, DomainError> {
    require_seller(listing, ctx)?;
    if !matches!(listing.details, Details::GameAccount { .. }) {
        return invalid("credentials", "only game accounts have credentials");
    }
    let open = matches!(listing.status, Status::Draft | Status::Pending | Status::Active | Status::Rejected { .. });
    require_status(listing, "set the credentials of", open)?;
    let sized = |s: &str| !s.is_empty() && s.len() <= SEALED_CHARS_MAX;
    if !sized(&sealed.nonce) || !sized(&sealed.ciphertext) {
        return invalid("credentials", "sealed fields must be 1 to 4096 characters");
    }
    Ok(vec![Event::CredentialsSet { sealed: sealed.clone(), at: ctx.now }])
}

fn sealed(listing: &Listing) -> Result<&SealedCredentials, DomainError> {
    match &listing.credentials {
        Some(Credentials::Sealed(s)) => Ok(s),
        Some(Credentials::Erased) => Err(DomainError::CredentialsErased),
        None => Err(DomainError::CredentialsMissing),
    }
}

fn reveal_credentials(
    listing: &Listing,
    purchase: Option<&Purchase>,
    ctx: &Context,
) -> Result<Vec<Event>, DomainError> {
    let me = ctx.actor.id;
    let order_id = match purchase {
        _ if ctx.actor.has(Role::Admin) => purchase.map(|p| p.order_id),
        Some(p) if p.buyer_id == me && p.delivered => Some(p.order_id),
        Some(p) if p.buyer_id == me => return forbidden("the credentials are readable once the seller delivers"),
        _ => return forbidden("only the buyer of a delivered order or an admin reads credentials"),
    };
    sealed(listing)?;
    Ok(vec![Event::CredentialsRevealed { to: me, order_id, at: ctx.now }])
}

fn erase_credentials(listing: &Listing, ctx: &Context) -> Result<Vec<Event>, DomainError> {
    let admin = ctx.actor.has(Role::Admin);
    if listing.seller_id != ctx.actor.id && !admin {
        return forbidden("only the seller or an admin erases credentials");
    }
    // A deal in progress needs them; only an admin may shred them then (a court order, fraud).
    if !admin {
        require_status(listing, "erase the credentials of", !matches!(listing.status, Status::Reserved { .. }))?;
    }
    match &listing.credentials {
        Some(Credentials::Erased) => Ok(vec![]), // erased already: nothing left to shred
        _ => Ok(vec![Event::CredentialsErased { key_id: sealed(listing)?.key_id, by: ctx.actor.id, at: ctx.now }]),
    }
}

impl Listing {
    /// The sealed credentials, or why there are none to open.
    pub fn sealed_credentials(&self) -> Result<&SealedCredentials, DomainError> {
        sealed(self)
    }
}

fn create(
    listing_id: Uuid,
    details: &Details,
    content: &Content,
    price: Money,
    ctx: &Context,
) -> Result<Vec<Event>, DomainError> {
    if !ctx.actor.has(Role::Seller) {
        return forbidden("only sellers create listings");
    }
    validate_content(content)?;
    validate_details(details)?;
    if price.is_zero() {
        return invalid("price", "must be positive");
    }
    price.within_limit()?;
    Ok(vec![Event::ListingCreated {
        listing_id,
        seller_id: ctx.actor.id,
        seller_plan: ctx.actor.plan.unwrap_or_default(),
        details: details.clone(),
        content: content.clone(),
        price,
        at: ctx.now,
    }])
}

fn update(listing: &Listing, patch: &ContentPatch, ctx: &Context) -> Result<Vec<Event>, DomainError> {
    require_seller(listing, ctx)?;
    let editable = matches!(listing.status, Status::Draft | Status::Pending | Status::Active | Status::Rejected { .. });
    require_status(listing, "update", editable)?;
    if patch.is_empty() {
        return invalid("body", "no field to change");
    }
    let mut content = Content {
        title: listing.title.clone(),
        description: listing.description.clone(),
        category: listing.category.clone(),
        images: listing.images.clone(),
        attributes: listing.attributes.clone(),
    };
    apply_patch_content(&mut content, patch);
    validate_content(&content)?;
    if let Some(variants) = &patch.variants {
        match &listing.details {
            Details::Product { .. } => validate_variants(variants)?,
            _ => return invalid("variants", "only products have variants"),
        }
        keeps_reservations(listing, variants)?;
    }
    let mut events = vec![Event::ListingUpdated { patch: patch.clone(), at: ctx.now }];
    // A visible listing whose content changes goes back to moderation.
    if matches!(listing.status, Status::Active | Status::Rejected { .. }) {
        events.push(Event::ListingSubmitted { at: ctx.now });
    }
    Ok(events)
}

/// New variants must keep every variant open orders hold, with at least the units they hold.
fn keeps_reservations(listing: &Listing, variants: &[Variant]) -> Result<(), DomainError> {
    for sku in listing.reservations.values().flatten().map(|i| &i.sku) {
        let reserved = listing.reserved_of(sku);
        match variants.iter().find(|v| &v.sku == sku) {
            None => return Err(DomainError::VariantReserved { sku: sku.clone() }),
            Some(v) if v.stock < reserved => {
                return Err(DomainError::StockBelowReserved { sku: sku.clone(), stock: v.stock, reserved })
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn change_price(listing: &Listing, price: Money, ctx: &Context) -> Result<Vec<Event>, DomainError> {
    require_seller(listing, ctx)?;
    let open = matches!(listing.status, Status::Draft | Status::Pending | Status::Active | Status::Rejected { .. });
    require_status(listing, "change the price of", open)?;
    if price.is_zero() {
        return invalid("price", "must be positive");
    }
    price.within_limit()?;
    if price == listing.price {
        return invalid("price", "is the current price");
    }
    Ok(vec![Event::ListingPriceChanged { price, previous_price: listing.price, at: ctx.now }])
}

fn auto_approve(listing: &Listing, ctx: &Context) -> Result<Vec<Event>, DomainError> {
    if !ctx.actor.has(Role::System) {
        return forbidden("only the scheduler approves automatically");
    }
    require_status(listing, "auto-approve", listing.status == Status::Pending)?;
    let due = listing.submitted_at.and_then(|at| at.checked_add_signed(Duration::hours(AUTO_APPROVE_AFTER_HOURS)));
    if due.is_none_or(|due| ctx.now < due) {
        return Err(DomainError::NotDue);
    }
    Ok(vec![Event::ListingApproved { by: ctx.actor.id, automatic: true, at: ctx.now }])
}

fn reserve(listing: &Listing, order_id: Uuid, items: &[ItemQuantity]) -> Result<Vec<Event>, DomainError> {
    if listing.status != Status::Active {
        return Err(DomainError::ListingNotActive);
    }
    if items.is_empty() || items.iter().any(|i| i.quantity == 0) {
        return invalid("items", "each item needs a positive quantity");
    }
    match &listing.details {
        Details::Classified { .. } => {
            Err(DomainError::ListingNotOrderable { reason: "classified ads are contact-only" })
        }
        Details::GameAccount { .. } => {
            if items.len() != 1 || items[0].quantity != 1 || items[0].sku != GAME_ACCOUNT_SKU {
                return invalid("items", "a game account is sold as one unit");
            }
            Ok(vec![Event::ListingReserved { order_id }])
        }
        Details::Product { variants } => {
            if listing.reservations.contains_key(&order_id) {
                return Err(DomainError::AlreadyExists { what: "reservation" });
            }
            for item in items {
                if !variants.iter().any(|v| v.sku == item.sku) {
                    return invalid("sku", "no such variant");
                }
                let requested =
                    items.iter().filter(|i| i.sku == item.sku).fold(0u32, |n, i| n.saturating_add(i.quantity));
                let available = listing.available_of(&item.sku);
                if requested > available {
                    return Err(DomainError::InsufficientStock { sku: item.sku.clone(), available, requested });
                }
            }
            Ok(vec![Event::ListingStockReserved { order_id, items: items.to_vec() }])
        }
    }
}

fn release(listing: &Listing, order_id: Uuid) -> Result<Vec<Event>, DomainError> {
    let held = listing.reservations.contains_key(&order_id);
    require_status(listing, "release a reservation of", held)?;
    Ok(vec![Event::ListingReservationReleased { order_id }])
}

fn complete_sale(listing: &Listing, order_id: Uuid) -> Result<Vec<Event>, DomainError> {
    let held = listing.reservations.contains_key(&order_id);
    require_status(listing, "complete a sale of", held)?;
    Ok(vec![Event::ListingSaleCompleted { order_id }])
}

fn promote(
    listing: &Listing,
    tier: PromotionTier,
    days: u32,
    journal_id: Uuid,
    ctx: &Context,
) -> Result<Vec<Event>, DomainError> {
    require_seller(listing, ctx)?;
    if listing.status != Status::Active {
        return Err(DomainError::ListingNotActive);
    }
    if days == 0 || days > PROMOTION_DAYS_MAX {
        return invalid("days", "must be between 1 and 30");
    }
    let price = tier.price_per_day().checked_mul(days).ok_or(DomainError::AmountTooLarge)?;
    // A promotion bought while one runs extends it.
    let start = match &listing.promoted {
        Some(p) if p.until > ctx.now => p.until,
        _ => ctx.now,
    };
    let until = start
        .checked_add_signed(Duration::days(i64::from(days)))
        .ok_or(DomainError::Invalid { field: "days", reason: "the promotion would end beyond the calendar" })?;
    Ok(vec![Event::ListingPromoted { tier, days, until, price, journal_id }])
}

fn require_seller(listing: &Listing, ctx: &Context) -> Result<(), DomainError> {
    if listing.seller_id != ctx.actor.id {
        return forbidden("only the listing's seller may do this");
    }
    Ok(())
}

/// Moderators (support, admin) moderate listings, never their own.
fn require_moderator_of(listing: &Listing, ctx: &Context) -> Result<(), DomainError> {
    if !ctx.actor.is_staff(true) {
        return forbidden("only moderators (support, admin) moderate listings");
    }
    if listing.seller_id == ctx.actor.id {
        return forbidden("nobody moderates their own listing");
    }
    Ok(())
}

fn require_status(listing: &Listing, action: &'static str, allowed: bool) -> Result<(), DomainError> {
    if allowed {
        return Ok(());
    }
    Err(DomainError::InvalidTransition { what: "listing", action, status: listing.status.name() })
}

fn reason_text(reason: &str) -> Result<String, DomainError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 1_000 {
        return invalid("reason", "must be 1 to 1000 characters");
    }
    Ok(reason.to_owned())
}

fn validate_content(c: &Content) -> Result<(), DomainError> {
    let title = c.title.trim();
    if title.is_empty() || title.chars().count() > TITLE_CHARS_MAX {
        return invalid("title", "must be 1 to 200 characters");
    }
    if c.description.chars().count() > DESCRIPTION_CHARS_MAX {
        return invalid("description", "must be at most 10000 characters");
    }
    if c.category.trim().is_empty() || c.category.len() > 100 {
        return invalid("category", "must be 1 to 100 characters");
    }
    if c.images.len() > IMAGES_MAX || c.images.iter().any(|i| i.is_empty() || i.len() > 1_000) {
        return invalid("images", "at most 20 images, each a 1 to 1000 character reference");
    }
    let bad_attr = c.attributes.iter().any(|(k, v)| k.is_empty() || k.len() > 64 || v.len() > 256);
    if c.attributes.len() > ATTRIBUTES_MAX || bad_attr {
        return invalid("attributes", "at most 50, keys 1 to 64 and values up to 256 bytes");
    }
    Ok(())
}

fn validate_details(d: &Details) -> Result<(), DomainError> {
    match d {
        Details::Product { variants } => validate_variants(variants),
        Details::Classified { contact_phone: Some(p) } if p.len() > 32 => invalid("contact_phone", "too long"),
        Details::Classified { .. } => Ok(()),
        Details::GameAccount { game, rank, .. } => {
            if game.trim().is_empty() || game.len() > 100 {
                return invalid("game", "must be 1 to 100 characters");
            }
            if rank.as_ref().is_some_and(|r| r.len() > 100) {
                return invalid("rank", "must be at most 100 characters");
            }
            Ok(())
        }
    }
}

fn validate_variants(variants: &[Variant]) -> Result<(), DomainError> {
    if variants.is_empty() || variants.len() > VARIANTS_MAX {
        return invalid("variants", "a product has 1 to 100 variants");
    }
    for (i, v) in variants.iter().enumerate() {
        if v.sku.trim().is_empty() || v.sku.len() > 64 || v.label.len() > 200 {
            return invalid("variants", "sku must be 1 to 64 and label up to 200 characters");
        }
        if variants[..i].iter().any(|w| w.sku == v.sku) {
            return invalid("variants", "skus must be unique");
        }
    }
    Ok(())
}

fn apply_patch_content(content: &mut Content, patch: &ContentPatch) {
    if let Some(t) = &patch.title {
        content.title = t.clone();
    }
    if let Some(d) = &patch.description {
        content.description = d.clone();
    }
    if let Some(c) = &patch.category {
        content.category = c.clone();
    }
    if let Some(i) = &patch.images {
        content.images = i.clone();
    }
    if let Some(a) = &patch.attributes {
        content.attributes = a.clone();
    }
}

impl Listing {
    /// Units of `sku` that open orders hold.
    pub fn reserved_of(&self, sku: &str) -> u32 {
        let held = self.reservations.values().flatten().filter(|i| i.sku == sku);
        held.fold(0u32, |n, i| n.saturating_add(i.quantity))
    }

    /// Units of `sku` buyers can still order: a product variant's stock less what open orders
    /// hold; 1 or 0 for a game account that is active or not.
    pub fn available_of(&self, sku: &str) -> u32 {
        match &self.details {
            Details::Product { variants } => {
                variants.iter().find(|v| v.sku == sku).map_or(0, |v| v.stock.saturating_sub(self.reserved_of(sku)))
            }
            Details::GameAccount { .. } => u32::from(self.status == Status::Active),
            Details::Classified { .. } => 0,
        }
    }

    /// True for a product none of whose variants can be ordered any more, and for a game
    /// account that is no longer for sale. Classified ads are never sold out.
    pub fn sold_out(&self) -> bool {
        match &self.details {
            Details::Product { variants } => variants.iter().all(|v| self.available_of(&v.sku) == 0),
            Details::GameAccount { .. } => matches!(self.status, Status::Reserved { .. } | Status::Sold),
            Details::Classified { .. } => false,
        }
    }

    /// A completed sale takes its units off the shelf. A variant removed meanwhile (only a
    /// history from before removals were refused can have that) has nothing to take from.
    fn take_sold(&mut self, items: &[ItemQuantity]) {
        let Details::Product { variants } = &mut self.details else { return };
        for item in items {
            if let Some(v) = variants.iter_mut().find(|v| v.sku == item.sku) {
                v.stock = v.stock.saturating_sub(item.quantity);
            }
        }
    }
}

/// Applies a listing event.
pub fn evolve(state: State, event: &Event) -> State {
    match (state, event) {
        (State::Initial, Event::ListingCreated { listing_id, seller_id, seller_plan, details, content, price, .. }) => {
            State::Exists(Box::new(Listing {
                id: *listing_id,
                seller_id: *seller_id,
                seller_plan: *seller_plan,
                details: details.clone(),
                title: content.title.trim().to_owned(),
                description: content.description.clone(),
                category: content.category.clone(),
                price: *price,
                original_price: *price,
                images: content.images.clone(),
                attributes: content.attributes.clone(),
                status: Status::Draft,
                deleted: false,
                submitted_at: None,
                promoted: None,
                reservations: BTreeMap::new(),
                credentials: None,
            }))
        }
        (State::Exists(mut l), e) => {
            apply(&mut l, e);
            State::Exists(l)
        }
        (State::Initial, e) => panic!("listing event {e:?} before ListingCreated"),
    }
}

fn apply(l: &mut Listing, event: &Event) {
    match event {
        Event::ListingCreated { .. } => panic!("listing {} created twice", l.id),
        Event::ListingUpdated { patch, .. } => {
            let mut content = Content {
                title: l.title.clone(),
                description: l.description.clone(),
                category: l.category.clone(),
                images: l.images.clone(),
                attributes: l.attributes.clone(),
            };
            apply_patch_content(&mut content, patch);
            l.title = content.title.trim().to_owned();
            l.description = content.description;
            l.category = content.category;
            l.images = content.images;
            l.attributes = content.attributes;
            if let (Some(new), Details::Product { variants }) = (&patch.variants, &mut l.details) {
                *variants = new.clone();
            }
        }
        Event::ListingPriceChanged { price, .. } => l.price = *price,
        Event::ListingSubmitted { at } => {
            l.status = Status::Pending;
            l.submitted_at = Some(*at);
        }
        Event::ListingApproved { .. } => l.status = Status::Active,
        Event::ListingRejected { reason, .. } => l.status = Status::Rejected { reason: reason.clone() },
        Event::ListingArchived { .. } => l.status = Status::Archived,
        Event::ListingBlocked { reason, .. } => l.status = Status::Blocked { reason: reason.clone() },
        Event::ListingDeleted { .. } => l.deleted = true,
        Event::ListingStockReserved { order_id, items } => {
            l.reservations.insert(*order_id, items.clone());
        }
        Event::ListingReserved { order_id } => {
            let unit = ItemQuantity { sku: GAME_ACCOUNT_SKU.to_owned(), quantity: 1 };
            l.reservations.insert(*order_id, vec![unit]);
            l.status = Status::Reserved { order_id: *order_id };
        }
        Event::ListingReservationReleased { order_id } => {
            // The units were never taken off the shelf: releasing the hold gives them back.
            l.reservations.remove(order_id);
            // A blocked listing stays blocked; only the deal's own status is undone.
            if matches!(l.status, Status::Reserved { .. }) {
                l.status = Status::Active;
            }
        }
        Event::ListingSaleCompleted { order_id } => {
            let sold = l.reservations.remove(order_id).unwrap_or_default();
            l.take_sold(&sold);
            if matches!(l.status, Status::Reserved { .. }) {
                l.status = Status::Sold;
            }
        }
        Event::ListingPromoted { tier, until, .. } => l.promoted = Some(Promotion { tier: *tier, until: *until }),
        Event::CredentialsSet { sealed, .. } => l.credentials = Some(Credentials::Sealed(sealed.clone())),
        Event::CredentialsRevealed { .. } => {}
        Event::CredentialsErased { .. } => l.credentials = Some(Credentials::Erased),
    }
}
