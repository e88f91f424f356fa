//! Frozen fixtures of every stored event type. A shipped event is never changed: each type's
//! current version has a payload under `tests/fixtures/events/<stream>/<Type>.v<N>.json` that
//! must decode and re-encode byte for byte. Changing an event's shape fails here until it gets a
//! new version, an upcaster (see `upcast`) and a fixture of its own; old fixtures stay and must
//! still decode through the upcasters.
//!
//! `BOZOR_WRITE_FIXTURES=1 cargo test -p bozor-domain --test event_fixtures` writes the fixtures
//! of new types or versions; existing ones are never overwritten.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use bozor_domain::aggregate::{decode, encode, Aggregate};
use bozor_domain::escrow::{self, EscrowAggregate, Resolution, Settlement};
use bozor_domain::listing::{
    self, Content, ContentPatch, Details, ItemQuantity, ListingAggregate, PromotionTier, SealedCredentials, Variant,
};
use bozor_domain::order::{self, District, Fulfilment, Line, OrderAggregate};
use bozor_domain::payment::{self, PaymentAggregate};
use bozor_domain::user::{self, Grant, Phone, UserAggregate};
use bozor_domain::wallet::{self, Owner, PlatformAccount, Provider, Reason, WalletAggregate};
use bozor_domain::{BasisPoints, Money, Plan};
use chrono::{DateTime, TimeZone, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;
use uuid::Uuid;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x0000_0000_0000_4000_8000_0000_0000_0000 | n)
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 1, 9, 30, 0).unwrap()
}

fn m(t: i64) -> Money {
    Money::from_tiyin(t).unwrap()
}

fn listing_samples() -> Vec<listing::Event> {
    use listing::Event::*;
    let content = Content {
        title: "Malibu 2 2022".into(),
        description: "Probeg 20 000 km".into(),
        category: "cars".into(),
        images: vec!["img/a.jpg".into()],
        attributes: BTreeMap::from([("year".into(), "2022".into())]),
    };
    let items = vec![ItemQuantity { sku: "std".into(), quantity: 2 }];
    vec![
        ListingCreated {
            listing_id: id(1),
            seller_id: id(2),
            seller_plan: Plan::Premium,
            details: Details::Product { variants: vec![Variant { sku: "std".into(), label: "L".into(), stock: 4 }] },
            content,
            price: m(100),
            at: at(),
        },
        ListingUpdated { patch: ContentPatch { title: Some("t".into()), ..Default::default() }, at: at() },
        ListingPriceChanged { price: m(90), previous_price: m(100), at: at() },
        ListingSubmitted { at: at() },
        ListingApproved { by: id(3), automatic: false, at: at() },
        ListingRejected { by: id(3), reason: "blurry".into(), at: at() },
        ListingArchived { at: at() },
        ListingBlocked { by: id(4), reason: "fraud".into(), at: at() },
        ListingDeleted { by: id(2), at: at() },
        ListingStockReserved { order_id: id(5), items },
        ListingReserved { order_id: id(5) },
        ListingReservationReleased { order_id: id(5) },
        ListingSaleCompleted { order_id: id(5) },
        ListingPromoted { tier: PromotionTier::Vip, days: 3, until: at(), price: m(4_500_000), journal_id: id(6) },
        CredentialsSet {
            sealed: SealedCredentials {
                key_id: id(12),
                nonce: "AAECAwQFBgcICQoL".into(),
                ciphertext: "q83vEjRW".into(),
            },
            at: at(),
        },
        CredentialsRevealed { to: id(7), order_id: Some(id(5)), at: at() },
        CredentialsErased { key_id: id(12), by: id(2), at: at() },
    ]
}

