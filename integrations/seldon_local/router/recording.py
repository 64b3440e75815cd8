"""What the front records for monitoring: served traffic and the labels feedback brings.

With --traffic-dir, every answered prediction (its rows, prediction and request id) is
kept off the request path and written every few seconds as a Parquet batch there
(core/traffic/rows.py), never to the log, with the version and role that answered;
labels sent to the feedback endpoint (Seldon: POST /api/v1.0/feedback; V2: POST
/v2/models/<name>/feedback) are written beside them, and while a release runs they are
joined to both roles' answers (the quality evidence). What cannot be recorded (buffer
full, unreadable, a failed write) is counted in zenkube_traffic_dropped_total{reason}
and logged once per reason; recording goes on. A deploy can start, move or stop the
recording (`record_traffic`, from control.py's PUT /backend).
"""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from core.protocol import seldon, v2
from core.traffic.rows import TrafficBuffer, TrafficError, feedback_labels
from integrations.seldon_local.router.release import Release
from integrations.seldon_local.router.wire import (
    FORM,
    decode_body,
    error,
    seldon_message,
    without_truth,
)

log = logging.getLogger("zenkube.front")


class Recording:
    """The recording part of `Front` (proxy.py): uses its recorder, recorder_task,
    dropped_reasons, metrics, labels, protocol, version, columns, release and `forward`."""

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

    def record_answer(
        self, request: web.Request, body: bytes, text: bytes, role: str, release: Release | None
    ) -> None:
        """A prediction answered 200 (`text`: its JSON) by the champion or a canary,
        recorded with the version that answered; deploy's smoke request is not."""
        if self.recorder is None or request.headers.get("X-Zenkube-Probe"):
            return
        if not text:
            self.traffic_dropped("unreadable", "an answer that is not JSON")
            return
        version, columns = self.version, self.columns
        if role == "canary":
            version, columns = release.version, release.columns or self.columns
        if self.protocol == "seldon" and request.content_type != "application/json":
            body = seldon_message(request, body)  # Seldon's form field or ?json=
        self.recorder.add(body, text, self.protocol, version, columns, role)

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
            return web.json_response(v2.feedback_answer(request_id, len(frame)))
        return web.json_response(seldon.feedback_answer(request_id))

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
