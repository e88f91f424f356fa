//! The per-stream hash chain: `hash = sha256(prev_hash || canonical bytes of the event)`.
//!
//! The canonical bytes are JSON with object keys sorted at every level and no white space, of
//! the fields an auditor can read back from the events table. jsonb keeps numbers and strings
//! exactly, so re-encoding what PostgreSQL returns gives the same bytes and the same hash.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The hash before a stream's first event.
pub const GENESIS: [u8; 32] = [0; 32];

/// What the hash of one event covers.
pub struct HashInput<'a> {
    pub stream_id: Uuid,
    pub stream_type: &'a str,
    pub version: i64,
    pub event_id: Uuid,
    pub event_type: &'a str,
    pub event_version: i32,
    pub payload: &'a Value,
    pub metadata: &'a Value,
    pub recorded_at: DateTime<Utc>,
}

/// The chained hash of one event.
pub fn event_hash(prev: &[u8; 32], e: &HashInput<'_>) -> [u8; 32] {
    let doc = serde_json::json!({
        "stream_id": e.stream_id.to_string(),
        "stream_type": e.stream_type,
        "version": e.version,
        "event_id": e.event_id.to_string(),
        "event_type": e.event_type,
        "event_version": e.event_version,
        "payload": e.payload,
        "metadata": e.metadata,
        "recorded_at": e.recorded_at.to_rfc3339_opts(SecondsFormat::Micros, true),
    });
    let mut bytes = Vec::with_capacity(512);
    canonical_json(&doc, &mut bytes);
    let mut h = Sha256::new();
    h.update(prev);
    h.update(&bytes);
    h.finalize().into()
}

/// Writes `v` as JSON with sorted keys and no white space, whatever order its maps keep.
pub fn canonical_json(v: &Value, out: &mut Vec<u8>) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push(b'{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                serde_json::to_writer(&mut *out, k).expect("writing to a Vec never fails");
                out.push(b':');
                canonical_json(&map[k], out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                canonical_json(item, out);
            }
            out.push(b']');
        }
        scalar => serde_json::to_writer(&mut *out, scalar).expect("writing to a Vec never fails"),
    }
}

/// Truncates a time to the microsecond, PostgreSQL's precision, so what is hashed is what is stored.
pub fn to_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(t.timestamp_micros()).expect("a valid time stays valid when truncated")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn canonical_json_sorts_keys_at_every_level() {
        let mut out = vec![];
        canonical_json(&json!({"b": 1, "a": {"d": [1, {"z": 0, "y": "é"}], "c": null}}), &mut out);
        assert_eq!(String::from_utf8(out).unwrap(), r#"{"a":{"c":null,"d":[1,{"y":"é","z":0}]},"b":1}"#);
    }

    #[test]
    fn hash_depends_on_prev_and_every_field() {
        let (p, m) = (json!({"x": 1}), json!({}));
        let t = to_micros(Utc::now());
        let input = |version, payload| HashInput {
            stream_id: Uuid::nil(),
            stream_type: "wallet",
            version,
            event_id: Uuid::nil(),
            event_type: "FundsCredited",
            event_version: 1,
            payload,
            metadata: &m,
            recorded_at: t,
        };
        let h1 = event_hash(&GENESIS, &input(1, &p));
        assert_eq!(h1, event_hash(&GENESIS, &input(1, &p)));
        assert_ne!(h1, event_hash(&[1; 32], &input(1, &p)));
        assert_ne!(h1, event_hash(&GENESIS, &input(2, &p)));
        assert_ne!(h1, event_hash(&GENESIS, &input(1, &json!({"x": 2}))));
    }
}
