"""Start the Seldon Core 1.18 microservice bound to loopback, REST only.

Usage (inside the seldon runtime env):
    python launch_seldon.py --model-uri DIR --port N [--workers W] [--threads T]

Seldon hard-codes 0.0.0.0; we rebind every listener to ZENKUBE_HOST (127.0.0.1), turn
gRPC off (REST is what our clients speak), and add request checks that Seldon lacks
(oversized body, invalid JSON) so they answer 400 with a reason.
"""

from __future__ import annotations

import json
import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import orphan  # noqa: E402
from loopback import HOST, MAX_BODY, free_port, launcher_arguments  # noqa: E402


def _loopback(options: dict) -> dict:
    port = options["bind"].rsplit(":", 1)[1]
    options["bind"] = f"{HOST}:{port}"
    return options


def _use_orjson(app) -> None:
    """Parse and write JSON as the wire codecs do (core/protocol/wire.py: orjson; stdlib
    json spends ~140 ms on a 10k-row batch). NaN/Infinity are not JSON, but clients send
    them: they are parsed, so the model says which value is wrong, not "invalid JSON"."""
    from flask.json.provider import DefaultJSONProvider

    from core.protocol import wire

    class OrjsonProvider(DefaultJSONProvider):
        def loads(self, s, **kwargs):
            return wire.loads(s)

        def dumps(self, obj, **kwargs):
            return wire.dumps(obj).decode()

    app.json = OrjsonProvider(app)


def _whole_body(wsgi_app):
    """gunicorn 20's sync worker gives Flask a body that reads 1 KiB per step (its
    `Body.read`: ~2,400 steps, each copying its reader's buffers, for a 10,000-row
    request of 2.4 MB: ~5 ms of ~75). A body of a stated length within the limit is read
    from gunicorn's length reader in one call instead (8 KiB socket reads); any other
    (chunked, over the limit: refused by `check_body` unread) is left as it is."""
    import io

    from gunicorn.http.body import Body, LengthReader

    def app(environ, start_response):
        body = environ.get("wsgi.input")
        length = environ.get("CONTENT_LENGTH") or ""
        if (
            isinstance(body, Body)
            and isinstance(body.reader, LengthReader)
            and length.isdigit()
            and 0 < int(length) <= MAX_BODY
            and body.buf.tell() == 0  # nothing read from it yet
        ):
            environ["wsgi.input"] = io.BytesIO(body.reader.read(int(length)))
        return wsgi_app(environ, start_response)

    return app


def _collector_paused(wsgi_app):
    """The cycle collector paused while a request is served (as wire.loads pauses it for
    the parse): the 10,000 lists of a 10,000-row body, alive until the answer, were
    otherwise walked by each young-generation collection the request's other objects set
    off (~4 ms of ~50 per request, Flask's test client in the Seldon environment). What
    a request leaves in cycles is collected after it. A sync worker serves one request at
    a time; with --threads, the request that paused it turns it back on (another may
    then finish with it on), so it is never left off."""
    import gc

    def app(environ, start_response):
        paused = gc.isenabled()
        gc.disable()
        try:
            return wsgi_app(environ, start_response)
        finally:
            if paused:
                gc.enable()

    return app


