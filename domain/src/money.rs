//! Money in tiyin (1 sum = 100 tiyin) and commission rates in basis points.
//!
//! No float ever touches money: amounts are `i64` tiyin, rates are basis points, and
//! commission is rounded half up in integer arithmetic.

use serde::{Deserialize, Serialize};
use std::fmt;

/// The largest amount one command may move, in tiyin: 10^15 tiyin (10 trillion sum). Prices,
/// order totals (goods and delivery), deposits, withdrawals and refunds are all at most this.
pub const AMOUNT_MAX: i64 = 1_000_000_000_000_000;

/// The largest balance a wallet may hold, in tiyin, either way (the provider clearing account
/// runs negative): 10^17. With every amount at most `AMOUNT_MAX`, a balance plus an amount stays
/// far inside i64, and so does the sum of every shard of a platform account
/// (16 x 10^17 < 9.2 x 10^18).
pub const BALANCE_MAX: i64 = 100_000_000_000_000_000;

/// A non-negative amount of money in tiyin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Money(i64);

/// Why a number is not a valid amount of money.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// Amounts are never negative; direction is carried by the event, not the sign.
    #[error("amount is negative: {0} tiyin")]
    Negative(i64),
}

impl Money {
    /// Zero tiyin.
    pub const ZERO: Money = Money(0);

    /// Builds an amount from tiyin. Fails when `tiyin` is negative.
    pub fn from_tiyin(tiyin: i64) -> Result<Money, MoneyError> {
        if tiyin < 0 {
            return Err(MoneyError::Negative(tiyin));
        }
        Ok(Money(tiyin))
    }

    /// Builds an amount from whole sum. Fails when negative or when it overflows.
    pub fn from_sum(sum: i64) -> Result<Money, MoneyError> {
        let tiyin = sum.checked_mul(100).ok_or(MoneyError::Negative(i64::MIN))?;
        Money::from_tiyin(tiyin)
    }

    /// The amount itself when it is at most `AMOUNT_MAX`. Fails with `AmountTooLarge`: every
    /// amount a command brings in passes through here before it is decided on.
    pub fn within_limit(self) -> Result<Money, crate::DomainError> {
        if self.0 > AMOUNT_MAX {
            return Err(crate::DomainError::AmountTooLarge);
        }
        Ok(self)
    }

    /// The amount in tiyin.
    pub fn tiyin(self) -> i64 {
        self.0
    }

    /// True for zero tiyin.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// Sum of two amounts, `None` on overflow.
    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    /// Difference, `None` when it would go below zero.
    pub fn checked_sub(self, other: Money) -> Option<Money> {
        match self.0.checked_sub(other.0) {
            Some(v) if v >= 0 => Some(Money(v)),
            _ => None,
        }
    }

    /// `self * n`, `None` on overflow.
    pub fn checked_mul(self, n: u32) -> Option<Money> {
        self.0.checked_mul(i64::from(n)).map(Money)
    }
}

impl TryFrom<i64> for Money {
    type Error = MoneyError;
    fn try_from(v: i64) -> Result<Self, Self::Error> {
        Money::from_tiyin(v)
    }
}

impl From<Money> for i64 {
    fn from(m: Money) -> i64 {
        m.0
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02} sum", self.0 / 100, self.0 % 100)
    }
}

/// A rate in basis points (1 bp = 0.01 %), at most 10 000.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct BasisPoints(u32);

impl BasisPoints {
    /// Builds a rate. Fails (returns `None`) above 10 000 bp (100 %).
    pub fn new(bp: u32) -> Option<BasisPoints> {
        (bp <= 10_000).then_some(BasisPoints(bp))
    }

    /// The rate in basis points.
    pub fn get(self) -> u32 {
        self.0
    }

    /// `amount * rate`, rounded half up to the tiyin. Never exceeds `amount`.
    pub fn of(self, amount: Money) -> Money {
        let scaled = i128::from(amount.0) * i128::from(self.0);
        // Half up: add half the divisor before the integer division.
        let rounded = (scaled + 5_000) / 10_000;
        Money(i64::try_from(rounded).expect("commission never exceeds the amount, which fits i64"))
    }
}

impl TryFrom<u32> for BasisPoints {
    type Error = String;
    fn try_from(v: u32) -> Result<Self, Self::Error> {
        BasisPoints::new(v).ok_or_else(|| format!("rate over 10000 bp: {v}"))
    }
}

impl From<BasisPoints> for u32 {
    fn from(b: BasisPoints) -> u32 {
        b.0
    }
}

/// A seller's plan, which fixes the platform's commission on the seller's sales.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Plan {
    /// 10 % commission.
    #[default]
    Free,
    /// 8 % commission.
    Premium,
    /// 5 % commission.
    Pro,
}

impl Plan {
    /// The platform commission for this plan.
    pub fn commission(self) -> BasisPoints {
        match self {
            Plan::Free => BasisPoints(1_000),
            Plan::Premium => BasisPoints(800),
            Plan::Pro => BasisPoints(500),
        }
    }

    /// Parses `free`, `premium` or `pro`.
    pub fn parse(s: &str) -> Option<Plan> {
        match s {
            "free" => Some(Plan::Free),
            "premium" => Some(Plan::Premium),
            "pro" => Some(Plan::Pro),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(t: i64) -> Money {
        Money::from_tiyin(t).unwrap()
    }

    #[test]
    fn commission_by_plan() {
        assert_eq!(Plan::Free.commission().of(m(100_000)), m(10_000));
        assert_eq!(Plan::Premium.commission().of(m(100_000)), m(8_000));
        assert_eq!(Plan::Pro.commission().of(m(100_000)), m(5_000));
    }

    #[test]
    fn commission_rounds_half_up() {
        // 5 % of 10 tiyin = 0.5 -> 1; 5 % of 9 = 0.45 -> 0; 10 % of 15 = 1.5 -> 2; 8 % of 6 = 0.48 -> 0.
        assert_eq!(Plan::Pro.commission().of(m(10)), m(1));
        assert_eq!(Plan::Pro.commission().of(m(9)), m(0));
        assert_eq!(Plan::Free.commission().of(m(15)), m(2));
        assert_eq!(Plan::Premium.commission().of(m(6)), m(0));
        assert_eq!(Plan::Premium.commission().of(m(7)), m(1));
    }

    #[test]
    fn commission_never_overflows_or_exceeds_amount() {
        let max = m(i64::MAX);
        assert_eq!(BasisPoints::new(10_000).unwrap().of(max), max);
        assert!(Plan::Free.commission().of(max) < max);
    }

    #[test]
    fn money_rejects_negative_and_underflow() {
        assert_eq!(Money::from_tiyin(-1), Err(MoneyError::Negative(-1)));
        assert_eq!(m(5).checked_sub(m(6)), None);
        assert!(serde_json::from_str::<Money>("-3").is_err());
        assert_eq!(serde_json::from_str::<Money>("300").unwrap(), m(300));
        assert_eq!(Money::from_sum(12).unwrap(), m(1_200));
    }
}
