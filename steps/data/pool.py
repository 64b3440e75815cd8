"""The loop's labelled rows: every labelled row it has seen, kept, with where each came from.

One `Dataset` (the ZenML artifact `labelled_rows`, tagged with the model's name: one
Parquet file in the artifact store) holds them in the order they arrived, and its
`batches` say which rows are which: a list of parts, each `{batch, rows, role, run}`,
where `role` is

- `train`: rows a retraining may learn from (the first champion's training and
  validation rows, then each new labelled batch but a held-back slice of it);
- `evaluation`: the reserved evaluation rows, which nothing trains on: the first
  champion's test rows (also what a plain `monitor` watches), then the held-back slice of
  each new labelled batch. The gate scores champion and candidate on all of them.

Each part also says when it arrived (`at`, UTC), which a window of days reads. Rows leave
the evaluation pile by one rule: when it holds more than `retrain.max_evaluation_rows`,
its oldest rows are retired into the rows to train on (their part is marked `retired`;
never dropped), so rows nothing trained on become training rows only once enough newer
ones stand in for them.

A row the loop already keeps (same values, same label) is not added twice, so watching
the held-out rows again adds nothing: "no new labelled rows".
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from core.specs import SplitSpec
from materializers.dataset import NUMERIC, Dataset
from steps.data.split import hold_out_of_batch

POOL_ARTIFACT = "labelled_rows"
TRAIN, EVALUATION = "train", "evaluation"


def _like(data: Dataset, frame: pd.DataFrame, name: str, batches: list[dict[str, Any]]):
    return Dataset(
        frame=frame.reset_index(drop=True),
        target=data.target,
        task=data.task,
        name=name,
        schema=dict(data.schema),
        ignored_columns=list(data.ignored_columns),
        batches=batches,
    )


def _now(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).isoformat(timespec="seconds")


def start_pool(
    train: Dataset, valid: Dataset, test: Dataset, version: str, now: datetime | None = None
) -> Dataset:
    """The pool of a champion the loop has no rows for yet: its training and validation
    rows to train on, its test rows reserved for evaluation (and for `monitor`)."""
    columns = list(train.frame.columns)
    frame = pd.concat([train.frame, valid.frame[columns], test.frame[columns]], ignore_index=True)
    at = _now(now)
    batches = [
        {"batch": f"v{version} training rows", "rows": len(train.frame) + len(valid.frame),
         "role": TRAIN, "run": "", "at": at},
        {"batch": f"v{version} held-out test rows", "rows": len(test.frame),
         "role": EVALUATION, "run": "", "at": at},
    ]  # fmt: skip
    return _like(train, frame, "labelled rows", batches)


def _slices(pool: Dataset) -> list[tuple[dict[str, Any], slice]]:
    start, parts = 0, []
    for part in pool.batches:
        parts.append((part, slice(start, start + part["rows"])))
        start += part["rows"]
    return parts


def part_of(pool: Dataset, role: str, name: str = "") -> Dataset:
    """The rows of one role, oldest first, with the parts they came from."""
    parts = [(p, s) for p, s in _slices(pool) if p["role"] == role]
    frame = (
        pd.concat([pool.frame.iloc[s] for _, s in parts], ignore_index=True)
        if parts
        else pool.frame.iloc[0:0]
    )
    return _like(pool, frame, name or f"{role} rows", [p for p, _ in parts])


def first_held_out(pool: Dataset) -> Dataset:
    """The oldest rows still reserved (what a plain `monitor` watches): the rows reserved
    at the first training, until the evaluation pile's cap retires them."""
    for part, rows in _slices(pool):
        if part["role"] == EVALUATION:
            return _like(pool, pool.frame.iloc[rows], part["batch"], [part])
    return _like(pool, pool.frame.iloc[0:0], "no held-out rows", [])


def row_keys(frame: pd.DataFrame, data: Dataset) -> pd.Series:
    """A hash of each row's features and label; numbers as float32, so a CSV round trip
    (which may change a float's last digit) keeps a row's key."""
    columns = [*data.schema, data.target]
    keyed = {}
    for column in columns:
        values = frame[column]
        if data.schema.get(column) == NUMERIC or (
            column == data.target and pd.api.types.is_numeric_dtype(values)
        ):
            keyed[column] = pd.to_numeric(values, errors="coerce").astype(np.float32)
        else:
            keyed[column] = values.astype(str)
    return pd.util.hash_pandas_object(pd.DataFrame(keyed), index=False)


def unseen_rows(pool: Dataset, batch: Dataset) -> pd.DataFrame:
    """The batch's rows the pool does not hold yet (each once), in the pool's columns."""
    frame = batch.frame[list(pool.frame.columns)]
    keys = row_keys(frame, pool)
    new = ~keys.isin(set(row_keys(pool.frame, pool))) & ~keys.duplicated()
    return frame[new.to_numpy()]


