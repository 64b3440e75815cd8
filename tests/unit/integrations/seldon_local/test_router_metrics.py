"""The front's Prometheus metrics: what one answered request adds (no server needed)."""

from __future__ import annotations

import gzip
import json
import zlib

import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from integrations.seldon_local.router.metrics import Metrics, rows_in
from integrations.seldon_local.router.supervise import cap_log
from integrations.seldon_local.router.wire import BodyError, answer_text, decode_body, route


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


def test_requests_latency_and_rows_carry_model_version_protocol_and_role():
    metrics = Metrics()
    labels = ("houses", "3", "seldon")  # no role given: the champion's
    metrics.observe(labels, 200, 0.012, json.dumps({"data": {"ndarray": [1, 2]}}).encode())
    metrics.observe(labels, 400, 0.002, b'{"status": {}}')
    for code in (200, 400):
        metrics.count(labels, "predict", code)
    metrics.observe(("houses", "4", "seldon", "shadow"), 200, 0.01, b'{"data": {"ndarray": [1]}}')
    got = samples(metrics)
    base = (("model", "houses"), ("protocol", "seldon"), ("role", "champion"), ("version", "3"))
    shadow = (("model", "houses"), ("protocol", "seldon"), ("role", "shadow"), ("version", "4"))
    assert got[("zenkube_rows_total", shadow)] == 1
    for code in ("200", "400"):
        key = tuple(sorted((*base, ("handler", "predict"), ("code", code))))
        assert got[("zenkube_requests_total", key)] == 1
    assert got[("zenkube_rows_total", base)] == 2  # a refused request scores no row
    assert got[("zenkube_request_duration_seconds_count", base)] == 2
    assert (
        got[("zenkube_request_duration_seconds_bucket", tuple(sorted((*base, ("le", "0.005")))))]
        == 1
    )


def test_no_series_without_information():
    metrics = Metrics()
    metrics.count(("m", "1", "v2"), "other", 404)
    assert not any(name.endswith("_created") for name, _ in samples(metrics))


@pytest.mark.parametrize(
    "protocol,method,path,handler,status",
    [
        ("seldon", "POST", "/api/v1.0/predictions", "predict", 200),
        ("seldon", "POST", "/api/v0.1/predictions", "predict", 200),
        ("seldon", "GET", "/api/v1.0/predictions", "predict", 405),
        ("seldon", "POST", "/api/v1.0/feedback", "feedback", 200),
        ("seldon", "GET", "/health/ping", "health", 200),
        ("seldon", "POST", "/transform-input", "other", 404),
        ("seldon", "PUT", "/_zenkube/backend", "other", 404),
        ("seldon", "POST", "/v2/models/classifier/infer", "other", 404),
        ("v2", "POST", "/v2/models/classifier/infer", "predict", 200),
        ("v2", "POST", "/v2/models/classifier/versions/3/infer", "predict", 200),
        ("v2", "GET", "/v2/models/classifier", "metadata", 200),
        ("v2", "GET", "/v2", "metadata", 200),
        ("v2", "DELETE", "/v2/models/classifier", "metadata", 405),
        ("v2", "POST", "/v2/models/classifier/feedback", "feedback", 200),
        ("v2", "POST", "/v2/repository/models/classifier/unload", "other", 404),
        ("v2", "POST", "/v2/repository/index", "other", 404),
        ("v2", "POST", "/v2/models/classifier/generate", "other", 404),
        ("v2", "GET", "/v2/models/../repository/index", "other", 404),
        ("v2", "GET", "/v2/models/a%2Fb/ready", "other", 404),
        ("v2", "GET", "/metrics", "metrics", 200),
    ],
)
def test_the_serving_port_answers_only_its_protocols_paths(protocol, method, path, handler, status):
    got_handler, got_status, _ = route(protocol, method, path)
    assert (got_handler, got_status) == (handler, status)


GOOD = b'{"inputs": []}'


@pytest.mark.parametrize(
    "encoding,body,status,reason",
    [
        (None, GOOD, 200, ""),
        ("identity", GOOD, 200, ""),
        ("gzip", gzip.compress(GOOD, mtime=0), 200, ""),
        ("deflate", zlib.compress(GOOD), 200, ""),
        ("deflate", zlib.compress(GOOD)[2:-4], 200, ""),  # raw deflate, as some clients send
        ("foo", GOOD, 415, "'foo' is not supported"),
        ("gzip, deflate", GOOD, 415, "send one Content-Encoding"),
        ("gzip", GOOD, 400, "but is not gzip data"),
        ("gzip", gzip.compress(GOOD, mtime=0)[:-6], 400, "not one complete gzip stream"),
        ("gzip", gzip.compress(b" " * 2000, mtime=0), 413, "inflates to more than"),
    ],
)
def test_one_bounded_decoding_step_for_content_encoding(encoding, body, status, reason):
    try:
        decoded = decode_body(body, encoding, limit=1000)
    except BodyError as exc:
        assert (exc.status, reason in str(exc)) == (status, True), str(exc)
    else:
        assert status == 200 and decoded == GOOD


def test_gzip_inside_gzip_is_inflated_once():
    twice = gzip.compress(gzip.compress(GOOD))
    assert decode_body(twice, "gzip") == gzip.compress(GOOD)  # forwarded as the body: not JSON


def test_a_gzipped_answer_is_read_for_rows_and_recording():
    answer = json.dumps({"outputs": [{"shape": [3, 1], "data": [1, 0, 1]}]}).encode()
    assert rows_in("v2", answer_text(gzip.compress(answer), "gzip")) == 3
    assert answer_text(b"garbage", "gzip") == b""


def test_logs_are_cut_at_their_cap_and_the_writer_goes_on(tmp_path):
    path = tmp_path / "server.log"
    with open(path, "ab") as writer:  # as the servers hold their log: O_APPEND
        for _ in range(50):
            writer.write(b"x" * 100 + b"\n")
            writer.flush()
            cap_log(path, max_bytes=1000)
        writer.write(b"last\n")
    assert path.stat().st_size <= 1000
    assert path.read_bytes().endswith(b"last\n") and not path.read_bytes().startswith(b"\0")
    assert (tmp_path / "server.log.1").stat().st_size <= 1000


def test_a_damaged_model_copy_is_not_restarted(tmp_path):
    from integrations.seldon_local.process import tree_digest
    from integrations.seldon_local.router.proxy import Front

    (tmp_path / "model" / "artifacts").mkdir(parents=True)
    (tmp_path / "model" / "MLmodel").write_text("flavors: {}")
    (tmp_path / "model" / "artifacts" / "model.pkl").write_bytes(b"weights")
    assert Front.copy_is_intact(tmp_path)  # no digest recorded: a copy from before digests
    (tmp_path / "model.sha256").write_text(tree_digest(tmp_path / "model") + "\n")
    assert Front.copy_is_intact(tmp_path)
    (tmp_path / "model" / "artifacts" / "model.pkl").unlink()  # a file deleted
    assert not Front.copy_is_intact(tmp_path)