fn listing_index(e: &listing::Event) -> usize {
    use listing::Event::*;
    match e {
        ListingCreated { .. } => 0,
        ListingUpdated { .. } => 1,
        ListingPriceChanged { .. } => 2,
        ListingSubmitted { .. } => 3,
        ListingApproved { .. } => 4,
        ListingRejected { .. } => 5,
        ListingArchived { .. } => 6,
        ListingBlocked { .. } => 7,
        ListingDeleted { .. } => 8,
        ListingStockReserved { .. } => 9,
        ListingReserved { .. } => 10,
        ListingReservationReleased { .. } => 11,
        ListingSaleCompleted { .. } => 12,
        ListingPromoted { .. } => 13,
        CredentialsSet { .. } => 14,
        CredentialsRevealed { .. } => 15,
        CredentialsErased { .. } => 16,
    }
}

fn order_samples() -> Vec<order::Event> {
    use order::Event::*;
    let line = Line { listing_id: id(1), sku: "std".into(), title: "Kettle".into(), unit_price: m(100), quantity: 2 };
    let fulfilment =
        Fulfilment::Delivery { district: District::Chilonzor, address: "Qatortol 5".into(), fee: m(1_800_000) };
    vec![
        OrderPlaced {
            order_id: id(5),
            buyer_id: id(7),
            seller_id: id(2),
            seller_plan: Plan::Free,
            lines: vec![line],
            fulfilment,
            goods_total: m(200),
            at: at(),
        },
        OrderPaid { escrow_id: id(8), at: at() },
        PaymentAwaited { payment_id: id(12), at: at() },
        PaymentAbandoned { payment_id: id(12), at: at() },
        OrderAccepted {
            pickup: Some(order::Pickup { district: District::Yunusobod, address: "Amir Temur 1".into() }),
            at: at(),
        },
        CourierAssigned { courier_id: id(9), by: id(9), at: at() },
        OrderPickedUp { at: at() },
        OrderDelivered { at: at() },
        CredentialsDelivered { at: at() },
        OrderCompleted { automatic: true, at: at() },
        OrderCancelled { by: id(7), reason: "x".into(), refunded: true, at: at() },
        ReturnRequested { reason: "broken".into(), at: at() },
        OrderReturned { refund: m(150), at: at() },
        DisputeOpened { by: id(7), reason: "fake".into(), at: at() },
        DisputeResolved { resolution: Resolution::Split { to_buyer: m(50) }, at: at() },
    ]
}

fn order_index(e: &order::Event) -> usize {
    use order::Event::*;
    match e {
        OrderPlaced { .. } => 0,
        OrderPaid { .. } => 1,
        OrderAccepted { .. } => 2,
        CourierAssigned { .. } => 3,
        OrderPickedUp { .. } => 4,
        OrderDelivered { .. } => 5,
        CredentialsDelivered { .. } => 6,
        OrderCompleted { .. } => 7,
        OrderCancelled { .. } => 8,
        ReturnRequested { .. } => 9,
        OrderReturned { .. } => 10,
        DisputeOpened { .. } => 11,
        DisputeResolved { .. } => 12,
        PaymentAwaited { .. } => 13,
        PaymentAbandoned { .. } => 14,
    }
}

fn escrow_samples() -> Vec<escrow::Event> {
    use escrow::Event::*;
    let s =
        Settlement { to_buyer: m(10), to_seller: m(85), commission: m(5), to_courier: m(20), courier_id: Some(id(9)) };
    vec![
        EscrowOpened {
            escrow_id: id(8),
            order_id: id(5),
            buyer_id: id(7),
            seller_id: id(2),
            amount: m(100),
            commission: BasisPoints::new(500).unwrap(),
            delivery_fee: m(20),
            at: at(),
        },
        EscrowFunded { journal_id: id(6), amount: m(120), at: at() },
        EscrowReleaseScheduled { due_at: at() },
        EscrowReleaseSuspended { at: at() },
        EscrowReleased { journal_id: id(6), settlement: s, automatic: false, at: at() },
        EscrowRefunded { journal_id: id(6), settlement: s, at: at() },
        EscrowDisputed { by: id(7), reason: "fake".into(), at: at() },
        EscrowResolved { journal_id: id(6), by: id(4), resolution: Resolution::Refund, settlement: s, at: at() },
    ]
}

