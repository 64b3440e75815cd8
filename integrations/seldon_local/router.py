"""The stable front of one served model: every request goes to the current model server.

A redeploy starts the new server on a port of its own, proves it (health and a smoke
prediction), then tells this front to send new requests there; requests already on the
old server finish, and only then is the old server stopped. The client-facing port never
closes, so no request is refused during a swap (a cluster's Service does the same with
its endpoints).

Runs as its own process, standalone (the standard library, aiohttp and prometheus_client):

    python router.py --port 8000 --backend 41234 --record router.json --control control.sock

The serving port answers only what the protocol serves: inference, health, metadata and
feedback paths (ROUTES), and the front's own GET /metrics; anything else is 404 (unknown
path) or 405 (known path, wrong method), so V2's model-repository API (load/unload) and
Seldon's other endpoints are never reached from it. A request a web page makes (an
`Origin` header, or Sec-Fetch-Site cross-site/same-site: from_a_web_page) is refused
unless that origin is listed in ZENKUBE_CORS_ORIGINS or --cors-origins; the model
servers' own CORS headers are removed. So Seldon's form field `json=` (SeldonClient's
microservice calls) is taken on predictions and feedback, and refused to a page's form.

Control is on a Unix socket (--control, in the model's 0700 state folder; the socket
itself 0600), so only the owner can switch the backend or read pids and ports:
    PUT /backend {"port": N, "version": V, "protocol": P, "server_dir": D}   send new requests to N
    GET /router  {"backend": N, "inflight": {port: count}, "restarts": R, "release": {...}, ...}
    PUT /release {"mode": "canary"|"shadow", "percent": P, "port": N, "version": V,
                  "server_dir": D, "columns": "[...]", "thresholds": {...}}   start a release
    GET /release  the last release's state ({} when there was none)
    POST /release/end {"outcome": "promote"|"abort", "by": W, "reason": R}   end it; answers
                  once the port that leaves has no request in flight (again for a retry
                  of how it ended; 409 when no release is active)

A release serves a candidate server beside the champion. Canary: PERCENT % of predictions
go to the candidate, sticky by the caller's request id (Seldon-Puid; V2: X-Request-Id or
the body's "id"), else by a smooth weighted counter; a candidate answer other than 200 (or
none) is re-sent to the champion and the caller gets the champion's (a fallback). Shadow:
each answered prediction is copied to the candidate as a background task (at most
ZENKUBE_SHADOW_INFLIGHT=32 in flight; more are skipped and counted); its answer is
evidence and recorded, never returned. Health, metadata and feedback go to the champion;
feedback labels are joined by request id to both roles' answers. Every 0.5 s the gate
(core/release/gate.py) judges the evidence per role: an abort (or the budget
spent) stops the candidate's traffic at once; a promote marks the release "decided" and
the controller ends it (POST /release/end promote: the candidate becomes the backend, as
PUT /backend would). The state is kept in release.json beside the record; a release a
previous front process left active is recorded as aborted when this one starts (fail
closed: the new process sends that candidate nothing).

Supervision: the server behind the front (its record `server.json` and launch spec
`server.launch.json` in `server_dir`) is restarted when it dies, on the same port, with
backoff (1 s doubling to 60 s; reset after 60 s up); restarts are counted in
zenkube_server_restarts_total and in the control answer.

Metrics for Prometheus at GET /metrics: every answered request by handler and HTTP status,
prediction latency and rows scored, labelled with model, version, protocol and role
(champion; during a release canary or shadow for the candidate's answers); and the
latest monitoring run's drift share and quality (core/monitoring/gauges.py).

With --traffic-dir, every answered prediction (its rows, prediction and request id) is
kept off the request path and written every few seconds as a Parquet batch there
(core/traffic/rows.py), never to the log, with the version and role that answered;
labels sent to the feedback endpoint (Seldon: POST /api/v1.0/feedback; V2: POST
/v2/models/<name>/feedback) are written beside them. What cannot be recorded (buffer full, unreadable, a failed write) is counted in
zenkube_traffic_dropped_total{reason} and logged once per reason; recording goes on.

This front's log and the server's log are kept under ZENKUBE_LOG_MAX_BYTES each (default
10 MiB; the previous part is kept as `<log>.1`).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import time
import uuid
import zlib
from pathlib import Path
from urllib.parse import parse_qs

from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector, web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
)
from prometheus_client.exposition import generate_latest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root
from core.monitoring.gauges import MonitoringGauges  # noqa: E402
from core.release import gate as release_gate  # noqa: E402
from core.traffic.rows import TrafficBuffer, TrafficError, feedback_labels  # noqa: E402
from integrations.seldon_local import process  # noqa: E402

disable_created_metrics()  # no *_created series: they carry nothing a query uses

HOST = os.environ.get("ZENKUBE_HOST", "127.0.0.1")
MAX_BODY = 64 * 1024 * 1024  # the model servers' own cap; larger bodies get 413 here
MAX_ANSWER = 4 * MAX_BODY  # what the front inflates of a gzipped answer to record it
LOG_MAX_BYTES = int(os.environ.get("ZENKUBE_LOG_MAX_BYTES", str(10 * 2**20)))
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
log = logging.getLogger("zenkube.front")


def error(status: int, reason: str, headers: dict | None = None) -> web.Response:
    """An error both protocols' clients read: Seldon's `status` block and V2's `error`."""
    return web.json_response(
        {"status": {"code": status, "status": "FAILURE", "info": reason}, "error": reason},
        status=status,
        headers=headers,
    )


def read_json(path: Path) -> dict:
    """A JSON object from a file ({} when it is missing, unreadable or not an object)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def write_json(path: Path, data: dict) -> None:
    """Written whole or not at all (a reader never sees half a file)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, default=str))
    tmp.replace(path)


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
        parsed = json.loads(message)
    except (ValueError, RecursionError):
        return False
    return (
        isinstance(parsed, dict)
        and "truth" not in parsed
        and bool({"reward", "request", "response"} & parsed.keys())
    )


def answer_text(body: bytes, encoding: str | None) -> bytes:
    """An answer's JSON for metrics and the recorder (MLServer gzips when asked to)."""
    try:
        return decode_body(body, encoding, MAX_ANSWER)
    except BodyError:
        return b""


# What router.json keeps of a release (release.json beside it has the evidence too).
RELEASE_KEYS = ("active", "state", "mode", "percent", "champion", "candidate", "started_at",
                "ended_at", "decision", "resumed_at")  # fmt: skip
LABELS = ("model", "version", "protocol")
ROLE_LABELS = (*LABELS, "role")  # role: champion, canary (a release's candidate), shadow


