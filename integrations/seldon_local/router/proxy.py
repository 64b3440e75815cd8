"""The front itself: one served model's stable port, forwarding to its current server.

`Front` holds the served state (port, backend, model, version, protocol, columns, the
server's folder, the recorder, the release) and answers the serving port: `handle` asks
wire.py's `route` what a request is, refuses web pages, answers its own GET /metrics, and
sends the rest on (`forward`/`send`), counting requests in flight per port, so a swap
(control.py's PUT /backend) sends new requests to the new server while the old one
finishes its own. The other jobs are mixed in, one file each:

- routing.py `Routing`: which server answers a prediction (champion; a release's canary
  split and shadow mirror);
- recording.py `Recording`: served traffic and feedback labels written for monitoring;
- release.py `ReleaseKeeping`: the gate's rounds, release.json, a release after a restart;
- supervise.py `Supervision`: restarts of dead servers, keeper and watcher; log caps;
- control.py `Control`: the owner-only control socket (switch, status, releases).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
import uuid
from pathlib import Path

from aiohttp import (
    ClientConnectorError,
    ClientError,
    ClientOSError,
    ClientPayloadError,
    ClientSession,
    ClientTimeout,
    ServerDisconnectedError,
    TCPConnector,
    web,
)
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.exposition import generate_latest

from core.monitoring.gauges import MonitoringGauges
from core.traffic.rows import TrafficBuffer
from integrations.seldon_local import process, replicas
from integrations.seldon_local.router.control import Control
from integrations.seldon_local.router.metrics import Metrics
from integrations.seldon_local.router.record import RELEASE_KEYS, read_json, write_json
from integrations.seldon_local.router.recording import Recording
from integrations.seldon_local.router.release import Release, ReleaseKeeping
from integrations.seldon_local.router.routing import Routing
from integrations.seldon_local.router.supervise import DOWN_SECONDS, Supervision
from integrations.seldon_local.router.wire import (
    HOP_BY_HOP,
    HOST,
    MAX_BODY,
    WHERE,
    BodyError,
    error,
    from_a_web_page,
    route,
    short,
)

log = logging.getLogger("zenkube.front")


def retried(outcome: web.Response | BaseException, may_repeat: bool) -> bool:
    """Whether the front asks the next replica after one attempt's `outcome` (the
    replica's answer, or what went wrong). Envoy's retry_on `connect-failure` and `reset`,
    never `5xx` or `gateway-error`: only a replica that did not answer is passed over.

    - An answer, whatever its status (a 4xx, a 500 the model raised for this input), is
      the model server's and goes to the client: never retried. A dying server does not
      answer: the front kills a server whose leader died with SIGKILL (process.py
      `kill_group`), so its request is cut off, not answered with the server's own error.
    - The connection refused or never made (`connect-failure`): nothing was sent; any
      request goes to the next replica.
    - The connection reset or closed before the whole answer (`reset`): the replica may
      have run the request, so only one that may be sent twice (`may_repeat`: a
      prediction, GET, HEAD) goes on.
    - Anything else (a timeout, a malformed answer) is not a replica going away."""
    if isinstance(outcome, ClientConnectorError):
        return True
    if isinstance(outcome, (ServerDisconnectedError, ClientOSError, ClientPayloadError)):
        return may_repeat
    return False


class Front(Routing, Recording, ReleaseKeeping, Supervision, Control):
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
        # each server's replicas (replicas.py): its backend port -> its replicas' ports,
        # primary first (supervise.py reads them from server.json); when each was last
        # seen down (refused a connection, dead, being restarted); how many are ready
        self.replica_ports: dict[int, list[int]] = {}
        self.down: dict[int, float] = {}
        self.ready: dict[int, tuple[int, int]] = {}
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
        self.restarts = int(earlier.get("restarts") or 0)  # the server's, before this front
        self.last_restart = earlier.get("last_restart")
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
                "restarts": self.restarts,
                "last_restart": self.last_restart,
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
            "replicas": self.replicas_of(self.backend),
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
        self.learn_replicas()  # a restarted front knows the standbys at its first request
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

    def targets(self, port: int) -> list[int]:
        """The replicas of the server on `port` to try, in order: the ready ones, primary
        first (primary + standby, replicas.py says why), then those seen down lately."""
        ports = self.replica_ports.get(port) or [port]
        now = time.monotonic()
        ready = [p for p in ports if now - self.down.get(p, -1e9) > DOWN_SECONDS]
        return ready + [p for p in ports if p not in ready]

    def replicas_of(self, port: int) -> dict:
        """{"ready": R, "total": N} of the server on `port`'s replicas (supervise.py
        counts them each round; before its first, the record's live processes)."""
        if port not in self.ready:
            folders = [d for _, d, p in self.supervised() if p == port]
            record = read_json(folders[0] / "server.json") if folders else {}
            members = replicas.of(record) if record.get("port") == port else []
            alive = sum(process.is_alive(r.pid) for r in members)
            return {"ready": alive, "total": len(members)} if members else {}
        ready, total = self.ready[port]
        return {"ready": ready, "total": total}

    async def send(
        self, port: int, method: str, url: str, headers: dict, body: bytes, puid: bool = True,
        idempotent: bool = False,
    ) -> web.Response:  # fmt: skip
        """One request to the model server on `port` (to its first ready replica); 503
        when none answers. Which failures send it to the next replica is `retried`'s to
        say (`idempotent`: a prediction, which may be sent twice); a replica that refuses
        the connection (dead) is marked down too. With `puid`, a Seldon prediction's
        request id is returned in the Seldon-Puid header. In flight it counts under
        `port`, whichever replica answers (a swap drains the server, all its replicas)."""
        self.inflight[port] += 1
        again = idempotent or method in ("GET", "HEAD")
        try:
            targets = self.targets(port)
            for n, target in enumerate(targets, 1):
                try:
                    outcome = await self.send_once(target, method, url, headers, body, puid)
                except (TimeoutError, ClientError) as exc:
                    outcome = exc
                if isinstance(outcome, ClientConnectorError):  # it refused: dead
                    self.down[target] = time.monotonic()
                failure = outcome
                if not retried(outcome, again):
                    if isinstance(outcome, web.Response):
                        return outcome
                    break
                if n < len(targets):
                    log.info("replica on port %s did not answer (%s): the next one is asked",
                             target, type(failure).__name__)  # fmt: skip
            why = "it is being restarted" if self.restart_note else type(failure).__name__
            return error(
                503,
                f"the model server is not answering ({why}); the front restarts a server "
                "that dies, `python run.py serve status` shows it",
            )
        finally:
            self.inflight[port] -= 1

    async def send_once(
        self, port: int, method: str, url: str, headers: dict, body: bytes, puid: bool
    ) -> web.Response:
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
