"""A served version's replicas (integrations/seldon_local/replicas.py): how many, how
server.json names them, and how the front picks the one that answers (router/proxy.py):
a request that finds a replica's port closed is answered by the next one, over real
HTTP (a small aiohttp server stands in for the live replica, no model needed)."""

from __future__ import annotations

import asyncio
import functools
import time

import pytest
from aiohttp import (
    ClientConnectorError,
    ClientOSError,
    ClientSession,
    ServerDisconnectedError,
    web,
)

from core.errors import ConfigError
from integrations.seldon_local import process, replicas
from integrations.seldon_local.router.proxy import Front, retried
from integrations.seldon_local.router.supervise import DOWN_SECONDS


def test_how_many_replicas_env_over_setting_and_bad_values_say_how_to_fix(monkeypatch):
    monkeypatch.delenv("ZENKUBE_REPLICAS", raising=False)
    assert replicas.wanted(None) == replicas.DEFAULT_REPLICAS == 2
    assert replicas.wanted(3) == 3
    monkeypatch.setenv("ZENKUBE_REPLICAS", "1")
    assert replicas.wanted(3) == 1
    for bad in ("0", "two", str(replicas.MAX_REPLICAS + 1)):
        monkeypatch.setenv("ZENKUBE_REPLICAS", bad)
        with pytest.raises(ConfigError, match="ZENKUBE_REPLICAS .* whole number from 1"):
            replicas.wanted(2)


def test_the_record_names_the_primary_and_its_standbys_and_each_ones_files():
    record = {"pid": 10, "port": 5000, "protocol": "v2", "standbys": [{"pid": 11, "port": 5001}]}
    primary, standby = replicas.of(record)
    assert (primary.index, primary.pid, primary.port, primary.log, primary.spec) == (
        0, 10, 5000, "server.log", "server.launch.json",
    )  # fmt: skip
    assert (standby.pid, standby.port, standby.log, standby.spec) == (
        11, 5001, "standby1.log", "standby1.launch.json",
    )  # fmt: skip
    restarted = replicas.with_pid(record, 1, 12)
    assert replicas.pids(restarted) == [10, 12] and replicas.pids(record) == [10, 11]
    assert replicas.pids(replicas.without_pids(record)) == []
    assert replicas.of({"pid": 3, "port": 7}) == [replicas.Replica(0, 3, 7)]  # one replica
    command = ["python", "launch_mlserver.py", "--port", "5000", "--workers", "1"]
    assert replicas.standby_command(command, 5001) == [
        "nice", "-n", "10", "python", "launch_mlserver.py", "--port", "5001", "--workers", "1",
    ]  # fmt: skip


def test_a_standby_that_fails_its_start_stops_every_standby_started(tmp_path):
    stopped, spawned = [], []

    def spawn(command, log, env):
        spawned.append(command)
        return 100 + len(spawned)

    def prove(pid, port, log):
        if pid == 102:
            raise RuntimeError("not healthy")

    with pytest.raises(RuntimeError):
        replicas.start_standbys(
            tmp_path, ["py", "--port", "1"], {}, 2, prove, process.free_port, spawn,
            lambda pid, timeout: stopped.append(pid),
        )  # fmt: skip
    assert sorted(stopped) == [101, 102] and all(c[0] == "nice" for c in spawned)


def test_the_front_asks_the_first_ready_replica_primary_first(tmp_path):
    front = Front(9000, 5000, tmp_path / "router.json")
    front.replica_ports[5000] = [5000, 5001]
    assert front.targets(5000) == [5000, 5001]
    front.down[5000] = time.monotonic()
    assert front.targets(5000) == [5001, 5000]  # down: tried last, not never
    front.down[5000] = time.monotonic() - DOWN_SECONDS - 0.1
    assert front.targets(5000) == [5000, 5001]
    assert front.targets(6000) == [6000]  # a server with no replicas known