class Metrics:
    """What Prometheus scrapes from one served model (its own registry, no process noise)."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "zenkube_requests",
            "Requests answered, by handler (predict, feedback, health, metadata, metrics, "
            "other) and HTTP status; 404 and 405 included.",
            [*ROLE_LABELS, "handler", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "zenkube_request_duration_seconds",
            "Time to answer a prediction request, seen by the front.",
            ROLE_LABELS,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.rows = Counter(
            "zenkube_rows", "Rows scored (answered 200).", ROLE_LABELS, registry=self.registry
        )
        self.dropped = Counter(
            "zenkube_traffic_dropped",
            "Answered requests or feedback not recorded for monitoring, by reason "
            "(buffer_full, unreadable, write_failed).",
            [*LABELS, "reason"],
            registry=self.registry,
        )
        self.restarts = Counter(
            "zenkube_server_restarts",
            "Times the front restarted a model server that had died.",
            LABELS,
            registry=self.registry,
        )
        self.front_restarts = Counter(
            "zenkube_front_restarts",
            "Times the front's keeper restarted the front (this process) after it died; "
            "the other series start again from zero at each restart.",
            LABELS,
            registry=self.registry,
        )

    def count(self, labels: tuple[str, ...], handler: str, status: int) -> None:
        """One answered request; `labels`: model, version, protocol and role (champion
        when left out)."""
        self.requests.labels(*_with_role(labels), handler, str(status)).inc()

    def observe(self, labels: tuple[str, ...], status: int, seconds: float, body: bytes):
        """A prediction: its latency, and the rows of a 200 (counted once, by `count`)."""
        labels = _with_role(labels)
        self.latency.labels(*labels).observe(seconds)
        if status == 200:
            self.rows.labels(*labels).inc(rows_in(labels[2], body))


def _with_role(labels: tuple[str, ...]) -> tuple[str, ...]:
    return labels if len(labels) == len(ROLE_LABELS) else (*labels[:3], "champion")


def rows_in(protocol: str, body: bytes) -> int:
    """How many rows a 200 answer scored (Seldon: ndarray length; V2: the output's shape)."""
    try:
        answer = json.loads(body)
        if protocol == "v2":
            return int(answer["outputs"][0]["shape"][0])
        return len(answer["data"]["ndarray"])
    except (ValueError, KeyError, IndexError, TypeError, RecursionError):
        return 0


def read_answer(protocol: str, text: bytes) -> tuple[str, list]:
    """(request id, one prediction per row) of a 200 answer; ("", []) when unreadable."""
    try:
        answer = json.loads(text)
        if protocol == "v2":
            values = answer["outputs"][0]["data"]
            request_id = answer.get("id") or ""
        else:
            values = answer["data"]["ndarray"]
            request_id = (answer.get("meta") or {}).get("puid") or ""
        values = [v[0] if isinstance(v, list) and len(v) == 1 else v for v in values]
        return str(request_id), values
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError):
        return "", []


STICKY_BODY_BYTES = 256 * 1024  # a V2 body's "id" is read for stickiness up to this size


def sticky_id(protocol: str, request: web.Request, body: bytes) -> str | None:
    """The request id a caller sent, if any: Seldon's Seldon-Puid header; V2's
    X-Request-Id header or the body's "id" (bodies up to 256 KiB are read for it)."""
    if protocol != "v2":
        return request.headers.get("Seldon-Puid") or None
    if request.headers.get("X-Request-Id"):
        return request.headers["X-Request-Id"]
    if len(body) <= STICKY_BODY_BYTES and b'"id"' in body:
        try:
            found = json.loads(body).get("id")
        except (ValueError, AttributeError, RecursionError):
            return None
        return str(found) if isinstance(found, str | int) and str(found) else None
    return None


MAX_SHADOW_INFLIGHT = int(os.environ.get("ZENKUBE_SHADOW_INFLIGHT", "32"))
MAX_REMEMBERED = 1_000_000  # predictions kept to join feedback labels to, per release


class Release:
    """A candidate model server beside the champion: its mode, share, evidence, state."""

    def __init__(self, wanted: dict, champion: tuple[str, int], model: str, protocol: str):
        mode = wanted.get("mode")
        if mode not in ("canary", "shadow"):
            raise ValueError('"mode" is "canary" or "shadow"')
        try:
            self.port = int(wanted["port"])
            percent = float(wanted.get("percent", 100.0 if mode == "shadow" else 10.0))
        except (KeyError, TypeError, ValueError):
            raise ValueError('"port" is the candidate server\'s port (a number)') from None
        if mode == "canary" and not 0 < percent <= 100:
            raise ValueError(f'"percent" of a canary is over 0 and at most 100, not {percent}')
        if self.port == champion[1]:
            raise ValueError("the candidate's port is the champion's: start it on its own port")
        if not isinstance(wanted.get("thresholds") or {}, dict):
            raise ValueError('"thresholds" is an object of release thresholds')
        try:
            self.thresholds = release_gate.thresholds(wanted.get("thresholds"))
        except release_gate.ThresholdError as exc:
            raise ValueError(str(exc)) from None
        columns = wanted.get("columns") or []
        try:
            self.columns = json.loads(columns) if isinstance(columns, str) else list(columns)
        except (ValueError, TypeError):
            raise ValueError('"columns" is a JSON list of the input columns') from None
        self.mode, self.percent = mode, 100.0 if mode == "shadow" else percent
        self.version = str(wanted.get("version") or "")
        self.server_dir = str(wanted.get("server_dir") or "")
        self.model, self.protocol = model, protocol
        self.champion_version, self.champion_port = champion
        self.state, self.decision, self.next = "running", None, "starting"
        self.started_at, self.ended_at = time.time(), None
        self.allocator = release_gate.Allocator(self.percent)
        self.roles = {"champion": release_gate.RoleStats(), "candidate": release_gate.RoleStats()}
        self.answers: collections.OrderedDict[str, dict] = collections.OrderedDict()
        self.remembered = 0  # predictions held in `answers`
        self.shadow_inflight = 0
        self.shadow_skipped = 0
        self.shadow_tasks: set[asyncio.Task] = set()
        self.answered = collections.Counter()  # answers callers got, by role
        self.resumed_at: list[float] = []  # when a restarted front resumed it

    @classmethod
    def resumed(cls, state: dict, model: str, protocol: str) -> Release:
        """An active release a killed front process left (its release.json), resumed by
        the restarted front: the same candidate, mode, share, thresholds, start (the
        budget goes on) and decision; the evidence starts again (it was in memory)."""
        candidate, champion = state.get("candidate") or {}, state.get("champion") or {}
        wanted = {
            "mode": state.get("mode"),
            "percent": state.get("percent"),
            "port": candidate.get("port"),
            "version": candidate.get("version"),
            "columns": candidate.get("columns") or [],
            "server_dir": candidate.get("server_dir"),
            "thresholds": state.get("thresholds") or {},
        }
        try:
            champ = (str(champion["version"]), int(champion["port"]))
        except (KeyError, TypeError, ValueError):
            raise ValueError("its champion has no port") from None
        release = cls(wanted, champ, model, protocol)
        release.started_at = float(state.get("started_at") or release.started_at)
        if state.get("state") == "decided" and state.get("decision"):
            release.state, release.decision = "decided", state["decision"]
        release.resumed_at = [*(state.get("resumed_at") or []), time.time()]
        release.next = "the front restarted: the release goes on; evidence counts from the restart"
        return release

    @property
    def active(self) -> bool:
        return self.state in ("running", "decided")

    def port_of(self, role: str) -> int:
        return self.champion_port if role == "champion" else self.port

    def labels(self, role: str) -> tuple[str, str, str, str]:
        version = self.champion_version if role == "champion" else self.version
        return self.model, version, self.protocol, role

    def remember(self, request_id: str, role: str, predictions: list) -> None:
        """An answer's predictions, for the labels feedback brings later (the oldest
        are forgotten past MAX_REMEMBERED values)."""
        if not request_id or not predictions:
            return
        held = self.answers.setdefault(request_id, {})
        self.remembered += len(predictions) - len(held.get(role, ()))
        held[role] = predictions
        while self.remembered > MAX_REMEMBERED and self.answers:
            _, old = self.answers.popitem(last=False)
            self.remembered -= sum(len(p) for p in old.values())

    def labelled(self, frame) -> None:
        """Labels from one feedback message, joined to both roles' answers by request id."""
        for request_id, row, label in zip(
            frame["_request_id"], frame["_row"], frame["_label"], strict=True
        ):
            for role, predictions in self.answers.get(str(request_id), {}).items():
                if 0 <= int(row) < len(predictions):
                    self.roles[role].label(predictions[int(row)], label)
        for request_id in set(frame["_request_id"]):
            old = self.answers.pop(str(request_id), {})
            self.remembered -= sum(len(p) for p in old.values())

    def evidence(self) -> dict:
        found = release_gate.evidence(self.roles["champion"], self.roles["candidate"])
        total = sum(self.answered.values())
        found["answered"] = {
            "champion": self.answered["champion"],
            "candidate": self.answered["canary"],
            "candidate_share": round(self.answered["canary"] / total, 4) if total else None,
        }
        if self.mode == "shadow":
            found["shadow"] = {"inflight": self.shadow_inflight, "skipped": self.shadow_skipped}
        return found

    def judge(self, now: float | None = None) -> bool:
        """Run the gate once; True when the state changed (abort: at once, by itself)."""
        now = time.time() if now is None else now
        elapsed = now - self.started_at
        if self.state == "decided":
            decided_at = self.decision["at"]
            if now - decided_at >= release_gate.DECIDED_GRACE_SECONDS:
                reason = (
                    f"decided promote, but nobody ended it within "
                    f"{release_gate.DECIDED_GRACE_SECONDS:g} s (is `release watch` running?)"
                )
                self.finish("aborted", "budget", [reason], now)
                return True
            return False
        if self.state != "running":
            return False
        outcome, reasons, following = release_gate.decide(self.evidence(), self.thresholds, elapsed)
        self.next = following
        if outcome == "abort":
            by = "budget" if reasons and reasons[0].startswith("no decision within") else "gate"
            self.finish("aborted", by, reasons, now)
            return True
        if outcome == "promote":
            self.state = "decided"
            self.decision = {"outcome": "promote", "by": "gate", "reasons": reasons, "at": now}
            return True
        return False

    def finish(self, state: str, by: str, reasons: list[str], now: float | None = None) -> None:
        now = time.time() if now is None else now
        outcome = "promote" if state == "promoted" else "abort"
        gate = self.decision if self.decision and self.decision["outcome"] == outcome else None
        earlier = [r for r in (gate or {}).get("reasons", []) if r not in reasons]
        self.decision = {"outcome": outcome, "by": by, "reasons": [*reasons, *earlier], "at": now}
        self.state, self.ended_at = state, now
        self.next = (
            "promoted: the candidate is the backend"
            if state == "promoted"
            else "aborted: the candidate gets no more traffic"
        )

    def as_dict(self) -> dict:
        return {
            "active": self.active,
            "state": self.state,
            "mode": self.mode,
            "percent": self.percent,
            "champion": {"version": self.champion_version, "port": self.champion_port},
            "candidate": {
                "version": self.version,
                "port": self.port,
                "server_dir": self.server_dir,
                "columns": self.columns,
            },
            "started_at": self.started_at,
            "resumed_at": self.resumed_at,
            "ended_at": self.ended_at,
            "thresholds": self.thresholds,
            "evidence": self.evidence(),
            "decision": self.decision,
            "next": self.next,
        }


