//! WeCom callback cryptography: message signatures, AES-256-CBC with 32-byte PKCS#7
//! padding, and the `random ‖ length ‖ message ‖ receive id` frame (PROTOCOL.md §2–§4).

use aes::cipher::{BlockDecryptMut, BlockEncryptMut, InnerIvInit, KeyInit, KeyIvInit, block_padding::NoPadding};
use base64::Engine;
use base64::alphabet::STANDARD as STANDARD_ALPHABET;
use base64::engine::DecodePaddingMode;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

type Aes256CbcEnc = cbc::Encryptor<aes::Aes256>;
type Aes256CbcDec = cbc::Decryptor<aes::Aes256Dec>;

/// WeCom pads to 32-byte blocks, not AES's 16.
const PAD_BLOCK: usize = 32;
const RANDOM_LEN: usize = 16;
const HEADER_LEN: usize = RANDOM_LEN + 4;

/// The EncodingAESKey's 43rd character is random, so its trailing bits are usually not
/// zero: the key must be decoded leniently (PROTOCOL.md §3).
const LENIENT_KEY_ENGINE: GeneralPurpose = GeneralPurpose::new(
    &STANDARD_ALPHABET,
    GeneralPurposeConfig::new()
        .with_decode_allow_trailing_bits(true)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Why an inbound payload was refused. Logged and counted, never sent to the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    #[error("signature mismatch")]
    SignatureMismatch,
    #[error("ciphertext is not valid base64")]
    Base64,
    #[error("ciphertext length is not a positive multiple of 32")]
    CiphertextLength,
    #[error("invalid PKCS#7 padding")]
    Padding,
    #[error("frame shorter than its 20-byte header")]
    FrameTooShort,
    #[error("declared message length exceeds the frame")]
    DeclaredLengthExceedsData,
    #[error("receive id does not match the configured corp id")]
    ReceiveIdMismatch,
    #[error("message is not valid UTF-8")]
    NotUtf8,
}

impl Rejection {
    /// Stable reason code, used as a metrics label and in logs (matches the test vectors).
    pub fn reason(self) -> &'static str {
        match self {
            Rejection::SignatureMismatch => "signature_mismatch",
            Rejection::Base64 => "base64_decode_error",
            Rejection::CiphertextLength => "ciphertext_length_invalid",
            Rejection::Padding => "invalid_padding",
            Rejection::FrameTooShort => "frame_too_short",
            Rejection::DeclaredLengthExceedsData => "declared_length_exceeds_data",
            Rejection::ReceiveIdMismatch => "receive_id_mismatch",
            Rejection::NotUtf8 => "invalid_utf8",
        }
    }
}

/// The EncodingAESKey is not 43 base64 characters decoding to 32 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("EncodingAESKey must be 43 base64 characters")]
pub struct InvalidAesKey;

/// Signs, verifies, encrypts and decrypts callback payloads for one app.
#[derive(Clone)]
pub struct WecomCrypto {
    token: String,
    key: [u8; 32],
    /// The key's decryption schedule, expanded once (not on every callback).
    decryption: aes::Aes256Dec,
    receive_id: String,
}

impl std::fmt::Debug for WecomCrypto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WecomCrypto").field("receive_id", &self.receive_id).finish_non_exhaustive()
    }
}

/// Decodes an EncodingAESKey into the 32-byte AES key.
pub fn decode_aes_key(encoding_aes_key: &str) -> Result<[u8; 32], InvalidAesKey> {
    if encoding_aes_key.len() != 43 {
        return Err(InvalidAesKey);
    }
    let bytes = LENIENT_KEY_ENGINE.decode(format!("{encoding_aes_key}=")).map_err(|_| InvalidAesKey)?;
    bytes.try_into().map_err(|_| InvalidAesKey)
}

impl WecomCrypto {
    pub fn new(token: &str, encoding_aes_key: &str, receive_id: &str) -> Result<Self, InvalidAesKey> {
        let key = decode_aes_key(encoding_aes_key)?;
        let decryption = aes::Aes256Dec::new(&key.into());
        Ok(Self { token: token.to_owned(), key, decryption, receive_id: receive_id.to_owned() })
    }

    /// `lowercase_hex(sha1(sorted(token, timestamp, nonce, data).concat()))`.
    pub fn signature(&self, timestamp: &str, nonce: &str, data: &str) -> String {
        let hex = self.signature_hex(timestamp, nonce, data);
        std::str::from_utf8(&hex).expect("hex digits are ASCII").to_owned()
    }

