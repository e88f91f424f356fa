//! Where "now" comes from. The domain never reads a clock; the scheduler asks one of these, so
//! tests move time instead of sleeping: in process with `ManualClock`, and for the binary with
//! `BOZOR_TEST_CLOCK_OFFSET_SECONDS`, which production refuses.

use std::sync::Mutex;

use chrono::{DateTime, Duration, Utc};

/// A source of the current time.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The system clock, moved by a fixed offset (zero outside tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock {
    pub offset: Duration,
}

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + self.offset
    }
}

/// A clock tests set and move by hand.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock standing at `now`.
    pub fn at(now: DateTime<Utc>) -> ManualClock {
        ManualClock { now: Mutex::new(now) }
    }

    /// Moves it forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock().expect("the clock's lock is never poisoned: nothing panics holding it");
        *now += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock().expect("the clock's lock is never poisoned: nothing panics holding it")
    }
}
