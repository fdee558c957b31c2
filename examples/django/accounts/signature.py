"""Checks entra-auth's x-auth-request-signature (the Go package upstreamsig's Verify, in
Python): that the request's identity headers were set by the filter, for this request,
just now."""
import base64
import hashlib
import hmac
import re
import time

HEADER = "x-auth-request-signature"
IDENTITY_PREFIX = "x-auth-request-"
_VALUE = re.compile(r"v1;t=([1-9][0-9]{0,17});h=([a-z0-9-,]*);s=([A-Za-z0-9_-]{43})")
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")


class SignatureError(Exception):
    """Why a request's identity cannot be trusted."""


def message(t, method, authority, path, headers):
    """The bytes the MAC covers: each field as its length, ':', the field and a newline."""
    out = b""
    for field in ["v1", str(t), method, authority, path] + [x for pair in headers for x in pair]:
        data = field.encode()
        out += str(len(data)).encode() + b":" + data + b"\n"
    return out


def verify(meta, method, authority, path, secrets, max_skew, now=None):
    """Checks the signature of a request whose WSGI environ is meta, or raises
    SignatureError. path is the request target as received (path and query)."""
    value = meta.get("HTTP_X_AUTH_REQUEST_SIGNATURE")
    if value is None:
        raise SignatureError("no signature: the request did not come through the proxy")
    m = _VALUE.fullmatch(value)
    if not m:
        raise SignatureError("malformed signature header")
    t, names, sig = int(m.group(1)), m.group(2), m.group(3)
    names = names.split(",") if names else []
    if len(names) > 32 or len(set(names)) != len(names) or not all(_NAME.fullmatch(n) for n in names):
        raise SignatureError("malformed signature header")
    now = time.time() if now is None else now
    if abs(now - t) > max_skew:
        raise SignatureError("stale signature")
    # WSGI folds '-' and '_' into one name: every identity header, in any spelling, is
    # one META key, which the signature must list.
    signed_keys = {"HTTP_" + n.upper().replace("-", "_") for n in names}
    for key in meta:
        if key.startswith("HTTP_X_AUTH_REQUEST_") and key != "HTTP_X_AUTH_REQUEST_SIGNATURE" and key not in signed_keys:
            raise SignatureError("identity header the proxy did not sign: " + key)
    headers = []
    for n in names:
        v = meta.get("HTTP_" + n.upper().replace("-", "_"))
        if v is None:
            raise SignatureError("signed header missing: " + n)
        headers.append((n, v))
    try:
        mac = base64.urlsafe_b64decode(sig + "=")
    except ValueError:
        raise SignatureError("malformed signature header")
    msg = message(t, method, authority, path, headers)
    for secret in secrets:
        if hmac.compare_digest(hmac.new(secret, msg, hashlib.sha256).digest(), mac):
            return
    raise SignatureError("signature does not match")
