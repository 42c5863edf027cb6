//! Callback XML: the encrypted envelope, the decrypted message or event, and passive
//! reply bodies (PROTOCOL.md §1.2, §4, §5).

use std::borrow::Cow;

use quick_xml::events::{BytesCData, BytesEnd, BytesStart, BytesText, Event};
use serde::Deserialize;

/// The XML could not be read as a callback envelope or message.
#[derive(Debug, thiserror::Error)]
#[error("malformed callback XML: {0}")]
pub struct XmlError(String);

/// Extracts the `Encrypt` text from a POST body; `ToUserName` and `AgentID` are not
/// trusted (AgentID may be empty), the decrypted content is. The whole body must be
/// well-formed XML. Read as a stream of events, without building a document: this is
/// on every callback's path, and the text is base64 (no entities to resolve). The text
/// is borrowed from the body unless it was written in pieces. The events come from
/// [`FastEvents`] where the body has the shape WeCom writes, else from quick-xml's reader.
pub fn parse_envelope(body: &str) -> Result<Cow<'_, str>, XmlError> {
    if let Some(mut fast) = FastEvents::new(body)
        && let Ok(encrypt) = envelope_from(|| fast.next())
    {
        return Ok(encrypt);
    }
    let mut reader = quick_xml::Reader::from_str(body);
    envelope_from(|| reader.read_event().map_err(|e| XmlError(e.to_string())))
}

/// The `Encrypt` text of the envelope whose events `next` gives.
fn envelope_from<'a>(mut next: impl FnMut() -> Result<Event<'a>, XmlError>) -> Result<Cow<'a, str>, XmlError> {
    let (mut depth, mut in_encrypt, mut encrypt) = (0usize, false, None::<Cow<'a, str>>);
    loop {
        match next()? {
            Event::Start(tag) => {
                depth += 1;
                in_encrypt = depth == 2 && tag.name().as_ref() == "Encrypt";
            }
            Event::End(_) => {
                depth = depth.saturating_sub(1);
                in_encrypt = false;
            }
            Event::CData(text) if in_encrypt => append(&mut encrypt, text.into_inner()),
            Event::Text(text) if in_encrypt => append(&mut encrypt, trim(text.into_inner())),
            Event::GeneralRef(_) if in_encrypt => return Err(XmlError("entity in Encrypt".into())),
            Event::Eof if depth == 0 => break,
            Event::Eof => return Err(XmlError("unclosed element".into())),
            _ => {}
        }
    }
    match encrypt.map(trim) {
        Some(encrypt) if !encrypt.is_empty() => Ok(encrypt),
        _ => Err(XmlError("no Encrypt element".into())),
    }
}

/// How deep [`FastEvents`] follows elements; deeper documents go to quick-xml's reader.
const FAST_DEPTH: usize = 4;

/// quick-xml's events for documents of the shape WeCom writes, read without its
/// per-event UTF-8 check (the input is a `&str`, checked once already, and is cut only
/// at ASCII delimiters). It reads text without references, CDATA sections, and
/// elements without attributes whose names are ASCII letters, digits and `_`, up to
/// [`FAST_DEPTH`] deep; at anything else (a reference, a comment, a declaration, an
/// attribute, a mismatched or unclosed element) it gives up with an error, and the
/// caller reads the document again with quick-xml's reader. Where it does not give up,
/// its events are exactly the reader's (tested against it).
struct FastEvents<'a> {
    rest: &'a str,
    open: [&'a str; FAST_DEPTH],
    depth: usize,
}

impl<'a> FastEvents<'a> {
    /// The reader of `xml`; none for a document starting with a byte-order mark, which
    /// quick-xml's reader drops.
    fn new(xml: &'a str) -> Option<Self> {
        (!xml.starts_with('\u{feff}')).then_some(FastEvents { rest: xml, open: [""; FAST_DEPTH], depth: 0 })
    }

