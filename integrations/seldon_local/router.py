"""The stable front of one served model: every request goes to the current model server.

A redeploy starts the new server on a port of its own, proves it (health and a smoke
prediction), then tells this front to send new requests there; requests already on the
old server finish, and only then is the old server stopped. The client-facing port never
closes, so no request is refused during a swap (a cluster's Service does the same with
its endpoints).

Runs as its own process, standalone (the standard library and aiohttp only):

    python router.py --port 8000 --backend 41234 --record router.json

Control, on the same loopback port under /_zenkube/ (not forwarded):
    PUT /_zenkube/backend {"port": N}   switch new requests to N
    GET /_zenkube/router                {"backend": N, "inflight": {port: count}, ...}
"""

from __future__ import annotations

import argparse
import collections
import json
import os
from pathlib import Path

from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector, web

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


class Front:
    def __init__(self, port: int, backend: int, record: Path):
        self.port = port
        self.backend = backend
        self.record = record
        self.inflight: collections.Counter[int] = collections.Counter()
        self.session: ClientSession | None = None

    def write_record(self) -> None:
        tmp = self.record.with_suffix(".tmp")
        tmp.write_text(json.dumps({"pid": os.getpid(), "port": self.port, "backend": self.backend}))
        tmp.replace(self.record)

    async def start(self, app: web.Application) -> None:
        self.session = ClientSession(
            connector=TCPConnector(limit=256, limit_per_host=256),
            timeout=ClientTimeout(total=None, sock_connect=5, sock_read=600),
            auto_decompress=False,
        )

    async def stop(self, app: web.Application) -> None:
        if self.session is not None:
            await self.session.close()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/_zenkube/"):
            return await self.control(request)
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
            url = f"http://{HOST}:{port}{request.rel_url}"
            async with self.session.request(
                request.method, url, data=body, headers=headers, allow_redirects=False
            ) as answer:
                data = await answer.read()
                out = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_BY_HOP}
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
                port = int((await request.json())["port"])
            except (ValueError, KeyError, TypeError):
                return web.json_response({"error": 'send {"port": N}'}, status=400)
            self.backend = port
            self.write_record()
            return web.json_response({"backend": port})
        return web.json_response({"error": "unknown control path"}, status=404)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--backend", type=int, required=True)
    parser.add_argument("--record", type=Path, required=True)
    args = parser.parse_args()
    front = Front(args.port, args.backend, args.record)
    app = web.Application(client_max_size=MAX_BODY)
    app.on_startup.append(front.start)
    app.on_cleanup.append(front.stop)
    app.router.add_route("*", "/{tail:.*}", front.handle)
    front.write_record()
    web.run_app(app, host=HOST, port=args.port, reuse_address=True, print=None, access_log=None)


if __name__ == "__main__":
    main()