def cap_log(path: Path, max_bytes: int = LOG_MAX_BYTES) -> bool:
    """Keep a log a process appends to (O_APPEND) under `max_bytes`: copy it to `<log>.1`
    and truncate it in place; the writer's next line lands at the start. True if cut."""
    try:
        if path.stat().st_size <= max_bytes:
            return False
        kept = path.with_name(path.name + ".1")
        with open(path, "rb") as src, open(kept, "wb") as dst:
            src.seek(max(0, path.stat().st_size - max_bytes))
            dst.write(src.read(max_bytes))
        os.truncate(path, 0)
        return True
    except OSError:
        return False


class OnceLog(logging.Filter):
    """aiohttp logs each malformed request with a traceback that quotes the client's
    header (~3 GB an hour from one bad client): one short line per kind of error per
    minute instead, and nothing of the client's. Other errors keep their traceback, at
    most once a minute per kind."""

    def __init__(self):
        super().__init__()
        self.last: dict[str, float] = {}
        self.quiet: collections.Counter[str] = collections.Counter()

    def filter(self, record: logging.LogRecord) -> bool:
        from aiohttp.http_exceptions import HttpProcessingError

        exc = record.exc_info[1] if record.exc_info else None
        kind = type(exc).__name__ if exc is not None else record.getMessage()[:40]
        now = time.monotonic()
        if now - self.last.get(kind, -1e9) < 60:
            self.quiet[kind] += 1
            return False
        more = self.quiet.pop(kind, 0)
        self.last[kind] = now
        note = f" ({more} more of this kind in the last minute)" if more else ""
        if isinstance(exc, HttpProcessingError):
            record.msg, record.args = f"refused a malformed request ({kind}){note}", ()
            record.exc_info, record.exc_text = None, None
        elif note:
            record.msg = f"{record.msg}{note}"
        return True


