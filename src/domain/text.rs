//! Text as people type it on phones: full-width forms folded, bounded names and notes,
//! unified social credit codes checked (a name's identity is in `names`).

use std::fmt;

/// Folds full-width ASCII forms (U+FF01–U+FF5E) and the ideographic space to their
/// half-width equivalents: `Ｃ类　公司＝ＡＢＣ，１２` → `C类 公司=ABC,12`.
pub fn fold_width(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\u{3000}' => ' ',
            '\u{FF01}'..='\u{FF5E}' => char::from_u32(c as u32 - 0xFEE0).unwrap_or(c),
            _ => c,
        })
        .collect()
}

/// Why a piece of text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("不能为空")]
    Empty,
    #[error("太长（最多 {0} 个字）")]
    TooLong(usize),
    #[error("不能包含控制字符")]
    Control,
}

/// A non-empty, bounded piece of text as typed (widths kept), trimmed, with inner white
/// space collapsed and a stray space beside Chinese punctuation removed
/// (「（冯雨） 的合作协议」 → 「（冯雨）的合作协议」).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BoundedText(String);

impl BoundedText {
    pub fn parse(text: &str, max_chars: usize) -> Result<BoundedText, TextError> {
        if text.chars().any(|c| c.is_control() && c != '\n') {
            return Err(TextError::Control);
        }
        let words: Vec<&str> = text.split_whitespace().collect();
        let mut text = String::with_capacity(text.len());
        for (i, word) in words.iter().enumerate() {
            // Chinese punctuation carries its own spacing: a space beside it is stray.
            let mark = |c: Option<char>| c.is_some_and(|c| !c.is_ascii() && !c.is_alphanumeric());
            if i > 0 && !mark(text.chars().next_back()) && !mark(word.chars().next()) {
                text.push(' ');
            }
            text.push_str(word);
        }
        if text.is_empty() {
            return Err(TextError::Empty);
        }
        if text.chars().count() > max_chars {
            return Err(TextError::TooLong(max_chars));
        }
        Ok(BoundedText(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for BoundedText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A unified social credit code (统一社会信用代码, GB 32100-2015): 18 characters with a
/// check character, so that a typo is caught before it decides who claimed a client.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CreditCode(String);

const CODE_CHARS: &str = "0123456789ABCDEFGHJKLMNPQRTUWXY";
const CODE_WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];

impl CreditCode {
    pub fn parse(text: &str) -> Option<CreditCode> {
        let code: String = fold_width(text).trim().to_uppercase();
        let values: Vec<u32> = code.chars().map(|c| CODE_CHARS.find(c).map(|i| i as u32)).collect::<Option<_>>()?;
        if values.len() != 18 {
            return None;
        }
        let sum: u32 = values[..17].iter().zip(CODE_WEIGHTS).map(|(v, w)| v * w).sum();
        let check = (31 - sum % 31) % 31;
        (values[17] == check).then_some(CreditCode(code))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_width_forms_fold_to_half_width() {
        assert_eq!(fold_width("Ｃ类　公司＝ＡＢＣ，１２；＃３"), "C类 公司=ABC,12;#3");
        assert_eq!(fold_width("杭州（云帆）"), "杭州(云帆)");
    }

    #[test]
    fn bounded_text_is_trimmed_collapsed_and_limited() {
        assert_eq!(BoundedText::parse("  明天  下午 ", 10).unwrap().as_str(), "明天 下午");
        assert_eq!(BoundedText::parse("（冯雨） 的合作协议", 20).unwrap().as_str(), "（冯雨）的合作协议");
        assert_eq!(BoundedText::parse("ABC  Co 会议 10:30", 20).unwrap().as_str(), "ABC Co 会议 10:30");
        assert_eq!(
            BoundedText::parse("与#1重复，同一家公司（杭州）", 20).unwrap().as_str(),
            "与#1重复，同一家公司（杭州）"
        );
        assert_eq!(BoundedText::parse("   ", 10), Err(TextError::Empty));
        assert_eq!(BoundedText::parse("一二三", 2), Err(TextError::TooLong(2)));
        assert_eq!(BoundedText::parse("a\u{0}b", 10), Err(TextError::Control));
    }

    #[test]
    fn credit_codes_are_checked() {
        // Published codes, one typed in full-width characters.
        for code in ["91110000100003495Y", "91330100716105852F", "９１１１００００１００００３４９５ｙ"]
        {
            assert!(CreditCode::parse(code).is_some(), "{code}");
        }
        assert!(CreditCode::parse("91110000100003495X").is_none(), "wrong check character");
        assert!(CreditCode::parse("9111000010000349").is_none(), "too short");
        assert!(CreditCode::parse("91110000100003495I").is_none(), "I is not used");
    }
}
