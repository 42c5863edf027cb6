"""Time wechatpy on the same per-message callback work as `benches/callback.rs`.

The work per message: parse the POST body (xmltodict), verify the SHA-1 signature,
AES-decrypt the `Encrypt` payload (WeChatCrypto.decrypt_message), then parse the
plaintext XML into a message object (wechatpy.enterprise.parse_message).

Inputs: the two requests that `cargo bench --bench callback` writes to
target/bench-callback-inputs.json (byte-identical to what the Rust bench times). If
that file is missing, equivalent requests are generated here with wechatpy's own
encryption (same plaintext XML, same sizes).

Run via the wrapper, which creates target/bench-venv on first use:

    benches/run-wechatpy.sh            # = target/bench-venv/bin/python benches/wechatpy_callback.py
"""

import argparse
import json
import platform
import statistics
import sys
import timeit
from pathlib import Path

import wechatpy
import xmltodict
from wechatpy.crypto.base import WeChatCipher
from wechatpy.enterprise import parse_message
from wechatpy.enterprise.crypto import WeChatCrypto

# The official WeCom test configuration (same as benches/callback.rs).
TOKEN = "QDG6eK"
ENCODING_AES_KEY = "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C"
CORP_ID = "wx5823bf96d3bd56c7"
AGENT_ID = 1000002

FROM = "zhangsan"
MSG_ID = "7391234567890123456"
CREATE_TIME = 1700000000
SENTENCE = "本周华东区新增销售线索十二条，其中三条已进入报价阶段，请各位及时跟进客户需求。"
SIZES = [("300B", 300), ("2KB", 2048)]

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_INPUTS = ROOT / "target" / "bench-callback-inputs.json"


def text_xml(content):
    """The plaintext XML of a text message, as leadboard's Peer::text_xml builds it."""
    return (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>"
        f"<FromUserName><![CDATA[{FROM}]]></FromUserName><CreateTime>{CREATE_TIME}</CreateTime>"
        f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>"
        f"<MsgId>{MSG_ID}</MsgId><AgentID>{AGENT_ID}</AgentID></xml>"
    )


def content_for(target):
    """Chinese content just long enough for the plaintext XML to reach `target` bytes."""
    content = ""
    i = 0
    while len(text_xml(content).encode()) < target:
        content += SENTENCE[i % len(SENTENCE)]
        i += 1
    return content


def generate_case(crypto, label, target):
    """A signed, encrypted callback request built with wechatpy's own encryption."""
    content = content_for(target)
    plain = text_xml(content)
    nonce = "1372623149"
    reply = crypto.encrypt_message(plain, nonce, str(CREATE_TIME))
    envelope = xmltodict.parse(reply)["xml"]
    body = (
        f"<xml><ToUserName><![CDATA[{CORP_ID}]]></ToUserName>"
        f"<Encrypt><![CDATA[{envelope['Encrypt']}]]></Encrypt>"
        f"<AgentID><![CDATA[{AGENT_ID}]]></AgentID></xml>"
    )
    return {
        "label": label,
        "plain_len": len(plain.encode()),
        "content": content,
        "from": FROM,
        "signature": envelope["MsgSignature"],
        "timestamp": envelope["TimeStamp"],
        "nonce": envelope["Nonce"],
        "body": body,
    }


def load_cases(crypto, path):
    """The Rust bench's requests if present, else freshly generated ones."""
    if path.exists():
        return json.loads(path.read_text(encoding="utf-8")), f"{path} (written by cargo bench)"
    return [generate_case(crypto, label, size) for label, size in SIZES], "generated with wechatpy"


def handle(crypto, case):
    """The measured work: envelope parse + verify + decrypt + message parse."""
    plain = crypto.decrypt_message(case["body"], case["signature"], case["timestamp"], case["nonce"])
    return parse_message(plain)


def check(crypto, case):
    """Fails fast if the timing would be of an error path."""
    message = handle(crypto, case)
    assert message.type == "text", message.type
    assert message.source == case["from"], message.source
    assert message.content == case["content"], "content mismatch"


def time_case(crypto, case, repeat, min_time):
    """Per-message seconds: (median, best) over `repeat` timeit runs."""
    timer = timeit.Timer(lambda: handle(crypto, case))
    number, elapsed = timer.autorange()
    number = max(number, int(number * min_time / max(elapsed, 1e-9)))
    runs = [t / number for t in timer.repeat(repeat=repeat, number=number)]
    return statistics.median(runs), min(runs), number


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inputs", type=Path, default=DEFAULT_INPUTS)
    parser.add_argument("--repeat", type=int, default=15, help="timeit runs per size")
    parser.add_argument("--min-time", type=float, default=0.5, help="seconds per timeit run")
    args = parser.parse_args()

    crypto = WeChatCrypto(TOKEN, ENCODING_AES_KEY, CORP_ID)
    cases, source = load_cases(crypto, args.inputs)
    print(f"python {platform.python_version()}, wechatpy {wechatpy.__version__}, cipher {WeChatCipher.__module__}")
    print(f"inputs: {source}")
    for case in cases:
        check(crypto, case)
        median, best, number = time_case(crypto, case, args.repeat, args.min_time)
        print(
            f"wechatpy/{case['label']}: plaintext {case['plain_len']} B, body {len(case['body'].encode())} B: "
            f"median {median * 1e6:.2f} us/msg, best {best * 1e6:.2f} us/msg "
            f"({args.repeat} x {number} loops)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
