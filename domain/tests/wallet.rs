//! Wallet: given / when / then for every branch of `decide`.

mod common;

use bozor_domain::wallet::{
    decide, Command as C, Event as E, Owner, PlatformAccount, Provider, Reason, State, WalletAggregate,
};
use bozor_domain::{Actor, Money, Role};
use common::*;
use uuid::Uuid;

fn m(t: i64) -> Money {
    Money::from_tiyin(t).unwrap()
}

fn user() -> Owner {
    Owner::User { user_id: Uuid::new_v4() }
}

fn admin() -> Actor {
    actor(Uuid::new_v4(), &[Role::Admin])
}

/// An admin's manual credit: idempotent by its reference in the wallet itself (a provider's
/// transactions are idempotent through their payment streams).
fn deposit(owner: Owner, amount: i64, tx: &str) -> C {
    C::Deposit {
        owner,
        journal_id: Uuid::new_v4(),
        amount: m(amount),
        provider: Provider::Manual,
        provider_tx_id: tx.into(),
    }
}

fn funded(owner: Owner, amount: i64) -> Vec<E> {
    decide(&State::Initial, &deposit(owner, amount, "tx-0"), &ctx(&admin())).unwrap()
}

fn run(h: &mut Vec<E>, c: &C) {
    let events = decide(&given::<WalletAggregate>(h), c, &ctx(&admin())).unwrap();
    h.extend(events);
}

fn reason() -> Reason {
    Reason::Escrow { order_id: Uuid::nil() }
}

#[test]
fn first_deposit_opens_the_wallet() {
    let o = user();
    let h = funded(o, 500);
    assert!(matches!(h[..], [E::WalletOpened { .. }, E::FundsDeposited { .. }]));
    assert_eq!(given::<WalletAggregate>(&h).available(), 500);
}

#[test]
fn a_repeated_provider_transaction_credits_nothing_and_a_changed_one_is_refused() {
    let o = user();
    let h = funded(o, 500);
    let s = given::<WalletAggregate>(&h);
    assert_eq!(decide(&s, &deposit(o, 500, "tx-0"), &ctx(&admin())).unwrap(), vec![]);
    assert_eq!(refused(decide(&s, &deposit(o, 501, "tx-0"), &ctx(&admin()))), "provider_transaction_mismatch");
}

#[test]
fn deposit_fails_for_users_platform_wallets_zero_and_bad_references() {
    let o = user();
    let buyer = actor(Uuid::new_v4(), &[Role::Buyer]);
    assert_eq!(refused(decide(&State::Initial, &deposit(o, 5, "t"), &ctx(&buyer))), "forbidden");
    let platform = Owner::Platform { account: PlatformAccount::Revenue, shard: 0 };
    assert_eq!(refused(decide(&State::Initial, &deposit(platform, 5, "t"), &ctx(&admin()))), "invalid_field");
    assert_eq!(refused(decide(&State::Initial, &deposit(o, 0, "t"), &ctx(&admin()))), "invalid_field");
    assert_eq!(refused(decide(&State::Initial, &deposit(o, 5, ""), &ctx(&admin()))), "invalid_field");
    assert_eq!(refused(decide(&State::Initial, &deposit(o, 5, &"x".repeat(65)), &ctx(&admin()))), "invalid_field");
    let system = Actor::system();
    assert!(decide(&State::Initial, &deposit(o, 5, "t"), &ctx(&system)).is_ok(), "payment callbacks act as the system");
}

#[test]
fn credit_opens_and_debit_spends_within_the_balance() {
    let o = user();
    let mut h = vec![];
    run(&mut h, &C::Credit { owner: o, journal_id: Uuid::nil(), amount: m(300), reason: reason() });
    run(&mut h, &C::Debit { owner: o, journal_id: Uuid::nil(), amount: m(300), reason: reason() });
    assert_eq!(given::<WalletAggregate>(&h).available(), 0);
    let s = given::<WalletAggregate>(&h);
    let debit = C::Debit { owner: o, journal_id: Uuid::nil(), amount: m(1), reason: reason() };
    assert_eq!(refused(decide(&s, &debit, &ctx(&admin()))), "insufficient_funds");
    assert_eq!(refused(decide(&State::Initial, &debit, &ctx(&admin()))), "insufficient_funds");
    let zero = C::Credit { owner: o, journal_id: Uuid::nil(), amount: m(0), reason: reason() };
    assert_eq!(refused(decide(&s, &zero, &ctx(&admin()))), "invalid_field");
}

