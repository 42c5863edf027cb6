//! Time as the service sees it. Production uses the system clock; tests use a clock
//! they can set, so that windows, delays and schedules are tested without sleeping.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::sync::atomic::{AtomicI64, Ordering};

/// The programme's time zone: every date and time people see or type is Asia/Shanghai.
pub const TZ: Tz = chrono_tz::Asia::Shanghai;

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> DateTime<Utc>;

    fn now_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }

    fn now_local(&self) -> DateTime<Tz> {
        self.now().with_timezone(&TZ)
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct ManualClock {
    ms: AtomicI64,
}

impl ManualClock {
    pub fn new(at: DateTime<Utc>) -> Self {
        Self { ms: AtomicI64::new(at.timestamp_millis()) }
    }

    pub fn set(&self, at: DateTime<Utc>) {
        self.ms.store(at.timestamp_millis(), Ordering::SeqCst);
    }

    pub fn advance(&self, by: chrono::Duration) {
        self.ms.fetch_add(by.num_milliseconds(), Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.ms.load(Ordering::SeqCst)).expect("clock within range")
    }
}

/// Formats Unix milliseconds as local `YYYY-MM-DD HH:MM`.
pub fn format_ms(ms: i64) -> String {
    DateTime::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&TZ).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// Real time shifted by an adjustable offset: time flows, and tests can jump ahead.
#[derive(Debug, Default)]
pub struct ShiftedClock {
    offset_ms: AtomicI64,
}

impl ShiftedClock {
    pub fn advance(&self, by: chrono::Duration) {
        self.offset_ms.fetch_add(by.num_milliseconds(), Ordering::SeqCst);
    }
}

impl Clock for ShiftedClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::milliseconds(self.offset_ms.load(Ordering::SeqCst))
    }
}
