//! The identity of a claimed name (a client, a channel, a placed person): the core name
//! that first claim wins compares, and the look-alike test that flags near misses.
//!
//! The core name is computed with Unicode's own tools, not by hand: compatibility
//! normalisation (NFKC: full width, ligatures, mathematical and Roman-numeral letters),
//! combining marks and format characters (zero-width, direction marks, BOM, soft
//! hyphen) removed, white space and punctuation of either width removed, traditional
//! characters mapped to simplified (OpenCC's table), confusable letters folded (UTS #39
//! skeleton: Cyrillic А, Greek Β), and a trailing legal form (有限公司, 集团, (中国), Co.,
//! Ltd.) dropped.

use ferrous_opencc::OpenCC;
use ferrous_opencc::config::BuiltinConfig;
use std::sync::LazyLock;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;
use unicode_properties::{GeneralCategoryGroup, UnicodeGeneralCategory};

/// Traditional → simplified Chinese, OpenCC's character and phrase tables.
static T2S: LazyLock<Option<OpenCC>> = LazyLock::new(|| match OpenCC::from_config(BuiltinConfig::T2s) {
    Ok(cc) => Some(cc),
    Err(e) => {
        tracing::error!(error = %e, "OpenCC's traditional-to-simplified table failed to load");
        None
    }
});

/// Legal forms dropped from the end of a name, longest first (compared after the
/// rest of normalisation, so in simplified characters and upper case).
const LEGAL_FORMS: &[&str] = &[
    "股份有限公司",
    "有限责任公司",
    "集团有限公司",
    "有限公司",
    "集团公司",
    "总公司",
    "公司",
    "集团",
    "COLTD",
    "LIMITED",
    "LTD",
    "INC",
    "CORP",
    "GMBH",
];

/// Legal forms that mean the same company form, and the one they are written as.
const LEGAL_SYNONYMS: &[(&str, &str)] = &[("有限责任公司", "有限公司"), ("股份有限公司", "有限公司")];

/// A region in brackets at the end, as in 某某(中国)有限公司.
const BRACKETED_REGIONS: &[&str] = &["中国", "中国区", "上海", "北京", "亚太"];

/// The core name: what first claim wins compares.
pub fn core_name(name: &str) -> String {
    // Legal forms that say the same are one form wherever they stand (某某有限责任公司
    // (9号) and 某某有限公司(9号)); at the end they are dropped below.
    let simplified = LEGAL_SYNONYMS.iter().fold(simplify(&cleaned(name)), |s, (from, to)| s.replace(from, to));
    // Tokens: (character, whether it is punctuation); white space is gone already.
    let mut tokens: Vec<(char, bool)> =
        simplified.chars().map(|c| (c, c.general_category_group() == GeneralCategoryGroup::Punctuation)).collect();
    strip_legal_form(&mut tokens);
    let letters: String = tokens.iter().filter(|(_, punct)| !punct).map(|(c, _)| *c).collect();
    // Upper case first, so that the skeleton (which keeps case) sees one case: Latin
    // and look-alike letters then fold together (Cyrillic А, Greek Β → A, B).
    let upper = letters.to_uppercase();
    let folded: String = unicode_security::skeleton(&upper).collect();
    let folded: String = folded.nfkc().collect();
    if folded.is_empty() { upper } else { folded }
}

/// NFKC with combining marks, format characters, white space and control characters
/// removed.
fn cleaned(name: &str) -> String {
    let decomposed: String =
        name.nfkd().filter(|c| !is_combining_mark(*c) && !c.is_whitespace() && !c.is_control()).collect();
    decomposed.nfkc().filter(|c| c.general_category_group() != GeneralCategoryGroup::Other).collect()
}

fn simplify(text: &str) -> String {
    match T2S.as_ref() {
        Some(cc) => cc.convert(text),
        None => text.to_owned(),
    }
}

/// Drops trailing punctuation and legal forms (and a bracketed region before them),
/// unless nothing would be left.
fn strip_legal_form(tokens: &mut Vec<(char, bool)>) {
    let ends_with = |tokens: &[(char, bool)], suffix: &str| -> Option<usize> {
        let n = suffix.chars().count();
        let letters: Vec<usize> = tokens.iter().enumerate().filter(|(_, (_, p))| !p).map(|(i, _)| i).collect();
        if letters.len() <= n {
            return None;
        }
        let tail = &letters[letters.len() - n..];
        let matches = tail.iter().zip(suffix.chars()).all(|(&i, s)| tokens[i].0.to_uppercase().eq(s.to_uppercase()));
        matches.then_some(tail[0])
    };
    loop {
        while tokens.last().is_some_and(|(_, punct)| *punct) {
            tokens.pop();
        }
        let letters: String = tokens.iter().filter(|(_, p)| !p).flat_map(|(c, _)| c.to_uppercase()).collect();
        if LEGAL_FORMS.contains(&letters.as_str()) {
            return;
        }
        if let Some(start) = LEGAL_FORMS.iter().find_map(|f| ends_with(tokens, f)) {
            tokens.truncate(start);
            continue;
        }
        // A bracketed region: the letters are preceded by an opening bracket.
        let region = BRACKETED_REGIONS.iter().find_map(|r| ends_with(tokens, r)).filter(|&start| {
            start > 0
                && tokens[start - 1].1
                && tokens[start - 1].0.general_category() == unicode_properties::GeneralCategory::OpenPunctuation
        });
        match region {
            Some(start) => tokens.truncate(start - 1),
            None => return,
        }
    }
}