def add_batch(
    pool: Dataset, batch: Dataset, split: SplitSpec, run_name: str = "", now: datetime | None = None
) -> tuple[Dataset, int, int]:
    """The pool with the batch's new rows: a held-back slice (`split.batch_test_size`,
    the latest by date when there is a date column) reserved for evaluation, the rest to
    train on. Returns (pool, rows added to train on, rows added to evaluation)."""
    new = unseen_rows(pool, batch)
    if new.empty:
        return pool, 0, 0
    labelled = _like(pool, new, batch.name, [])
    labelled.new_rows = len(new)
    train, held, _ = hold_out_of_batch(labelled, split)
    parts, frames = list(pool.batches), [pool.frame]
    for rows, role in ((train, TRAIN), (held, EVALUATION)):
        if len(rows):
            parts.append({"batch": batch.name, "rows": len(rows), "role": role, "run": run_name,
                          "at": _now(now)})  # fmt: skip
            frames.append(rows)
    frame = pd.concat(frames, ignore_index=True)
    return _like(pool, frame, pool.name, parts), len(train), len(held)


def retire_evaluation(
    pool: Dataset, max_rows: int | None, run_name: str = ""
) -> tuple[Dataset, int]:
    """The pool with its oldest evaluation rows beyond `max_rows` moved to the rows to train
    on (None: no cap). Their part keeps its place (and so its rows) and is marked
    `retired` by `run_name`; a part retired in part is split in two. Returns (pool, rows
    retired)."""
    evaluation = sum(p["rows"] for p in pool.batches if p["role"] == EVALUATION)
    excess = evaluation - max_rows if max_rows is not None else 0
    if excess <= 0:
        return pool, 0
    parts, left = [], excess
    for part in pool.batches:
        if part["role"] != EVALUATION or left <= 0:
            parts.append(part)
            continue
        moved = min(part["rows"], left)
        left -= moved
        parts.append({**part, "rows": moved, "role": TRAIN, "retired": run_name or True})
        if part["rows"] > moved:
            parts.append({**part, "rows": part["rows"] - moved})
    return _like(pool, pool.frame, pool.name, parts), excess


DAYS = re.compile(r"^([1-9][0-9]*)d$")


def window_days(window: str | int) -> int | None:
    """The D of a window of `Dd` (None: not a window of days)."""
    found = DAYS.match(window) if isinstance(window, str) else None
    return int(found.group(1)) if found else None


def in_window(rows: Dataset, window: str | int, now: datetime | None = None) -> Dataset:
    """The training rows a retraining learns from: all of them, the newest `window` (a
    number), or (`Dd`) those whose batch arrived in the last D days (a part saved before
    arrival times were recorded counts as older than any window)."""
    days = window_days(window)
    if days is not None:
        since = (now or datetime.now(UTC)) - timedelta(days=days)
        keep = [
            (part, rows_)
            for part, rows_ in _slices(rows)
            if part.get("at") and datetime.fromisoformat(part["at"]) >= since
        ]
        frame = (
            pd.concat([rows.frame.iloc[r] for _, r in keep], ignore_index=True)
            if keep
            else rows.frame.iloc[0:0]
        )
        return _like(rows, frame, rows.name, [part for part, _ in keep])
    if window == "all" or len(rows.frame) <= int(window):
        return rows
    keep, parts, left = int(window), [], int(window)
    for part in reversed(rows.batches):  # the parts the newest rows come from
        if left <= 0:
            break
        parts.insert(0, {**part, "rows": min(part["rows"], left)})
        left -= part["rows"]
    return _like(rows, rows.frame.iloc[-keep:], rows.name, parts)


def lineage(batches: list[dict[str, Any]]) -> str:
    """The parts rows came from, in words: `v1 training rows (455); drift.csv (200)`."""
    return "; ".join(
        f"{p['batch']} ({p['rows']}{', retired from evaluation' if p.get('retired') else ''})"
        for p in batches
    )


def latest_pool(model_name: str) -> Dataset | None:
    """The newest kept rows of the model (None before the loop kept any)."""
    from zenml.client import Client

    found = Client().list_artifact_versions(
        artifact=POOL_ARTIFACT, tags=[model_name], sort_by="desc:created", size=1
    )
    return found.items[0].load() if found.items else None


def usable(pool: Dataset | None, champion_train: Dataset) -> bool:
    """Whether a kept pool belongs to the champion's data: the same schema, and at least
    its training rows to train on (else a `train` on other data made the champion and
    the pool starts again from it)."""
    if pool is None or pool.fingerprint != champion_train.fingerprint:
        return False
    return len(part_of(pool, TRAIN).frame) >= len(champion_train.frame)