def test_a_request_to_a_dead_replica_is_answered_by_the_live_one(tmp_path):
    async def scenario():
        live = web.Application()
        live.router.add_post("/v2/models/m/infer", lambda r: web.json_response({"ok": 1}))
        runner = web.AppRunner(live)
        await runner.setup()
        live_port, dead_port = process.free_port(), process.free_port()
        await web.TCPSite(runner, process.HOST, live_port).start()
        front = Front(9000, dead_port, tmp_path / "router.json")
        front.replica_ports[dead_port] = [dead_port, live_port]
        front.session = ClientSession(auto_decompress=False)
        try:
            answer = await front.send(dead_port, "POST", "/v2/models/m/infer", {}, b"{}")
            status, down = answer.status, set(front.down)
            # a feedback-like request (not `idempotent`) goes on too: it was never sent
            again = await front.send(dead_port, "POST", "/v2/models/m/infer", {}, b"{}")
            alone = Front(9000, dead_port, tmp_path / "router.json")
            alone.session = front.session
            refused = await alone.send(dead_port, "POST", "/v2/models/m/infer", {}, b"{}")
        finally:
            await front.session.close()
            await runner.cleanup()
        return status, down == {dead_port}, again.status, refused.status, dict(front.inflight)

    status, down, again, refused, inflight = asyncio.run(scenario())
    assert status == 200 and again == 200
    assert refused == 503  # one replica, and it is dead: a 503 with a reason
    assert down and all(not count for count in inflight.values())  # only the dead one


SELDON_IO_ERROR = (
    b'{"status":{"status":1,"info":"[Errno 32] Broken pipe","code":-1,'
    b'"reason":"MICROSERVICE_INTERNAL_ERROR"}}'
)


def test_only_a_replica_that_did_not_answer_is_passed_over_never_an_answer(tmp_path):
    """`retried` (Envoy's retry_on connect-failure and reset, not 5xx): every answer,
    a 500 included, is the client's; a refused connection goes on; a connection cut
    mid-answer goes on only for a request that may be sent twice. Then the same over
    real HTTP: a primary that answers 500, or cuts the connection, before a live standby."""
    for status in (400, 404, 413, 422, 500, 503):
        answer = web.Response(status=status, body=SELDON_IO_ERROR)
        assert not retried(answer, True) and not retried(answer, False)
    for cut in (ServerDisconnectedError(), ClientOSError(104, "Connection reset by peer")):
        assert retried(cut, True) and not retried(cut, False)
    assert not retried(TimeoutError(), True)  # a slow model is not a dying one

    async def cut_off(request):
        request.transport.abort()  # closed mid-request, nothing answered
        return web.Response()

    async def scenario():
        primary, standby, hits = web.Application(), web.Application(), []
        primary.router.add_post("/fails", lambda r: web.Response(status=500, body=SELDON_IO_ERROR))
        primary.router.add_post("/cut", cut_off)
        standby.router.add_post("/{any}", lambda r: hits.append(r.path) or web.Response(text="ok"))
        runners = [web.AppRunner(primary), web.AppRunner(standby)]
        ports = [process.free_port(), process.free_port()]
        for runner, port in zip(runners, ports, strict=True):
            await runner.setup()
            await web.TCPSite(runner, process.HOST, port).start()
        front = Front(9000, ports[0], tmp_path / "router.json")
        front.replica_ports[ports[0]] = ports
        front.session = ClientSession(auto_decompress=False)
        try:
            try:
                await front.session.get(f"http://{process.HOST}:{process.free_port()}/")
            except ClientConnectorError as exc:
                refused = exc
            send = functools.partial(front.send, ports[0], "POST", headers={}, body=b"{}")
            failed = await send("/fails", idempotent=True)
            cut = await send("/cut", idempotent=True)
            cut_once = await send("/cut")  # not a prediction: it may have run, not sent again
        finally:
            await front.session.close()
            for runner in runners:
                await runner.cleanup()
        return refused, (failed.status, failed.body), cut.status, cut_once.status, hits

    refused, failed, cut, cut_once, hits = asyncio.run(scenario())
    assert retried(refused, True) and retried(refused, False)  # never sent: any request
    assert failed == (500, SELDON_IO_ERROR)  # the primary's answer, passed on as it was
    assert cut == 200 and cut_once == 503
    assert hits == ["/cut"]  # the standby was asked once: for the cut-off prediction
