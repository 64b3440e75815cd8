"""What Prometheus scrapes from the front at GET /metrics: every answered request by
handler and HTTP status, prediction latency and rows scored, labelled with model,
version, protocol and role (champion; during a release canary or shadow for the
candidate's answers), traffic not recorded, server and front restarts, and the
champion's model-server replicas ready and wanted."""

from __future__ import annotations

from functools import partial

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

from core.protocol import seldon, v2, wire

disable_created_metrics()  # no *_created series: they carry nothing a query uses

LABELS = ("model", "version", "protocol")
ROLE_LABELS = (*LABELS, "role")  # role: champion, canary (a release's candidate), shadow


class Metrics:
    """What Prometheus scrapes from one served model (its own registry, no process noise)."""

    def __init__(self):
        self.registry = CollectorRegistry()
        # every series in this registry
        counter = partial(Counter, registry=self.registry)
        gauge = partial(Gauge, registry=self.registry)
        self.requests = counter(
            "zenkube_requests",
            "Requests answered, by handler (predict, feedback, health, metadata, metrics, "
            "other) and HTTP status; 404 and 405 included.",
            [*ROLE_LABELS, "handler", "code"],
        )
        self.latency = Histogram(
            "zenkube_request_duration_seconds",
            "Time to answer a prediction request, seen by the front.",
            ROLE_LABELS,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.rows = counter("zenkube_rows", "Rows scored (answered 200).", ROLE_LABELS)
        self.dropped = counter(
            "zenkube_traffic_dropped",
            "Answered requests or feedback not recorded for monitoring, by reason "
            "(buffer_full, unreadable, write_failed).",
            [*LABELS, "reason"],
        )
        self.restarts = counter(
            "zenkube_server_restarts",
            "Times the front restarted a model server that had died.",
            LABELS,
        )
        self.front_restarts = counter(
            "zenkube_front_restarts",
            "Times the front's keeper restarted the front (this process) after it died; "
            "the other series start again from zero at each restart.",
            LABELS,
        )
        self.replicas = gauge(
            "zenkube_ready_replicas",
            "The served version's model-server replicas ready to answer (the primary and "
            "its warm standbys); zenkube_replicas is how many it runs.",
            LABELS,
        )
        self.replicas_total = gauge(
            "zenkube_replicas",
            "The served version's model-server replicas (ready or being restarted).",
            LABELS,
        )

    def set_replicas(self, labels: tuple[str, ...], ready: int, total: int) -> None:
        """The served version's replicas now (only its series: a swap's old one goes)."""
        for gauge, value in ((self.replicas, ready), (self.replicas_total, total)):
            gauge.clear()
            gauge.labels(*labels[:3]).set(value)

    def count(self, labels: tuple[str, ...], handler: str, status: int) -> None:
        """One answered request; `labels`: model, version, protocol and role (champion
        when left out)."""
        self.requests.labels(*_with_role(labels), handler, str(status)).inc()

    def observe(self, labels: tuple[str, ...], status: int, seconds: float, body: bytes):
        """A prediction: its latency, and the rows of a 200 (counted once, by `count`)."""
        labels = _with_role(labels)
        self.latency.labels(*labels).observe(seconds)
        if status == 200:
            self.rows.labels(*labels).inc(rows_in(labels[2], body))


def _with_role(labels: tuple[str, ...]) -> tuple[str, ...]:
    return labels if len(labels) == len(ROLE_LABELS) else (*labels[:3], "champion")


def rows_in(protocol: str, body: bytes) -> int:
    """How many rows a 200 answer scored (its codec's count: Seldon's ndarray length,
    V2's output shape); 0 when unreadable."""
    codec = v2 if protocol == "v2" else seldon
    try:
        return codec.answered_rows(wire.loads(body))
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError):
        return 0
