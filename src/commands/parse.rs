//! The command parser: pure, no I/O. The first word picks the command; fields follow
//! as `键=值`, `键：值` or `键:值`, separated by spaces, commas, semicolons or new lines,
//! so a one-liner and a pasted multi-line form both work. Errors are values that say
//! exactly what is wrong and carry the command's usage.

use crate::commands::args::{self, Command};
use crate::commands::table::{self, CommandSpec, FieldType};
use crate::domain::money::{Fen, MoneyError};
use crate::domain::month::Month;
use crate::domain::record::Mode;
use crate::domain::text::{BoundedText, CreditCode, TextError, fold_width};
use chrono::{Datelike, NaiveDate, NaiveDateTime, NaiveTime};
use std::collections::BTreeMap;

pub const NAME_MAX: usize = 60;
pub const NOTE_MAX: usize = 200;
/// Longer messages are refused before parsing.
pub const MESSAGE_MAX: usize = 2000;

/// A parsed field value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Text(BoundedText),
    Date(NaiveDate),
    DateTime(NaiveDateTime),
    Amount(Fen),
    RecordNo(i64),
    RecordNos(Vec<i64>),
    Mode(Mode),
    Month(Month),
    CreditCode(CreditCode),
    Number(u32),
}

/// A command with every field checked, and its typed arguments.
#[derive(Debug)]
pub struct Parsed {
    pub spec: &'static CommandSpec,
    /// The command's arguments, typed.
    pub command: Command,
    values: BTreeMap<&'static str, Value>,
}

impl Parsed {
    /// A field's value as parsed.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.values.get(key)
    }

    /// Every field as `key → text`, for storing what was reported.
    pub fn to_json(&self) -> serde_json::Value {
        fields_json(&self.values)
    }
}

/// Every field as `key → text`.
pub fn fields_json(values: &BTreeMap<&'static str, Value>) -> serde_json::Value {
    let map = values.iter().map(|(k, v)| ((*k).to_owned(), serde_json::Value::String(display(v)))).collect();
    serde_json::Value::Object(map)
}

/// A value as people write it (`#12`, `2023-07-15 14:30`, `直接`).
pub fn display(value: &Value) -> String {
    match value {
        Value::Text(t) => t.to_string(),
        Value::Date(d) => d.to_string(),
        Value::DateTime(t) if t.time() == NaiveTime::MIN => t.date().to_string(),
        Value::DateTime(t) => t.format("%Y-%m-%d %H:%M").to_string(),
        Value::Amount(a) => a.to_string(),
        Value::RecordNo(n) => format!("#{n}"),
        Value::RecordNos(ns) => ns.iter().map(|n| format!("#{n}")).collect::<Vec<_>>().join(" "),
        Value::Mode(m) => m.label().to_owned(),
        Value::Month(m) => m.to_string(),
        Value::CreditCode(c) => c.as_str().to_owned(),
        Value::Number(n) => n.to_string(),
    }
}

/// What is wrong with a field's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Text(TextError),
    BadDate,
    BadDateTime,
    BadAmount(MoneyError),
    NotPositive,
    BadRecordNo,
    BadMode,
    BadMonth,
    BadCreditCode,
    BadNumber,
    NotAChoice(&'static [&'static str]),
}

impl Problem {
    /// What is wrong, with example values of `today`.
    pub fn explain(&self, today: NaiveDate) -> String {
        let example = |ty: FieldType| ty.hint(today);
        match self {
            Problem::Text(e) => e.to_string(),
            Problem::BadDate => format!("不是有效日期（例如 {}）", example(FieldType::Date)),
            Problem::BadDateTime => format!("不是有效的日期时间（例如 {}）", example(FieldType::DateTime)),
            Problem::BadAmount(e) => e.to_string(),
            Problem::NotPositive => "必须大于 0".into(),
            Problem::BadRecordNo => "不是有效编号（例如 12 或 #12）".into(),
            Problem::BadMode => "只能是“直接”或“转接”".into(),
            Problem::BadMonth => format!("不是有效月份（例如 {} 或 上月）", example(FieldType::Month)),
            Problem::BadCreditCode => "不是有效的统一社会信用代码（18位，校验位不符）".into(),
            Problem::BadNumber => "须是正整数（例如 2）".into(),
            Problem::NotAChoice(words) => format!("只能是“{}”", words.join("”或“")),
        }
    }
}