    /// The next event, as quick-xml's reader would give it; an error where this reader
    /// gives up (never an error of the document: the caller then asks quick-xml's reader).
    fn next(&mut self) -> Result<Event<'a>, XmlError> {
        let gave_up = || XmlError("not in the fast reader's shape".into());
        let bytes = self.rest.as_bytes();
        match bytes.first() {
            None if self.depth == 0 => Ok(Event::Eof),
            None => Err(gave_up()),
            Some(b'<') => self.markup().ok_or_else(gave_up),
            Some(_) => {
                let end = memchr::memchr2(b'<', b'&', bytes).unwrap_or(bytes.len());
                if bytes.get(end) == Some(&b'&') {
                    return Err(gave_up());
                }
                let (text, rest) = self.rest.split_at(end);
                self.rest = rest;
                Ok(Event::Text(BytesText::from_escaped(text)))
            }
        }
    }

    /// A CDATA section, a start, end or empty tag at the start of `rest`, if it is one
    /// this reader reads.
    fn markup(&mut self) -> Option<Event<'a>> {
        if let Some(cdata) = self.rest.strip_prefix("<![CDATA[") {
            let end = cdata_end(cdata.as_bytes())?;
            self.rest = &cdata[end + "]]>".len()..];
            return Some(Event::CData(BytesCData::new(&cdata[..end])));
        }
        let (closing, tag) = match self.rest[1..].strip_prefix('/') {
            Some(tag) => (true, tag),
            None => (false, &self.rest[1..]),
        };
        let name_len = tag.bytes().position(|b| !NAME_BYTE[b as usize]).unwrap_or(tag.len());
        let (name, after) = tag.split_at(name_len);
        if name.is_empty() {
            return None;
        }
        let (event, tag_end) = match (closing, after.as_bytes()) {
            (true, [b'>', ..]) if self.depth > 0 && self.open[self.depth - 1] == name => {
                self.depth -= 1;
                (Event::End(BytesEnd::new(name)), 1)
            }
            (false, [b'/', b'>', ..]) => (Event::Empty(BytesStart::new(name)), 2),
            (false, [b'>', ..]) if self.depth < FAST_DEPTH => {
                self.open[self.depth] = name;
                self.depth += 1;
                (Event::Start(BytesStart::new(name)), 1)
            }
            _ => return None,
        };
        self.rest = &after[tag_end..];
        Some(event)
    }
}

/// The bytes of the names [`FastEvents`] reads (ASCII letters, digits, `_`), as a table:
/// fewer instructions a byte than the comparisons.
const NAME_BYTE: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric() || b as u8 == b'_';
        b += 1;
    }
    table
};

/// Where the first `]]>` starts in a CDATA section's text (after `<![CDATA[`).
fn cdata_end(text: &[u8]) -> Option<usize> {
    memchr::memchr_iter(b'>', text).find(|&i| i >= 2 && text[i - 2..i] == *b"]]").map(|i| i - 2)
}

/// Adds a piece to a value: the first piece is kept as it came (borrowed from the
/// input if it was), later ones make it owned.
fn append<'a>(value: &mut Option<Cow<'a, str>>, piece: Cow<'a, str>) {
    match value {
        None => *value = Some(piece),
        Some(value) => value.to_mut().push_str(&piece),
    }
}