fn escrow_index(e: &escrow::Event) -> usize {
    use escrow::Event::*;
    match e {
        EscrowOpened { .. } => 0,
        EscrowFunded { .. } => 1,
        EscrowReleaseScheduled { .. } => 2,
        EscrowReleaseSuspended { .. } => 3,
        EscrowReleased { .. } => 4,
        EscrowRefunded { .. } => 5,
        EscrowDisputed { .. } => 6,
        EscrowResolved { .. } => 7,
    }
}

fn wallet_samples() -> Vec<wallet::Event> {
    use wallet::Event::*;
    let reason = Reason::Withdrawal { withdrawal_id: id(10), card_mask: "**** 4242".into(), card_holder: None };
    vec![
        WalletOpened {
            wallet_id: id(11),
            owner: Owner::Platform { account: PlatformAccount::Revenue, shard: 3 },
            at: at(),
        },
        FundsDeposited {
            journal_id: id(6),
            amount: m(100),
            provider: Provider::Payme,
            provider_tx_id: "63f1c2".into(),
            at: at(),
        },
        FundsCredited { journal_id: id(6), amount: m(100), reason: Reason::Sale { order_id: id(5) }, at: at() },
        FundsDebited { journal_id: id(6), amount: m(100), reason: Reason::Promotion { listing_id: id(1) }, at: at() },
        FundsHeld { journal_id: id(6), hold_id: id(10), amount: m(100), reason, at: at() },
        HoldReleased { journal_id: id(6), hold_id: id(10), amount: m(100), at: at() },
        HoldCaptured { journal_id: id(6), hold_id: id(10), amount: m(100), at: at() },
        DepositHeld {
            journal_id: id(6),
            hold_id: id(8),
            amount: m(120),
            provider: Provider::Click,
            provider_tx_id: "2104417".into(),
            reason: Reason::Escrow { order_id: id(5) },
            at: at(),
        },
    ]
}

fn wallet_index(e: &wallet::Event) -> usize {
    use wallet::Event::*;
    match e {
        WalletOpened { .. } => 0,
        FundsDeposited { .. } => 1,
        FundsCredited { .. } => 2,
        FundsDebited { .. } => 3,
        FundsHeld { .. } => 4,
        HoldReleased { .. } => 5,
        HoldCaptured { .. } => 6,
        DepositHeld { .. } => 7,
    }
}

fn user_samples() -> Vec<user::Event> {
    use user::Event::*;
    let courier = Grant { plan: None, district: Some(District::Yunusobod) };
    vec![
        UserRegistered { user_id: id(7), phone: Phone::parse("+998901234567").unwrap(), at: at() },
        RoleGranted { role: bozor_domain::Role::Courier, grant: courier, by: id(4), at: at() },
        RoleRevoked { role: bozor_domain::Role::Courier, by: id(4), at: at() },
    ]
}

fn user_index(e: &user::Event) -> usize {
    use user::Event::*;
    match e {
        UserRegistered { .. } => 0,
        RoleGranted { .. } => 1,
        RoleRevoked { .. } => 2,
    }
}

fn payment_samples() -> Vec<payment::Event> {
    use payment::Event::*;
    vec![
        PaymentCreated {
            payment_id: id(12),
            provider: Provider::Payme,
            provider_tx_id: "5e730e8e0b852a417aa49ceb".into(),
            target: payment::Target::Order { order_id: id(5) },
            amount: m(120),
            provider_time_ms: 1_761_989_400_000,
            at: at(),
        },
        PaymentPerformed { journal_id: id(6), at: at() },
        PaymentCancelled { reason: payment::CancelReason::Refund, refunded: true, journal_id: Some(id(13)), at: at() },
    ]
}

fn payment_index(e: &payment::Event) -> usize {
    use payment::Event::*;
    match e {
        PaymentCreated { .. } => 0,
        PaymentPerformed { .. } => 1,
        PaymentCancelled { .. } => 2,
    }
}

fn dir(stream: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/events").join(stream)
}

