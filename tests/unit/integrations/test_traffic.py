"""Served traffic as data: reading answered requests back, feedback, the folder cap, the batch."""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest

from core.traffic.rows import (
    TrafficError,
    TrafficLog,
    answered_rows,
    feedback_labels,
    parse_duration,
    traffic_batch,
)

COLUMNS = ["size", "city"]


def seldon(rows, names=True, puid="p1"):
    data = {"ndarray": rows, **({"names": COLUMNS} if names else {})}
    answer = {"data": {"names": [], "ndarray": [r[0] * 2 for r in rows]}, "meta": {"puid": puid}}
    return json.dumps({"data": data}).encode(), json.dumps(answer).encode()


def test_seldon_rows_come_back_with_prediction_request_id_and_row():
    request, answer = seldon([[1.0, "a"], [2.0, None]])
    request_id, frame = answered_rows("seldon", request, answer, COLUMNS)
    assert request_id == "p1"
    assert frame[COLUMNS].values.tolist() == [[1.0, "a"], [2.0, None]]
    assert frame["_prediction"].tolist() == [2.0, 4.0] and frame["_row"].tolist() == [0, 1]
    _, unnamed = answered_rows("seldon", *seldon([[3.0, "b"]], names=False), COLUMNS)
    assert list(unnamed[COLUMNS].iloc[0]) == [3.0, "b"]  # no names: the model's order


def test_a_seldon_bindata_request_is_read_back_as_the_same_rows_as_json():
    """What the front's recorder and the cluster's sink keep of a large batch sent as
    binData (an Arrow stream): the rows of the same batch sent as JSON."""
    from core.protocol import seldon as codec

    rows = [[1.0, "a"], [None, None], [2, ""]]
    request = json.dumps({"data": {"names": COLUMNS, "ndarray": rows}}).encode()
    answer = json.dumps({"data": {"ndarray": [1, 0, 1]}, "meta": {"puid": "p1"}}).encode()
    binary = codec.encode_binary({n: [r[i] for r in rows] for i, n in enumerate(COLUMNS)})
    _, as_json = answered_rows("seldon", request, answer, COLUMNS)
    _, as_binary = answered_rows("seldon", json.dumps(binary).encode(), answer, COLUMNS)
    pd.testing.assert_frame_equal(as_binary, as_json)


def test_v2_rows_per_column_or_as_one_tensor():
    answer = json.dumps({"id": "r9", "outputs": [{"shape": [2, 1], "data": [1, 0]}]}).encode()
    per_column = {
        "inputs": [
            {"name": "city", "shape": [2, 1], "datatype": "BYTES", "data": ["a", "b"]},
            {"name": "size", "shape": [2, 1], "datatype": "FP64", "data": [1.0, 2.0]},
        ]
    }
    request_id, frame = answered_rows("v2", json.dumps(per_column).encode(), answer, COLUMNS)
    assert request_id == "r9" and frame[COLUMNS].values.tolist() == [[1.0, "a"], [2.0, "b"]]
    tensor = {
        "inputs": [{"name": "x", "shape": [2, 2], "datatype": "FP64", "data": [[1, 2], [3, 4]]}]
    }
    _, frame = answered_rows("v2", json.dumps(tensor).encode(), answer, ["a", "b"])
    assert frame[["a", "b"]].values.tolist() == [[1, 2], [3, 4]]
    assert frame["_prediction"].tolist() == [1, 0]