class Front:
    def __init__(
        self, port: int, backend: int, record: Path, model: str = "", version: str = "",
        protocol: str = "", columns: list[str] | None = None, traffic_dir: str = "",
        traffic_max_bytes: int = 512 * 2**20, server_dir: str = "",
        cors_origins: list[str] | None = None, log_file: Path | None = None,
        keeper: int | None = None, restore: bool = False,
    ):  # fmt: skip
        self.port = port
        self.backend = backend
        self.record = record
        self.model, self.version, self.protocol = model, version, protocol
        self.columns = list(columns or [])
        self.cors = {o.strip().rstrip("/") for o in (cors_origins or []) if o.strip()}
        self.log_file = log_file
        self.inflight: collections.Counter[int] = collections.Counter()
        self.session: ClientSession | None = None
        self.metrics = Metrics()
        if model:  # the latest monitoring run's drift share and quality, read at each scrape
            self.metrics.registry.register(MonitoringGauges(model))
        self.dropped_reasons: set[str] = set()
        self.recorder = (
            TrafficBuffer(traffic_dir, traffic_max_bytes, on_drop=self.traffic_dropped)
            if traffic_dir
            else None
        )
        self.server_dir = Path(server_dir) if server_dir else None
        self.restarts = 0
        self.last_restart: float | None = None
        self.restart_note = ""
        self.tasks: list[asyncio.Task] = []
        self.recorder_task: asyncio.Task | None = None
        self.release: Release | None = None  # the last one, also after it ended
        self.release_written = ""
        self.hangups, self.hangup_logged = 0, -1e9  # clients that hung up mid-body
        self.keeper = keeper  # the parent that restarts this front (keeper.py)
        self.listen_fd: int | None = None  # the serving socket the keeper handed over
        self.stopping = False
        earlier = read_json(record) if restore else {}
        self.front_restarts = int(earlier.get("front_restarts") or 0) + bool(restore)
        self.last_front_restart = time.time() if restore else earlier.get("last_front_restart")
        # the release a previous front process ran: resumed by a restart (--restore),
        # recorded as aborted by a fresh start (a deploy that found no front)
        self.release_before = self.restored_release(resume=restore)
        if self.front_restarts:
            self.metrics.front_restarts.labels(*self.labels).inc(self.front_restarts)

    @property
    def labels(self) -> tuple[str, str, str]:
        return self.model, self.version, self.protocol

    def traffic_dropped(self, reason: str, detail: str = "") -> None:
        """Counted always; logged the first time each reason happens (never request data)."""
        self.metrics.dropped.labels(*self.labels, reason).inc()
        if reason not in self.dropped_reasons:
            self.dropped_reasons.add(reason)
            log.warning(
                "traffic: a request was not recorded (%s%s); recording goes on, and further "
                "ones are counted in zenkube_traffic_dropped_total{reason=%r}",
                reason, f": {detail}" if detail else "", reason,
            )  # fmt: skip

    def write_record(self) -> None:
        """router.json: the served state (what is served, on which protocol, where its
        server is, where traffic goes, the release) and this front's processes. It
        outlives the front: a restarted front (--restore) serves from it, and commands
        read it (front.py `served_state`) with the standard library."""
        release = self.release.as_dict() if self.release else self.release_before
        write_json(
            self.record,
            {
                "pid": os.getpid(),
                "keeper": self.keeper,
                "group": os.getpgid(0),
                "port": self.port,
                "backend": self.backend,
                "model": self.model,
                "version": self.version,
                "protocol": self.protocol,
                "columns": self.columns,
                "server_dir": str(self.server_dir or ""),
                "traffic_dir": str(self.recorder.log.folder) if self.recorder else "",
                "traffic_max_mb": self.recorder.log.max_bytes // 2**20 if self.recorder else 0,
                "front_restarts": self.front_restarts,
                "last_front_restart": self.last_front_restart,
                "release": {k: v for k, v in (release or {}).items() if k in RELEASE_KEYS},
            },
        )

    def status(self) -> dict:
        return {
            "pid": os.getpid(),
            "keeper": self.keeper if self.keeper and process.is_alive(self.keeper) else None,
            "port": self.port,
            "backend": self.backend,
            "inflight": {str(p): n for p, n in self.inflight.items() if n},
            "restarts": self.restarts,
            "last_restart": self.last_restart,
            "restart_note": self.restart_note,
            "front_restarts": self.front_restarts,
            "last_front_restart": self.last_front_restart,
            "traffic_dir": str(self.recorder.log.folder) if self.recorder else "",
            "release": self.release.as_dict() if self.release else self.release_before,
        }

    async def start(self, app: web.Application) -> None:
        self.session = ClientSession(
            connector=TCPConnector(limit=256, limit_per_host=256),
            timeout=ClientTimeout(total=None, sock_connect=5, sock_read=600),
            auto_decompress=False,
        )
        loop = asyncio.get_running_loop()
        if self.recorder is not None:
            self.recorder_task = loop.create_task(self.recorder.run())
        self.tasks.append(loop.create_task(self.supervise()))
        self.tasks.append(loop.create_task(self.keep_logs_small()))
        self.tasks.append(loop.create_task(self.judge_release()))
        self.tasks.append(loop.create_task(self.watch_keeper()))
        self.tasks.append(loop.create_task(self.watch_watcher()))

    async def stop(self, app: web.Application) -> None:
        for task in [*self.tasks, self.recorder_task]:
            if task is not None:
                task.cancel()
        if self.recorder is not None:  # what is still buffered is written, not lost
            await self.recorder.flush()
        if self.session is not None:
            await self.session.close()

    # -- the serving port -------------------------------------------------------------
    async def handle(self, request: web.Request) -> web.StreamResponse:
        handler, status, allowed = route(self.protocol, request.method, request.rel_url.raw_path)
        try:
            answer = await self.answer(request, handler, status, allowed)
        except BodyError as exc:
            answer = error(exc.status, str(exc))
        except web.HTTPRequestEntityTooLarge:
            answer = error(
                413, f"the request body is too large: the limit is {MAX_BODY // 2**20} MiB"
            )
        except ConnectionResetError:  # the client hung up before its body was all sent
            self.hung_up(request)
            answer = error(499, "the client closed the connection before its body ended")
        self.metrics.count(request.get("zenkube_labels", self.labels), handler, answer.status)
        return answer

    async def answer(
        self, request: web.Request, handler: str, status: int, allowed: frozenset
    ) -> web.Response:
        path, method = request.rel_url.raw_path, request.method
        origin = request.headers.get("Origin")
        if from_a_web_page(request.headers):
            if origin is None or origin.rstrip("/") not in self.cors:
                seen = f"Origin {short(origin, 40)}" if origin is not None else "Sec-Fetch-Site"
                return error(
                    403,
                    f"requests from web pages ({seen}) are refused; list "
                    "trusted origins in ZENKUBE_CORS_ORIGINS before `deploy` starts the endpoint",
                )
            if method == "OPTIONS" and status == 405:  # a preflight for an allowed origin
                return web.Response(status=204, headers=self.cors_headers(origin))
        if status == 404:
            return error(
                404, f"no such path {short(path)}; {WHERE.get(self.protocol, WHERE['seldon'])}"
            )
        if status == 405:
            use = ", ".join(sorted(allowed - {"HEAD"}))
            return error(
                405,
                f"{method} is not allowed on {short(path)}; use {use}",
                headers={"Allow": ", ".join(sorted(allowed))},
            )
        if handler == "metrics":
            return web.Response(
                body=generate_latest(self.metrics.registry),
                headers={"Content-Type": CONTENT_TYPE_LATEST},
            )
        if handler == "predict":
            answer = await self.predict(request)
        elif handler == "feedback":
            answer = await self.feedback(request)
        else:
            answer = await self.forward(request, await request.read())
        if origin is not None:
            answer.headers.update(self.cors_headers(origin))
        return answer

    def hung_up(self, request: web.Request) -> None:
        """One line for a client that hung up mid-body (not aiohttp's traceback); at most
        one a minute, with how many more there were."""
        self.hangups += 1
        now = time.monotonic()
        if now - self.hangup_logged >= 60:
            more = (
                f" ({self.hangups - 1} more since the last such line)" if self.hangups > 1 else ""
            )
            log.warning(
                "a client hung up before its body ended (%s %s)%s",
                request.method, short(request.rel_url.raw_path, 40), more,
            )  # fmt: skip
            self.hangup_logged, self.hangups = now, 0

    def cors_headers(self, origin: str) -> dict[str, str]:
        return {
            "Access-Control-Allow-Origin": origin,
            "Access-Control-Allow-Methods": "GET, POST",
            "Access-Control-Allow-Headers": "Content-Type",
            "Vary": "Origin",
        }

    async def predict(self, request: web.Request) -> web.Response:
        body = decode_body(await request.read(), request.headers.get("Content-Encoding"))
        probe = request.headers.get("X-Zenkube-Probe")  # deploy's smoke request
        release = self.release if self.release and self.release.active and not probe else None
        headers, puid = self.outgoing(request)
        url = str(request.rel_url)
        if release and release.mode == "canary":
            if release.allocator.to_candidate(sticky_id(self.protocol, request, body)):
                answer = await self.predict_on(release, "canary", request, url, headers, body)
                if answer is not None:
                    return answer
                release.roles["candidate"].fallbacks += 1  # the champion answers instead
        answer = await self.predict_on(release, "champion", request, url, headers, body)
        if release and release.mode == "shadow" and answer.status == 200:
            if release.shadow_inflight >= MAX_SHADOW_INFLIGHT:
                release.shadow_skipped += 1
            else:
                request_id = request.get("zenkube_request_id", "")
                release.shadow_inflight += 1  # counted now: the task may start later
                task = asyncio.get_running_loop().create_task(
                    self.shadow(release, url, headers, body, request_id)
                )
                release.shadow_tasks.add(task)
                task.add_done_callback(release.shadow_tasks.discard)
        return answer

    async def predict_on(
        self, release: Release | None, role: str, request: web.Request, url: str,
        headers: dict, body: bytes,
    ) -> web.Response | None:  # fmt: skip
        """One prediction answered by the champion or a canary; None when the canary did
        not answer 200 (the caller then gets the champion's answer)."""
        # the release's champion, also for a fallback that began before a promote
        port = self.backend if release is None else release.port_of(role)
        labels = release.labels(role) if release else self.labels
        started = time.perf_counter()
        answer = await self.send(port, request.method, url, headers, body)
        elapsed = time.perf_counter() - started
        text = b""
        if answer.status == 200:
            text = answer_text(answer.body or b"", answer.headers.get("Content-Encoding"))
        self.metrics.observe(labels, answer.status, elapsed, text)
        request_id, predictions = "", []
        if release is not None and text:  # no release: the recorder reads it, off the path
            request_id, predictions = read_answer(self.protocol, text)
        if release is not None:
            stats = release.roles["candidate" if role == "canary" else "champion"]
            stats.answered(answer.status, elapsed, predictions)
            if role == "canary" and answer.status != 200:
                self.metrics.count(labels, "predict", answer.status)
                return None
            release.answered[role] += 1
            release.remember(request_id, "candidate" if role == "canary" else role, predictions)
        request["zenkube_labels"] = labels
        request["zenkube_request_id"] = request_id
        probe = request.headers.get("X-Zenkube-Probe")
        if self.recorder is not None and answer.status == 200 and not probe:
            if text:
                version, columns = self.version, self.columns
                if role == "canary":
                    version, columns = release.version, release.columns or self.columns
                if self.protocol == "seldon" and request.content_type != "application/json":
                    body = seldon_message(request, body)  # Seldon's form field or ?json=
                self.recorder.add(body, text, self.protocol, version, columns, role)
            else:
                self.traffic_dropped("unreadable", "an answer that is not JSON")
        return answer

    async def shadow(
        self, release: Release, url: str, headers: dict, body: bytes, request_id: str
    ) -> None:
        """A copy of an answered prediction sent to a shadow candidate: its answer is
        evidence and recorded (role shadow, under the caller's request id), never returned.
        The caller counted it in `shadow_inflight`; it is uncounted here when done."""
        try:
            labels = release.labels("shadow")
            started = time.perf_counter()
            answer = await self.send(release.port, "POST", url, headers, body)
            elapsed = time.perf_counter() - started
            text = b""
            if answer.status == 200:
                text = answer_text(answer.body or b"", answer.headers.get("Content-Encoding"))
            self.metrics.observe(labels, answer.status, elapsed, text)
            self.metrics.count(labels, "predict", answer.status)
            _, predictions = read_answer(self.protocol, text) if text else ("", [])
            release.roles["candidate"].answered(answer.status, elapsed, predictions)
            release.remember(request_id, "candidate", predictions)
            if self.recorder is not None and text:
                columns = release.columns or self.columns
                self.recorder.add(
                    body, text, self.protocol, release.version, columns, "shadow", request_id
                )
        except Exception as exc:  # noqa: BLE001 - a shadow's failure never reaches a caller
            log.warning("shadow request failed: %s", type(exc).__name__)
        finally:
            release.shadow_inflight -= 1

    async def feedback(self, request: web.Request) -> web.Response:
        """Labels for earlier predictions, joined to them by request id when monitoring
        (and, while a release runs, to both roles' answers for the quality evidence)."""
        form = self.protocol == "seldon" and request.content_type == FORM
        if request.content_type != "application/json" and not form:
            return error(
                415,
                "feedback is JSON: send it with Content-Type: application/json"
                + (" (or as Seldon's form field json=…)" if self.protocol == "seldon" else ""),
            )
        body = decode_body(await request.read(), request.headers.get("Content-Encoding"))
        message = seldon_message(request, body) if form else body
        release = self.release if self.release and self.release.active else None
        if self.recorder is None or (self.protocol == "seldon" and without_truth(message)):
            if release is not None:
                try:
                    release.labelled(feedback_labels(self.protocol, message))
                except TrafficError:
                    pass  # the model server answers the client
            return await self.forward(request, body)
        try:
            frame = self.recorder.add_feedback(self.protocol, message)
        except TrafficError as exc:
            return error(exc.status, str(exc))
        if release is not None:
            release.labelled(frame)
        request_id = str(frame["_request_id"].iloc[0])
        if self.protocol == "v2":
            return web.json_response({"id": request_id, "labels": len(frame)})
        return web.json_response(
            {"data": {"names": [], "ndarray": []}, "meta": {"puid": request_id}}
        )

    def outgoing(self, request: web.Request) -> tuple[dict, str | None]:
        """The headers sent on to a model server, and a Seldon prediction's request id."""
        skip = HOP_BY_HOP | {"content-encoding", "origin"}
        headers = {k: v for k, v in request.headers.items() if k.lower() not in skip}
        # aiohttp's client would ask for gzip itself: the server's answer (an error too)
        # comes back compressed only when the caller asked for it
        if "Accept-Encoding" not in request.headers:
            headers["Accept-Encoding"] = "identity"
        puid = None
        if self.protocol == "seldon" and request.path.endswith(("/predictions", "/predict")):
            # As Seldon's executor does: every prediction gets a request id (the
            # client's Seldon-Puid when it sent one), passed to the model server and
            # returned in the header; the model puts it in meta.puid too.
            puid = request.headers.get("Seldon-Puid") or uuid.uuid4().hex
            headers["Seldon-Puid"] = puid
        return headers, puid

    async def forward(self, request: web.Request, body: bytes) -> web.Response:
        headers, puid = self.outgoing(request)
        url = str(request.rel_url)
        return await self.send(self.backend, request.method, url, headers, body, bool(puid))

    async def send(
        self, port: int, method: str, url: str, headers: dict, body: bytes, puid: bool = True
    ) -> web.Response:
        """One request to the model server on `port`; 503 when it does not answer. With
        `puid`, a Seldon prediction's request id is returned in the Seldon-Puid header."""
        self.inflight[port] += 1
        try:
            async with self.session.request(
                method, f"http://{HOST}:{port}{url}", data=body, headers=headers,
                allow_redirects=False,
            ) as answer:  # fmt: skip
                data = await answer.read()
                out = {
                    k: v
                    for k, v in answer.headers.items()
                    if k.lower() not in HOP_BY_HOP and not k.lower().startswith("access-control-")
                }
                if puid and headers.get("Seldon-Puid"):
                    out["Seldon-Puid"] = headers["Seldon-Puid"]
                return web.Response(status=answer.status, body=data, headers=out)
        except (TimeoutError, ClientError) as exc:
            why = "it is being restarted" if self.restart_note else type(exc).__name__
            return error(
                503,
                f"the model server is not answering ({why}); the front restarts a server "
                "that dies, `python run.py serve status` shows it",
            )
        finally:
            self.inflight[port] -= 1

    # -- supervision ------------------------------------------------------------------
    def server_record(self) -> dict:
        return read_json(self.server_dir / "server.json") if self.server_dir else {}

    def supervised(self) -> list[tuple[str, Path, int]]:
        """(role, server folder, port) of each model server this front restarts when it
        dies: the champion, and an active release's candidate."""
        found = []
        if self.server_dir is not None:
            found.append(("champion", self.server_dir, self.backend))
        release = self.release
        if release is not None and release.active and release.server_dir:
            found.append(("candidate", Path(release.server_dir), release.port))
        return found

    def watching(self, server_dir: Path, port: int) -> bool:
        """Whether the server in `server_dir` on `port` is still one this front serves."""
        return any(d == server_dir and p == port for _, d, p in self.supervised())

    async def supervise(self, every: float = 0.5) -> None:
        """Restart a model server this front serves (champion or candidate) when it
        dies, with backoff (1 s doubling to 60 s; reset after 60 s up)."""
        backoff: dict[tuple[str, int], list[float]] = {}  # -> [failures, up since, next try]
        running: dict[tuple[str, int], asyncio.Task] = {}
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(every)
            now = time.monotonic()
            for role, server_dir, port in self.supervised():
                key = (str(server_dir), port)
                if key in running and not running[key].done():
                    continue
                failures, up_since, next_try = backoff.setdefault(key, [0, now, 0.0])
                if key in running:  # a restart just ended
                    if running.pop(key).result():
                        backoff[key] = [0, now, 0.0]
                        if role == "champion":
                            self.restart_note = ""
                    else:
                        failures += 1
                        backoff[key] = [failures, up_since, now + min(60.0, 2.0**failures)]
                    continue
                record = read_json(server_dir / "server.json")
                if record.get("port") != port or not record.get("pid"):
                    continue  # not ours to watch (being replaced, stopped, or not told)
                if process.is_alive(record["pid"]):
                    if now - up_since > 60:
                        backoff[key][0] = 0
                    continue
                if now < next_try:
                    continue
                if role == "champion":
                    self.restart_note = f"restarting (attempt {int(failures) + 1})"
                running[key] = loop.create_task(self.restart(record, role, server_dir, port))

    async def restart(self, record: dict, role: str, server_dir: Path, port: int) -> bool:
        """Start the dead server again from its launch spec; True once it is healthy (or
        no longer this front's to serve)."""
        try:
            return await self.restart_once(record, role, server_dir, port)
        except Exception as exc:  # noqa: BLE001 - logged; the next round retries
            log.warning("could not restart the %s's model server: %s", role, exc)
            return False

    async def restart_once(self, record: dict, role: str, server_dir: Path, port: int) -> bool:
        spec_file = server_dir / "server.launch.json"
        champion = role == "champion"
        if not spec_file.exists() or not (server_dir / "model").exists():
            if champion:
                self.restart_note = "cannot restart: its launch record or model copy is gone"
            return False
        spec = json.loads(spec_file.read_text())
        loop = asyncio.get_running_loop()
        if not await loop.run_in_executor(None, self.copy_is_intact, server_dir):
            if champion:
                self.restart_note = (
                    "not restarted: the served model copy does not match its digest; "
                    "`python run.py deploy` fetches it again"
                )
            log.warning("the model server died and its model copy is damaged: %s", server_dir)
            return False
        # workers of a killed leader may still hold the port: the whole group goes first,
        # at once (their leader is dead: nothing is left to shut down gracefully)
        await loop.run_in_executor(None, process.stop_group, record["pid"], 0.5)
        current = read_json(server_dir / "server.json")
        if not self.watching(server_dir, port) or current.get("pid") != record["pid"]:
            return True  # a deploy replaced it meanwhile
        log.warning("the %s's model server (pid %s) died; starting it again", role, record["pid"])
        pid = process.spawn(spec["command"], Path(spec["log"]), spec.get("env", {}), False)
        # Recorded at once: `serve stop` and `deploy` find (and end) the new process.
        self.write_server_record({**current, "pid": pid}, server_dir)
        protocol = record.get("protocol") or self.protocol
        health = f"http://{HOST}:{port}{HEALTH.get(protocol, HEALTH['seldon'])}"
        deadline = time.monotonic() + float(spec.get("start_timeout", 120))
        while (
            time.monotonic() < deadline
            and process.is_alive(pid)
            and self.watching(server_dir, port)
        ):
            if read_json(server_dir / "server.json").get("pid") != pid:  # a deploy's own
                await loop.run_in_executor(None, process.stop_group, pid, 10.0)
                return True
            try:
                async with self.session.get(health, timeout=ClientTimeout(total=2)) as answer:
                    if answer.status == 200:
                        labels = self.labels
                        if champion:
                            self.restarts += 1
                            self.last_restart = time.time()
                            self.restart_note = ""
                        elif self.release is not None:
                            labels = self.release.labels("canary")[:3]
                        self.metrics.restarts.labels(*labels).inc()
                        log.warning("the %s's model server is back (pid %s)", role, pid)
                        return True
            except (TimeoutError, ClientError):
                pass
            await asyncio.sleep(0.25)
        await loop.run_in_executor(None, process.stop_group, pid, 10.0)  # unhealthy or unused
        return not self.watching(server_dir, port)

    @staticmethod
    def copy_is_intact(server_dir: Path) -> bool:
        """The served model copy still matches the digest taken when it was fetched."""
        digest_file = server_dir / "model.sha256"
        if not digest_file.exists():
            return True  # a copy from before digests were kept
        return process.tree_digest(server_dir / "model") == digest_file.read_text().strip()

    def write_server_record(self, record: dict, server_dir: Path | None = None) -> None:
        write_json((server_dir or self.server_dir) / "server.json", record)

    # -- who watches the watchers -----------------------------------------------------
    async def watch_keeper(self, every: float = 0.2) -> None:
        """The keeper restarts this front; this front restarts its keeper (kill -9 of
        it): a new one adopts this process and the serving socket, in the same process
        group (a group stop still ends both). A front whose state folder is removed
        (`make clean`) stops."""
        while not self.stopping:
            await asyncio.sleep(every)
            if not self.record.parent.exists():
                log.warning("the front's folder %s is gone: stopping", self.record.parent)
                os.kill(os.getpid(), signal.SIGTERM)
                return
            if self.keeper is None or self.listen_fd is None or process.is_alive(self.keeper):
                continue
            if self.stopping:
                return
            self.keeper = spawn_keeper(self.listen_fd, self.record)
            log.warning("the front's keeper died: a new one (pid %s) keeps it", self.keeper)
            self.write_record()

    async def watch_watcher(self, every: float = 1.0) -> None:
        """While a release is active, the `release watch` process that finishes it
        (started by `release start`, its pid in release-watch.pid) is started again when
        it died (kill -9); a watcher that ended by itself removes its pid file."""
        pid_file = self.record.with_name("release-watch.pid")
        missing_since = None
        while True:
            await asyncio.sleep(every)
            release = self.release
            try:
                pid = int(pid_file.read_text())
            except (OSError, ValueError):
                pid = None
            if pid is None or release is None or not release.active or watcher_alive(pid):
                missing_since = None
                continue
            missing_since = missing_since or time.monotonic()
            if time.monotonic() - missing_since < 2 * every:
                continue  # seen dead twice: not one that is just being replaced
            missing_since = None
            new = spawn_watcher(self.model, self.record.parent.parent.parent, pid_file)
            log.warning("the release watcher (pid %s) died: a new one runs as pid %s", pid, new)

    async def keep_logs_small(self, every: float = 1.0) -> None:
        while True:
            await asyncio.sleep(every)
            for path in (self.log_file, self.server_dir and self.server_dir / "server.log"):
                if path is not None:
                    cap_log(path)

    async def record_traffic(self, folder: str, max_mb: int) -> None:
        """Record served traffic in `folder` from now on (empty: stop recording); what
        the previous recorder holds is written first."""
        current = self.recorder
        if current is not None and str(current.log.folder) == folder:
            current.log.max_bytes = max_mb * 2**20
            return
        if current is None and not folder:
            return
        if self.recorder_task is not None:
            self.recorder_task.cancel()
            self.recorder_task = None
        self.recorder = None
        if current is not None:
            await current.flush()
        if folder:
            self.recorder = TrafficBuffer(folder, max_mb * 2**20, on_drop=self.traffic_dropped)
            self.recorder_task = asyncio.get_running_loop().create_task(self.recorder.run())
        log.warning("traffic recording %s", f"goes to {folder}" if folder else "is off")

    # -- a release: a candidate beside the champion ----------------------------------
    async def judge_release(self, every: float = 0.5) -> None:
        """Run the release gate on the evidence every `every` seconds while a release
        runs (an abort stops the candidate's traffic at once), and keep release.json."""
        while True:
            await asyncio.sleep(every)
            release = self.release
            if release is None:
                continue
            try:
                if release.judge():
                    log.warning(
                        "release of version %s: %s (%s)", release.version, release.state,
                        "; ".join((release.decision or {}).get("reasons", [])),
                    )  # fmt: skip
                self.write_release()
            except Exception:  # noqa: BLE001 - the gate must outlive one bad round
                log.exception("the release gate failed a round")

    def restored_release(self, resume: bool = False) -> dict:
        """The release a previous front process left in release.json. One that was still
        active is resumed when this front is its restart (`resume`: the keeper restarted
        it): the same candidate, mode, share, budget and decision, with the evidence
        gathered from now on. After a fresh start it is over (fail closed: this front
        sends that candidate nothing), recorded as aborted; the controller finishes it."""
        target = self.record.with_name("release.json")
        state = read_json(target)
        if not state:
            return {}
        if state.get("active") and resume:
            try:
                self.release = Release.resumed(state, self.model, self.protocol)
            except ValueError as exc:
                log.warning("the release in %s cannot be resumed: %s", target, exc)
            else:
                log.warning(
                    "release of version %s resumed after a front restart (%s)",
                    self.release.version, self.release.state,
                )  # fmt: skip
                self.write_release()
                return {}
        if state.get("active"):
            now = time.time()
            reason = "the front restarted during the release; the candidate gets no traffic"
            state.update(active=False, state="aborted", ended_at=now, next=reason)
            state["decision"] = {"outcome": "abort", "by": "front", "reasons": [reason], "at": now}
            tmp = target.with_suffix(".tmp")
            tmp.write_text(json.dumps(state, default=str))
            tmp.replace(target)
        return state

    def write_release(self) -> None:
        """fronts/<model>/release.json, written atomically when what it says changed."""
        release = self.release
        if release is None:
            return
        state = release.as_dict()
        changes = {k: v for k, v in state.items() if k != "next"}
        fingerprint = json.dumps(changes, sort_keys=True, default=str)
        if fingerprint == self.release_written:
            return
        write_json(self.record.with_name("release.json"), state)
        self.release_written = fingerprint
        self.write_record()  # the served record's release part

    async def drain(self, port: int, timeout: float) -> bool:
        """True once `port` has no request in flight (False: still some after `timeout`)."""
        deadline = time.monotonic() + timeout
        while self.inflight[port] and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        return not self.inflight[port]

    async def release_control(self, request: web.Request) -> web.Response:
        release = self.release
        if request.method == "GET" and request.path == "/release":
            return web.json_response(release.as_dict() if release else self.release_before)
        if (request.method, request.path) not in (("PUT", "/release"), ("POST", "/release/end")):
            return web.json_response(
                {"error": "use GET or PUT /release, POST /release/end"}, status=405
            )
        try:
            wanted = await request.json()
            if not isinstance(wanted, dict):
                raise ValueError
        except ValueError:
            return web.json_response({"error": "send a JSON object"}, status=400)
        if request.method == "PUT" and request.path == "/release":
            if release is not None and release.active:
                return web.json_response(
                    {"error": f"a release of version {release.version} is active "
                     f"({release.state}); end it first (promote or abort)"},
                    status=409,
                )  # fmt: skip
            try:
                started = Release(wanted, (self.version, self.backend), self.model, self.protocol)
            except ValueError as exc:
                return web.json_response({"error": str(exc)}, status=400)
            self.release = started
            started.next = release_gate.decide(started.evidence(), started.thresholds, 0.0)[2]
            self.write_release()
            log.warning(
                "release of version %s started: %s %g%% on port %s",
                started.version, started.mode, started.percent, started.port,
            )  # fmt: skip
            return web.json_response(started.as_dict())
        if request.method == "POST" and request.path == "/release/end":
            outcome = wanted.get("outcome")
            if outcome not in ("promote", "abort"):
                return web.json_response({"error": '"outcome" is "promote" or "abort"'}, status=400)
            by = str(wanted.get("by") or "hand")[:200]
            reason = str(wanted.get("reason") or f"{outcome} by {by}")[:1000]
            try:
                timeout = float(wanted.get("timeout", 60))
            except (TypeError, ValueError):
                timeout = 60.0
            if release is None and self.release_before.get("state") == "aborted":
                if outcome == "abort":  # ended when the front restarted
                    return web.json_response(self.release_before)
            if release is None or not release.active:
                done = {"abort": "aborted", "promote": "promoted"}[outcome]
                if release is not None and release.state == done:  # a retry: idempotent
                    leaving = release.port if outcome == "abort" else release.champion_port
                    await self.drain(leaving, timeout)
                    return web.json_response(release.as_dict())
                now = "no release was started" if release is None else f"it is {release.state}"
                return web.json_response(
                    {"error": f"no release is active to {outcome} ({now})"}, status=409
                )
            if outcome == "promote":
                leaving = self.backend
                self.backend = release.port
                self.version = release.version or self.version
                self.columns = release.columns or self.columns
                if release.server_dir:
                    self.server_dir = Path(release.server_dir)
                self.restart_note = ""
                release.finish("promoted", by, [reason])
                self.write_record()
            else:
                leaving = release.port
                release.finish("aborted", by, [reason])
            self.write_release()
            log.warning("release of version %s %s by %s", release.version, release.state, by)
            drained = await self.drain(leaving, timeout)
            state = release.as_dict()
            if not drained:
                state["note"] = f"port {leaving} still had requests in flight after {timeout:g} s"
            return web.json_response(state)
        return web.json_response({"error": "unknown control path"}, status=404)

    # -- control, on the Unix socket --------------------------------------------------
    async def control(self, request: web.Request) -> web.Response:
        if request.path == "/router" and request.method == "GET":
            return web.json_response(self.status())
        if request.path in ("/release", "/release/end"):
            return await self.release_control(request)
        if request.path == "/backend" and request.method == "PUT":
            try:
                wanted = await request.json()
                port = int(wanted["port"])
            except (ValueError, KeyError, TypeError):
                return web.json_response({"error": 'send {"port": N}'}, status=400)
            self.backend = port
            self.version = str(wanted.get("version") or self.version)
            self.protocol = str(wanted.get("protocol") or self.protocol)
            if wanted.get("columns"):
                self.columns = json.loads(wanted["columns"])
            if wanted.get("server_dir"):
                self.server_dir = Path(wanted["server_dir"])
            if self.release is not None and self.release.active:  # a deploy meanwhile
                self.release.champion_version, self.release.champion_port = self.version, port
            if "traffic_dir" in wanted:  # the deployment's log_traffic, at each deploy
                await self.record_traffic(
                    str(wanted["traffic_dir"] or ""), int(wanted.get("traffic_max_mb") or 512)
                )
            self.restart_note = ""
            self.write_record()
            return web.json_response({"backend": port})
        return web.json_response({"error": "unknown control path"}, status=404)


