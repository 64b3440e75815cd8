"""The traffic sink of a cluster deployment: Seldon Core's and KServe's request loggers post
here, and the served traffic lands where `python run.py monitor --from-traffic` reads it.

Each deployment's logger URL is `<sink>/<model>` (set by the `zenkube_seldon` and
`zenkube_kserve` deployers), and the sink writes the same Parquet batches as the local
front (core/traffic/rows.py) under `<root>/<model>/`: with `--root` the stack's
artifact store plus `/traffic`, that is `traffic/<model>/`, the folder
`--from-traffic` reads for that model.

What the loggers send (both binary-mode CloudEvents: attributes in `Ce-*` headers, the
payload as the body):

- Seldon Core v1.18.2 (`executor/predictor/predictor_process.go`, `logPayload`;
  `executor/logger/worker.go`, `sendCloudEvent`): a **fresh random `Ce-Id` per message**;
  the prediction's puid (its `Seldon-Puid` header) in `Ce-Requestid`; the graph node in
  `Ce-Modelid`; also `Ce-Inferenceservicename`, `Ce-Namespace`, `Ce-Endpoint`,
  `Ce-Protocol`. Types `io.seldon.serving.inference.request` / `…response`, and
  `io.seldon.serving.feedback` for each call of Seldon's feedback API (the body is the
  feedback message; its `Ce-Requestid` is the feedback call's own puid). Request and
  response are paired by (`Ce-Requestid`, `Ce-Modelid`), and the rows carry the puid.
- KServe (`pkg/logger/handler.go`, `ServeHTTP`; `pkg/logger/worker.go`,
  `sendHttpCloudEvent`): one id per request, the caller's `Ce-Id` header or a new UUID,
  as `Ce-Id` of both messages; types `org.kubeflow.serving.inference.request` /
  `…response` (the response only for a 200); also `Ce-Inferenceservicename`,
  `Ce-Namespace`, `Ce-Component`, `Ce-Endpoint`, and `Ce-Metadata` (the request headers
  named in the logger's `metadataHeaders`). Paired by `Ce-Id`; the rows carry the V2
  response's `id`, the id a client names in its feedback. deploy's smoke request
  (`X-Zenkube-Probe`; Seldon's executor is told `Seldon-Skip-Logging`) is not traffic.

Who answered (`_role`: champion, canary, shadow) and which version (`_version`) come from
the logger URL's query, `?role=…&version=…`, which the deployers write per predictor
(`traffic.logged_as`): both loggers post to the configured URL as it is, query included
(Seldon: `getLogUrl` parses `logger.url`, `sendCloudEvent` posts with
`cloudevents.WithTarget(logReq.Url.String())`, worker.go:156; KServe:
`components/component.go:64` puts each component's `logger.url` in the pod's
`LoggerSinkUrlInternalAnnotationKey`, the agent's `--log-url`, and `sendHttpCloudEvent`
posts with `WithTarget(logReq.Url.String())`, worker.go:89). The headers alone cannot say
it: Seldon's `Ce-Endpoint` is the predictor's name (`w.PredictorName`, worker.go:182),
which our manifests make `<model>` and `<model>-v<N>` but hash when long; KServe's
`Ce-Component` is `predictor` for the stable and the canary pods alike, `Ce-Endpoint` the
pod's `endpoint` label (which v0.20 does not set), and `Ce-Source` the pod's name
(`--source-uri pod.Name`, `agent_injector.go`, empty for a generated name). So the
headers check the URL where they can: a Seldon event whose `Ce-Endpoint` is not the
predictor the URL names (`predictor=`) is refused. A URL without `role` (a deployment
made before) writes champion rows; in a Seldon shadow's `<folder>.shadow`, shadow rows.

    python -m core.traffic.sink --port 8080 --root s3://bucket/zenml/traffic \\
        [--token-file /var/run/secrets/zenkube-sink/token] [--trust-logged-feedback]

    POST /<model>            a CloudEvent from Seldon's or KServe's logger
    POST /<model>/feedback   labels: Seldon's feedback message, or zenkube's V2 one
                             ({"id": ..., "truth": [...]}); with --token-file, only with
                             `Authorization: Bearer <token>`
    GET  /healthz

Labels drive retraining, so who may send them matters. With `--token-file` (a Kubernetes
Secret mounted into the sink, docs/kubeflow.md) feedback needs the token, and labels that
arrive through Seldon's logger (from anyone who can call Seldon's feedback API) are
ignored unless `--trust-logged-feedback`. Without a token, confine the sink with the
NetworkPolicy in docs/kubeflow.md.
"""

