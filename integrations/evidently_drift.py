"""The one place that talks to Evidently (0.7): its HTML drift report.

The numbers come from our own exact path (`steps/monitoring/drift.py`), whose KS
p-values equal Evidently's `ks` method; Evidently is slow at scale (1M rows x 10 columns:
74 s with the default preset), so its HTML is built on a bounded sample.
"""

from __future__ import annotations

import pandas as pd


def drift_html(
    reference: pd.DataFrame, current: pd.DataFrame, max_rows: int, seed: int = 0
) -> tuple[str, str]:
    """Evidently's data-drift HTML on at most `max_rows` rows of each side, and a note."""
    from evidently import Report
    from evidently.presets import DataDriftPreset

    note = f"Evidently report on all rows ({len(reference)} reference, {len(current)} current)."
    if len(reference) > max_rows or len(current) > max_rows:
        reference = reference.sample(min(max_rows, len(reference)), random_state=seed)
        current = current.sample(min(max_rows, len(current)), random_state=seed)
        note = (
            f"Evidently report on a random sample of {len(reference)} reference and "
            f"{len(current)} current rows; the drift numbers in summary.json use all rows."
        )
    snapshot = Report([DataDriftPreset(method="ks")]).run(
        current_data=current, reference_data=reference
    )
    return snapshot.get_html_str(as_iframe=False), note
