"""The serving port's rules: which paths it answers, how a body is read, who may call.

Plain functions over bytes and headers (no front state): the front (proxy.py) asks
`route` what a request is, inflates its body once with `decode_body`, refuses web pages
(`from_a_web_page`) and answers errors in a shape both protocols' clients read (`error`).
"""

from __future__ import annotations

import os
import re
import zlib
from urllib.parse import parse_qs

from aiohttp import web

from core.protocol import seldon
from core.protocol import wire as protocol_wire

HOST = os.environ.get("ZENKUBE_HOST", "127.0.0.1")
MAX_BODY = 64 * 1024 * 1024  # the model servers' own cap; larger bodies get 413 here
MAX_ANSWER = 4 * MAX_BODY  # what the front inflates of a gzipped answer to record it
# Headers that describe one connection, not the request (RFC 9110 §7.6.1).
HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
}


def error(status: int, reason: str, headers: dict | None = None) -> web.Response:
    """An error both protocols' clients read: Seldon's `status` block and V2's `error`."""
    return web.json_response(
        {"status": {"code": status, "status": "FAILURE", "info": reason}, "error": reason},
        status=status,
        headers=headers,
    )


def short(text: str, limit: int = 60) -> str:
    """A client's text echoed in a reason: at most a short prefix."""
    return repr(text) if len(text) <= limit else repr(text[:limit]) + f"… ({len(text)} chars)"


# -- what the serving port answers -----------------------------------------------------
NAME = r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,199}"  # a model name or version: one plain segment
MODEL = rf"/v2/models/{NAME}(?:/versions/{NAME})?"
READ = frozenset({"GET", "HEAD"})
ROUTES: dict[str, list[tuple[str, frozenset, re.Pattern]]] = {
    "seldon": [  # Seldon Core 1.18's MODEL endpoints (seldon_core/wrapper.py)
        ("predict", frozenset({"POST"}), re.compile(r"/api/v[01]\.[01]/predictions")),
        ("predict", frozenset({"GET", "POST"}), re.compile(r"/predict")),
        ("feedback", frozenset({"POST"}), re.compile(r"/api/v[01]\.[01]/feedback|/send-feedback")),
        ("health", READ, re.compile(r"/health/(?:ping|status)|/api/v1\.0/health/status")),
        ("metadata", READ, re.compile(r"/metadata|/api/v1\.0/metadata")),
    ],
    "v2": [  # the Open Inference Protocol's REST paths (no repository, no docs, no stream)
        ("predict", frozenset({"POST"}), re.compile(rf"{MODEL}/infer")),
        ("feedback", frozenset({"POST"}), re.compile(rf"/v2/models/{NAME}/feedback")),
        ("health", READ, re.compile(rf"/v2/health/(?:live|ready)|{MODEL}/ready")),
        ("metadata", READ, re.compile(rf"/v2|{MODEL}")),
    ],
}
HEALTH = {"seldon": "/health/ping", "v2": "/v2/health/ready"}  # ready once the model is
OWN_ROUTES = [("metrics", READ, re.compile(r"/metrics"))]
WHERE = {
    "seldon": "predictions are POSTed to /api/v1.0/predictions",
    "v2": "predictions are POSTed to /v2/models/<name>/infer",
}


def route(protocol: str, method: str, path: str) -> tuple[str, int, frozenset]:
    """(handler, status, methods) of a request: status 200 when it may be answered, 404
    for a path this protocol does not serve, 405 for a method the path does not take."""
    table = OWN_ROUTES + ROUTES.get(protocol, ROUTES["seldon"] + ROUTES["v2"])
    allowed: frozenset = frozenset()
    for handler, methods, pattern in table:
        if pattern.fullmatch(path):
            if method in methods:
                return handler, 200, methods
            allowed |= methods
            found = handler
    if allowed:
        return found, 405, allowed
    return "other", 404, allowed


# -- one decoding step for Content-Encoding ----------------------------------------------
class BodyError(ValueError):
    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


def decode_body(body: bytes, encoding: str | None, limit: int = MAX_BODY) -> bytes:
    """The body a client sent, inflated once (gzip or deflate) to at most `limit` bytes.

    One encoding only: a list of them is 415, as is an unknown one; data that is not what
    its label says is 400; an inflated size over `limit` is 413 (a small gzip bomb costs
    no more than the limit). Whatever the inflated body holds (gzip again, say) is the
    body: it is forwarded without the header and read as JSON by the server."""
    coding = (encoding or "identity").strip().lower()
    if coding in ("", "identity"):
        return body
    if "," in coding:
        raise BodyError(415, "send one Content-Encoding (gzip, deflate or identity), not a list")
    if coding in ("gzip", "x-gzip"):
        wbits = (16 + zlib.MAX_WBITS,)
    elif coding == "deflate":  # RFC 9110 says zlib data; some clients send raw deflate
        wbits = (zlib.MAX_WBITS, -zlib.MAX_WBITS)
    else:
        raise BodyError(
            415,
            f"Content-Encoding {short(coding, 20)} is not supported: use gzip, deflate or identity",
        )
    for bits in wbits:
        inflate = zlib.decompressobj(bits)
        try:
            data = inflate.decompress(body, limit + 1)
        except zlib.error:
            continue
        if len(data) > limit:
            raise BodyError(
                413, f"the body inflates to more than {limit // 2**20} MiB; the limit is that"
            )
        if not inflate.eof or inflate.unused_data:
            raise BodyError(400, f"the body is not one complete {coding} stream")
        return data
    raise BodyError(
        400, f"the body is labelled Content-Encoding: {coding} but is not {coding} data"
    )


# -- who may call: scripts and Seldon's client, not web pages ------------------------------
FORM = "application/x-www-form-urlencoded"


def from_a_web_page(headers) -> bool:
    """A browser marks what a page of another origin makes it send: `Origin` on every
    cross-origin POST (a form's too) and preflight, `Sec-Fetch-Site: cross-site|same-site`
    (Chrome 76+, Firefox 90+, Safari 16.4+) also on a GET an <img> or link sends without
    Origin. Scripts, curl and seldon-core's SeldonClient send neither; a page opened by
    hand sends `none`. So a form-encoded body (Seldon's `json=` field) can be served to
    SeldonClient and refused to a page's form by these headers, not by its content type."""
    site = headers.get("Sec-Fetch-Site", "none").strip().lower()
    return "Origin" in headers or site not in ("none", "same-origin")


def seldon_message(request: web.Request, body: bytes) -> bytes:
    """The JSON of a Seldon message sent as the form field or query parameter `json` (as
    SeldonClient's microservice calls post it); else the body itself, which Seldon then
    reads as JSON whatever its label (seldon_core/flask_utils.py, get_request)."""
    try:
        fields = parse_qs(body.decode(), max_num_fields=100) if body else {}
    except (UnicodeDecodeError, ValueError):
        fields = {}
    text = (fields.get("json") or [None])[0] or request.query.get("json")
    return text.encode() if text else body


def without_truth(message: bytes) -> bool:
    """Seldon feedback that brings no labels, only a reward for earlier answers
    (SeldonClient.microservice_feedback sends no truth): nothing to record, and Seldon's
    server takes it as in a cluster (seldon_core/seldon_methods.py send_feedback counts
    the reward)."""
    try:
        return seldon.reward_only(protocol_wire.loads(message))
    except (ValueError, RecursionError):
        return False


def answer_text(body: bytes, encoding: str | None) -> bytes:
    """An answer's JSON for metrics and the recorder (MLServer gzips when asked to)."""
    try:
        return decode_body(body, encoding, MAX_ANSWER)
    except BodyError:
        return b""