from __future__ import annotations

import argparse
import asyncio
import hmac
import json
import time
from datetime import datetime
from pathlib import Path

from aiohttp import web

from core.protocol import seldon as seldon_codec
from core.protocol import wire
from core.traffic.rows import FOLDER, ROLES, SHADOW, TrafficBuffer, TrafficError

SELDON_REQUEST = "io.seldon.serving.inference.request"
SELDON_RESPONSE = "io.seldon.serving.inference.response"
SELDON_FEEDBACK = "io.seldon.serving.feedback"
KSERVE_REQUEST = "org.kubeflow.serving.inference.request"
KSERVE_RESPONSE = "org.kubeflow.serving.inference.response"
PAIRED = {SELDON_REQUEST, SELDON_RESPONSE, KSERVE_REQUEST, KSERVE_RESPONSE}
REQUESTS = {SELDON_REQUEST, KSERVE_REQUEST}
PROBE_HEADER = "X-Zenkube-Probe"  # deploy's smoke request (integrations/seldon_local/client.py)
UNPAIRED_SECONDS = 120.0  # a request whose response never came by then failed
FAILED_STATUS = 500  # what such a request's row says (`_status`)


class Sink:
    def __init__(
        self,
        root: str,
        max_bytes: int,
        flush_seconds: float,
        token: str = "",
        trust_logged_feedback: bool = True,
        unpaired_seconds: float = UNPAIRED_SECONDS,
    ):
        self.unpaired_seconds = unpaired_seconds
        self.root, self.max_bytes, self.flush_seconds = root, max_bytes, flush_seconds
        self.token, self.trust_logged_feedback = token, trust_logged_feedback
        self.buffers: dict[str, TrafficBuffer] = {}
        self.waiting: dict[tuple, tuple[float, bool, bytes, float | None]] = {}
        self.pruned_at = 0.0
        self.tasks: list[asyncio.Task] = []

    def buffer(self, folder: str) -> TrafficBuffer:
        """The buffer of the traffic folder the logger URL names (its last segment): the
        folder itself, as `traffic.folder_name` made it from the model name, never mapped
        again (an injective name map cannot be applied twice)."""
        model = folder
        if not FOLDER.fullmatch(folder):
            raise web.HTTPNotFound(
                text=f"'{folder}' is not a model's traffic folder: the request logger posts "
                "to <sink>/<folder>, the folder the deployer names (core/traffic/rows.py)"
            )
        if model not in self.buffers:
            buffer = TrafficBuffer(f"{self.root.rstrip('/')}/{folder}", self.max_bytes)
            self.buffers[model] = buffer
            self.tasks.append(
                asyncio.get_running_loop().create_task(buffer.run(self.flush_seconds))
            )
        return self.buffers[model]

    async def event(self, request: web.Request) -> web.Response:
        model = request.match_info["model"]
        headers = request.headers
        kind = headers.get("Ce-Type", "")
        if kind == SELDON_FEEDBACK:
            return await self.logged_feedback(model, request)
        if kind not in PAIRED:
            return _refuse(
                f"expected a binary-mode CloudEvent (Ce-Type header) of type {SELDON_REQUEST}, "
                f"{SELDON_RESPONSE}, {SELDON_FEEDBACK}, {KSERVE_REQUEST} or {KSERVE_RESPONSE}; "
                f"got '{kind or 'no Ce-Type'}'"
            )
        seldon = kind.startswith("io.seldon.")
        request_id = headers.get("Ce-Requestid" if seldon else "Ce-Id", "")
        if not request_id:
            header = "Ce-Requestid (the prediction's puid)" if seldon else "Ce-Id"
            return _refuse(f"a {kind} event needs the {header} header")
        answered_by = _answered_by(model, request.query, headers, seldon)
        if isinstance(answered_by, str):
            return _refuse(answered_by)
        body = await request.read()
        if not seldon and PROBE_HEADER in _metadata(headers.get("Ce-Metadata", "")):
            return web.json_response({"skipped": "zenkube's smoke request, not traffic"})
        # Seldon logs each node of a graph: pair within the node (and within the predictor).
        node = headers.get("Ce-Modelid", "") if seldon else ""
        key = (model, seldon, request_id, node, answered_by)
        at = _event_time(headers.get("Ce-Time", ""))
        self.pair(key, kind in REQUESTS, body, model, seldon, request_id, answered_by, at)
        return web.json_response({"accepted": request_id, "role": answered_by[0]})

    def pair(self, key, is_request, body, model, seldon, request_id, answered_by, at=None) -> None:
        now = time.monotonic()
        if now - self.pruned_at > 0.2:
            self.prune(now)
        first = self.waiting.get(key)
        if first is None or first[1] == is_request:
            self.waiting[key] = (now, is_request, body, at)
            return
        del self.waiting[key]  # the other half of this prediction
        request_body, response_body = (body, first[2]) if is_request else (first[2], body)
        # latency: the response's Ce-Time minus the request's. KServe stamps the times the
        # request came and the answer left (handler.go:123 and :181, `OccurrenceTime`);
        # Seldon's executor stamps the logger's send time (`cloudevents.WithTimeNow()`,
        # worker.go), so there it also holds the logger queue's delay.
        times = (at, first[3]) if is_request else (first[3], at)
        latency_ms = None
        if None not in times and times[1] >= times[0]:
            latency_ms = (times[1] - times[0]) * 1000
        role, version = answered_by
        protocol = "seldon" if seldon else "v2"
        self.buffer(model).add(
            request_body, response_body, protocol, version, role=role, latency_ms=latency_ms,
            # Seldon: the rows carry the puid the caller saw (Seldon-Puid), whatever the body
            request_id=request_id if seldon else None,
        )  # fmt: skip

    def prune(self, now: float) -> None:
        """Requests whose response never came within `unpaired_seconds` failed: both loggers
        log a response only for an answer (KServe: status 200, handler.go:183; Seldon: a
        predict without error, predictor_process.go:133-138), so each becomes one row with
        `_status` 500 (the sink cannot tell a 4xx from a 5xx: counted as the stricter one)
        and its role, for the release gate's error share."""
        kept = {}
        for key, value in self.waiting.items():
            if now - value[0] < self.unpaired_seconds:
                kept[key] = value
            elif value[1]:  # a request alone
                model, seldon, request_id, _node, (role, version) = key
                self.buffer(model).add_failed(
                    request_id, "seldon" if seldon else "v2", version, role, FAILED_STATUS
                )
        self.waiting, self.pruned_at = kept, now

    async def prune_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            self.prune(time.monotonic())

    async def logged_feedback(self, model: str, request: web.Request) -> web.Response:
        """Seldon's feedback API, as its logger forwards it: labels for an earlier puid."""
        if self.token and not self.trust_logged_feedback:
            return web.json_response(
                {"ignored": "labels come only from token holders (--trust-logged-feedback)"}
            )
        body = await request.read()
        try:
            frame = self.buffer(model).add_feedback(
                "seldon", _with_feedback_puid(body, request.headers.get("Ce-Requestid", ""))
            )
        except TrafficError as exc:
            return _refuse(str(exc), exc.status)
        return web.json_response({"accepted": str(frame["_request_id"].iloc[0])})

    async def feedback(self, request: web.Request) -> web.Response:
        model = request.match_info["model"]
        if self.token:
            given = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                return web.json_response(
                    {"error": "feedback needs the sink's token: Authorization: Bearer <token>"},
                    status=401,
                )
        body = await request.read()
        try:
            frame = self.buffer(model).add_feedback(_feedback_protocol(body), body)
        except TrafficError as exc:
            return _refuse(str(exc), exc.status)
        puid = str(frame["_request_id"].iloc[0])
        return web.json_response(seldon_codec.feedback_answer(puid))

    async def close(self, app: web.Application) -> None:
        for task in self.tasks:
            task.cancel()
        for buffer in self.buffers.values():  # what is buffered is written, not lost
            await buffer.flush()


