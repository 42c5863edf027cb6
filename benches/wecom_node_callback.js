// Time Tencent's @wecom/crypto with fast-xml-parser on the same per-message callback
// work as benches/callback.rs: parse the POST body, check the SHA-1 signature, decrypt
// (base64 + AES-256-CBC, unframe, check the receive id), parse the plaintext XML.
//
// Inputs: target/bench-callback-inputs.json, written by `cargo bench --bench callback`
// (byte-identical to what the Rust bench times). Each input is checked to decrypt to
// the expected sender and content before it is timed. Run via benches/run-node.sh.
'use strict';

const fs = require('fs');
const path = require('path');
const { getSignature, decrypt } = require('@wecom/crypto');
const { XMLParser } = require('fast-xml-parser');

const TOKEN = 'QDG6eK';
const ENCODING_AES_KEY = 'jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C';
const CORP_ID = 'wx5823bf96d3bd56c7';
const REPEAT = 15;
const MIN_SECONDS = 0.5;

// Values as strings (MsgId does not fit a double); CDATA read as text.
const parser = new XMLParser({ parseTagValue: false });

function handle(c) {
  const encrypt = parser.parse(c.body).xml.Encrypt;
  if (getSignature(TOKEN, c.timestamp, c.nonce, encrypt) !== c.signature) throw new Error('bad signature');
  const { message, id } = decrypt(ENCODING_AES_KEY, encrypt);
  if (id !== CORP_ID) throw new Error('receive id mismatch');
  return parser.parse(message).xml;
}

function check(c) {
  const msg = handle(c);
  if (msg.MsgType !== 'text' || msg.FromUserName !== c.from || msg.Content !== c.content) {
    throw new Error(`${c.label}: did not decrypt to the expected message`);
  }
}

function perMessageSeconds(c, loops) {
  const started = process.hrtime.bigint();
  for (let i = 0; i < loops; i++) handle(c);
  return Number(process.hrtime.bigint() - started) / 1e9 / loops;
}

const inputs = path.join(__dirname, '..', 'target', 'bench-callback-inputs.json');
const cases = JSON.parse(fs.readFileSync(inputs, 'utf8'));
// fast-xml-parser does not export its package.json: read the installed file.
const version = (name) =>
  JSON.parse(fs.readFileSync(path.join(process.env.NODE_PATH || 'node_modules', name, 'package.json'), 'utf8')).version;
console.log(`node ${process.version}, @wecom/crypto ${version('@wecom/crypto')}, fast-xml-parser ${version('fast-xml-parser')}`);
for (const c of cases) {
  check(c);
  let loops = 1000;
  while (perMessageSeconds(c, loops) * loops < 0.1) loops *= 2;
  loops = Math.ceil((loops * MIN_SECONDS) / (perMessageSeconds(c, loops) * loops));
  const runs = [];
  for (let r = 0; r < REPEAT; r++) runs.push(perMessageSeconds(c, loops));
  runs.sort((a, b) => a - b);
  const median = runs[Math.floor(runs.length / 2)];
  console.log(
    `node/${c.label}: plaintext ${c.plain_len} B, body ${Buffer.byteLength(c.body)} B: ` +
      `median ${(median * 1e6).toFixed(2)} us/msg, best ${(runs[0] * 1e6).toFixed(2)} us/msg (${REPEAT} x ${loops} loops)`,
  );
}
