//! The one error type of every `decide`. Each variant maps to a stable code (see `code`),
//! and the API maps codes to HTTP statuses in one table.

use crate::money::Money;

/// Why a command was refused. Nothing is appended when a decision fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The stream the command addresses does not exist (`what`: listing, order, escrow, wallet).
    #[error("{what} not found")]
    NotFound { what: &'static str },
    /// A create command for a stream that already exists.
    #[error("{what} already exists")]
    AlreadyExists { what: &'static str },
    /// The actor may not issue this command on this stream.
    #[error("forbidden: {reason}")]
    Forbidden { reason: &'static str },
    /// A field of the command is invalid.
    #[error("invalid {field}: {reason}")]
    Invalid { field: &'static str, reason: &'static str },
    /// The command is not allowed in the stream's current status.
    #[error("cannot {action} a {what} that is {status}")]
    InvalidTransition { what: &'static str, action: &'static str, status: &'static str },
    /// Ordering or promoting needs an active listing.
    #[error("listing is not active")]
    ListingNotActive,
    /// Classified ads are contact-only: they cannot be ordered.
    #[error("listing cannot be ordered: {reason}")]
    ListingNotOrderable { reason: &'static str },
    /// Not enough stock for the requested quantity.
    #[error("insufficient stock for {sku}: {available} left, {requested} requested")]
    InsufficientStock { sku: String, available: u32, requested: u32 },
    /// One order holds listings of one seller only.
    #[error("all items of an order must come from one seller")]
    MixedSellers,
    /// The wallet's available balance does not cover the amount.
    #[error("insufficient funds: {available} available, {requested} requested")]
    InsufficientFunds { available: Money, requested: Money },
    /// A provider transaction id was seen before with another amount.
    #[error("provider transaction {provider_tx_id} was already deposited with another amount")]
    ProviderTransactionMismatch { provider_tx_id: String },
    /// A timer command came before its deadline.
    #[error("not due yet")]
    NotDue,
    /// The hold a command refers to does not exist in the wallet.
    #[error("hold not found")]
    HoldNotFound,
    /// An amount above `money::AMOUNT_MAX`, or one that would take a balance beyond
    /// `money::BALANCE_MAX`.
    #[error("amount too large: amounts are at most 10^15 tiyin and balances at most 10^17")]
    AmountTooLarge,
    /// A product variant that open orders hold units of cannot be removed.
    #[error("variant {sku} has units held by open orders (hint: keep it until they complete or are cancelled)")]
    VariantReserved { sku: String },
    /// A variant's stock (units on hand) cannot go below what open orders hold.
    #[error("stock of {sku} cannot be {stock}: open orders hold {reserved}")]
    StockBelowReserved { sku: String, stock: u32, reserved: u32 },
    /// The user to assign as courier is not registered or does not hold the courier role.
    #[error("{user_id} is not a registered courier")]
    NotACourier { user_id: uuid::Uuid },
    /// Couriers take orders of the district they serve only.
    #[error("the courier serves {courier}, the order goes to {order}")]
    CourierDistrictMismatch { courier: &'static str, order: &'static str },
    /// A game account without credentials cannot be delivered or revealed.
    #[error("the game account has no credentials (hint: the seller sets them first)")]
    CredentialsMissing,
    /// The credentials were erased (crypto-shredded) and can never be read again.
    #[error("the credentials were erased and cannot be read")]
    CredentialsErased,
    /// A provider payment of the order is in progress: nothing else pays it meanwhile.
    #[error("a payment of this order is in progress (hint: wait until the provider performs or cancels it)")]
    PaymentPending,
    /// A payment's amount is not what the order costs.
    #[error("the amount must be {expected}, what the order costs")]
    AmountMismatch { expected: Money },
    /// A performed provider payment can no longer be taken back.
    #[error("the payment cannot be reversed: {reason}")]
    PaymentNotReversible { reason: &'static str },
    /// A provider payment stayed created past the provider's timeout: it can only be cancelled.
    #[error("the payment expired before it was performed")]
    PaymentExpired,
    /// A withdrawal below the configured minimum.
    #[error("withdrawals are at least {min}")]
    WithdrawalBelowMinimum { min: Money },
    /// The day's withdrawals (Tashkent time) would pass the configured maximum.
    #[error("the day's withdrawals would exceed the limit: {left} left today")]
    WithdrawalDailyLimit { left: Money },
}

impl DomainError {
    /// The stable, machine-readable code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::NotFound { what } => match *what {
                "listing" => "listing_not_found",
                "order" => "order_not_found",
                "escrow" => "escrow_not_found",
                "user" => "user_not_found",
                "payment" => "payment_not_found",
                _ => "wallet_not_found",
            },
            DomainError::AlreadyExists { .. } => "already_exists",
            DomainError::Forbidden { .. } => "forbidden",
            DomainError::Invalid { .. } => "invalid_field",
            DomainError::InvalidTransition { .. } => "invalid_transition",
            DomainError::ListingNotActive => "listing_not_active",
            DomainError::ListingNotOrderable { .. } => "listing_not_orderable",
            DomainError::InsufficientStock { .. } => "insufficient_stock",
            DomainError::MixedSellers => "mixed_sellers",
            DomainError::InsufficientFunds { .. } => "insufficient_funds",
            DomainError::ProviderTransactionMismatch { .. } => "provider_transaction_mismatch",
            DomainError::NotDue => "not_due",
            DomainError::HoldNotFound => "hold_not_found",
            DomainError::AmountTooLarge => "amount_too_large",
            DomainError::VariantReserved { .. } => "variant_reserved",
            DomainError::StockBelowReserved { .. } => "stock_below_reserved",
            DomainError::NotACourier { .. } => "not_a_courier",
            DomainError::CourierDistrictMismatch { .. } => "courier_district_mismatch",
            DomainError::CredentialsMissing => "credentials_missing",
            DomainError::CredentialsErased => "credentials_erased",
            DomainError::PaymentPending => "payment_pending",
            DomainError::AmountMismatch { .. } => "amount_mismatch",
            DomainError::PaymentNotReversible { .. } => "payment_not_reversible",
            DomainError::PaymentExpired => "payment_expired",
            DomainError::WithdrawalBelowMinimum { .. } => "withdrawal_below_minimum",
            DomainError::WithdrawalDailyLimit { .. } => "withdrawal_daily_limit",
        }
    }

    /// Every code `code` can return, for the API's error table and its completeness test.
    pub const CODES: &'static [&'static str] = &[
        "listing_not_found",
        "order_not_found",
        "escrow_not_found",
        "wallet_not_found",
        "already_exists",
        "forbidden",
        "invalid_field",
        "invalid_transition",
        "listing_not_active",
        "listing_not_orderable",
        "insufficient_stock",
        "mixed_sellers",
        "insufficient_funds",
        "provider_transaction_mismatch",
        "not_due",
        "hold_not_found",
        "amount_too_large",
        "variant_reserved",
        "stock_below_reserved",
        "not_a_courier",
        "courier_district_mismatch",
        "user_not_found",
        "credentials_missing",
        "credentials_erased",
        "payment_not_found",
        "payment_pending",
        "amount_mismatch",
        "payment_not_reversible",
        "withdrawal_below_minimum",
        "withdrawal_daily_limit",
        "payment_expired",
    ];
}

/// Shorthand for `Err(DomainError::Invalid { .. })`.
pub(crate) fn invalid<T>(field: &'static str, reason: &'static str) -> Result<T, DomainError> {
    Err(DomainError::Invalid { field, reason })
}

/// Shorthand for `Err(DomainError::Forbidden { .. })`.
pub(crate) fn forbidden<T>(reason: &'static str) -> Result<T, DomainError> {
    Err(DomainError::Forbidden { reason })
}
