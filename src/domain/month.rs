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

    pub fn previous(self) -> Month {
        if self.month == 1 { Month { year: self.year - 1, month: 12 } } else { Month { month: self.month - 1, ..self } }
    }

    /// A month as people say it on `today`: `本月`, `上月`, `11月` (a bare month: the
    /// latest such month up to this one), or any form [`Month::parse`] reads.
    pub fn parse_spoken(text: &str, today: NaiveDate) -> Option<Month> {
        let this = Month::of(today);
        match text.trim() {
            "本月" | "这个月" | "当月" => return Some(this),
            "上月" | "上个月" => return Some(this.previous()),
            _ => {}
        }
        let bare = text
            .trim()
            .strip_suffix('月')
            .filter(|m| (1..=2).contains(&m.len()) && m.bytes().all(|b| b.is_ascii_digit()));
        match bare.and_then(|m| m.parse::<u32>().ok()) {
            Some(m) => {
                let month = Month::new(this.year, m)?;
                Some(if month > this { Month::new(this.year - 1, m)? } else { month })
            }
            None => Month::parse(text),
        }
    }

    /// How to name the month to someone on `today`: `本月`, `上月`, `11月` in this year,
    /// `2025年11月` otherwise.
    pub fn spoken(self, today: NaiveDate) -> String {
        let this = Month::of(today);
        if self == this {
            "本月".into()
        } else if self == this.previous() {
            "上月".into()
        } else if self.year == this.year {
            format!("{}月", self.month)
        } else {
            format!("{}年{}月", self.year, self.month)
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn months_are_said_relative_to_today() {
        let today = day(2026, 1, 15);
        let said = |y, m| Month::new(y, m).unwrap().spoken(today);
        assert_eq!(
            [said(2026, 1), said(2025, 12), said(2025, 11), said(2026, 3)],
            ["本月", "上月", "2025年11月", "3月"]
        );
        let june = day(2026, 6, 2);
        assert_eq!(Month::new(2026, 4).unwrap().spoken(june), "4月");
    }

    #[test]
    fn spoken_months_are_read_relative_to_today() {
        let today = day(2026, 1, 15);
        let read = |text: &str| Month::parse_spoken(text, today).map(|m| m.to_string());
        assert_eq!(read("本月").as_deref(), Some("2026-01"));
        assert_eq!(read("上月").as_deref(), Some("2025-12"));
        assert_eq!(read("11月").as_deref(), Some("2025-11"), "the latest November so far");
        assert_eq!(read("1月").as_deref(), Some("2026-01"));
        assert_eq!(read("2025-07").as_deref(), Some("2025-07"));
        assert_eq!(read("13月"), None);
        assert_eq!(read("下月"), None);
    }
}