/// How many characters of a core name the containment index keys by (migration 0106).
pub const PART_CHARS: usize = 8;

/// Every run of 2 to [`PART_CHARS`] characters of a core name, each once: a key
/// contains a name of two or more characters only if the key's runs include the
/// name's [`head`].
pub fn parts(key: &str) -> Vec<String> {
    let chars: Vec<char> = key.chars().collect();
    let mut out: Vec<String> = Vec::new();
    for start in 0..chars.len() {
        for end in start + 2..=(start + PART_CHARS).min(chars.len()) {
            let part: String = chars[start..end].iter().collect();
            if !out.contains(&part) {
                out.push(part);
            }
        }
    }
    out
}

/// The runs of a core name from each of its characters, of [`PART_CHARS`] characters
/// (fewer at its end, but at least two), each once: what the containment index keeps.
/// A name contains a key of two or more characters only if one of its windows starts
/// with the key's [`head`].
pub fn windows(key: &str) -> Vec<String> {
    let chars: Vec<char> = key.chars().collect();
    let mut out: Vec<String> = Vec::new();
    for start in 0..chars.len().saturating_sub(1) {
        let window: String = chars[start..(start + PART_CHARS).min(chars.len())].iter().collect();
        if !out.contains(&window) {
            out.push(window);
        }
    }
    out
}

/// The first [`PART_CHARS`] characters of a core name; None for a name of one
/// character, which is never a look-alike.
pub fn head(key: &str) -> Option<String> {
    (key.chars().nth(1).is_some()).then(|| key.chars().take(PART_CHARS).collect())
}

/// The least text greater than every text starting with `prefix`: with it, "starts
/// with" is a range of an index. (U+10FFFF, a noncharacter, is never in a core name:
/// [`core_name`] drops every character of category Other.)
pub fn prefix_end(prefix: &str) -> String {
    format!("{prefix}\u{10FFFF}")
}

/// Whether two core names look alike without being the same: one contains the other,
/// or they differ in one character (inserted, removed or replaced). Names of one
/// character are never look-alikes of anything.
pub fn looks_alike(a: &str, b: &str) -> bool {
    if a == b {
        return false;
    }
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let (short, long) = if a.len() <= b.len() { (&a, &b) } else { (&b, &a) };
    if short.len() < 2 {
        return false;
    }
    let contains = long.windows(short.len()).any(|w| w == short.as_slice());
    contains || one_edit_apart(short, long)
}

/// A core name and each of its one-character deletions: two names one edit apart share
/// one of these (the look-alike index). Names of one character have none.
pub fn deletions(key: &str) -> Vec<String> {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < 2 {
        return Vec::new();
    }
    let mut out = vec![key.to_owned()];
    for i in 0..chars.len() {
        let variant: String = chars[..i].iter().chain(&chars[i + 1..]).collect();
        if !out.contains(&variant) {
            out.push(variant);
        }
    }
    out
}