KEEPER = Path(__file__).resolve().with_name("keeper.py")
REPO_ROOT = Path(__file__).resolve().parents[2]
RESTART_FLAGS = {"--listen-fd": 1, "--keeper": 1, "--restore": 0}  # what a keeper adds


def base_command(argv: list[str]) -> list[str]:
    """This front's command line without what its keeper added (to hand a new keeper)."""
    out, skip = [], 0
    for arg in argv:
        if skip:
            skip -= 1
        elif arg in RESTART_FLAGS:
            skip = RESTART_FLAGS[arg]
        else:
            out.append(arg)
    return out


def spawn_keeper(listen_fd: int, record: Path) -> int:
    """A new keeper (keeper.py) for this running front: it adopts this process and the
    serving socket, in this process group."""
    command = [
        sys.executable, str(KEEPER), "--listen-fd", str(listen_fd), "--adopt", str(os.getpid()),
        "--record", str(record), "--", sys.executable, *base_command(sys.argv),
    ]  # fmt: skip
    child = subprocess.Popen(
        command, pass_fds=(listen_fd,), stdin=subprocess.DEVNULL, process_group=os.getpgid(0)
    )
    return child.pid


def watcher_alive(pid: int) -> bool:
    """Whether `pid` is a live `release watch` process."""
    try:
        command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return process.is_alive(pid) and b"release" in command and b"watch" in command