    /// The signature as lowercase hex in a stack buffer: the four parts are hashed where
    /// they are, with no joined copy and no allocation.
    fn signature_hex(&self, timestamp: &str, nonce: &str, data: &str) -> [u8; 40] {
        let mut parts = [self.token.as_str(), timestamp, nonce, data];
        parts.sort_unstable();
        let mut hasher = Sha1::new();
        for part in parts {
            hasher.update(part.as_bytes());
        }
        let mut hex = [0u8; 40];
        hex::encode_to_slice(hasher.finalize(), &mut hex).expect("40 hex digits for 20 bytes");
        hex
    }

    /// Checks a signature in constant time.
    pub fn verify(&self, signature: &str, timestamp: &str, nonce: &str, data: &str) -> Result<(), Rejection> {
        let expected = self.signature_hex(timestamp, nonce, data);
        if bool::from(expected.as_slice().ct_eq(signature.as_bytes())) {
            Ok(())
        } else {
            Err(Rejection::SignatureMismatch)
        }
    }

    /// Verifies the signature, then decrypts: the order WeCom's own samples use.
    pub fn open(&self, signature: &str, timestamp: &str, nonce: &str, data: &str) -> Result<String, Rejection> {
        let mut buf = Vec::new();
        self.open_in(signature, timestamp, nonce, data, &mut buf).map(str::to_owned)
    }

    /// [`open`](Self::open) into a caller's buffer: the message is returned borrowed from
    /// `buf`, where it was decrypted (the callback's path: no copy of the message).
    pub fn open_in<'b>(
        &self,
        signature: &str,
        timestamp: &str,
        nonce: &str,
        data: &str,
        buf: &'b mut Vec<u8>,
    ) -> Result<&'b str, Rejection> {
        self.verify(signature, timestamp, nonce, data)?;
        self.decrypt_in(data, buf)
    }

    /// Decrypts a base64 ciphertext and checks its frame; returns the message.
    pub fn decrypt(&self, data: &str) -> Result<String, Rejection> {
        let mut buf = Vec::new();
        self.decrypt_in(data, &mut buf).map(str::to_owned)
    }

    /// [`decrypt`](Self::decrypt) into a caller's buffer (cleared first); the message is
    /// borrowed from it. Base64 is decoded with SIMD (`base64-simd`, strict: canonical
    /// padding and zero trailing bits, as the `base64` crate's `STANDARD`), and UTF-8 is
    /// checked with SIMD (`simdutf8`): std's check is byte by byte for non-ASCII text.
    pub fn decrypt_in<'b>(&self, data: &str, buf: &'b mut Vec<u8>) -> Result<&'b str, Rejection> {
        buf.clear();
        base64_simd::STANDARD.decode_append(data, buf).map_err(|_| Rejection::Base64)?;
        if buf.is_empty() || !buf.len().is_multiple_of(PAD_BLOCK) {
            return Err(Rejection::CiphertextLength);
        }
        let plain = Aes256CbcDec::inner_iv_init(self.decryption.clone(), self.iv().into())
            .decrypt_padded_mut::<NoPadding>(buf)
            .map_err(|_| Rejection::CiphertextLength)?;
        let frame = unpad(plain)?;
        if frame.len() < HEADER_LEN {
            return Err(Rejection::FrameTooShort);
        }
        let declared = u32::from_be_bytes([frame[16], frame[17], frame[18], frame[19]]) as usize;
        let msg_end = HEADER_LEN
            .checked_add(declared)
            .filter(|end| *end <= frame.len())
            .ok_or(Rejection::DeclaredLengthExceedsData)?;
        if &frame[msg_end..] != self.receive_id.as_bytes() {
            return Err(Rejection::ReceiveIdMismatch);
        }
        simdutf8::basic::from_utf8(&frame[HEADER_LEN..msg_end]).map_err(|_| Rejection::NotUtf8)
    }

    /// Encrypts `msg` with a fresh random prefix; returns base64.
    pub fn encrypt(&self, msg: &str) -> String {
        self.encrypt_with_random(msg, rand::random())
    }

    /// Encrypts with a given random prefix (test vectors pin it).
    pub fn encrypt_with_random(&self, msg: &str, random: [u8; RANDOM_LEN]) -> String {
        let mut frame = Vec::with_capacity(HEADER_LEN + msg.len() + self.receive_id.len() + PAD_BLOCK);
        frame.extend_from_slice(&random);
        frame.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        frame.extend_from_slice(msg.as_bytes());
        frame.extend_from_slice(self.receive_id.as_bytes());
        let pad = PAD_BLOCK - frame.len() % PAD_BLOCK;
        frame.resize(frame.len() + pad, pad as u8);
        let len = frame.len();
        let cipher = Aes256CbcEnc::new(&self.key.into(), self.iv().into())
            .encrypt_padded_mut::<NoPadding>(&mut frame, len)
            .expect("frame is padded to a whole number of blocks");
        STANDARD.encode(cipher)
    }

    /// Encrypts and signs a passive reply, returning the XML envelope WeCom expects.
    pub fn seal_reply(&self, msg: &str, timestamp: &str, nonce: &str) -> String {
        self.envelope(&self.encrypt(msg), timestamp, nonce)
    }

    /// Signs an already encrypted reply and wraps it in the passive-reply envelope.
    pub fn envelope(&self, encrypt: &str, timestamp: &str, nonce: &str) -> String {
        let signature = self.signature(timestamp, nonce, encrypt);
        format!(
            "<xml><Encrypt><![CDATA[{encrypt}]]></Encrypt><MsgSignature><![CDATA[{signature}]]></MsgSignature>\
             <TimeStamp>{timestamp}</TimeStamp><Nonce><![CDATA[{nonce}]]></Nonce></xml>"
        )
    }

    fn iv(&self) -> &[u8; 16] {
        self.key[..16].try_into().expect("key is 32 bytes")
    }
}

