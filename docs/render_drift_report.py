"""Render the drift reports and the drift history in headless Chromium; save screenshots.

    .venv/bin/python docs/render_drift_report.py [OUT_DIR]

Builds a drift report on generated data (three of five columns shifted), writes zenkube's
script-free report and Evidently's interactive one (configured with the same tests, rule
and thresholds), and a drift history of twelve runs in which one column creeps (the
`monitor history` report), and screenshots each with Debian's Chromium (`apt-get install
chromium`), the script-free ones inside an iframe with `sandbox` and no `allow-scripts`,
as ZenML's dashboard shows them (so no script could run).
"""

from __future__ import annotations

import html
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--virtual-time-budget=5000",  # let scripts and the iframe's document load first
]  # fmt: skip


def sample_reports():
    import numpy as np
    import pandas as pd

    from core.specs import MonitoringThresholds
    from materializers.dataset import Dataset
    from steps.monitoring.drift import compute_drift, evidently_report

    def frame(rows: int, seed: int, shifted: bool) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        days = rng.integers(0, 400 if shifted else 300, rows)
        return pd.DataFrame(
            {
                "a": rng.normal(size=rows) + (1.0 if shifted else 0.0),
                "b": rng.normal(size=rows),
                "city": rng.choice(["Oslo", "Rome", "Lima"] + (["Pune"] if shifted else []), rows),
                "tier": rng.choice(["x", "y"], rows),
                "signup": (pd.Timestamp("2022-01-01") + pd.to_timedelta(days, unit="D")).strftime(
                    "%Y-%m-%d"
                ),
            }
        )

    reference = Dataset(frame=frame(600, 1, False).assign(y=0), target="y", task="classification")
    current = frame(300, 2, True)
    thresholds = MonitoringThresholds()
    return compute_drift(reference, current, thresholds).to_html(), evidently_report(
        reference, current, thresholds
    ).html


def sample_history() -> str:
    """Twelve daily runs: `income` creeps by 0.015 SD a day and drifts from day 8; the
    other columns wobble; every third batch is labelled and quality sags as income moves;
    version 2 became champion on day 10."""
    import numpy as np

    from app.drift_history import record_of
    from materializers.drift_history import DriftHistory

    rng = np.random.default_rng(4)
    runs = []
    for day in range(12):
        effects = {
            "income": 0.015 * day + rng.uniform(0, 0.01),
            "age": rng.uniform(0.005, 0.03),
            "city": rng.uniform(0.01, 0.04),
            "signup": rng.uniform(0.01, 0.05),
        }
        # each run's figures as its artifacts hold them (the drift report's summary.json,
        # the quality report, the decision), read by the same function as `monitor history`
        columns = [
            {"column": name, "p_value": 10 ** (-e * 80), "effect": e, "min_effect": 0.1,
             "drifted": bool(e >= 0.1 and 10 ** (-e * 80) < 0.05)}
            for name, e in effects.items()
        ]  # fmt: skip
        share = sum(c["drifted"] for c in columns) / len(columns)
        quality = {"labelled": True, "metric": "f1", "current": 0.91 - 0.01 * day,
                   "reference": 0.91}  # fmt: skip
        runs.append(
            record_of(
                f"continuous_training_pipeline-2026_11_{day + 1:02d}-08_00_00",
                "continuous_training_pipeline",
                f"2026-11-{day + 1:02d}T08:00:00",
                {"current_rows": 50_000, "drift_share": share, "columns": columns},
                quality if day % 3 == 2 else None,  # every third batch is labelled
                {"alert": share >= 0.25, "model_version": "1" if day < 10 else "2"},
            )
        )
    return DriftHistory(model_name="churn", runs=runs).to_html()


def sandboxed(page: Path, height: int = 2400) -> str:
    """The page inside an iframe with `sandbox` and no `allow-scripts`, as ZenML's
    dashboard shows an HTML visualization: its scripts cannot run. (The iframe loads the
    file beside it: Chromium often screenshots a `srcdoc` iframe before painting it.)"""
    return (
        "<!doctype html><html><body style='margin:0'><iframe sandbox='' "
        f"style='border:0;width:100%;height:{height}px' src=\"{html.escape(page.name)}\">"
        "</iframe></body></html>"
    )


def blank(png: Path) -> bool:
    """Whether the screenshot is one colour (taken before the page was painted)."""
    from PIL import Image

    with Image.open(png) as image:
        low_high = image.convert("L").getextrema()
    return low_high[0] == low_high[1]


def screenshot(page: Path, png: Path, height: int = 1400, tries: int = 3) -> None:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    for _ in range(tries):
        png.unlink(missing_ok=True)
        with tempfile.TemporaryDirectory() as profile:
            flags = [*CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size=1000,{height}"]
            subprocess.run(
                [chromium, *flags, f"--screenshot={png}", page.as_uri()],
                check=True,
                stdout=subprocess.DEVNULL,  # with its stdout on a pipe, Chromium more often
                stderr=subprocess.PIPE,  # screenshots an iframe before painting it
                timeout=120,
            )
        if not png.exists():
            raise SystemExit(f"Chromium wrote no screenshot of {page}")
        if not blank(png):
            return
    raise SystemExit(f"Chromium's screenshots of {page} stayed blank ({tries} tries)")


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    ours, evidently = sample_reports()
    pages = (
        ("report", ours, False),
        ("evidently", evidently, True),
        ("history", sample_history(), False),
    )
    for name, content, javascript in pages:
        page = out / f"{name}.html"
        page.write_text(content)
        shown = page
        if not javascript:  # (Chromium writes no screenshot with scripts switched off)
            shown = out / f"{name}.sandboxed.html"
            shown.write_text(sandboxed(page))
        screenshot(shown, out / f"{name}.png", 1400 if javascript else 2400)
        print(f"{page} → {out / f'{name}.png'}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "drift-screenshots"))
