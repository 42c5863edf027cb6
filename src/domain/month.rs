//! Calendar months in Asia/Shanghai: what `我的`, `结算` and the settlement run over.

use crate::clock::TZ;
use chrono::{Datelike, NaiveDate, TimeZone};
use std::fmt;

/// A calendar month. From [`Month::parse`] it lies within [`Month::YEARS`]; from
/// [`Month::of`] it is a real date's month. Either way its first day and the next
/// month's exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Month {
    year: i32,
    month: u32,
}

impl Month {
    /// The years a month typed by someone may name.
    pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

    pub fn of(date: NaiveDate) -> Month {
        Month { year: date.year(), month: date.month() }
    }

    /// `year`-`month`, if the year is within [`Month::YEARS`] and the month is 1–12.
    pub fn new(year: i32, month: u32) -> Option<Month> {
        (Self::YEARS.contains(&year) && (1..=12).contains(&month)).then_some(Month { year, month })
    }

    pub fn year(self) -> i32 {
        self.year
    }

    pub fn month(self) -> u32 {
        self.month
    }

    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).expect("a month's fields are checked when it is made")
    }

    pub fn next(self) -> Month {
        if self.month == 12 { Month { year: self.year + 1, month: 1 } } else { Month { month: self.month + 1, ..self } }
    }

    /// Parses `2023-07`, `2023/7`, `2023.07` or `2023年7月`: ASCII (or full-width, once
    /// folded) digits only, a four-digit year within [`Month::YEARS`].
    pub fn parse(text: &str) -> Option<Month> {
        let text = text.trim().trim_end_matches('月').replace('年', "-");
        let (y, m) = text.split_once(['-', '/', '.'])?;
        let (y, m) = (y.trim(), m.trim());
        let digits = |s: &str, len: std::ops::RangeInclusive<usize>| {
            len.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
        };
        if !digits(y, 4..=4) || !digits(m, 1..=2) {
            return None;
        }
        Month::new(y.parse().ok()?, m.parse().ok()?)
    }

    /// Unix milliseconds of midnight (Asia/Shanghai) starting this month, and the next.
    pub fn range_ms(self) -> (i64, i64) {
        let start = |m: Month| {
            TZ.from_local_datetime(&m.first_day().and_hms_opt(0, 0, 0).expect("midnight"))
                .single()
                .expect("Asia/Shanghai has no DST")
                .timestamp_millis()
        };
        (start(self), start(self.next()))
    }
}

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{:02}", self.year, self.month)
    }
}