/// Whether `short` becomes `long` by one insertion or one replacement.
fn one_edit_apart(short: &[char], long: &[char]) -> bool {
    match long.len() - short.len() {
        0 => short.iter().zip(long).filter(|(x, y)| x != y).count() == 1,
        1 => {
            let prefix = short.iter().zip(long).take_while(|(x, y)| x == y).count();
            short[prefix..] == long[prefix + 1..]
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "杭州云帆网络发展有限公司";

    /// Variants of one company name that any auditor would call the same company.
    #[test]
    fn variants_of_one_name_share_its_core() {
        let same = [
            "杭州云帆\u{200D}网络发展有限公司",
            "杭州云帆\u{200B}网络发展有限公司",
            "杭州云帆\u{200C}网络发展有限公司",
            "杭州云帆\u{2060}网络发展有限公司",
            "\u{FEFF}杭州云帆网络发展有限公司",
            "杭州云\u{00AD}帆网络发展有限公司",
            "\u{200E}杭州云帆网络发展有限公司\u{200F}",
            "\u{202E}杭州云帆网络发展有限公司\u{202C}",
            "\u{2066}杭州云帆网络发展有限公司\u{2069}",
            "杭州云帆网络发展有限公司.",
            "杭州云帆网络发展有限公司．",
            "杭州云帆网络发展有限公司·",
            "杭州云帆 网络发展有限公司",
            "杭州云帆\u{3000}网络发展有限公司",
            "杭州云帆\u{00A0}网络发展有限公司",
            "杭州云帆网络发展有限责任公司",
            "杭州云帆网络发展股份有限公司",
            "杭州云帆网络发展",
            "杭州雲帆網絡發展有限公司",
            "杭州云帆网络发展（中国）有限公司",
            "杭州云帆网络发展【中国】有限公司",
            "杭州云帆网络发展〔中国〕有限公司",
            "ＨＡＮＧＺＨＯＵ",
        ];
        for v in &same[..same.len() - 1] {
            assert_eq!(core_name(v), core_name(BASE), "{v:?}");
        }
        assert_eq!(core_name(same[same.len() - 1]), core_name("hangzhou"));
    }

    #[test]
    fn letters_that_look_alike_fold_together() {
        let abc = core_name("ABC科技有限公司");
        for v in [
            "abc科技有限公司",
            "ＡＢＣ科技有限公司",
            "\u{0410}BC科技有限公司",  // Cyrillic А
            "A\u{0392}C科技有限公司",  // Greek Β
            "AB\u{216D}科技有限公司",  // Roman numeral Ⅽ
            "𝐀𝐁𝐂科技有限公司",         // mathematical bold
            "A\u{0301}BC科技有限公司", // a combining accent
            "ÁBC科技有限公司",         // precomposed
            "ABC科技 Co., Ltd.",
            "ABC科技有限公司(中国)",
        ] {
            assert_eq!(core_name(v), abc, "{v:?}");
        }
    }

    #[test]
    fn traditional_characters_are_simplified() {
        assert_eq!(core_name("上海國際貿易有限公司"), core_name("上海国际贸易有限公司"));
        assert_eq!(core_name("深圳電子科技"), core_name("深圳电子科技"));
        assert_eq!(core_name("星河9號"), core_name("星河9号"));
        assert_eq!(core_name("（杭州）云帆"), core_name("(杭州)云帆"));
    }

    #[test]
    fn different_companies_stay_different() {
        let pairs = [
            ("杭州云帆科技有限公司", "宁波云帆科技有限公司"),
            ("云帆科技", "云帆网络"),
            ("星河9号", "星河8号"),
            ("ABC科技", "ABD科技"),
            ("杭州云帆分公司", "杭州云帆"),
            ("中国银行", "中国"),
            ("北京大学", "北京"),
        ];
        for (a, b) in pairs {
            assert_ne!(core_name(a), core_name(b), "{a} / {b}");
        }
    }

    #[test]
    fn a_name_that_is_only_a_legal_form_keeps_it() {
        assert_eq!(core_name("有限公司"), "有限公司");
        assert_eq!(core_name("集团"), "集团");
    }

    #[test]
    fn names_one_edit_apart_share_a_deletion() {
        let share = |a: &str, b: &str| deletions(a).iter().any(|v| deletions(b).contains(v));
        assert!(share("星河九号", "星河9号"), "replaced");
        assert!(share("云帆科技", "云帆科"), "removed");
        assert!(share("云帆科", "云帆大科"), "inserted");
        assert!(!share("杭州云帆", "宁波云帆"), "two apart");
        assert!(deletions("云").is_empty());
    }

    #[test]
    fn near_misses_look_alike() {
        let k = |s| core_name(s);
        assert!(looks_alike(&k("星河九号"), &k("星河9号")), "one character replaced");
        assert!(looks_alike(&k("云帆科技"), &k("杭州云帆科技")), "contained");
        assert!(looks_alike(&k("云帆科技"), &k("云帆科")), "one removed");
        assert!(!looks_alike(&k("杭州云帆科技"), &k("宁波云帆科技")), "two characters apart");
        assert!(!looks_alike(&k("云帆"), &k("云帆")), "the same is not a look-alike");
        assert!(!looks_alike("A", "AB"), "one-character names");
    }

    /// The containment index finds every contained or containing name: for any two
    /// names of two or more characters where one contains the other, the longer has a
    /// window starting with the head of the shorter, and the head of the shorter is
    /// among the parts of the longer.
    #[test]
    fn containment_is_found_through_heads_windows_and_parts() {
        let names = [
            "云帆",
            "云帆科技",
            "星河云帆科技创新发展",
            "北京星河云帆科技创新发展集团",
            "帆科",
            "AB",
            "XAB",
            "云帆星河海天山川江湖",
            "河云帆科技创新发展集",
        ];
        for a in names {
            for b in names {
                let (short, long) = if a.chars().count() <= b.chars().count() { (a, b) } else { (b, a) };
                if long.contains(short) {
                    let head = head(short).expect("two or more characters");
                    assert!(parts(long).contains(&head), "{short} in {long}");
                    let end = prefix_end(&head);
                    assert!(windows(long).iter().any(|w| *w >= head && *w < end), "{short} in {long}");
                }
            }
        }
        assert_eq!(head("云"), None);
        assert_eq!(parts("云帆科"), ["云帆", "云帆科", "帆科"]);
        assert_eq!(windows("云帆科"), ["云帆科", "帆科"]);
        assert!(windows("云").is_empty());
        assert_eq!(head("北京星河云帆科技创新发展").as_deref(), Some("北京星河云帆科技"));
    }
}
