//! Schema evolution of stored events: pure JSON-to-JSON upcasters.
//!
//! A shipped event is never changed. When its shape must change, its version goes up by one
//! and an upcaster from the old version is added to `UPCASTERS`, with a frozen fixture of the
//! old payload under `domain/tests/fixtures/events/`. Loading applies the chain in order.

use serde_json::Value;

/// Turns the payload of `event_type` at `from_version` into version `from_version + 1`.
#[derive(Clone, Copy)]
pub struct Upcaster {
    /// The event type it applies to.
    pub event_type: &'static str,
    /// The version it reads; it writes `from_version + 1`.
    pub from_version: i32,
    /// The pure transformation.
    pub apply: fn(Value) -> Value,
}

/// Every upcaster of the shipped events.
pub const UPCASTERS: &[Upcaster] = &[
    Upcaster { event_type: "WalletOpened", from_version: 1, apply: wallet_opened_v1_to_v2 },
    Upcaster { event_type: "OrderAccepted", from_version: 1, apply: order_accepted_v1_to_v2 },
];

/// OrderAccepted v2: the seller says where the courier collects the goods; v1 said nowhere.
fn order_accepted_v1_to_v2(mut payload: Value) -> Value {
    if let Some(map) = payload.as_object_mut() {
        map.entry("pickup").or_insert(Value::Null);
    }
    payload
}

/// WalletOpened v2: platform accounts became sharded (`wallet::PLATFORM_SHARDS`); a v1 platform
/// wallet is shard 0, whose stream id is the v1 one.
fn wallet_opened_v1_to_v2(mut payload: Value) -> Value {
    if let Some(owner) = payload.get_mut("owner").and_then(Value::as_object_mut) {
        if owner.get("owner").and_then(Value::as_str) == Some("platform") && !owner.contains_key("shard") {
            owner.insert("shard".into(), Value::from(0));
        }
    }
    payload
}

/// The version new events of `event_type` are written with.
pub fn current_version(event_type: &str) -> i32 {
    current_version_in(UPCASTERS, event_type)
}

/// Brings a stored payload to the current version of its type.
pub fn upcast(event_type: &str, version: i32, payload: Value) -> (i32, Value) {
    upcast_in(UPCASTERS, event_type, version, payload)
}

/// `current_version` over a given table (tests use their own).
pub fn current_version_in(table: &[Upcaster], event_type: &str) -> i32 {
    1 + table.iter().filter(|u| u.event_type == event_type).count() as i32
}

/// `upcast` over a given table. The loop is bounded by the table's length.
pub fn upcast_in(table: &[Upcaster], event_type: &str, mut version: i32, mut payload: Value) -> (i32, Value) {
    for _ in 0..=table.len() {
        match table.iter().find(|u| u.event_type == event_type && u.from_version == version) {
            Some(u) => {
                payload = (u.apply)(payload);
                version += 1;
            }
            None => break,
        }
    }
    (version, payload)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn v1_to_v2(mut p: Value) -> Value {
        // v1 carried the price in whole sum as `price_sum`; v2 carries tiyin as `price`.
        let sum = p["price_sum"].as_i64().expect("fixture has price_sum");
        let obj = p.as_object_mut().expect("payload is an object");
        obj.remove("price_sum");
        obj.insert("price".into(), json!(sum * 100));
        p
    }

    fn v2_to_v3(mut p: Value) -> Value {
        p.as_object_mut().expect("payload is an object").insert("images".into(), json!([]));
        p
    }

    const TABLE: &[Upcaster] = &[
        Upcaster { event_type: "Demo", from_version: 2, apply: v2_to_v3 },
        Upcaster { event_type: "Demo", from_version: 1, apply: v1_to_v2 },
    ];

    #[test]
    fn chain_applies_in_version_order_whatever_the_table_order() {
        let (v, p) = upcast_in(TABLE, "Demo", 1, json!({"price_sum": 12, "title": "x"}));
        assert_eq!(v, 3);
        assert_eq!(p, json!({"price": 1200, "title": "x", "images": []}));
        assert_eq!(current_version_in(TABLE, "Demo"), 3);
    }

    #[test]
    fn current_payloads_and_other_types_pass_unchanged() {
        let p = json!({"price": 5});
        assert_eq!(upcast_in(TABLE, "Demo", 3, p.clone()), (3, p.clone()));
        assert_eq!(upcast_in(TABLE, "Other", 1, p.clone()), (1, p));
    }
}
