//! Money as integer fen (分). Never floats: reward arithmetic must be exact.

use serde::{Deserialize, Deserializer};
use std::fmt;

/// An amount of money in fen (1 yuan = 100 fen).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Fen(pub i64);

/// Why a yuan amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("格式不对（应为数字，最多两位小数，例如 12 或 12.50）")]
    Format,
    #[error("太大")]
    TooLarge,
}

/// Largest accepted amount: one trillion yuan, far above any real deal, far below overflow.
const MAX_FEN: i64 = 100_000_000_000_000;

impl Fen {
    /// Parses a yuan amount such as `12`, `12.5`, `12.50` or `1,200.00` (no sign).
    pub fn parse_yuan(text: &str) -> Result<Fen, MoneyError> {
        parse_decimal(text, 100)
    }

    /// Parses an amount in units of ten thousand yuan (`12.5` for 12.5万), exact to the fen.
    pub fn parse_wan(text: &str) -> Result<Fen, MoneyError> {
        parse_decimal(text, 1_000_000)
    }

    pub fn from_yuan(yuan: i64) -> Fen {
        Fen(yuan * 100)
    }
}

/// A decimal number of units worth `fen_per_unit` (a power of ten) each, with no more
/// decimals than a fen can hold, within [`MAX_FEN`].
fn parse_decimal(text: &str, fen_per_unit: i64) -> Result<Fen, MoneyError> {
    let text: String = text.trim().chars().filter(|c| *c != ',').collect();
    let (whole, frac) = text.split_once('.').unwrap_or((&text, ""));
    let digits = |s: &str| s.chars().all(|c| c.is_ascii_digit());
    let max_frac = fen_per_unit.ilog10() as usize;
    if whole.is_empty() || !digits(whole) || !digits(frac) || frac.len() > max_frac {
        return Err(MoneyError::Format);
    }
    if whole.len() > 13 {
        return Err(MoneyError::TooLarge);
    }
    let whole: i64 = whole.parse().map_err(|_| MoneyError::Format)?;
    let frac: i64 = format!("{frac:0<max_frac$}").parse().map_err(|_| MoneyError::Format)?;
    let fen = whole.checked_mul(fen_per_unit).and_then(|w| w.checked_add(frac)).ok_or(MoneyError::TooLarge)?;
    if fen > MAX_FEN {
        return Err(MoneyError::TooLarge);
    }
    Ok(Fen(fen))
}

impl fmt::Display for Fen {
    /// Yuan with two decimals: `1234.50`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", abs / 100, abs % 100)
    }
}

impl Fen {
    /// Yuan with thousands separators and two decimals: `500,000.00`.
    pub fn grouped(self) -> String {
        let plain = self.to_string();
        let (sign, digits) = plain.strip_prefix('-').map_or(("", plain.as_str()), |d| ("-", d));
        let (whole, cents) = digits.split_once('.').unwrap_or((digits, "00"));
        let mut out = String::new();
        for (i, c) in whole.chars().enumerate() {
            if i > 0 && (whole.len() - i) % 3 == 0 {
                out.push(',');
            }
            out.push(c);
        }
        format!("{sign}{out}.{cents}")
    }
}

impl std::ops::Add for Fen {
    type Output = Fen;
    fn add(self, rhs: Fen) -> Fen {
        Fen(self.0 + rhs.0)
    }
}

impl std::ops::Sub for Fen {
    type Output = Fen;
    fn sub(self, rhs: Fen) -> Fen {
        Fen(self.0 - rhs.0)
    }
}

impl std::iter::Sum for Fen {
    fn sum<I: Iterator<Item = Fen>>(iter: I) -> Fen {
        Fen(iter.map(|f| f.0).sum())
    }
}

/// Serialised as yuan text (`"12.50"`), which deserialises back exactly.
impl serde::Serialize for Fen {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Configuration amounts are written in yuan, as a TOML integer, float or string.
impl<'de> Deserialize<'de> for Fen {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = number_text(deserializer)?;
        Fen::parse_yuan(&text).map_err(|e| serde::de::Error::custom(format!("{text}: {e}")))
    }
}

