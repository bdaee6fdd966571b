"""Each carrier's signature arithmetic, exactly as it documents it (pure hashing; secrets are passed in).

- SF 丰桥 standard API: msgDigest = Base64(MD5(urlencode_utf8(msgData + timestamp + checkword))), where
  urlencode is Java's URLEncoder (space → '+'), i.e. Python's `quote_plus`.
- Deppon 德邦开放平台: a form of companyCode, params, timestamp, digest with
  digest = Base64(hex(MD5(params + appkey + timestamp))) — Base64 of the 32-character lower-case hex string, not of
  the raw 16 bytes. Found with the search tool: an integration review of the Deppon open platform (dpapi.deppon.com)
  states "签名 = Base64( MD5十六进制字符串( params + appkey + timestamp ).getBytes() )" and that the request is a form
  POST (`application/x-www-form-urlencoded`) with fields companyCode, digest, timestamp, params; public clients call
  `.../dop-interface-async/standard-order/createOrderNotify.action` and
  `.../dop-interface-sync/standard-query/newTraceQuery.action`.
- Kuaidi100 快递100: a subscription push carries `sign = upper(MD5(param + salt))`; a real-time query
  (`/poll/query.do`) is signed `upper(MD5(param + key + customer))`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from urllib.parse import quote_plus


def sf_digest(msg_data: str, timestamp: str, checkword: str) -> str:
    encoded = quote_plus(msg_data + timestamp + checkword, encoding="utf-8")
    return base64.b64encode(hashlib.md5(encoded.encode()).digest()).decode()


def deppon_digest(params: str, appkey: str, timestamp: str) -> str:
    hexdigest = hashlib.md5((params + appkey + timestamp).encode("utf-8")).hexdigest()
    return base64.b64encode(hexdigest.encode()).decode()


def kuaidi100_push_sign(param: str, salt: str) -> str:
    return hashlib.md5((param + salt).encode("utf-8")).hexdigest().upper()


def kuaidi100_query_sign(param: str, key: str, customer: str) -> str:
    return hashlib.md5((param + key + customer).encode("utf-8")).hexdigest().upper()


def same(a: str, b: str) -> bool:
    """Constant-time comparison of two signatures."""
    return hmac.compare_digest(a.encode(), b.encode())