/// Strict PKCS#7 removal for 32-byte blocks: 1..=32 bytes, all equal to the count.
fn unpad(plain: &[u8]) -> Result<&[u8], Rejection> {
    let n = *plain.last().ok_or(Rejection::Padding)? as usize;
    if n == 0 || n > PAD_BLOCK || n > plain.len() {
        return Err(Rejection::Padding);
    }
    let (frame, padding) = plain.split_at(plain.len() - n);
    if padding.iter().all(|b| *b as usize == n) { Ok(frame) } else { Err(Rejection::Padding) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// What the `base64` crate's strict `STANDARD` decodes (the reference, used before
    /// `base64-simd`), and what `base64-simd` decodes, for the same text.
    fn both(text: &str) -> (Option<Vec<u8>>, Option<Vec<u8>>) {
        let mut simd = vec![1, 2, 3];
        let simd = base64_simd::STANDARD.decode_append(text, &mut simd).ok().map(|()| simd[3..].to_vec());
        (STANDARD.decode(text).ok(), simd)
    }

    /// A valid encoding with one character replaced, cut or added: non-canonical padding
    /// and trailing bits, stray `=`, white space and characters outside the alphabet.
    fn altered() -> impl Strategy<Value = String> {
        let edit = prop_oneof![Just(None), "[A-Za-z0-9+/= \\n\\-_.\u{e9}]".prop_map(Some),];
        (proptest::collection::vec(any::<u8>(), 0..300), any::<prop::sample::Index>(), edit, 0..3usize).prop_map(
            |(bytes, at, edit, cut)| {
                let mut text = STANDARD.encode(bytes).into_bytes();
                if !text.is_empty() {
                    let i = at.index(text.len());
                    match edit {
                        Some(c) => {
                            let mut c = c.into_bytes();
                            c.truncate(1);
                            text.splice(i..=i, c);
                        }
                        None => text.truncate(text.len().saturating_sub(cut)),
                    }
                }
                String::from_utf8_lossy(&text).into_owned()
            },
        )
    }

    proptest! {
        /// The SIMD decoder accepts exactly what the strict scalar one accepted, with the
        /// same bytes, on valid and altered encodings.
        #[test]
        fn the_simd_base64_decoder_agrees_with_the_strict_one(text in altered()) {
            let (reference, simd) = both(&text);
            prop_assert_eq!(simd, reference, "{:?}", text);
        }

        /// Any text at all, including long runs that take the SIMD loop.
        #[test]
        fn the_simd_base64_decoder_agrees_on_any_text(text in "[A-Za-z0-9+/=]{0,200}") {
            let (reference, simd) = both(&text);
            prop_assert_eq!(simd, reference, "{:?}", text);
        }
    }

    #[test]
    fn the_simd_base64_decoder_refuses_what_the_strict_one_refused() {
        // Non-zero trailing bits, missing and extra padding, white space.
        for text in ["QR==", "QUI=QQ==", "QQ", "QQ===", "QUJD\n", " QUJD", "QUJ", "Q===", "===="] {
            assert_eq!(both(text), (None, None), "{text}");
        }
        assert_eq!(both("QUJD"), (Some(b"ABC".to_vec()), Some(b"ABC".to_vec())));
    }
}
