"""The front as a process: its command line, the serving port and the control socket.

    python integrations/seldon_local/router --port 8000 --backend 41234 \
        --record router.json --control control.sock

(front.py `ModelFront.start` runs it under its keeper, keeper.py, which hands it the
serving socket with --listen-fd and restarts it with --restore: it then serves what
router.json says.) Also logging: aiohttp's lines about malformed requests are cut to one
short line per kind a minute (`OnceLog`).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import logging
import os
import signal
import socket
import time
from pathlib import Path

from aiohttp import web

from integrations.seldon_local.router.control import unix_listener
from integrations.seldon_local.router.proxy import Front
from integrations.seldon_local.router.record import read_json, restore_args
from integrations.seldon_local.router.wire import HOST, MAX_BODY


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
