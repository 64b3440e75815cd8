"""Seeded train / validation / test split, stratified for classification.

A retraining set (the champion's training rows plus a new labelled batch) is split so
that the test rows come from the batch only, and neither model trains on them: the
gate then compares candidate and champion fairly.
"""

from __future__ import annotations

from typing import Annotated

import pandas as pd
from sklearn.model_selection import train_test_split
from zenml import step

from core.schema import DATETIME
from core.specs import SplitSpec
from materializers.dataset import Dataset


def _stratify(frame: pd.DataFrame, data: Dataset, test_share: float) -> pd.Series | None:
    """The labels to stratify by, when the task and the class counts allow it."""
    if data.task != "classification":
        return None
    counts = frame[data.target].value_counts()
    # Each class needs a row on both sides; else a plain seeded split.
    if counts.min() < 2 or min(test_share, 1 - test_share) * len(frame) < len(counts):
        return None
    return frame[data.target]


def split_dataset(data: Dataset, spec: SplitSpec) -> tuple[Dataset, Dataset, Dataset]:
    """Split rows into train, validation and test with shares from the spec."""
    if data.new_rows:
        return split_retraining_set(data, spec)
    frame = data.frame
    stratify = frame[data.target] if data.task == "classification" else None
    rest, test = train_test_split(
        frame, test_size=spec.test_size, random_state=spec.seed, stratify=stratify
    )
    train, valid = _train_and_valid(rest, data, spec.valid_size / (1 - spec.test_size), spec)
    return (
        _part(data, train, "train"),
        _part(data, valid, "valid"),
        _part(data, test, "test", note=f"the same {len(test)} test rows"),
    )


def _train_and_valid(rest: pd.DataFrame, data: Dataset, share: float, spec: SplitSpec):
    stratify = rest[data.target] if data.task == "classification" else None
    return train_test_split(rest, test_size=share, random_state=spec.seed, stratify=stratify)


def _part(data: Dataset, rows: pd.DataFrame, suffix: str, note: str = "") -> Dataset:
    return Dataset(
        frame=rows.reset_index(drop=True),
        target=data.target,
        task=data.task,
        name=f"{data.name}:{suffix}",
        schema=dict(data.schema),
        note=note,
        ignored_columns=list(data.ignored_columns),
    )


def hold_out_of_batch(data: Dataset, spec: SplitSpec) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(batch rows to train on, held-out batch rows, how they were chosen).

    With a date column the held-out rows are the batch's latest (by the first date
    column): the candidate is judged on the future of what it learned from. Otherwise a
    seeded share, stratified for classification when every class allows it.
    """
    batch = data.frame.iloc[len(data.frame) - data.new_rows :]
    held = max(1, round(len(batch) * spec.batch_test_size))
    if held >= len(batch):  # a one-row batch: it can only be held out
        return batch.iloc[0:0], batch, "all of it"
    dates = [c for c, kind in data.schema.items() if kind == DATETIME]
    if dates:
        when = pd.to_datetime(batch[dates[0]], errors="coerce", format="mixed", utc=True)
        order = when.sort_values(kind="stable", na_position="first").index
        return (
            batch.loc[order[:-held]],
            batch.loc[order[-held:]],
            f"its latest by '{dates[0]}'",
        )
    share = held / len(batch)
    train, test = train_test_split(
        batch, test_size=held, random_state=spec.seed, stratify=_stratify(batch, data, share)
    )
    return train, test, f"chosen at random with seed {spec.seed}"


def split_retraining_set(data: Dataset, spec: SplitSpec) -> tuple[Dataset, Dataset, Dataset]:
    """Test = a held-out part of the new batch; train/valid = the rest (the champion's
    training rows and the other batch rows)."""
    batch_train, test, how = hold_out_of_batch(data, spec)
    rest = pd.concat([data.frame.iloc[: len(data.frame) - data.new_rows], batch_train])
    share = spec.valid_size
    if data.task == "classification" and _stratify(rest, data, share) is None:
        train, valid = train_test_split(rest, test_size=share, random_state=spec.seed)
    else:
        train, valid = _train_and_valid(rest, data, share, spec)
    source = data.note or "the new batch"
    note = (
        f"{len(test)} rows held out of {source} ({how}), which neither the candidate nor "
        "the champion was trained on"
    )
    return (
        _part(data, train, "train"),
        _part(data, valid, "valid"),
        _part(data, test, "held-out", note=note),
    )


@step
def split_data(
    data: Dataset, spec: SplitSpec
) -> tuple[
    Annotated[Dataset, "train_set"], Annotated[Dataset, "valid_set"], Annotated[Dataset, "test_set"]
]:
    """Split into train (fit), validation (search only) and test (final evaluation only).
    A retraining set's test rows are a held-out part of its new batch."""
    train, valid, test = split_dataset(data, spec)
    return train, valid, test  # a literal tuple: ZenML reads it as three artifacts