class _NoRequestValues(logging.Filter):
    """Seldon logs every refused request's error dict; the reason quotes the client's
    values, and request data must not reach the log. Keep the status, drop the reason."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.funcName == "handle_invalid_usage":
            record.msg, record.args = (
                "refused a request (HTTP 4xx; the reason went to the client)",
                (),
            )
        return True


def _bad_request(message: str):
    from seldon_core.flask_utils import SeldonMicroserviceException

    return SeldonMicroserviceException(message, status_code=400, reason="BAD_REQUEST")


def _json_field(text: str | None, where: str, missing: str) -> None:
    """A Seldon message sent as a form field or query parameter must be there and parse."""
    if not text:
        raise _bad_request(missing)
    try:
        json.loads(text)
    except ValueError as exc:
        raise _bad_request(f"{where} is not valid JSON: {exc}") from None


def _end_when_metrics_are_gone() -> None:
    """Seldon keeps its metrics in a multiprocessing Manager (seldon_core/metrics.py
    `SeldonMetrics`), a process of its own in this group; every prediction updates them
    there. Once that process is gone (killed, or a SIGTERM to the group ended it before
    the worker finished its request) each update fails and Seldon answers HTTP 500
    "[Errno 32] Broken pipe", for every request, while the server looks alive. A worker
    that finds it gone ends the whole server at once instead (SIGKILL to its process
    group): the request is cut off, the front sends it to another replica and starts
    this one again. Only the Manager's own I/O errors do this, never the model's."""
    import signal

    from seldon_core.metrics import SeldonMetrics

    update = SeldonMetrics.update

    def update_or_end(self, custom_metrics, method):
        try:
            return update(self, custom_metrics, method)
        except (OSError, EOFError) as exc:
            print(
                f"zenkube: Seldon's metrics process is gone ({exc!r}): every prediction "
                "would answer HTTP 500; ending this server (its front starts it again)",
                file=sys.stderr,
                flush=True,
            )
            os.killpg(os.getpgrp(), signal.SIGKILL)
            raise

    SeldonMetrics.update = update_or_end


def _patch_seldon() -> None:
    logging.getLogger("seldon_core.wrapper").addFilter(_NoRequestValues())

    from flask import jsonify, request
    from seldon_core import microservice, wrapper
    from seldon_core.flask_utils import SeldonMicroserviceException
    from werkzeug.exceptions import HTTPException

    class LoopbackUserModelApplication(microservice.UserModelApplication):
        def __init__(self, app, *args, options=None, **kwargs):
            super().__init__(app, *args, options=_loopback(options or {}), **kwargs)

    class LoopbackStandaloneApplication(microservice.StandaloneApplication):
        def __init__(self, app, options=None):
            super().__init__(app, options=_loopback(options or {}))

    microservice.UserModelApplication = LoopbackUserModelApplication
    microservice.StandaloneApplication = LoopbackStandaloneApplication

    original = wrapper.get_rest_microservice

    def get_rest_microservice(user_model, seldon_metrics):
        app = original(user_model, seldon_metrics)
        _use_orjson(app)
        app.wsgi_app = _collector_paused(_whole_body(app.wsgi_app))

        @app.errorhandler(HTTPException)
        def http_error(exc):
            # Seldon turns every HTTP error into a 500; a wrong path or method is the
            # client's mistake: say so with its own status and a short reason.
            code, path = exc.code, request.path[:80]
            routes = {r.rule: r.methods for r in app.url_map.iter_rules() if r.endpoint != "static"}
            allowed = routes.get(request.path)
            if code in (404, 405):  # Seldon's static-file route claims GET on every path
                code = 404 if allowed is None else 405
            if code == 405:
                use = ", ".join(sorted(set(allowed) - {"HEAD", "OPTIONS"}))
                message = f"{request.method} is not allowed on {path!r}; use {use}"
            elif code == 404:
                message = f"no such path {path!r}; predictions are POSTed to /api/v1.0/predictions"
            else:
                message = exc.description or exc.name
            name = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(code, "BAD_REQUEST")
            error = SeldonMicroserviceException(message, status_code=code, reason=name)
            response = jsonify(error.to_dict())
            response.status_code = code
            return response

        @app.before_request
        def check_body():
            if not (request.path.endswith("/predictions") or request.path == "/predict"):
                return None
            if request.routing_exception is not None:
                return None  # a 404 or 405, answered by http_error
            if request.method != "POST" and request.path != "/predict":
                return None  # Seldon's catch-all static route took it: http_error says 405
            if request.args.get("json") or request.method == "GET":
                return _json_field(
                    request.args.get("json"),
                    "the json query parameter",
                    "GET /predict needs ?json=<the Seldon message>; or POST the message",
                )
            size = request.content_length
            if size is not None and size > MAX_BODY:
                raise _bad_request(
                    f"request body is {size} bytes; the limit is {MAX_BODY} "
                    "(split the batch or raise ZENKUBE_MAX_BODY_BYTES)"
                )
            if request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
                # Seldon's own client may send the message as a form field `json=…`.
                return _json_field(
                    request.form.get("json") or request.args.get("json"),
                    "the json form field",
                    "a form-encoded body needs a field json=<the Seldon message>; or send "
                    "the message itself with Content-Type: application/json",
                )
            if not request.get_data(cache=True):
                raise _bad_request('empty body: send JSON like {"data": {"ndarray": [[...]]}}')
            try:
                request.get_json(force=True, cache=True)
            except Exception as exc:
                raise _bad_request(
                    f"the body is not valid JSON: {getattr(exc, 'description', exc)}"
                ) from None
            return None

        return app

    wrapper.get_rest_microservice = get_rest_microservice
    microservice.seldon_microservice.get_rest_microservice = get_rest_microservice


def main() -> None:
    parser = launcher_arguments(__doc__)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    orphan.watch_in_background()  # exits when its front and keeper are gone (orphan.py)
    _patch_seldon()
    _end_when_metrics_are_gone()
    from seldon_core import microservice

    parameters = [
        {"name": "model_uri", "value": args.model_uri, "type": "STRING"},
        {"name": "model_name", "value": args.model_name, "type": "STRING"},
    ]
    sys.argv = [
        "seldon-core-microservice",
        "seldon_model.ZenkubeSeldonModel",
        "--service-type",
        "MODEL",
        "--http-port",
        str(args.port),
        "--metrics-port",
        str(free_port(args.port)),
        "--grpc-workers",
        "0",
        "--workers",
        str(args.workers),
        "--threads",
        str(args.threads),
        "--parameters",
        json.dumps(parameters),
    ]
    microservice.main()


if __name__ == "__main__":
    main()
