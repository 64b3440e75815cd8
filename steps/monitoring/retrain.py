"""The data a retraining learns from: the champion's training rows plus the labelled batch.

The batch rows are marked (`new_rows`): the split holds part of them out, so the gate
compares candidate and champion on rows neither was trained on.
"""

from __future__ import annotations

from typing import Annotated

import pandas as pd
from zenml import step

from materializers.dataset import Dataset
from steps.monitoring.decide import MonitoringDecision


def retraining_set(
    decision: MonitoringDecision, reference: Dataset, batch: Dataset, retrain: bool
) -> Dataset:
    """Reference + batch rows (the batch last, counted in `new_rows`) when monitoring asks
    for retraining; else an empty, skipped set."""
    if decision.retrain and retrain:
        frame = pd.concat(
            [reference.frame, batch.frame[reference.frame.columns]], ignore_index=True
        )
        return Dataset(
            frame=frame,
            target=reference.target,
            task=reference.task,
            name=f"{reference.name} + {batch.name}",
            schema=dict(reference.schema),
            new_rows=len(batch.frame),
            note=f"the new batch {batch.name}",
            ignored_columns=list(reference.ignored_columns),
        )
    if not decision.alert:
        why = "skipped: no retraining needed (no threshold breached)"
    elif not decision.retrain:
        why = "skipped: no retraining (the alert's batch has no labels)"
    else:
        why = "skipped: no retraining (retrain: false)"
    return Dataset(
        frame=reference.frame.iloc[0:0],
        target=reference.target,
        task=reference.task,
        name=reference.name,
        schema=dict(reference.schema),
        skipped=why,
    )


@step(enable_cache=False)
def retraining_data(
    decision: MonitoringDecision, reference: Dataset, batch: Dataset, retrain: bool
) -> Annotated[Dataset, "retraining_set"]:
    """Reference + labelled batch to retrain on, or a skipped set that the next steps pass on."""
    return retraining_set(decision, reference, batch, retrain)