def _answered_by(folder: str, query, headers, seldon: bool) -> tuple[str, str] | str:
    """(role, version) of the predictor whose logger posted, from the URL's query the
    deployer wrote (module docstring), checked against Seldon's `Ce-Endpoint`; a str: why
    the event is refused."""
    default = SHADOW if folder.endswith(".shadow") else "champion"
    role = query.get("role", default)
    if role not in ROLES:
        return f"role={role!r} in the logger URL is not one of {', '.join(ROLES)}"
    predictor = query.get("predictor", "")
    endpoint = headers.get("Ce-Endpoint", "")
    if seldon and predictor and endpoint != predictor:
        return (
            f"the logger URL is predictor {predictor!r}'s but Seldon's Ce-Endpoint says "
            f"{endpoint!r}: a predictor's logger URL was copied to another; redeploy it"
        )
    return role, query.get("version", "")


def _event_time(text: str) -> float | None:
    """A CloudEvent's `Ce-Time` (RFC 3339) as epoch seconds; None when absent or not one."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _metadata(text: str) -> dict:
    """KServe's Ce-Metadata: the request headers named in `logger.metadataHeaders`."""
    try:
        found = json.loads(text) if text else {}
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


def _refuse(reason: str, status: int = 400) -> web.Response:
    return web.json_response({"error": reason}, status=status)