#[test]
fn provider_clearing_may_go_negative_and_nothing_else_may() {
    let clearing = Owner::Platform { account: PlatformAccount::ProviderClearing, shard: 5 };
    let mut h = vec![];
    run(&mut h, &C::Debit { owner: clearing, journal_id: Uuid::nil(), amount: m(700), reason: reason() });
    assert_eq!(given::<WalletAggregate>(&h).available(), -700);
    let revenue = Owner::Platform { account: PlatformAccount::Revenue, shard: 0 };
    let debit = C::Debit { owner: revenue, journal_id: Uuid::nil(), amount: m(1), reason: reason() };
    assert_eq!(refused(decide(&State::Initial, &debit, &ctx(&admin()))), "insufficient_funds");
}

#[test]
fn holds_move_money_to_held_and_are_released_or_captured() {
    let o = user();
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let mut h = funded(o, 1_000);
    run(&mut h, &C::Hold { journal_id: Uuid::nil(), hold_id: a, amount: m(600), reason: reason() });
    run(&mut h, &C::Hold { journal_id: Uuid::nil(), hold_id: b, amount: m(300), reason: reason() });
    let s = given::<WalletAggregate>(&h);
    assert_eq!((s.available(), s.held()), (100, 900));
    let over = C::Hold { journal_id: Uuid::nil(), hold_id: Uuid::new_v4(), amount: m(101), reason: reason() };
    assert_eq!(refused(decide(&s, &over, &ctx(&admin()))), "insufficient_funds");
    let dup = C::Hold { journal_id: Uuid::nil(), hold_id: a, amount: m(1), reason: reason() };
    assert_eq!(refused(decide(&s, &dup, &ctx(&admin()))), "already_exists");
    run(&mut h, &C::ReleaseHold { journal_id: Uuid::nil(), hold_id: a });
    run(&mut h, &C::CaptureHold { journal_id: Uuid::nil(), hold_id: b });
    let s = given::<WalletAggregate>(&h);
    assert_eq!((s.available(), s.held()), (700, 0));
    for c in
        [C::ReleaseHold { journal_id: Uuid::nil(), hold_id: a }, C::CaptureHold { journal_id: Uuid::nil(), hold_id: b }]
    {
        assert_eq!(refused(decide(&s, &c, &ctx(&admin()))), "hold_not_found");
    }
    let none = C::ReleaseHold { journal_id: Uuid::nil(), hold_id: a };
    assert_eq!(refused(decide(&State::Initial, &none, &ctx(&admin()))), "wallet_not_found");
    let hold_empty = C::Hold { journal_id: Uuid::nil(), hold_id: a, amount: m(1), reason: reason() };
    assert_eq!(refused(decide(&State::Initial, &hold_empty, &ctx(&admin()))), "insufficient_funds");
}

#[test]
fn every_money_event_has_a_posting_that_changes_the_balance_it_names() {
    let o = user();
    let mut h = funded(o, 1_000);
    run(&mut h, &C::Hold { journal_id: Uuid::nil(), hold_id: Uuid::nil(), amount: m(400), reason: reason() });
    let mut available = 0;
    let mut held = 0;
    for e in &h {
        if let Some(p) = e.posting() {
            available += p.available;
            held += p.held;
        }
    }
    let s = given::<WalletAggregate>(&h);
    assert_eq!((available, held), (s.available(), s.held()));
}