def spawn_watcher(model: str, state_dir: Path, pid_file: Path) -> int:
    """`python run.py release watch` again, detached, logging beside the front (as
    steps/deployment/release.py spawn_watcher starts the first one)."""
    command = [
        sys.executable, str(REPO_ROOT / "run.py"), "release", "watch",
        "--model-name", model, "--state-dir", str(state_dir),
    ]  # fmt: skip
    with open(pid_file.with_name("release-watch.log"), "ab") as out:
        child = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            cwd=str(REPO_ROOT), start_new_session=True,
        )  # fmt: skip
    write_text_atomic(pid_file, str(child.pid))
    return child.pid


def write_text_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def unix_listener(path: Path) -> socket.socket:
    """A listening Unix socket at `path` that only this user can connect to (the folder
    is made 0700, the socket 0600). Long paths (over the 107-byte limit) are bound
    through /proc/self/fd/<folder>."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    path.unlink(missing_ok=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    folder = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        old = os.umask(0o177)
        try:
            sock.bind(process.unix_address(path, folder))
        finally:
            os.umask(old)
    finally:
        os.close(folder)
    os.chmod(path, 0o600)
    sock.listen(64)
    return sock


async def serve(front: Front, control_path: Path) -> None:
    public = web.Application(client_max_size=MAX_BODY)
    public.on_startup.append(front.start)
    public.on_cleanup.append(front.stop)
    public.router.add_route("*", "/{tail:.*}", front.handle)
    control = web.Application()
    control.router.add_route("*", "/{tail:.*}", front.control)
    # The front reads (and bounds) the body's Content-Encoding itself: aiohttp's own
    # inflating has no size bound and would leave the header to be forwarded.
    runner = web.AppRunner(public, access_log=None, auto_decompress=False)
    control_runner = web.AppRunner(control, access_log=None)
    await runner.setup()
    await control_runner.setup()
    if front.listen_fd is not None:  # the keeper's socket: it stays open across restarts
        sock = socket.socket(fileno=front.listen_fd)
        sock.setblocking(False)
        await web.SockSite(runner, sock).start()
    else:
        await web.TCPSite(runner, HOST, front.port, reuse_address=True).start()
    await web.SockSite(control_runner, unix_listener(control_path)).start()
    front.write_record()
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()

    def stop() -> None:
        front.stopping = True
        stopped.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop)
    await stopped.wait()
    await control_runner.cleanup()
    await runner.cleanup()
    control_path.unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backend", type=int, required=True)
    parser.add_argument("--record", type=Path, required=True)
    parser.add_argument("--control", type=Path, required=True, help="the control socket")
    parser.add_argument("--log", type=Path, default=None, help="this front's log (capped)")
    parser.add_argument("--server-dir", default="", help="the served server's folder")
    parser.add_argument("--model", default="", help="metrics label: the registered model")
    parser.add_argument("--version", default="", help="metrics label: the version served")
    parser.add_argument("--protocol", default="", help="metrics label: seldon or v2")
    parser.add_argument("--columns", default="[]", help="the model's input columns (JSON)")
    parser.add_argument("--traffic-dir", default="", help="record served traffic here")
    parser.add_argument("--traffic-max-mb", type=int, default=512, help="cap of that folder")
    parser.add_argument("--listen-fd", type=int, help="serve on this socket (the keeper's)")
    parser.add_argument("--keeper", type=int, help="the keeper's pid (it restarts this front)")
    parser.add_argument(
        "--restore", action="store_true", help="a restart: serve what router.json says"
    )
    parser.add_argument(
        "--cors-origins",
        default=os.environ.get("ZENKUBE_CORS_ORIGINS", ""),
        help="comma-separated web origins allowed to call the endpoint (default: none)",
    )
    args = parser.parse_args()
    if args.restore:
        restore_args(args, read_json(args.record))
    args.columns = json.loads(args.columns)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    for name in ("aiohttp.server", "aiohttp.access", "aiohttp.web"):
        logging.getLogger(name).addFilter(OnceLog())
    front = Front(
        args.port, args.backend, args.record, args.model, args.version, args.protocol,
        args.columns, args.traffic_dir, args.traffic_max_mb * 2**20,
        args.server_dir, args.cors_origins.split(","), args.log, args.keeper, args.restore,
    )  # fmt: skip
    front.listen_fd = args.listen_fd
    asyncio.run(serve(front, args.control))


def restore_args(args: argparse.Namespace, record: dict) -> None:
    """The served state in `record` (router.json) over the command line's: a restarted
    front serves what its predecessor served last (deploys and promotes since its start
    switched it), on the same port."""
    for key in ("backend", "model", "version", "protocol", "server_dir", "traffic_dir"):
        if record.get(key) not in (None, ""):
            setattr(args, key, record[key])
    if isinstance(record.get("columns"), list):
        args.columns = json.dumps(record["columns"])
    if "traffic_dir" in record:
        args.traffic_dir = record["traffic_dir"] or ""
    if record.get("traffic_max_mb"):
        args.traffic_max_mb = int(record["traffic_max_mb"])


if __name__ == "__main__":
    main()
