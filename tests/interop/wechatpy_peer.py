"""Plays WeCom with wechatpy, an independent implementation of the callback crypto.

    python wechatpy_peer.py encrypt TIMESTAMP NONCE < plaintext.xml   -> JSON {query, body}
    python wechatpy_peer.py decrypt < reply_envelope.xml              -> plaintext

Credentials come from LB_TOKEN, LB_AES_KEY and LB_CORP_ID.
"""
import json
import os
import sys
import xml.etree.ElementTree as ET

from wechatpy.enterprise.crypto import WeChatCrypto


def crypto():
    return WeChatCrypto(os.environ["LB_TOKEN"], os.environ["LB_AES_KEY"], os.environ["LB_CORP_ID"])


def encrypt(timestamp, nonce):
    envelope = crypto().encrypt_message(sys.stdin.read(), nonce, timestamp)
    root = ET.fromstring(envelope)
    encrypted = root.findtext("Encrypt")
    query = "msg_signature=%s&timestamp=%s&nonce=%s" % (root.findtext("MsgSignature"), timestamp, nonce)
    body = "<xml><ToUserName><![CDATA[%s]]></ToUserName><Encrypt><![CDATA[%s]]></Encrypt><AgentID><![CDATA[1000002]]></AgentID></xml>" % (
        os.environ["LB_CORP_ID"],
        encrypted,
    )
    print(json.dumps({"query": query, "body": body}))


def decrypt():
    envelope = sys.stdin.read()
    root = ET.fromstring(envelope)
    plain = crypto().decrypt_message(
        envelope, root.findtext("MsgSignature"), root.findtext("TimeStamp"), root.findtext("Nonce")
    )
    sys.stdout.write(plain if isinstance(plain, str) else plain.decode("utf-8"))


if __name__ == "__main__":
    if sys.argv[1] == "encrypt":
        encrypt(sys.argv[2], sys.argv[3])
    else:
        decrypt()