#[test]
fn amounts_above_the_limit_and_balances_beyond_theirs_are_refused() {
    use bozor_domain::money::{AMOUNT_MAX, BALANCE_MAX};
    let o = user();
    assert_eq!(
        refused(decide(&State::Initial, &deposit(o, AMOUNT_MAX + 1, "big"), &ctx(&admin()))),
        "amount_too_large"
    );
    assert_eq!(refused(decide(&State::Initial, &deposit(o, i64::MAX, "max"), &ctx(&admin()))), "amount_too_large");
    // A wallet filled to its ceiling takes nothing more; a wallet near it takes up to it.
    let mut h = funded(o, AMOUNT_MAX);
    let credit = |amount: i64| C::Credit { owner: o, journal_id: Uuid::new_v4(), amount: m(amount), reason: reason() };
    for _ in 1..(BALANCE_MAX / AMOUNT_MAX) {
        run(&mut h, &credit(AMOUNT_MAX));
    }
    assert_eq!(given::<WalletAggregate>(&h).available(), BALANCE_MAX);
    let s = given::<WalletAggregate>(&h);
    assert_eq!(refused(decide(&s, &credit(1), &ctx(&admin()))), "amount_too_large");
    assert_eq!(refused(decide(&s, &deposit(o, 1, "one-more"), &ctx(&admin()))), "amount_too_large");
    // The clearing account runs negative down to -BALANCE_MAX and no further.
    let clearing = Owner::Platform { account: PlatformAccount::ProviderClearing, shard: 3 };
    let debit =
        |amount: i64| C::Debit { owner: clearing, journal_id: Uuid::new_v4(), amount: m(amount), reason: reason() };
    let mut c = vec![];
    for _ in 0..(BALANCE_MAX / AMOUNT_MAX) {
        run(&mut c, &debit(AMOUNT_MAX));
    }
    assert_eq!(given::<WalletAggregate>(&c).available(), -BALANCE_MAX);
    assert_eq!(refused(decide(&given::<WalletAggregate>(&c), &debit(1), &ctx(&admin()))), "amount_too_large");
}

#[test]
fn a_withdrawal_id_names_one_withdrawal_for_good() {
    let o = user();
    let mut h = funded(o, 1_000);
    let id = Uuid::new_v4();
    let reason = Reason::Withdrawal { withdrawal_id: id, card_mask: "**** 4242".into(), card_holder: None };
    let hold = C::Hold { journal_id: Uuid::new_v4(), hold_id: id, amount: m(100), reason };
    run(&mut h, &hold);
    run(&mut h, &C::CaptureHold { journal_id: Uuid::new_v4(), hold_id: id });
    assert_eq!(refused(decide(&given::<WalletAggregate>(&h), &hold, &ctx(&admin()))), "already_exists");
}

#[test]
fn nobody_credits_their_own_wallet_by_hand() {
    use bozor_domain::flows::{self, UnitOfWork};
    let me = actor(Uuid::new_v4(), &[Role::Admin]);
    let mut uow = UnitOfWork::default();
    uow.wallets.load(bozor_domain::wallet::user_wallet_id(me.id), State::Initial);
    let clearing = bozor_domain::wallet::platform_owner(PlatformAccount::ProviderClearing, me.id).wallet_id();
    uow.wallets.load(clearing, State::Initial);
    let r = flows::deposit(&mut uow, &ctx(&me), me.id, m(100), Provider::Manual, "tx", Uuid::new_v4());
    assert_eq!(refused(r), "forbidden");
}

/// The provider clearing account is split finer than the others; its first sixteen shards are
/// the streams it had when every account had sixteen, so balances written then still count.
#[test]
fn provider_clearing_has_more_shards_and_keeps_the_old_ones() {
    use bozor_domain::wallet::{platform_shard, platform_wallet_id, platform_wallet_ids, shards, PlatformAccount};
    // The namespace of wallet ids, as domain/src/wallet.rs has had it from the first version.
    const WALLET_NS: uuid::Uuid = uuid::Uuid::from_u128(0x6f1d_2a1e_9b7c_4c55_8a31_0d7e_b0a5_7a11);
    let clearing: Vec<_> = platform_wallet_ids(PlatformAccount::ProviderClearing).collect();
    let revenue: Vec<_> = platform_wallet_ids(PlatformAccount::Revenue).collect();
    assert_eq!((clearing.len(), revenue.len()), (128, 16));
    assert_eq!(shards(PlatformAccount::PayoutClearing), 16);
    let distinct: std::collections::BTreeSet<_> = clearing.iter().collect();
    assert_eq!(distinct.len(), 128, "every shard its own stream");
    for shard in 0..16u8 {
        let old = if shard == 0 {
            uuid::Uuid::new_v5(&WALLET_NS, b"platform:provider_clearing")
        } else {
            uuid::Uuid::new_v5(&WALLET_NS, format!("platform:provider_clearing#{shard}").as_bytes())
        };
        assert_eq!(platform_wallet_id(PlatformAccount::ProviderClearing, shard), old);
    }
    let key = uuid::Uuid::from_u128(1_000_003);
    assert_eq!(platform_shard(PlatformAccount::ProviderClearing, key), (1_000_003 % 128) as u8);
    assert_eq!(platform_shard(PlatformAccount::Revenue, key), (1_000_003 % 16) as u8);
}