/// Why a message is not a valid command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParseError {
    Empty,
    TooLong,
    UnknownCommand(String),
    UnknownField { spec: &'static CommandSpec, key: String },
    Missing { spec: &'static CommandSpec, key: &'static str },
    Duplicate { spec: &'static CommandSpec, key: &'static str },
    Invalid { spec: &'static CommandSpec, key: &'static str, value: String, problem: Problem },
    Unexpected { spec: &'static CommandSpec, text: String },
}

impl ParseError {
    /// The command the error is about, if one was recognised.
    pub fn spec(&self) -> Option<&'static CommandSpec> {
        match self {
            ParseError::Empty | ParseError::TooLong | ParseError::UnknownCommand(_) => None,
            ParseError::UnknownField { spec, .. }
            | ParseError::Missing { spec, .. }
            | ParseError::Duplicate { spec, .. }
            | ParseError::Invalid { spec, .. }
            | ParseError::Unexpected { spec, .. } => Some(spec),
        }
    }
}

impl ParseError {
    /// What is wrong, and the command's usage, with example dates of `today`.
    pub fn explain(&self, today: NaiveDate) -> String {
        let mut text = match self {
            ParseError::Empty => "消息是空的。发送「帮助」查看可用命令。".to_owned(),
            ParseError::TooLong => format!("消息太长（最多 {MESSAGE_MAX} 个字）。"),
            ParseError::UnknownCommand(word) => format!("不认识的命令“{word}”。发送「帮助」查看可用命令。"),
            ParseError::UnknownField { spec, key } => {
                let keys: Vec<&str> = spec.fields.iter().map(|f| f.key).collect();
                format!("「{}」没有字段“{key}”（可用字段：{}）。", spec.name, keys.join("、"))
            }
            ParseError::Missing { spec, key } => format!("「{}」缺少必填字段“{key}”。", spec.name),
            ParseError::Duplicate { spec, key } => format!("「{}」的字段“{key}”写了两次。", spec.name),
            ParseError::Invalid { key, value, problem, .. } => {
                format!("“{key}”的值“{value}”{}。", problem.explain(today))
            }
            ParseError::Unexpected { spec, text } => format!("「{}」无法识别“{text}”：字段请写成 键=值。", spec.name),
        };
        if let Some(spec) = self.spec() {
            text.push_str(&format!("\n用法：{}", spec.usage(today)));
        }
        text
    }
}

fn is_separator(c: char) -> bool {
    c.is_whitespace() || c == ',' || c == ';' || c == '、'
}

/// Parses a chat message. `today` (Asia/Shanghai) completes dates without a year.
pub fn parse(message: &str, today: NaiveDate) -> Result<Parsed, ParseError> {
    if message.chars().count() > MESSAGE_MAX {
        return Err(ParseError::TooLong);
    }
    // Commands, keys and separators are recognised in any width; what people typed as
    // names and notes is kept as typed (taken from the original by position: folding
    // maps each character to one character).
    let folded = fold_width(message);
    let text = folded.trim_matches(|c: char| is_separator(c) || c == '。');
    if text.is_empty() {
        return Err(ParseError::Empty);
    }
    let as_typed = |value: &str| -> String {
        let offset = (value.as_ptr() as usize).saturating_sub(folded.as_ptr() as usize);
        let start = folded.get(..offset).map_or(0, |head| head.chars().count());
        message.chars().skip(start).take(value.chars().count()).collect()
    };
    let (spec, rest) = command(text)?;
    let (bare, pairs) = split_fields(spec, rest);
    let mut raw: BTreeMap<&'static str, &str> = BTreeMap::new();
    fill_positional(spec, bare, &mut raw)?;
    for (key, value) in pairs {
        let field = spec.field(&key).ok_or_else(|| ParseError::UnknownField { spec, key: key.clone() })?;
        if raw.insert(field.key, value).is_some() {
            return Err(ParseError::Duplicate { spec, key: field.key });
        }
    }
    let mut values = BTreeMap::new();
    for field in spec.fields {
        match raw.remove(field.key).filter(|v| !v.is_empty()) {
            Some(value) => {
                let value = match field.ty {
                    FieldType::Name | FieldType::Note => as_typed(value),
                    _ => value.to_owned(),
                };
                let parsed = read_value(field.ty, &value, today).map_err(|problem| ParseError::Invalid {
                    spec,
                    key: field.key,
                    value,
                    problem,
                })?;
                values.insert(field.key, parsed);
            }
            None if field.required => return Err(ParseError::Missing { spec, key: field.key }),
            None => {}
        }
    }
    let command = args::build(spec, &values)?;
    Ok(Parsed { spec, command, values })
}