def test_feedback_in_seldons_and_zenkubes_v2_form():
    body = {"response": {"meta": {"puid": "p1"}}, "truth": {"data": {"ndarray": [[1], [0]]}}}
    labels = feedback_labels("seldon", json.dumps(body).encode())
    assert labels.to_dict("list") == {"_request_id": ["p1", "p1"], "_row": [0, 1], "_label": [1, 0]}
    v2 = feedback_labels("v2", json.dumps({"id": "r9", "truth": ["yes"]}).encode())
    assert v2["_label"].tolist() == ["yes"] and v2["_request_id"].tolist() == ["r9"]
    for protocol, bad, reason in [
        ("seldon", b"{nope", "not valid JSON"),
        ("seldon", json.dumps({"truth": {"data": {"ndarray": [1]}}}).encode(), "request id"),
        ("v2", json.dumps({"id": "r9"}).encode(), "true labels"),
        ("v2", json.dumps({"id": "r9", "truth": [[1, 2]]}).encode(), "one label per row"),
        ("v2", b'{"id": "r9", "truth": [' + b"9" * 400 + b"]}", "beyond 64 bits"),
        ("v2", b'{"id": "r9", "truth": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested"),
        ("seldon", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        ("v2", json.dumps({"id": "r" * 2000, "truth": [1]}).encode(), "at most 256"),
        ("v2", b'{"id": "r9", "truth": [' + b"1," * 3 * 2**20 + b"1]}", "the limit is"),
    ]:
        with pytest.raises(TrafficError, match=reason):
            feedback_labels(protocol, bad)


def test_the_folder_keeps_under_its_cap_by_dropping_the_oldest(tmp_path):
    log = TrafficLog(tmp_path, max_bytes=12_000)
    frame = pd.DataFrame({"x": range(500), "_time": time.time()})
    for _ in range(6):
        log.write("requests", frame)
        time.sleep(0.01)
    files = list(tmp_path.glob("*.parquet"))
    assert 0 < len(files) < 6
    assert sum(f.stat().st_size for f in files) <= 12_000
    assert not list(tmp_path.glob("*.partial"))


def write_requests(folder, rows, puid, at=None):
    request, answer = seldon(rows, puid=puid)
    _, frame = answered_rows("seldon", request, answer, COLUMNS)
    frame["_time"] = at or time.time()
    TrafficLog(folder).write("requests", frame)


def test_labelled_rows_make_a_labelled_batch_once_there_are_enough(tmp_path):
    write_requests(tmp_path, [[float(i), "a"] for i in range(4)], "p1")
    write_requests(tmp_path, [[9.0, "b"]], "p2")
    write_requests(tmp_path, [[7.0, "c"]], "old", at=time.time() - 7200)
    unlabelled = traffic_batch(tmp_path, COLUMNS, "label", 3600, min_rows=3)
    assert not unlabelled.labelled_batch and len(unlabelled.frame) == 5  # the old one is out
    assert "label" not in unlabelled.frame
    feedback = feedback_labels(
        "seldon",
        json.dumps(
            {"response": {"meta": {"puid": "p1"}}, "truth": {"data": {"ndarray": [0, 1, 0, 1]}}}
        ).encode(),
    )
    feedback["_time"] = time.time()
    TrafficLog(tmp_path).write("feedback", feedback)
    labelled = traffic_batch(tmp_path, COLUMNS, "label", 3600, min_rows=3)
    assert labelled.labelled_batch and labelled.labelled == 4 and labelled.rows == 5
    assert labelled.frame.to_dict("list") == {
        "size": [0.0, 1.0, 2.0, 3.0],
        "city": ["a"] * 4,
        "label": [0, 1, 0, 1],
    }
    with pytest.raises(TrafficError, match="only 5 served row"):
        traffic_batch(tmp_path, COLUMNS, "label", 3600, min_rows=50)
    with pytest.raises(TrafficError, match="lacks the model's column"):
        traffic_batch(tmp_path, ["size", "rooms"], "label", 3600, min_rows=1)


def test_durations():
    assert parse_duration("90m") == 5400 and parse_duration("7d") == 604800
    with pytest.raises(TrafficError, match="not a duration"):
        parse_duration("yesterday")


def test_files_written_before_the_window_are_not_read(tmp_path, monkeypatch):
    import core.traffic.rows as traffic

    write_requests(tmp_path, [[1.0, "a"]], "new")
    old = TrafficLog(tmp_path).write("requests", pd.DataFrame({"size": [2.0], "_time": [0.0]}))
    renamed = old.replace(old.rsplit("/", 1)[1].split("-", 1)[1][:15], "20200101T000000")
    __import__("os").rename(old, renamed)
    assert traffic.written_at(renamed) == 1577836800.0
    opened = []
    real = traffic.pd.read_parquet
    monkeypatch.setattr(traffic.pd, "read_parquet", lambda f: opened.append(f) or real(f))
    frame = traffic.read_kind(tmp_path, "requests", time.time() - 3600)
    assert len(opened) == 1 and frame["_request_id"].tolist() == ["new"]


def test_a_request_that_cannot_be_read_back_is_counted_and_recording_goes_on(tmp_path):
    """A request nested 1,020 deep used to stop the recorder for good."""
    import asyncio

    from core.traffic.rows import TrafficBuffer, read_kind

    dropped = []
    buffer = TrafficBuffer(tmp_path, on_drop=lambda reason, detail: dropped.append(reason))
    deep = b'{"data": {"ndarray": [[1.0, "a"]]}, "meta": {"tags": ' + b"[" * 1020
    deep += b"]" * 1020 + b"}}"
    buffer.add(deep, seldon([[1.0, "a"]], puid="deep")[1], "seldon", "1", COLUMNS)
    buffer.add(b"not json", b"{}", "seldon", "1", COLUMNS)
    asyncio.run(buffer.flush())
    buffer.add(*seldon([[2.0, "b"]], puid="after"), "seldon", "1", COLUMNS)
    asyncio.run(buffer.flush())
    assert dropped == ["unreadable", "unreadable"]
    assert read_kind(tmp_path, "requests", None)["_request_id"].tolist() == ["after"]


def test_one_batch_is_at_most_a_quarter_of_the_folder_and_feedback_waits_when_full(tmp_path):
    from core.traffic.rows import TrafficBuffer

    dropped = []
    buffer = TrafficBuffer(tmp_path, 40_000, on_drop=lambda r, d: dropped.append(r))
    assert buffer.budget == 10_000
    label = json.dumps({"id": "r1", "truth": [1] * 3000}).encode()  # ~9 KB
    assert len(buffer.add_feedback("v2", label)) == 3000
    with pytest.raises(TrafficError, match="buffer is full") as refused:
        buffer.add_feedback("v2", label)
    assert refused.value.status == 503
    buffer.add(*seldon([[1.0, "a"]] * 100), "seldon")
    assert dropped == ["buffer_full", "buffer_full"]


def test_a_batch_over_the_cap_deletes_nothing_to_make_room_for_itself(tmp_path):
    """1 MiB cap: feedback too large for one batch is refused (413) before anything is
    held, and a batch whose file comes out over the whole cap is not written: the
    earlier traffic files all stay (issue #34: they were rotated out, then it too)."""
    import asyncio

    from core.traffic.rows import OverCap, TrafficBuffer, TrafficLog

    dropped = []
    buffer = TrafficBuffer(tmp_path, 2**20, on_drop=lambda r, d: dropped.append(r))
    buffer.add(*seldon([[1.0, "a"], [2.0, "b"]], puid="p1"), "seldon", "1", COLUMNS)
    asyncio.run(buffer.flush())
    before = sorted(p.name for p in tmp_path.glob("*.parquet"))
    assert len(before) == 1
    big = json.dumps({"id": "r1", "truth": [1] * 200_000}).encode()  # 600 KB > 256 KiB budget
    with pytest.raises(TrafficError, match="smaller batches") as refused:
        buffer.add_feedback("v2", big)
    assert refused.value.status == 413
    # a batch that comes out bigger than the folder's whole cap is not written
    log = TrafficLog(tmp_path, max_bytes=2**20)
    labels = pd.DataFrame({"_request_id": "r1", "_row": range(300_000), "_time": time.time()})
    with pytest.raises(OverCap, match="nothing older was removed"):
        log.write("feedback", labels)
    assert sorted(p.name for p in tmp_path.glob("*.parquet")) == before
    assert not list(tmp_path.glob("*.partial"))
    buffer.labels.append(labels)
    asyncio.run(buffer.flush())
    assert dropped == ["over_cap"] and sorted(p.name for p in tmp_path.glob("*.parquet")) == before


def test_a_garbage_file_in_the_folder_is_skipped_and_named(tmp_path):
    write_requests(tmp_path, [[float(i), "a"] for i in range(3)], "p1")
    bad = tmp_path / "requests-20991231T000000.000000-garbage.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    batch = traffic_batch(tmp_path, COLUMNS, "label", 3600, min_rows=3)
    assert len(batch.frame) == 3 and [p.rsplit("/", 1)[1] for p in batch.skipped] == [bad.name]


def test_rows_say_who_answered_and_the_batch_holds_only_what_callers_got(tmp_path):
    """During a release a shadow's answers are recorded under the caller's request id,
    and `monitor --from-traffic` reads only the answers callers got."""
    import asyncio

    from core.traffic.rows import TrafficBuffer, read_kind

    buffer = TrafficBuffer(tmp_path)
    buffer.add(*seldon([[1.0, "a"], [2.0, "b"]], puid="p1"), "seldon", "1", COLUMNS)
    buffer.add(*seldon([[3.0, "c"]], puid="p2"), "seldon", "2", COLUMNS, "canary")
    shadow_request, shadow_answer = seldon([[1.0, "a"], [2.0, "b"]], puid="its-own")
    buffer.add(shadow_request, shadow_answer, "seldon", "3", COLUMNS, "shadow", "p1")
    asyncio.run(buffer.flush())
    rows = read_kind(tmp_path, "requests", None)
    assert rows[["_request_id", "_version", "_role"]].values.tolist() == [
        ["p1", "1", "champion"],
        ["p1", "1", "champion"],
        ["p2", "2", "canary"],
        ["p1", "3", "shadow"],
        ["p1", "3", "shadow"],
    ]
    batch = traffic_batch(tmp_path, COLUMNS, "label", 3600, min_rows=3)
    assert batch.rows == 3 and batch.frame["size"].tolist() == [1.0, 2.0, 3.0]


def test_row_ids_and_the_target_a_client_sends_are_kept_and_stay_out_of_the_batch(tmp_path):
    """Clients may send the training file's rows (issue #39): the model ignores the row ids
    and the target, the record keeps them beside the answer, the batch takes the model's
    columns and the labels from feedback."""
    names = ["PID", *COLUMNS, "label"]
    seldon_body = {"data": {"names": names, "ndarray": [["p1", 1.0, "a", 9], ["p2", 2.0, "b", 9]]}}
    answer = {"data": {"ndarray": [0, 1]}, "meta": {"puid": "s1"}}
    v2_body = {
        "inputs": [
            {"name": "PID", "shape": [1], "datatype": "BYTES", "data": ["p3"]},
            {"name": "size", "shape": [1], "datatype": "FP64", "data": [3.0]},
            {"name": "city", "shape": [1], "datatype": "BYTES", "data": ["c"]},
        ]
    }
    v2_answer = {"id": "v1", "outputs": [{"shape": [1], "data": [1]}]}
    log = TrafficLog(tmp_path)
    for protocol, body, said, truth in [
        (
            "seldon",
            seldon_body,
            answer,
            {"response": answer, "truth": {"data": {"ndarray": [1, 0]}}},
        ),
        ("v2", v2_body, v2_answer, {"id": "v1", "truth": [1]}),
    ]:
        _, frame = answered_rows(
            protocol, json.dumps(body).encode(), json.dumps(said).encode(), COLUMNS
        )
        frame["_time"] = time.time()
        log.write("requests", frame)
        labels = feedback_labels(protocol, json.dumps(truth).encode())
        labels["_time"] = time.time()
        log.write("feedback", labels)
    recorded = pd.concat([pd.read_parquet(f) for f in tmp_path.glob("requests-*.parquet")])
    assert sorted(recorded["PID"]) == ["p1", "p2", "p3"]
    batch = traffic_batch(tmp_path, COLUMNS, "label", 3600, min_rows=3)
    assert batch.labelled_batch and list(batch.frame.columns) == [*COLUMNS, "label"]
    assert sorted(batch.frame["label"]) == [0, 1, 1]  # from feedback, not the 9s sent
