//! WeCom's side of the callback: builds signed, encrypted callback requests and opens
//! passive replies. `leadboard send`, the tests and the load test play WeCom with it.

use crate::wecom::crypto::{Rejection, WecomCrypto};
use crate::wecom::xml::{self, cdata};

/// A signed callback request: the query string and the XML body to POST.
#[derive(Debug, Clone)]
pub struct CallbackRequest {
    pub query: String,
    pub body: String,
}

/// Plays WeCom for one app.
#[derive(Debug, Clone)]
pub struct Peer {
    pub crypto: WecomCrypto,
    pub corp_id: String,
    pub agent_id: i64,
}

/// A passive reply that could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum ReplyError {
    #[error("reply envelope: {0}")]
    Envelope(#[from] xml::XmlError),
    #[error("reply crypto: {0}")]
    Crypto(#[from] Rejection),
}

impl Peer {
    /// The decrypted XML of a text message.
    pub fn text_xml(&self, from: &str, content: &str, msg_id: &str, create_time: i64) -> String {
        format!(
            "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{create_time}</CreateTime>\
             <MsgType><![CDATA[text]]></MsgType><Content>{}</Content><MsgId>{msg_id}</MsgId><AgentID>{}</AgentID></xml>",
            cdata(&self.corp_id),
            cdata(from),
            cdata(content),
            self.agent_id
        )
    }

    /// The decrypted XML of a template-card button press.
    pub fn card_event_xml(
        &self,
        from: &str,
        task_id: &str,
        event_key: &str,
        response_code: &str,
        create_time: i64,
    ) -> String {
        format!(
            "<xml><ToUserName>{}</ToUserName><FromUserName>{}</FromUserName><CreateTime>{create_time}</CreateTime>\
             <MsgType><![CDATA[event]]></MsgType><Event><![CDATA[template_card_event]]></Event>\
             <EventKey>{}</EventKey><TaskId>{}</TaskId><CardType><![CDATA[button_interaction]]></CardType>\
             <ResponseCode>{}</ResponseCode><AgentID>{}</AgentID></xml>",
            cdata(&self.corp_id),
            cdata(from),
            cdata(event_key),
            cdata(task_id),
            cdata(response_code),
            self.agent_id
        )
    }

    /// Encrypts and signs `plain_xml` as a POST callback stamped `timestamp`.
    pub fn callback(&self, plain_xml: &str, timestamp: i64) -> CallbackRequest {
        let encrypt = self.crypto.encrypt(plain_xml);
        let nonce = rand::random::<u32>().to_string();
        let signature = self.crypto.signature(&timestamp.to_string(), &nonce, &encrypt);
        CallbackRequest {
            query: format!("msg_signature={signature}&timestamp={timestamp}&nonce={nonce}"),
            body: format!(
                "<xml><ToUserName>{}</ToUserName><Encrypt>{}</Encrypt><AgentID>{}</AgentID></xml>",
                cdata(&self.corp_id),
                cdata(&encrypt),
                cdata(&self.agent_id.to_string())
            ),
        }
    }

    /// Verifies and decrypts a passive reply; `None` for an empty 200.
    pub fn open_reply(&self, body: &str) -> Result<Option<String>, ReplyError> {
        if body.trim().is_empty() {
            return Ok(None);
        }
        let envelope = xml::parse_reply_envelope(body)?;
        let plain = self.crypto.open(&envelope.signature, &envelope.timestamp, &envelope.nonce, &envelope.encrypt)?;
        Ok(Some(plain))
    }
}