/// Checks one aggregate's samples against the fixtures and every fixture against the decoder.
fn check<A: Aggregate>(samples: Vec<A::Event>, index: fn(&A::Event) -> usize, variants: usize)
where
    A::Event: Serialize + DeserializeOwned + PartialEq,
{
    let covered: BTreeSet<usize> = samples.iter().map(index).collect();
    assert_eq!(covered, (0..variants).collect(), "{}: every event type has a sample", A::STREAM_TYPE);
    let write = std::env::var("BOZOR_WRITE_FIXTURES").is_ok_and(|v| !v.is_empty());
    let folder = dir(A::STREAM_TYPE);
    for sample in &samples {
        let enc = encode(sample);
        let path = folder.join(format!("{}.v{}.json", enc.event_type, enc.event_version));
        if !path.exists() && write {
            std::fs::create_dir_all(&folder).unwrap();
            std::fs::write(&path, serde_json::to_string_pretty(&enc.payload).unwrap() + "\n").unwrap();
        }
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|_| panic!("no fixture {} (hint: BOZOR_WRITE_FIXTURES=1)", path.display()));
        let frozen: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            enc.payload,
            frozen,
            "{} changed shape: add version {} and an upcaster",
            enc.event_type,
            enc.event_version + 1
        );
    }
    // Every fixture, old versions included, still decodes into today's events.
    for entry in std::fs::read_dir(&folder).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let (event_type, rest) = name.split_once(".v").expect("<Type>.v<N>.json");
        let version: i32 = rest.trim_end_matches(".json").parse().expect("version number");
        let payload: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let decoded: Result<A::Event, _> = decode(event_type, version, payload);
        assert!(decoded.is_ok(), "{name} no longer decodes: {:?}", decoded.err());
    }
}

#[test]
fn listing_events_are_frozen() {
    check::<ListingAggregate>(listing_samples(), listing_index, 17);
}

#[test]
fn order_events_are_frozen() {
    check::<OrderAggregate>(order_samples(), order_index, 15);
}

#[test]
fn escrow_events_are_frozen() {
    check::<EscrowAggregate>(escrow_samples(), escrow_index, 8);
}

#[test]
fn user_events_are_frozen() {
    check::<UserAggregate>(user_samples(), user_index, 3);
}

#[test]
fn wallet_events_are_frozen() {
    check::<WalletAggregate>(wallet_samples(), wallet_index, 8);
}

#[test]
fn payment_events_are_frozen() {
    check::<PaymentAggregate>(payment_samples(), payment_index, 3);
}

/// WalletOpened v1 predates sharded platform accounts: it upcasts to shard 0, whose stream id
/// is the one v1 used, so old wallets keep their streams.
#[test]
fn wallet_opened_v1_upcasts_to_shard_zero_of_the_same_stream() {
    let v1 = std::fs::read_to_string(dir("wallet").join("WalletOpened.v1.json")).unwrap();
    let event: wallet::Event = decode("WalletOpened", 1, serde_json::from_str(&v1).unwrap()).unwrap();
    match event {
        wallet::Event::WalletOpened { owner: Owner::Platform { account, shard }, .. } => {
            assert_eq!((account, shard), (PlatformAccount::Revenue, 0));
            assert_eq!(
                wallet::platform_wallet_id(account, 0),
                Uuid::new_v5(&Uuid::from_u128(0x6f1d_2a1e_9b7c_4c55_8a31_0d7e_b0a5_7a11), b"platform:revenue"),
                "shard 0 keeps the unsharded stream id"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(bozor_domain::upcast::current_version("WalletOpened"), 2);
}

/// OrderAccepted v1 predates pick-up points: it upcasts to an order accepted with none.
#[test]
fn order_accepted_v1_upcasts_to_no_pickup_point() {
    let v1 = std::fs::read_to_string(dir("order").join("OrderAccepted.v1.json")).unwrap();
    let event: order::Event = decode("OrderAccepted", 1, serde_json::from_str(&v1).unwrap()).unwrap();
    assert!(matches!(event, order::Event::OrderAccepted { pickup: None, .. }), "{event:?}");
}
