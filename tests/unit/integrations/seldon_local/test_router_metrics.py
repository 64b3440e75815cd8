"""The front's Prometheus metrics: what one answered request adds (no server needed)."""

from __future__ import annotations

import json

from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from integrations.seldon_local.router import Metrics, rows_in


def samples(metrics: Metrics) -> dict:
    text = generate_latest(metrics.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_rows_are_counted_from_each_protocols_answer():
    assert rows_in("seldon", json.dumps({"data": {"ndarray": [1, 0, 1]}}).encode()) == 3
    v2 = {"outputs": [{"name": "predictions", "shape": [4, 1], "data": [1, 2, 3, 4]}]}
    assert rows_in("v2", json.dumps(v2).encode()) == 4
    assert rows_in("v2", b"not json") == 0


def test_requests_latency_and_rows_carry_model_version_and_protocol():
    metrics = Metrics()
    labels = ("houses", "3", "seldon")
    metrics.observe(labels, 200, 0.012, json.dumps({"data": {"ndarray": [1, 2]}}).encode())
    metrics.observe(labels, 400, 0.002, b'{"status": {}}')
    got = samples(metrics)
    base = (("model", "houses"), ("protocol", "seldon"), ("version", "3"))
    assert got[("zenkube_requests_total", tuple(sorted((*base, ("code", "200")))))] == 1
    assert got[("zenkube_requests_total", tuple(sorted((*base, ("code", "400")))))] == 1
    assert got[("zenkube_rows_total", base)] == 2  # a refused request scores no row
    assert got[("zenkube_request_duration_seconds_count", base)] == 2
    assert (
        got[("zenkube_request_duration_seconds_bucket", tuple(sorted((*base, ("le", "0.005")))))]
        == 1
    )
