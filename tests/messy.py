"""Messy tables of our own making: mixed types, gaps, dates, text labels (for several tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd


def messy_frame(rows: int = 240, seed: int = 0) -> pd.DataFrame:
    """Numbers with gaps, text with gaps, date strings, a bool; plus three kinds of target."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 80, rows).astype(float)
    score = rng.normal(size=rows)
    frame = pd.DataFrame(
        {
            "age": age,
            "city": rng.choice(["Oslo", "Rome", "Lima", "Pune"], rows).astype(object),
            "signup": pd.date_range("2021-01-01", periods=rows, freq="36h").strftime("%Y-%m-%d"),
            "score": score,
            "member": rng.choice([True, False], rows),
        }
    )
    frame.loc[rng.choice(rows, rows // 10, replace=False), "age"] = np.nan
    frame.loc[rng.choice(rows, rows // 10, replace=False), "city"] = np.nan
    # Targets: continuous, integer counts (many values), and multiclass text labels.
    frame["price"] = np.nan_to_num(age, nan=40) * 3 + score * 10 + rng.normal(size=rows)
    frame["visits"] = (np.nan_to_num(age, nan=40) * 2 + rng.integers(0, 30, rows)).astype(int)
    frame["tier"] = np.select([score < -0.5, score < 0.5], ["bronze", "silver"], "gold")
    return frame


def write_csv(frame: pd.DataFrame, path, drop: tuple[str, ...] = ()) -> str:
    frame.drop(columns=list(drop)).to_csv(path, index=False)
    return str(path)