/// Trims white space, without copying a borrowed value.
fn trim(value: Cow<'_, str>) -> Cow<'_, str> {
    match value {
        Cow::Borrowed(s) => Cow::Borrowed(s.trim()),
        Cow::Owned(s) if s.trim().len() == s.len() => Cow::Owned(s),
        Cow::Owned(s) => Cow::Owned(s.trim().to_owned()),
    }
}

/// The children of a decrypted message or event that leadboard reads.
#[derive(Clone, Copy)]
enum Field {
    From,
    CreateTime,
    MsgType,
    MsgId,
    Content,
    Event,
    EventKey,
    TaskId,
    CardType,
    ResponseCode,
}

impl Field {
    fn named(name: &str) -> Option<Field> {
        Some(match name {
            "FromUserName" => Field::From,
            "CreateTime" => Field::CreateTime,
            "MsgType" => Field::MsgType,
            "MsgId" => Field::MsgId,
            "Content" => Field::Content,
            "Event" => Field::Event,
            "EventKey" => Field::EventKey,
            "TaskId" => Field::TaskId,
            "CardType" => Field::CardType,
            "ResponseCode" => Field::ResponseCode,
            _ => return None,
        })
    }
}

/// The values of the [`Field`]s as written, in their order: borrowed from the message
/// unless a value had to be rebuilt (entities, CR LF, or written in pieces), so the
/// fields the callback does not keep cost no allocation.
#[derive(Default)]
struct RawMessage<'a> {
    values: [Option<Cow<'a, str>>; 10],
}

impl<'a> RawMessage<'a> {
    /// Reads the children of the root element as a stream of events (no document is
    /// built: this is on every callback's path), from [`FastEvents`] where the message has
    /// the shape WeCom writes, else from quick-xml's reader. A child's value is its text
    /// (entities resolved) and CDATA, exactly as written; nested elements and unknown
    /// children are skipped; a field given twice is an error.
    fn read(xml: &'a str) -> Result<RawMessage<'a>, XmlError> {
        if let Some(mut fast) = FastEvents::new(xml)
            && let Ok(raw) = Self::from_events(|| fast.next())
        {
            return Ok(raw);
        }
        let mut reader = quick_xml::Reader::from_str(xml);
        Self::from_events(|| reader.read_event().map_err(|e| XmlError(e.to_string())))
    }

    /// The message whose events `next` gives.
    fn from_events(mut next: impl FnMut() -> Result<Event<'a>, XmlError>) -> Result<RawMessage<'a>, XmlError> {
        let error = |e: &dyn std::fmt::Display| XmlError(e.to_string());
        let mut raw = RawMessage::default();
        // The child being read (at depth 2): which field it is, if any, and its value so far.
        let (mut depth, mut field, mut value) = (0usize, None, None::<Cow<'a, str>>);
        loop {
            match next()? {
                Event::Start(tag) => {
                    depth += 1;
                    if depth == 2 {
                        field = Field::named(tag.name().as_ref());
                    }
                }
                Event::Empty(tag) if depth == 1 => {
                    raw.set(Field::named(tag.name().as_ref()), Cow::Borrowed(""), tag.name().as_ref())?
                }
                Event::End(tag) => {
                    if depth == 2 {
                        raw.set(field.take(), value.take().unwrap_or_default(), tag.name().as_ref())?;
                    }
                    depth = depth.checked_sub(1).ok_or_else(|| XmlError("unbalanced element".into()))?;
                }
                Event::Text(text) if depth == 2 => append(&mut value, text.xml10_content()),
                Event::CData(text) if depth == 2 => append(&mut value, text.xml10_content()),
                Event::GeneralRef(entity) if depth == 2 => {
                    let resolved = match entity.resolve_char_ref().map_err(|e| error(&e))? {
                        Some(c) => c.to_string(),
                        None => quick_xml::escape::resolve_predefined_entity(&entity)
                            .ok_or_else(|| XmlError(format!("unknown entity &{};", &*entity)))?
                            .to_owned(),
                    };
                    append(&mut value, Cow::Owned(resolved));
                }
                Event::Eof if depth == 0 => return Ok(raw),
                Event::Eof => return Err(XmlError("unclosed element".into())),
                _ => {}
            }
        }
    }

    fn set(&mut self, field: Option<Field>, value: Cow<'a, str>, name: &str) -> Result<(), XmlError> {
        match field.map(|f| &mut self.values[f as usize]) {
            Some(slot @ None) => {
                *slot = Some(value);
                Ok(())
            }
            Some(Some(_)) => Err(XmlError(format!("duplicate field `{name}`"))),
            None => Ok(()),
        }
    }

    /// A field's value, trimmed (empty if absent).
    fn trimmed(&self, field: Field) -> &str {
        self.values[field as usize].as_deref().map(str::trim).unwrap_or_default()
    }

    /// A field's value trimmed and owned: only for what the callback keeps.
    fn owned(&self, field: Field) -> String {
        self.trimmed(field).to_owned()
    }
}

/// A decrypted callback: who sent it, when, and what it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inbound {
    /// Member UserID (opaque; may be `corpid/userid` across corporations).
    pub from: String,
    /// Unix seconds, as WeCom stamped it.
    pub create_time: i64,
    pub msg_id: Option<String>,
    pub kind: InboundKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundKind {
    Text {
        content: String,
    },
    EnterAgent,
    Click {
        key: String,
    },
    TemplateCard(CardEvent),
    /// Anything else (image, voice, subscribe, ...): parsed far enough to be logged.
    Other {
        msg_type: String,
        event: Option<String>,
    },
}

/// A button press on a template card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardEvent {
    pub event_key: String,
    pub task_id: String,
    pub card_type: String,
    pub response_code: String,
}

/// Parses a decrypted message or event. Unknown elements are ignored; text is trimmed
/// except for a text message's content, which is kept as sent.
pub fn parse_message(xml: &str) -> Result<Inbound, XmlError> {
    let raw = RawMessage::read(xml)?;
    let msg_type = raw.trimmed(Field::MsgType);
    if raw.trimmed(Field::From).is_empty() || msg_type.is_empty() {
        return Err(XmlError("FromUserName and MsgType are required".into()));
    }
    let create_time =
        raw.trimmed(Field::CreateTime).parse().map_err(|_| XmlError("CreateTime is not an integer".into()))?;
    let msg_id = Some(raw.owned(Field::MsgId)).filter(|v| !v.is_empty());
    let event = raw.values[Field::Event as usize].as_deref().map(str::trim);
    let kind = match (msg_type, event) {
        ("text", _) => {
            InboundKind::Text { content: raw.values[Field::Content as usize].as_deref().unwrap_or("").to_owned() }
        }
        ("event", Some("enter_agent")) => InboundKind::EnterAgent,
        ("event", Some("click")) => InboundKind::Click { key: raw.owned(Field::EventKey) },
        ("event", Some("template_card_event")) => InboundKind::TemplateCard(CardEvent {
            event_key: raw.owned(Field::EventKey),
            task_id: raw.owned(Field::TaskId),
            card_type: raw.owned(Field::CardType),
            response_code: raw.owned(Field::ResponseCode),
        }),
        _ => InboundKind::Other { msg_type: msg_type.to_owned(), event: event.map(str::to_owned) },
    };
    Ok(Inbound { from: raw.owned(Field::From), create_time, msg_id, kind })
}

impl Inbound {
    /// The key WeCom retries share: the MsgId for messages; sender, create time and
    /// event (with its key and card task) for events, which carry no MsgId.
    pub fn dedup_key(&self) -> String {
        if let Some(id) = &self.msg_id {
            return format!("msg:{id}");
        }
        let detail = match &self.kind {
            InboundKind::Text { .. } => "text".to_owned(),
            InboundKind::EnterAgent => "enter_agent".to_owned(),
            InboundKind::Click { key } => format!("click:{key}"),
            InboundKind::TemplateCard(card) => format!("card:{}:{}", card.task_id, card.event_key),
            InboundKind::Other { msg_type, event } => {
                format!("{msg_type}:{}", event.as_deref().unwrap_or(""))
            }
        };
        format!("evt:{}:{}:{detail}", self.from, self.create_time)
    }
}

/// Wraps text in CDATA, splitting any `]]>` it contains.
pub fn cdata(text: &str) -> String {
    format!("<![CDATA[{}]]>", text.replace("]]>", "]]]]><![CDATA[>"))
}

/// The plaintext of a passive text reply (before encryption).
pub fn text_reply(to_user: &str, corp_id: &str, create_time: i64, content: &str) -> String {
    format!(
        "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{create_time}</CreateTime>\
         <MsgType><![CDATA[text]]></MsgType><Content>{}</Content></xml>",
        cdata(to_user),
        cdata(corp_id),
        cdata(content)
    )
}

/// The plaintext of a passive `update_button` reply: greys out the pressed button.
pub fn update_button_reply(to_user: &str, corp_id: &str, create_time: i64, replace_name: &str) -> String {
    format!(
        "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{create_time}</CreateTime>\
         <MsgType><![CDATA[update_button]]></MsgType><Button><ReplaceName>{}</ReplaceName></Button></xml>",
        cdata(to_user),
        cdata(corp_id),
        cdata(replace_name)
    )
}

/// Reads the `Encrypt`, `MsgSignature`, `TimeStamp` and `Nonce` of a passive reply
/// envelope (used by `leadboard send` and the tests, which play WeCom's part).
pub fn parse_reply_envelope(body: &str) -> Result<ReplyEnvelope, XmlError> {
    quick_xml::de::from_str(body).map_err(|e| XmlError(e.to_string()))
}

#[derive(Debug, Deserialize)]
pub struct ReplyEnvelope {
    #[serde(rename = "Encrypt")]
    pub encrypt: String,
    #[serde(rename = "MsgSignature")]
    pub signature: String,
    #[serde(rename = "TimeStamp")]
    pub timestamp: String,
    #[serde(rename = "Nonce")]
    pub nonce: String,
}

/// The content of a passive text reply, as a client reads it.
pub fn parse_text_reply(xml: &str) -> Result<String, XmlError> {
    #[derive(Deserialize)]
    struct Reply {
        #[serde(rename = "Content")]
        content: String,
    }
    let reply: Reply = quick_xml::de::from_str(xml).map_err(|e| XmlError(e.to_string()))?;
    Ok(reply.content)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The message as serde reads it with quick-xml's deserializer: the reference the
    /// event reader must agree with.
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct SerdeMessage {
        #[serde(rename = "FromUserName")]
        from: Option<String>,
        #[serde(rename = "CreateTime")]
        create_time: Option<String>,
        #[serde(rename = "MsgType")]
        msg_type: Option<String>,
        #[serde(rename = "MsgId")]
        msg_id: Option<String>,
        #[serde(rename = "Content")]
        content: Option<String>,
        #[serde(rename = "Event")]
        event: Option<String>,
        #[serde(rename = "EventKey")]
        event_key: Option<String>,
        #[serde(rename = "TaskId")]
        task_id: Option<String>,
        #[serde(rename = "CardType")]
        card_type: Option<String>,
        #[serde(rename = "ResponseCode")]
        response_code: Option<String>,
    }

    /// The ten fields of a `SerdeMessage`, in the order of `Field`.
    macro_rules! fields {
        ($m:expr) => {{
            let m = $m;
            [
                m.from,
                m.create_time,
                m.msg_type,
                m.msg_id,
                m.content,
                m.event,
                m.event_key,
                m.task_id,
                m.card_type,
                m.response_code,
            ]
        }};
    }

    fn fields_by_serde(xml: &str) -> Option<[Option<String>; 10]> {
        Some(fields!(quick_xml::de::from_str::<SerdeMessage>(xml).ok()?))
    }

    fn fields_by_events(xml: &str) -> Option<[Option<String>; 10]> {
        Some(RawMessage::read(xml).ok()?.values.map(|v| v.map(Cow::into_owned)))
    }

    /// A child's value written as WeCom might: CDATA, escaped text, or both, with
    /// white space around.
    fn written() -> impl Strategy<Value = String> {
        let piece = prop_oneof![
            "[a-zA-Z0-9 \\n\\t中文，。#=：]{0,12}".prop_map(|t| cdata(&t)),
            "[a-zA-Z0-9 中文#=：<>&\\x22']{0,12}"
                .prop_map(|t| t.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")),
            Just("&#20013;&#x6587;".to_owned()),
            Just("\r\n".to_owned()),
        ];
        ("[ \\n]{0,2}", proptest::collection::vec(piece, 0..3), "[ \\n]{0,2}")
            .prop_map(|(before, pieces, after)| format!("{before}{}{after}", pieces.concat()))
    }

    proptest! {
        /// The event reader reads every message exactly as serde did.
        #[test]
        fn the_event_reader_agrees_with_serde(
            from in written(), content in written(), key in written(), extra in written(),
            order in proptest::sample::select(vec![0usize, 1, 2]),
        ) {
            let children = [
                format!("<FromUserName>{from}</FromUserName>"),
                format!("<Content>{content}</Content><TaskId/>"),
                format!("<EventKey>{key}</EventKey><Unknown a=\"1\"><Nested>{extra}</Nested></Unknown>"),
            ];
            let mut ordered = children.to_vec();
            ordered.rotate_left(order);
            let xml = format!("<xml><CreateTime>1</CreateTime><MsgType>text</MsgType>{}</xml>", ordered.concat());
            prop_assert_eq!(fields_by_events(&xml), fields_by_serde(&xml), "{}", xml);
        }
    }

    /// Every event of `xml` up to `Eof` from quick-xml's reader, or none at its first error.
    fn reader_events(xml: &str) -> Option<Vec<Event<'_>>> {
        let mut reader = quick_xml::Reader::from_str(xml);
        let mut events = Vec::new();
        loop {
            match reader.read_event().ok()? {
                Event::Eof => return Some(events),
                event => events.push(event),
            }
        }
    }

    /// Every event of `xml` up to `Eof` from [`FastEvents`], or none where it gives up.
    fn fast_events(xml: &str) -> Option<Vec<Event<'_>>> {
        let mut fast = FastEvents::new(xml)?;
        let mut events = Vec::new();
        loop {
            match fast.next().ok()? {
                Event::Eof => return Some(events),
                event => events.push(event),
            }
        }
    }

    /// The message's fields and the envelope's `Encrypt` read from quick-xml's reader
    /// alone (as before the fast reader).
    fn read_by_reader(xml: &str) -> (Option<[Option<String>; 10]>, Option<String>) {
        let mut reader = quick_xml::Reader::from_str(xml);
        let raw = RawMessage::from_events(|| reader.read_event().map_err(|e| XmlError(e.to_string())));
        let mut reader = quick_xml::Reader::from_str(xml);
        let encrypt = envelope_from(|| reader.read_event().map_err(|e| XmlError(e.to_string())));
        (raw.ok().map(|raw| raw.values.map(|v| v.map(Cow::into_owned))), encrypt.ok().map(Cow::into_owned))
    }

    /// Pieces of documents: what the fast reader reads and what it leaves to quick-xml's
    /// reader (references, comments, declarations, attributes, other names, white space
    /// in tags, lowercase CDATA, stray markup, a byte-order mark), in any order.
    fn soup() -> impl Strategy<Value = String> {
        let token = prop_oneof![
            4 => proptest::sample::select(vec![
                "<xml>", "</xml>", "<Encrypt>", "</Encrypt>", "<Content>", "</Content>", "<FromUserName>",
                "</FromUserName>", "<MsgType>", "</MsgType>", "<CreateTime>", "</CreateTime>", "<a>", "</a>",
                "<a/>", "<Content/>", "<_1>", "</_1>", "<1a>", "</1a>",
            ])
            .prop_map(str::to_owned),
            2 => proptest::sample::select(vec![
                "<a />", "<a >", "<a b>", "</a b>", "<a b=\"1\">", "<a b='>'>", "</a >", "<a-b>", "</a-b>", "<中>", "</中>", "<!-- c -->",
                "<!--", "<?xml version=\"1.0\"?>", "<?pi?>", "<!DOCTYPE xml>", "<![cdata[x]]>", "<![CDATA[",
                "<", "</", "<>", "</>", "<a", "&amp;", "&#20013;", "&", "&nbsp;", ";", "\u{feff}", "/>", "]]>",
            ])
            .prop_map(str::to_owned),
            4 => "[a-z0-9 \\t\\n\\r中文，。>\\]\\[!/=\x22']{1,8}",
            3 => "[a-zA-Z0-9 \\r\\n中文，<>&\\]!]{0,8}".prop_map(|t| format!("<![CDATA[{t}]]>")),
        ];
        proptest::collection::vec(token, 0..24).prop_map(|tokens| tokens.concat())
    }

    /// A well-formed document of WeCom's shape, with pieces of the soup as values.
    fn shaped() -> impl Strategy<Value = String> {
        let child = (
            proptest::sample::select(vec!["Encrypt", "Content", "FromUserName", "MsgType", "a", "a ", "a-b", "中"]),
            proptest::collection::vec(prop_oneof![written(), soup()], 0..3),
        )
            .prop_map(|(name, values)| match values.len() {
                0 => format!("<{name}/>"),
                _ => format!("<{name}>{}</{name}>", values.concat()),
            });
        ("[ \\n]{0,2}", proptest::collection::vec(child, 0..6), "[ \\r\\n]{0,2}")
            .prop_map(|(ws, children, end)| format!("{ws}<xml>{}</xml>{end}", children.concat()))
    }

    proptest! {
        /// Where the fast reader reads a document, its events are quick-xml's reader's,
        /// and the message and envelope read from them are the same.
        #[test]
        fn the_fast_reader_gives_the_readers_events_or_gives_up(
            xml in prop_oneof![soup(), shaped(), shaped().prop_map(|xml| format!("\u{feff}{xml}"))],
        ) {
            if let Some(fast) = fast_events(&xml) {
                prop_assert_eq!(Some(fast), reader_events(&xml), "{:?}", xml);
            }
            let encrypt = parse_envelope(&xml).ok().map(Cow::into_owned);
            prop_assert_eq!((fields_by_events(&xml), encrypt), read_by_reader(&xml), "{:?}", xml);
        }
    }

    #[test]
    fn the_fast_reader_reads_what_wecom_sends() {
        let crypto = crate::wecom::crypto::WecomCrypto::new("t", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "ww1");
        let peer = crate::wecom::peer::Peer { crypto: crypto.expect("valid key"), corp_id: "ww1".into(), agent_id: 7 };
        let text = peer.text_xml("zhangsan", "C类 杭州云帆科技，有限公司\n电话：123", "7391234567890123456", 1);
        let card = peer.card_event_xml("zhangsan", "lb-1", "confirm:1", "rc", 1);
        let body = peer.callback(&text, 1).body;
        let reply = peer.crypto.seal_reply(&text_reply("zhangsan", "ww1", 1, "收到"), "1", "2");
        let spaced = "<xml>\n  <Encrypt><![CDATA[abc]]></Encrypt>\n</xml>\n";
        for xml in [text.as_str(), &card, &body, &reply, spaced] {
            let events = fast_events(xml);
            assert!(events.as_ref().is_some_and(|e| e.len() > 3), "{xml}");
            assert_eq!(events, reader_events(xml), "{xml}");
        }
    }

    #[test]
    fn what_serde_refused_the_event_reader_refuses() {
        for xml in [
            "<xml><FromUserName>a</FromUserName><FromUserName>b</FromUserName></xml>",
            "<xml><Content>&nbsp;</Content></xml>",
            "<xml><Content>a</Content>",
            "<xml><Content>a</Other></xml>",
        ] {
            assert_eq!((fields_by_events(xml), fields_by_serde(xml).is_none()), (None, true), "{xml}");
        }
    }

    #[test]
    fn cdata_splits_its_terminator() {
        assert_eq!(cdata("a]]>b"), "<![CDATA[a]]]]><![CDATA[>b]]>");
        let xml = text_reply("u", "c", 1, "x]]>y");
        assert_eq!(parse_text_reply(&xml).unwrap(), "x]]>y");
    }

    #[test]
    fn events_without_msgid_are_keyed_by_sender_time_and_key() {
        let xml = "<xml><FromUserName>zw</FromUserName><CreateTime>17</CreateTime><MsgType>event</MsgType>\
                   <Event>click</Event><EventKey>K</EventKey></xml>";
        assert_eq!(parse_message(xml).unwrap().dedup_key(), "evt:zw:17:click:K");
    }

    #[test]
    fn the_envelope_is_read_with_or_without_cdata_and_must_be_well_formed() {
        let ok = |body: &str| parse_envelope(body).unwrap().into_owned();
        assert_eq!(ok("<xml><Encrypt><![CDATA[abc+/=]]></Encrypt><AgentID><![CDATA[]]></AgentID></xml>"), "abc+/=");
        assert_eq!(ok("<xml>\n  <Encrypt>\n    <![CDATA[abc]]>\n  </Encrypt>\n</xml>"), "abc");
        assert_eq!(ok("<xml><ToUserName>ww1</ToUserName><Encrypt>abc</Encrypt></xml>"), "abc");
        for bad in [
            "<xml><Encrypt>abc</Encrypt>",
            "<xml><Encrypt>abc</Encrypted></xml>",
            "<xml><Other><Encrypt>abc</Encrypt></Other></xml>",
            "<xml><Encrypt>a&amp;b</Encrypt></xml>",
            "<xml></xml>",
            "not xml",
        ] {
            assert!(parse_envelope(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn missing_sender_is_an_error() {
        assert!(parse_message("<xml><MsgType>text</MsgType><CreateTime>1</CreateTime></xml>").is_err());
        assert!(parse_message("not xml").is_err());
    }
}
