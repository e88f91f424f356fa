//! The shape every aggregate shares, and how its events are stored as (type, version, payload).

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::context::Context;
use crate::error::DomainError;
use crate::upcast;

/// An event-sourced aggregate: pure `decide` and `evolve` over a serializable state.
pub trait Aggregate {
    /// The `stream_type` column and the Kafka topic suffix (`bozor.<stream_type>`).
    const STREAM_TYPE: &'static str;
    /// Version of the serialized `State`; snapshots of another version are ignored.
    const STATE_SCHEMA: i32;
    /// The state folded from the stream's events.
    type State: Serialize + DeserializeOwned + Clone + std::fmt::Debug;
    /// The aggregate's events, an enum serialized as `{"type": ..., "data": ...}`.
    type Event: Serialize + DeserializeOwned + Clone + std::fmt::Debug;
    /// The aggregate's commands.
    type Command;

    /// The state of a stream that has no events.
    fn initial() -> Self::State;
    /// Applies one event. Never fails: an impossible history is a bug and panics.
    fn evolve(state: Self::State, event: &Self::Event) -> Self::State;
    /// Decides which events a command produces, or why it is refused.
    fn decide(state: &Self::State, command: &Self::Command, ctx: &Context) -> Result<Vec<Self::Event>, DomainError>;
    /// The stream's version: 0 for a stream that does not exist yet.
    fn fold<'a>(events: impl IntoIterator<Item = &'a Self::Event>) -> Self::State
    where
        Self::Event: 'a,
    {
        events.into_iter().fold(Self::initial(), Self::evolve)
    }
}

/// An event as stored: its type name, schema version and JSON payload.
#[derive(Debug, Clone, PartialEq)]
pub struct EncodedEvent {
    /// Past-tense type name, e.g. `ListingApproved`.
    pub event_type: String,
    /// Schema version of `payload`.
    pub event_version: i32,
    /// The event's fields.
    pub payload: Value,
}

/// Why a stored event cannot be turned back into a domain event.
#[derive(Debug, thiserror::Error)]
#[error("cannot decode {event_type} v{event_version}: {source}")]
pub struct DecodeError {
    /// The stored type name.
    pub event_type: String,
    /// The stored version.
    pub event_version: i32,
    /// What serde said.
    #[source]
    pub source: serde_json::Error,
}

/// Splits a domain event into type, current version and payload.
pub fn encode<E: Serialize>(event: &E) -> EncodedEvent {
    let tagged = serde_json::to_value(event).expect("domain events always serialize");
    let Value::Object(mut map) = tagged else { panic!("events are adjacently tagged enums") };
    let event_type = match map.remove("type") {
        Some(Value::String(s)) => s,
        other => panic!("event without a type tag: {other:?}"),
    };
    let payload = map.remove("data").unwrap_or(Value::Object(Default::default()));
    let event_version = upcast::current_version(&event_type);
    EncodedEvent { event_type, event_version, payload }
}

/// Turns a stored event back into a domain event, upcasting old versions first.
/// Fails when the payload does not match the event type's current shape.
pub fn decode<E: DeserializeOwned>(event_type: &str, event_version: i32, payload: Value) -> Result<E, DecodeError> {
    let (_, payload) = upcast::upcast(event_type, event_version, payload);
    let tagged = serde_json::json!({ "type": event_type, "data": payload });
    serde_json::from_value(tagged).map_err(|source| DecodeError {
        event_type: event_type.to_owned(),
        event_version,
        source,
    })
}
