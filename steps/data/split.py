"""Seeded train / validation / test split, stratified for classification."""

from __future__ import annotations

from typing import Annotated

from sklearn.model_selection import train_test_split
from zenml import step

from core.specs import SplitSpec
from materializers.dataset import Dataset
from steps.skip import note_skipped


def split_dataset(data: Dataset, spec: SplitSpec) -> tuple[Dataset, Dataset, Dataset]:
    """Split rows into train, validation and test with shares from the spec."""
    frame = data.frame
    stratify = frame[data.target] if data.task == "classification" else None
    rest, test = train_test_split(
        frame, test_size=spec.test_size, random_state=spec.seed, stratify=stratify
    )
    stratify_rest = rest[data.target] if data.task == "classification" else None
    train, valid = train_test_split(
        rest,
        test_size=spec.valid_size / (1 - spec.test_size),
        random_state=spec.seed,
        stratify=stratify_rest,
    )

    def part(rows, suffix: str) -> Dataset:
        return Dataset(
            frame=rows.reset_index(drop=True),
            target=data.target,
            task=data.task,
            name=f"{data.name}:{suffix}",
            schema=dict(data.schema),
        )

    return part(train, "train"), part(valid, "valid"), part(test, "test")


@step
def split_data(
    data: Dataset, spec: SplitSpec
) -> tuple[
    Annotated[Dataset, "train_set"], Annotated[Dataset, "valid_set"], Annotated[Dataset, "test_set"]
]:
    """Split into train (fit), validation (search only) and test (final evaluation only)."""
    if data.skipped:
        note_skipped("split_data", data.skipped)
        return data, data, data
    train, valid, test = split_dataset(data, spec)
    return train, valid, test  # a literal tuple: ZenML reads it as three artifacts