/// Splits off the command word: `C类 公司=…`, or `确认12` / `确认#12` without a space.
fn command(text: &str) -> Result<(&'static CommandSpec, &str), ParseError> {
    let end = text.find(|c: char| is_separator(c)).unwrap_or(text.len());
    let (word, rest) = text.split_at(end);
    if let Some(spec) = table::lookup(word) {
        return Ok((spec, rest));
    }
    for (name, spec) in table::names_longest_first() {
        let Some(tail) = strip_prefix_ignore_case(text, name) else { continue };
        let attached = tail.starts_with('#') || tail.starts_with(|c: char| c.is_ascii_digit()) || starts_with_key(tail);
        if attached {
            return Ok((spec, tail));
        }
    }
    Err(ParseError::UnknownCommand(word.chars().take(20).collect()))
}

fn strip_prefix_ignore_case<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let head = text.get(..prefix.len())?;
    (head.to_lowercase() == prefix.to_lowercase()).then(|| &text[prefix.len()..])
}

fn starts_with_key(text: &str) -> bool {
    let token_end = text.find(|c: char| is_separator(c) || c == '=' || c == ':').unwrap_or(text.len());
    token_end > 0 && matches!(text[token_end..].chars().next(), Some('=' | ':'))
}

/// A key candidate in the text: `token=` or `token:` where the token starts a word.
struct KeyAt {
    key: String,
    start: usize,
    value_start: usize,
}

/// Splits the text after the command word into leading bare text and `key=value` pairs.
/// A value runs until the next key, so values may contain spaces and commas. A
/// `word:` that is not a field of any command (`14:30`, `A座:3楼`) stays in the value.
fn split_fields<'a>(spec: &'static CommandSpec, rest: &'a str) -> (&'a str, Vec<(String, &'a str)>) {
    let keys = key_positions(spec, rest);
    let bare_end = keys.first().map_or(rest.len(), |k| k.start);
    let bare = trim_value(&rest[..bare_end]);
    let mut pairs = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        let end = keys.get(i + 1).map_or(rest.len(), |next| next.start);
        pairs.push((k.key.clone(), trim_value(&rest[k.value_start..end])));
    }
    (bare, pairs)
}

fn key_positions(spec: &CommandSpec, text: &str) -> Vec<KeyAt> {
    let mut keys = Vec::new();
    let mut prev: Option<char> = None;
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        let at_word_start = prev.is_none_or(is_separator) && !is_separator(c) && c != '=' && c != ':';
        prev = Some(c);
        if !at_word_start {
            continue;
        }
        let token_end =
            text[start..].find(|c: char| is_separator(c) || c == '=' || c == ':').map_or(text.len(), |i| start + i);
        let Some(sep) = text[token_end..].chars().next().filter(|c| *c == '=' || *c == ':') else { continue };
        let key = &text[start..token_end];
        let is_key = spec.field(key).is_some() || table::is_known_key(key) || sep == '=';
        if is_key && !key.chars().all(|c| c.is_ascii_digit()) {
            keys.push(KeyAt { key: key.to_owned(), start, value_start: token_end + sep.len_utf8() });
            // Skip to the separator so the value's own words are considered next.
            while chars.peek().is_some_and(|(i, _)| *i < token_end + sep.len_utf8()) {
                prev = chars.next().map(|(_, c)| c);
            }
        }
    }
    keys
}

fn trim_value(text: &str) -> &str {
    text.trim_matches(|c: char| is_separator(c) || c == '。')
}

/// Bare words fill the positional fields in order; a last `Note` field takes the rest.
fn fill_positional<'a>(
    spec: &'static CommandSpec,
    bare: &'a str,
    raw: &mut BTreeMap<&'static str, &'a str>,
) -> Result<(), ParseError> {
    let mut rest = bare;
    for (i, key) in spec.positional.iter().enumerate() {
        rest = trim_value(rest);
        if rest.is_empty() {
            break;
        }
        let field = spec.field(key).expect("positional fields are declared");
        let last = i + 1 == spec.positional.len();
        let value = if last && field.ty == FieldType::Note || spec.positional.len() == 1 {
            std::mem::take(&mut rest)
        } else {
            let end = rest.find(is_separator).unwrap_or(rest.len());
            let (word, tail) = rest.split_at(end);
            rest = tail;
            word
        };
        raw.insert(field.key, value);
    }
    let rest = trim_value(rest);
    if rest.is_empty() { Ok(()) } else { Err(ParseError::Unexpected { spec, text: rest.chars().take(30).collect() }) }
}