def _with_feedback_puid(body: bytes, puid: str) -> bytes:
    """A Seldon feedback message; when it names no puid, the one in `Ce-Requestid` (the
    `Seldon-Puid` header its caller sent) is the prediction it labels."""
    try:
        message = wire.loads(body)
    except (ValueError, RecursionError):
        return body
    if not (isinstance(message, dict) and puid) or any(seldon_codec.feedback_ids(message)):
        return body
    response = message.get("response") if isinstance(message.get("response"), dict) else {}
    message["response"] = seldon_codec.with_puid(response, puid)
    return wire.dumps(message)


def _feedback_protocol(body: bytes) -> str:
    """zenkube's V2 feedback (`{"id": …, "truth": [...]}`) or Seldon's message."""
    try:
        message = wire.loads(body)
    except (ValueError, RecursionError):
        return "seldon"  # the Seldon reader says what is wrong
    return "v2" if isinstance(message, dict) and "id" in message else "seldon"


def app_for(
    root: str,
    max_bytes: int = 512 * 2**20,
    flush_seconds: float = 5.0,
    token: str = "",
    trust_logged_feedback: bool = False,
    unanswered_seconds: float = UNPAIRED_SECONDS,
) -> web.Application:
    sink = Sink(
        root, max_bytes, flush_seconds, token, trust_logged_feedback or not token,
        unanswered_seconds,
    )  # fmt: skip
    app = web.Application(client_max_size=64 * 2**20)

    async def start_pruning(_app) -> None:
        every = max(0.1, min(5.0, unanswered_seconds / 4))
        sink.tasks.append(asyncio.get_running_loop().create_task(sink.prune_every(every)))

    app.on_startup.append(start_pruning)
    app.router.add_get("/healthz", lambda _: web.json_response({"ok": True}))
    app.router.add_post("/{model}/feedback", sink.feedback)
    app.router.add_post("/{model}", sink.event)
    app.router.add_post("/{model}/", sink.event)
    app.on_cleanup.append(sink.close)
    return app


def read_token(path: str | None) -> str:
    """The token in `path` (a mounted Secret key), or "" without one."""
    if not path:
        return ""
    token = Path(path).read_text().strip()
    if not token:
        raise SystemExit(f"zenkube traffic sink: the token file {path} is empty")
    return token


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--root", required=True, help="where traffic goes: s3://bucket/traffic")
    parser.add_argument("--max-mb", type=int, default=512, help="cap of each model's folder")
    parser.add_argument("--flush-seconds", type=float, default=5.0)
    parser.add_argument(
        "--unanswered-seconds",
        type=float,
        default=UNPAIRED_SECONDS,
        help="a logged request with no logged response by then failed (a row with _status 500)",
    )
    parser.add_argument(
        "--token-file", help="file holding the token feedback must carry (a mounted Secret)"
    )
    parser.add_argument(
        "--trust-logged-feedback",
        action="store_true",
        help="with --token-file, still record labels Seldon's logger forwards",
    )
    return parser


def main() -> None:
    args = arguments().parse_args()
    token = read_token(args.token_file)
    if not token:
        print(
            "zenkube traffic sink: no --token-file, so anyone who reaches this port can post "
            "labels; confine it with a NetworkPolicy (docs/kubeflow.md)",
            flush=True,
        )
    web.run_app(
        app_for(
            args.root,
            args.max_mb * 2**20,
            args.flush_seconds,
            token,
            args.trust_logged_feedback,
            args.unanswered_seconds,
        ),
        host=args.host,
        port=args.port,
        access_log=None,  # request values never reach a log
    )


if __name__ == "__main__":
    main()
