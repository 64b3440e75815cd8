"""The stable front of one served model: every request goes to the current model server.

A redeploy starts the new server on a port of its own, proves it (health and a smoke
prediction), then tells this front to send new requests there; requests already on the
old server finish, and only then is the old server stopped. The client-facing port never
closes, so no request is refused during a swap (a cluster's Service does the same with
its endpoints).

Runs as its own process, standalone (the standard library and aiohttp only):

    python router.py --port 8000 --backend 41234 --record router.json

Control, on the same loopback port under /_zenkube/ (not forwarded):
    PUT /_zenkube/backend {"port": N, "version": V, "protocol": P}   send new requests to N
    GET /_zenkube/router                {"backend": N, "inflight": {port: count}, ...}

Metrics for Prometheus at GET /metrics (not forwarded): prediction requests by HTTP
status, their latency, and rows scored, labelled with model, version and protocol; and
the latest monitoring run's drift share and quality (integrations/monitoring_gauges.py).

With --traffic-dir, every answered prediction (its rows, prediction and request id) is
kept off the request path and written every few seconds as a Parquet batch there
(integrations/traffic.py), never to the log; labels sent to the feedback endpoint
(Seldon: POST /api/v1.0/feedback; V2: POST /v2/models/<name>/feedback) are written beside
them. The buffer is bounded: past it, requests are served but not recorded (counted in
zenkube_traffic_dropped_requests_total).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import sys
import time
import uuid
from pathlib import Path

from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector, web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client.exposition import generate_latest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the repo root
from integrations.monitoring_gauges import MonitoringGauges  # noqa: E402
from integrations.traffic import TrafficBuffer, TrafficError  # noqa: E402

HOST = os.environ.get("ZENKUBE_HOST", "127.0.0.1")
MAX_BODY = 64 * 1024 * 1024  # the model servers' own cap; larger bodies get 413 here
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


def error(status: int, reason: str) -> web.Response:
    """An error both protocols' clients read: Seldon's `status` block and V2's `error`."""
    return web.json_response(
        {"status": {"code": status, "status": "FAILURE", "info": reason}, "error": reason},
        status=status,
    )


PREDICT_SUFFIXES = ("/predictions", "/infer", "/predict")
FEEDBACK_SUFFIX = "/feedback"


LABELS = ("model", "version", "protocol")


