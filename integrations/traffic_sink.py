"""The traffic sink of a cluster deployment: Seldon's request logger posts here, and the
served traffic lands where `python run.py monitor --from-traffic` reads it.

On a cluster the SeldonDeployment's graph gets `logger: {mode: all, url: <sink>/<model>}`
(set by the `zenkube_seldon` deployer's `request_logger_url`). Seldon's executor then
posts each prediction's request and response as CloudEvents (`Ce-Type:
io.seldon.serving.inference.request` / `…response`, `Ce-Id`: the prediction's puid).
The sink pairs them by id and writes them, with feedback labels, as the same Parquet
batches the local front writes (integrations/traffic.py), under
`<root>/<model>/` — the stack's bucket, `s3://…/traffic`.

    python -m integrations.traffic_sink --port 8080 --root s3://bucket/traffic

    POST /<model>            a CloudEvent from Seldon's request logger
    POST /<model>/feedback   labels: Seldon's feedback message (as SeldonClient sends it)
    GET  /healthz
"""

from __future__ import annotations

import argparse
import asyncio
import time

from aiohttp import web

from integrations.traffic import TrafficBuffer, TrafficError, model_folder

REQUEST, RESPONSE = "io.seldon.serving.inference.request", "io.seldon.serving.inference.response"
UNPAIRED_SECONDS = 120.0  # a request whose response never came (an error) is dropped


class Sink:
    def __init__(self, root: str, max_bytes: int, flush_seconds: float):
        self.root, self.max_bytes, self.flush_seconds = root, max_bytes, flush_seconds
        self.buffers: dict[str, TrafficBuffer] = {}
        self.waiting: dict[tuple[str, str], tuple[float, str, bytes]] = {}
        self.tasks: list[asyncio.Task] = []

    def buffer(self, model: str) -> TrafficBuffer:
        if model not in self.buffers:
            buffer = TrafficBuffer(model_folder(self.root, model), self.max_bytes)
            self.buffers[model] = buffer
            self.tasks.append(
                asyncio.get_running_loop().create_task(buffer.run(self.flush_seconds))
            )
        return self.buffers[model]

    async def event(self, request: web.Request) -> web.Response:
        model = request.match_info["model"]
        kind, event_id = request.headers.get("Ce-Type", ""), request.headers.get("Ce-Id", "")
        if kind not in (REQUEST, RESPONSE) or not event_id:
            return web.json_response(
                {"error": f"expected a CloudEvent of type {REQUEST} or {RESPONSE} with Ce-Id"},
                status=400,
            )
        body = await request.read()
        now = time.monotonic()
        self.waiting = {k: v for k, v in self.waiting.items() if now - v[0] < UNPAIRED_SECONDS}
        key = (model, event_id)
        first = self.waiting.get(key)
        if first is not None and first[1] != kind:  # the other half of this prediction
            del self.waiting[key]
            pair = {kind: body, first[1]: first[2]}
            self.buffer(model).add(pair[REQUEST], pair[RESPONSE], "seldon")
        else:
            self.waiting[key] = (now, kind, body)
        return web.json_response({"accepted": event_id})

    async def feedback(self, request: web.Request) -> web.Response:
        model = request.match_info["model"]
        try:
            frame = self.buffer(model).add_feedback("seldon", await request.read())
        except TrafficError as exc:
            return web.json_response({"error": str(exc)}, status=400)
        puid = str(frame["_request_id"].iloc[0])
        return web.json_response({"data": {"names": [], "ndarray": []}, "meta": {"puid": puid}})

    async def close(self, app: web.Application) -> None:
        for task in self.tasks:
            task.cancel()
        for buffer in self.buffers.values():  # what is buffered is written, not lost
            await buffer.flush()


def app_for(root: str, max_bytes: int = 512 * 2**20, flush_seconds: float = 5.0) -> web.Application:
    sink = Sink(root, max_bytes, flush_seconds)
    app = web.Application(client_max_size=64 * 2**20)
    app.router.add_get("/healthz", lambda _: web.json_response({"ok": True}))
    app.router.add_post("/{model}/feedback", sink.feedback)
    app.router.add_post("/{model}", sink.event)
    app.router.add_post("/{model}/", sink.event)
    app.on_cleanup.append(sink.close)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--root", required=True, help="where traffic goes: s3://bucket/traffic")
    parser.add_argument("--max-mb", type=int, default=512, help="cap of each model's folder")
    parser.add_argument("--flush-seconds", type=float, default=5.0)
    args = parser.parse_args()
    web.run_app(
        app_for(args.root, args.max_mb * 2**20, args.flush_seconds),
        host=args.host,
        port=args.port,
        access_log=None,  # request values never reach a log
    )


if __name__ == "__main__":
    main()