pub fn read_value(ty: FieldType, value: &str, today: NaiveDate) -> Result<Value, Problem> {
    Ok(match ty {
        FieldType::Name => Value::Text(BoundedText::parse(value, NAME_MAX).map_err(Problem::Text)?),
        FieldType::Note => Value::Text(BoundedText::parse(value, NOTE_MAX).map_err(Problem::Text)?),
        FieldType::Date => Value::Date(parse_date(value, today).ok_or(Problem::BadDate)?),
        FieldType::DateTime => Value::DateTime(parse_date_time(value, today).ok_or(Problem::BadDateTime)?),
        FieldType::Amount => Value::Amount(parse_amount(value)?),
        FieldType::RecordNo => Value::RecordNo(parse_record_no(value).ok_or(Problem::BadRecordNo)?),
        FieldType::RecordNos => {
            let numbers: Option<Vec<i64>> = value
                .split(|c: char| is_separator(c) || c == '，')
                .filter(|w| !w.is_empty())
                .map(parse_record_no)
                .collect();
            let mut numbers = numbers.filter(|n| !n.is_empty() && n.len() <= 20).ok_or(Problem::BadRecordNo)?;
            numbers.dedup();
            Value::RecordNos(numbers)
        }
        FieldType::Mode => Value::Mode(match value.trim() {
            "直接" | "直接促成" | "direct" => Mode::Direct,
            "转接" | "转接促成" | "transfer" => Mode::Transfer,
            _ => return Err(Problem::BadMode),
        }),
        FieldType::Month => Value::Month(Month::parse_spoken(value, today).ok_or(Problem::BadMonth)?),
        FieldType::CreditCode => Value::CreditCode(CreditCode::parse(value).ok_or(Problem::BadCreditCode)?),
        FieldType::Number => {
            Value::Number(value.trim().parse().ok().filter(|n| *n > 0 && *n < 10_000).ok_or(Problem::BadNumber)?)
        }
        FieldType::Choice(words) => match words.iter().find(|w| **w == value.trim()) {
            Some(word) => Value::Text(BoundedText::parse(word, NAME_MAX).map_err(Problem::Text)?),
            None => return Err(Problem::NotAChoice(words)),
        },
    })
}

/// `12`, `#12` or `No.12`, positive.
pub fn parse_record_no(text: &str) -> Option<i64> {
    let digits = text.trim().trim_start_matches('#').trim_start_matches("No.").trim();
    if digits.is_empty() || digits.len() > 12 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|n| *n > 0)
}

/// Yuan, optionally with a currency sign or word before (`￥`, `¥`, `RMB`, `人民币`) and
/// `元` after, or in units of ten thousand with `万` (`12万元`).
fn parse_amount(text: &str) -> Result<Fen, Problem> {
    const CURRENCY: [&str; 6] = ["￥", "¥", "RMB", "rmb", "CNY", "人民币"];
    let text = text.trim();
    let text = CURRENCY.iter().find_map(|c| text.strip_prefix(c)).unwrap_or(text);
    let text = text.trim().trim_end_matches('元').trim();
    let fen = match text.strip_suffix('万') {
        Some(wan) => Fen::parse_wan(wan),
        None => Fen::parse_yuan(text),
    }
    .map_err(Problem::BadAmount)?;
    if fen.0 <= 0 { Err(Problem::NotPositive) } else { Ok(fen) }
}

/// A day that has happened (`入职`): `2023-07-15`, `2023/7/15`, `2023.7.15`,
/// `2023年7月15日`; without a year (`7月15日`, `7-15`) the latest such day up to
/// `today` (so `12-30` written on 2 January is last year's).
pub fn parse_date(text: &str, today: NaiveDate) -> Option<NaiveDate> {
    match parse_day(text, today)? {
        (date, false) if date > today => NaiveDate::from_ymd_opt(date.year() - 1, date.month(), date.day()),
        (date, _) => Some(date),
    }
}

/// A date as written, without a year in the current year; and whether a year was written.
fn parse_day(text: &str, today: NaiveDate) -> Option<(NaiveDate, bool)> {
    let text = text.trim().trim_end_matches(['日', '号']).replace(['年', '月', '/', '.'], "-");
    let parts: Vec<&str> = text.split('-').map(str::trim).collect();
    let nums: Vec<u32> = parts.iter().map(|p| p.parse().ok()).collect::<Option<_>>()?;
    match nums.as_slice() {
        [y, m, d] if parts[0].len() == 4 => Some((NaiveDate::from_ymd_opt(*y as i32, *m, *d)?, true)),
        [m, d] => Some((NaiveDate::from_ymd_opt(today.year(), *m, *d)?, false)),
        _ => None,
    }
}

/// A date (without a year: the current year), optionally followed by `HH:MM`.
fn parse_date_time(text: &str, today: NaiveDate) -> Option<NaiveDateTime> {
    let text = text.trim();
    let (date, time) = match text.rsplit_once(' ') {
        Some((d, t)) if t.contains(':') => (d, Some(t)),
        _ => (text, None),
    };
    let (date, _) = parse_day(date, today)?;
    let time = match time {
        Some(t) => NaiveTime::parse_from_str(t.trim(), "%H:%M").ok()?,
        None => NaiveTime::MIN,
    };
    Some(date.and_time(time))
}
