"""Ports for listeners: below the kernel's ephemeral range, where no outgoing connection
takes one between the pick and the server's bind (a server started seconds after its
ports were picked found one "already in use")."""

from __future__ import annotations

import socket

from integrations.seldon_local import process
from integrations.seldon_local.runtime import loopback


def test_a_listener_port_is_free_below_the_ephemeral_range_and_never_one_taken(monkeypatch):
    low = loopback._ephemeral_low()
    assert low > 11024  # this machine's range leaves room below it
    # outgoing connections' source ports (what took a picked port) all lie in the range
    with socket.create_server(("127.0.0.1", 0)) as server:
        with socket.create_connection(server.getsockname()) as client:
            assert client.getsockname()[1] >= low
    taken = set()
    for _ in range(200):
        port = process.free_port(*taken)
        assert 10000 <= port < low and port not in taken
        taken.add(port)
    # a port a listener holds (or `taken` names) is passed over for the next candidate
    busy = process.free_port()
    with socket.create_server(("127.0.0.1", busy)):
        offers = iter([busy, busy + 1 if busy + 1 < low else busy - 1])
        monkeypatch.setattr(loopback.random, "randrange", lambda a, b: next(offers))
        assert process.free_port() not in (busy,)
        offers = iter([busy + 2, busy + 3])
        assert process.free_port(busy + 2) == busy + 3