class Metrics:
    """What Prometheus scrapes from one served model (its own registry, no process noise)."""

    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "zenkube_requests",
            "Prediction requests answered, by HTTP status.",
            [*LABELS, "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "zenkube_request_duration_seconds",
            "Time to answer a prediction request, seen by the front.",
            LABELS,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.rows = Counter(
            "zenkube_rows", "Rows scored (answered 200).", LABELS, registry=self.registry
        )
        self.dropped = Counter(
            "zenkube_traffic_dropped_requests",
            "Answered requests not recorded for monitoring: the traffic buffer was full.",
            LABELS,
            registry=self.registry,
        )

    def observe(self, labels: tuple[str, str, str], status: int, seconds: float, body: bytes):
        self.requests.labels(*labels, str(status)).inc()
        self.latency.labels(*labels).observe(seconds)
        if status == 200:
            self.rows.labels(*labels).inc(rows_in(labels[2], body))


def rows_in(protocol: str, body: bytes) -> int:
    """How many rows a 200 answer scored (Seldon: ndarray length; V2: the output's shape)."""
    try:
        answer = json.loads(body)
        if protocol == "v2":
            return int(answer["outputs"][0]["shape"][0])
        return len(answer["data"]["ndarray"])
    except (ValueError, KeyError, IndexError, TypeError):
        return 0


class Front:
    def __init__(
        self, port: int, backend: int, record: Path, model: str = "", version: str = "",
        protocol: str = "", columns: list[str] | None = None, traffic_dir: str = "",
        traffic_max_bytes: int = 512 * 2**20,
    ):  # fmt: skip
        self.port = port
        self.backend = backend
        self.record = record
        self.model, self.version, self.protocol = model, version, protocol
        self.columns = list(columns or [])
        self.inflight: collections.Counter[int] = collections.Counter()
        self.session: ClientSession | None = None
        self.metrics = Metrics()
        if model:  # the latest monitoring run's drift share and quality, read at each scrape
            self.metrics.registry.register(MonitoringGauges(model))
        self.recorder = (
            TrafficBuffer(
                traffic_dir,
                traffic_max_bytes,
                on_drop=lambda labels: self.metrics.dropped.labels(*labels).inc(),
            )
            if traffic_dir
            else None
        )
        self.flusher: asyncio.Task | None = None

    def write_record(self) -> None:
        tmp = self.record.with_suffix(".tmp")
        record = {"pid": os.getpid(), "port": self.port, "backend": self.backend}
        record.update(model=self.model, version=self.version, protocol=self.protocol)
        tmp.write_text(json.dumps(record))
        tmp.replace(self.record)

    async def start(self, app: web.Application) -> None:
        self.session = ClientSession(
            connector=TCPConnector(limit=256, limit_per_host=256),
            timeout=ClientTimeout(total=None, sock_connect=5, sock_read=600),
            auto_decompress=False,
        )
        if self.recorder is not None:
            self.flusher = asyncio.get_running_loop().create_task(self.recorder.run())

    async def stop(self, app: web.Application) -> None:
        if self.flusher is not None:
            self.flusher.cancel()
        if self.recorder is not None:  # what is still buffered is written, not lost
            await self.recorder.flush()
        if self.session is not None:
            await self.session.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/_zenkube/"):
            return await self.control(request)
        if request.path == "/metrics" and request.method == "GET":
            return web.Response(
                body=generate_latest(self.metrics.registry),
                headers={"Content-Type": CONTENT_TYPE_LATEST},
            )
        if request.method == "POST" and request.path.endswith(PREDICT_SUFFIXES):
            labels, started = (self.model, self.version, self.protocol), time.perf_counter()
            answer = await self.forward(request)
            elapsed = time.perf_counter() - started
            self.metrics.observe(labels, answer.status, elapsed, answer.body or b"")
            probe = request.headers.get("X-Zenkube-Probe")  # deploy's smoke request
            if self.recorder is not None and answer.status == 200 and not probe:
                self.recorder.add(
                    await request.read(), answer.body, self.protocol, self.version, self.columns,
                    drop_labels=labels,
                )  # fmt: skip
            return answer
        if (
            request.method == "POST"
            and request.path.endswith(FEEDBACK_SUFFIX)
            and self.recorder is not None
        ):
            return await self.feedback(request)
        return await self.forward(request)

    async def feedback(self, request: web.Request) -> web.Response:
        """Labels for earlier predictions, joined to them by request id when monitoring."""
        try:
            frame = self.recorder.add_feedback(self.protocol, await request.read())
        except TrafficError as exc:
            return error(400, str(exc))
        request_id = str(frame["_request_id"].iloc[0])
        if self.protocol == "v2":
            return web.json_response({"id": request_id, "labels": len(frame)})
        return web.json_response(
            {"data": {"names": [], "ndarray": []}, "meta": {"puid": request_id}}
        )

    async def forward(self, request: web.Request) -> web.Response:
        port = self.backend
        self.inflight[port] += 1
        try:
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge:
                return error(
                    413, f"the request body is too large: the limit is {MAX_BODY // 2**20} MiB"
                )
            headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP}
            puid = None
            if self.protocol == "seldon" and request.path.endswith(PREDICT_SUFFIXES):
                # As Seldon's executor does: every prediction gets a request id (the
                # client's Seldon-Puid when it sent one), passed to the model server and
                # returned in the header; the model puts it in meta.puid too.
                puid = request.headers.get("Seldon-Puid") or uuid.uuid4().hex
                headers["Seldon-Puid"] = puid
            url = f"http://{HOST}:{port}{request.rel_url}"
            async with self.session.request(
                request.method, url, data=body, headers=headers, allow_redirects=False
            ) as answer:
                data = await answer.read()
                out = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
                if puid:
                    out["Seldon-Puid"] = puid
                return web.Response(status=answer.status, body=data, headers=out)
        except (TimeoutError, ClientError) as exc:
            return error(
                503,
                f"the model server is not answering ({type(exc).__name__}); `python run.py "
                "serve status` shows it, `python run.py deploy` restarts it",
            )
        finally:
            self.inflight[port] -= 1

    async def control(self, request: web.Request) -> web.Response:
        if request.path == "/_zenkube/router" and request.method == "GET":
            return web.json_response(
                {
                    "pid": os.getpid(),
                    "port": self.port,
                    "backend": self.backend,
                    "inflight": {str(p): n for p, n in self.inflight.items() if n},
                }
            )
        if request.path == "/_zenkube/backend" and request.method == "PUT":
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
            self.write_record()
            return web.json_response({"backend": port})
        return web.json_response({"error": "unknown control path"}, status=404)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backend", type=int, required=True)
    parser.add_argument("--record", type=Path, required=True)
    parser.add_argument("--model", default="", help="metrics label: the registered model")
    parser.add_argument("--version", default="", help="metrics label: the version served")
    parser.add_argument("--protocol", default="", help="metrics label: seldon or v2")
    parser.add_argument("--columns", default="[]", help="the model's input columns (JSON)")
    parser.add_argument("--traffic-dir", default="", help="record served traffic here")
    parser.add_argument("--traffic-max-mb", type=int, default=512, help="cap of that folder")
    args = parser.parse_args()
    front = Front(
        args.port, args.backend, args.record, args.model, args.version, args.protocol,
        json.loads(args.columns), args.traffic_dir, args.traffic_max_mb * 2**20,
    )  # fmt: skip
    app = web.Application(client_max_size=MAX_BODY)
    app.on_startup.append(front.start)
    app.on_cleanup.append(front.stop)
    app.router.add_route("*", "/{tail:.*}", front.handle)
    front.write_record()
    web.run_app(app, host=HOST, port=args.port, reuse_address=True, print=None, access_log=None)


if __name__ == "__main__":
    main()