/// A TOML integer, float or string, as text.
fn number_text<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Raw {
        Int(i64),
        Float(f64),
        Text(String),
    }
    Ok(match Raw::deserialize(deserializer)? {
        Raw::Int(i) => i.to_string(),
        // Shortest round-trip representation: 0.1 prints as "0.1", so no binary noise.
        Raw::Float(f) => f.to_string(),
        Raw::Text(s) => s,
    })
}

/// A percentage with up to two decimals, held in basis points (1.5 % = 150).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Percent(pub i64);

impl Percent {
    /// `amount × percent`, rounded half up to the fen.
    pub fn of(self, amount: Fen) -> Fen {
        // Amounts and percentages are non-negative, so adding half before dividing rounds half up.
        Fen(((i128::from(amount.0) * i128::from(self.0) + 5_000) / 10_000) as i64)
    }
}

impl fmt::Display for Percent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = format!("{}.{:02}", self.0 / 100, self.0 % 100);
        write!(f, "{}%", text.trim_end_matches('0').trim_end_matches('.'))
    }
}

impl<'de> Deserialize<'de> for Percent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // Same grammar as yuan: a non-negative number with at most two decimals; as
        // text also with the `%` it is serialised with (stored rule sets read back).
        let text = number_text(deserializer)?;
        let number = text.trim().strip_suffix('%').unwrap_or(&text);
        let fen = Fen::parse_yuan(number).map_err(|e| serde::de::Error::custom(format!("{text}: {e}")))?;
        if fen.0 > 10_000 {
            return Err(serde::de::Error::custom("百分比不能超过 100"));
        }
        Ok(Percent(fen.0))
    }
}

impl serde::Serialize for Percent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_yuan_into_exact_fen() {
        assert_eq!(Fen::parse_yuan("12"), Ok(Fen(1200)));
        assert_eq!(Fen::parse_yuan("12.5"), Ok(Fen(1250)));
        assert_eq!(Fen::parse_yuan(" 1,200.05 "), Ok(Fen(120005)));
        assert_eq!(Fen::parse_yuan("0.1"), Ok(Fen(10)));
    }

    #[test]
    fn refuses_what_is_not_an_amount() {
        for bad in ["", "-1", "1.234", "abc", "1e3", ".5", "1.2.3", "１２"] {
            assert_eq!(Fen::parse_yuan(bad), Err(MoneyError::Format), "{bad}");
        }
        assert_eq!(Fen::parse_yuan("99999999999999"), Err(MoneyError::TooLarge));
    }

    #[test]
    fn ten_thousands_are_exact_and_bounded_like_yuan() {
        assert_eq!(Fen::parse_wan("12.5"), Ok(Fen(12_500_000)));
        assert_eq!(Fen::parse_wan("1.2345"), Ok(Fen(1_234_500)));
        assert_eq!(Fen::parse_wan("0.000001"), Ok(Fen(1)));
        assert_eq!(Fen::parse_wan("0.0000001"), Err(MoneyError::Format));
        assert_eq!(Fen::parse_wan("100000000"), Ok(Fen(MAX_FEN)));
        // Past the yuan limit once multiplied, and past i64 altogether.
        assert_eq!(Fen::parse_wan("100000001"), Err(MoneyError::TooLarge));
        assert_eq!(Fen::parse_wan("9999999999999"), Err(MoneyError::TooLarge));
    }

    #[test]
    fn percentages_round_half_up_to_the_fen() {
        assert_eq!(Percent(150).of(Fen(1_000_000)), Fen(15_000));
        assert_eq!(Percent(150).of(Fen(333)), Fen(5)); // 4.995 → 5
        assert_eq!(Percent(1).of(Fen(4_999)), Fen(0)); // 0.4999 → 0
        assert_eq!(Percent(150).to_string(), "1.5%");
        assert_eq!(Percent(200).to_string(), "2%");
        for p in [Percent(150), Percent(200), Percent(5), Percent(0)] {
            let text = serde_json::to_string(&p).unwrap();
            assert_eq!(serde_json::from_str::<Percent>(&text).unwrap(), p, "{text} reads back");
        }
    }

    #[test]
    fn displays_as_yuan_with_two_decimals() {
        assert_eq!(Fen(123450).to_string(), "1234.50");
        assert_eq!(Fen(7).to_string(), "0.07");
        assert_eq!(Fen(-250).to_string(), "-2.50");
    }
}
