"""The stable front of one served model: every request goes to the current model server.

A redeploy starts the new server on a port of its own, proves it (health and a smoke
prediction), then tells this front to send new requests there; requests already on the
old server finish, and only then is the old server stopped. The client-facing port never
closes, so no request is refused during a swap (a cluster's Service does the same with
its endpoints).

Runs as its own process (the standard library, aiohttp and prometheus_client; never
ZenML), started by front.py under its keeper (keeper.py):

    python integrations/seldon_local/router --port 8000 --backend 41234 \
        --record router.json --control control.sock

The serving port answers only what the protocol serves: inference, health, metadata and
feedback paths, and the front's own GET /metrics; anything else is 404 (unknown path) or
405 (known path, wrong method), so V2's model-repository API and Seldon's other
endpoints are never reached from it. A request a web page makes is refused unless that
origin is listed in ZENKUBE_CORS_ORIGINS or --cors-origins.

One module per job, each with the details in its docstring:

- main.py       the process: command line, serving port and control socket, logging
- proxy.py      `Front`: the served state, the serving port, forwarding and the swap
- wire.py       the serving port's rules: routes, body decoding, web pages, errors
- routing.py    which server answers a prediction: champion, canary split, shadow mirror
- release.py    a release's state and evidence; the gate's rounds; release.json
- recording.py  served traffic and feedback labels, recorded for monitoring
- metrics.py    what Prometheus scrapes at GET /metrics
- control.py    the owner-only control socket: switch, status, start and end a release
- supervise.py  restarts of dead model servers, of the keeper and the release watcher
- record.py     router.json (the served state a restarted front serves again)

`Front` is proxy.py's class with the other jobs mixed in (routing, recording, release,
supervision, control); each mixin says which of the front's attributes it uses.
"""
