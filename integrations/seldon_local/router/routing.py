"""Which server answers a prediction: the champion, or during a release its candidate.

Canary (the split): PERCENT % of predictions go to the candidate, sticky by the caller's
request id (Seldon-Puid; V2: X-Request-Id or the body's "id"), else by a smooth weighted
counter; a candidate answer other than 200 (or none) is re-sent to the champion and the
caller gets the champion's (a fallback). Shadow (the mirror): each answered prediction is
copied to the candidate as a background task (at most ZENKUBE_SHADOW_INFLIGHT=32 in
flight; more are skipped and counted); its answer is evidence and recorded, never
returned. Each answer feeds the metrics, the release's evidence and the recorder.
Deploy's smoke request (X-Zenkube-Probe) always goes to the champion and is not recorded.
"""

from __future__ import annotations

import asyncio
import logging
import time

from aiohttp import web

from integrations.seldon_local.router.release import (
    MAX_SHADOW_INFLIGHT,
    Release,
    read_answer,
    sticky_id,
)
from integrations.seldon_local.router.wire import answer_text, decode_body

log = logging.getLogger("zenkube.front")


class Routing:
    """The prediction part of `Front` (proxy.py): uses its release, backend, labels,
    metrics, protocol, `send` and recording.py's `record_answer`."""

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
        answer = await self.send(port, request.method, url, headers, body, idempotent=True)
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
        if answer.status == 200:
            self.record_answer(request, body, text, role, release)
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
            answer = await self.send(release.port, "POST", url, headers, body, idempotent=True)
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
