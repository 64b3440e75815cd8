"""The front's control: HTTP on a Unix socket (--control, in the model's 0700 state
folder; the socket itself 0600), so only the owner can switch the backend or read pids
and ports; the serving port has no control path.

    PUT /backend {"port": N, "version": V, "protocol": P, "server_dir": D}   send new requests to N
    GET /router  {"backend": N, "inflight": {port: count}, "restarts": R, "release": {...}, ...}
    PUT /release {"mode": "canary"|"shadow", "percent": P, "port": N, "version": V,
                  "server_dir": D, "columns": "[...]", "thresholds": {...}}   start a release
    GET /release  the last release's state ({} when there was none)
    POST /release/end {"outcome": "promote"|"abort", "by": W, "reason": R}   end it; answers
                  once the port that leaves has no request in flight (again for a retry
                  of how it ended; 409 when no release is active)

A promote makes the candidate the backend, as PUT /backend would. front.py
(`ModelFront`, `control_request`) is the client side.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from pathlib import Path

from aiohttp import web

from core.release import gate as release_gate
from integrations.seldon_local import process
from integrations.seldon_local.router.release import Release

log = logging.getLogger("zenkube.front")


class Control:
    """The control part of `Front` (proxy.py): switches its backend and served state,
    starts and ends its release, and answers its `status`."""

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
            self.learn_replicas()
            self.write_record()
            return web.json_response({"backend": port})
        return web.json_response({"error": "unknown control path"}, status=404)

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
            self.learn_replicas()
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
