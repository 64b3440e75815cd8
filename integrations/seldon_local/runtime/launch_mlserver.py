"""Start MLServer 1.7 (Open Inference Protocol / V2) on loopback with zenkube's runtime.

Usage (inside the MLServer runtime env):
    python launch_mlserver.py --model-uri DIR --port N [--model-name classifier] [--workers W]

Adds what stock MLServer lacks: a 400 with a reason for invalid JSON, a body that does
not match the V2 schema (stock: 422) and an oversized body. The model is served under
`--model-name` (zenkube passes the registered model's name); the paths of its old name,
`/v2/models/classifier/…`, are answered as its own.
"""

from __future__ import annotations

import asyncio
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import orphan  # noqa: E402
from loopback import HOST, MAX_BODY, REPO_ROOT, free_port, launcher_arguments  # noqa: E402


def _refused_class():
    from fastapi import HTTPException

    class Refused(HTTPException):
        """A body refused while FastAPI reads it (FastAPI re-raises HTTPExceptions)."""

        def __init__(self, reason: str):
            super().__init__(status_code=400, detail=reason)

    return Refused


Refused = None  # set by _patch_app, inside the server's environment
OLD_NAME = "classifier"  # every V2 model's name before it was served under its own
SERVED_NAME = OLD_NAME  # set by main: --model-name


def _parse_like_seldon() -> None:
    """NaN, Infinity and integers beyond 64 bits are not strict JSON, but clients send
    them; MLServer's orjson refuses the whole body ("not valid JSON") where the Seldon
    server reads them and names the column. Read them the same way on both protocols:
    NaN is a missing value, Infinity and huge numbers get the column's reason."""
    import json

    from mlserver.rest import requests as mlserver_requests

    from core.protocol import v2, wire

    async def json_body(self):
        if not hasattr(self, "_json"):
            body = await self.body()
            try:
                self._json = wire.loads(body)  # orjson, then the stdlib for NaN/Infinity
            except json.JSONDecodeError:
                raise  # invalid: FastAPI's 400 below
            except RecursionError:
                raise Refused("the body is nested too deeply to be a V2 request") from None
            except ValueError:  # binary (say, gzip data sent without its header)
                raise Refused("the body is not valid JSON (not UTF-8 text)") from None
            if self.url.path.endswith("/infer"):
                try:
                    v2.check_request(self._json)
                except wire.BadRequest as exc:
                    raise Refused(str(exc)) from None
        return self._json

    mlserver_requests.Request.json = json_body


def _patch_app() -> None:
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from mlserver.rest import server as rest_server

    global Refused
    Refused = _refused_class()
    _parse_like_seldon()

    original = rest_server.create_app

    def create_app(*args, **kwargs):
        app = original(*args, **kwargs)

        async def bad_request(request, exc: RequestValidationError):
            problems = []
            for err in exc.errors():
                if err.get("type") == "json_invalid":
                    detail = str((err.get("ctx") or {}).get("error", ""))[:120]
                    problems.append(
                        "the body is not valid JSON" + (f" ({detail})" if detail else "")
                    )
                    continue
                where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
                problems.append(f"{where or 'body'}: {err.get('msg')}")
            return JSONResponse(
                status_code=400,
                content={"error": "invalid request: " + "; ".join(problems[:5])},
            )

        app.add_exception_handler(RequestValidationError, bad_request)

        async def refused(request, exc):
            return JSONResponse(status_code=400, content={"error": exc.detail})

        app.add_exception_handler(Refused, refused)

        old = f"/v2/models/{OLD_NAME}"

        @app.middleware("http")
        async def old_name(request, call_next):
            path = request.scope["path"]
            if SERVED_NAME != OLD_NAME and (path == old or path.startswith(old + "/")):
                new = f"/v2/models/{SERVED_NAME}" + path[len(old) :]
                request.scope["path"] = new
                request.scope["raw_path"] = new.encode()
            return await call_next(request)

        @app.middleware("http")
        async def limit_body(request, call_next):
            size = request.headers.get("content-length")
            if size is not None and int(size) > MAX_BODY:
                return JSONResponse(
                    status_code=400,
                    content={"error": f"request body is {size} bytes; the limit is {MAX_BODY}"},
                )
            return await call_next(request)

        return app

    rest_server.create_app = create_app


def main() -> None:
    parser = launcher_arguments(__doc__)
    args = parser.parse_args()
    orphan.watch_in_background()  # exits when its front and keeper are gone (orphan.py)
    global SERVED_NAME
    SERVED_NAME = args.model_name
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [os.path.dirname(os.path.abspath(__file__)), os.environ.get("PYTHONPATH", ""), REPO_ROOT]
    )
    _patch_app()
    from mlserver import MLServer
    from mlserver.settings import ModelParameters, ModelSettings, Settings

    grpc_port = free_port(args.port)
    settings = Settings(
        host=HOST,
        http_port=args.port,
        grpc_port=grpc_port,
        metrics_port=free_port(args.port, grpc_port),
        # MLServer 1.7's parallel inference pool dies at start-up here ("no running event
        # loop" in each spawned worker, MLServer#2286); inference runs in the server process.
        parallel_workers=0,
        load_models_at_startup=True,
    )
    model = ModelSettings(
        name=args.model_name,
        implementation="mlserver_runtime.ZenkubeMLflowRuntime",
        parameters=ModelParameters(uri=args.model_uri),
    )
    asyncio.run(MLServer(settings).start([model]))


if __name__ == "__main__":
    main()
