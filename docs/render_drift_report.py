"""Render both drift reports in headless Chromium and save screenshots to look at.

    .venv/bin/python docs/render_drift_report.py [OUT_DIR]

Builds a drift report on generated data (three of five columns shifted), writes zenkube's
script-free report and Evidently's interactive one (configured with the same tests and
thresholds), and screenshots each with Debian's Chromium (`apt-get install chromium`), the
script-free one with JavaScript off, as ZenML's sandboxed iframe shows it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
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


def screenshot(page: Path, png: Path, javascript: bool) -> None:
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with tempfile.TemporaryDirectory() as profile:
        flags = [*CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--window-size=1000,1400"]
        if not javascript:
            flags.append("--blink-settings=scriptEnabled=false")
        subprocess.run(
            [chromium, *flags, f"--screenshot={png}", page.as_uri()],
            check=True,
            capture_output=True,
            timeout=120,
        )


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    ours, evidently = sample_reports()
    for name, content, javascript in (("report", ours, False), ("evidently", evidently, True)):
        page = out / f"{name}.html"
        page.write_text(content)
        screenshot(page, out / f"{name}.png", javascript)
        print(f"{page} → {out / f'{name}.png'}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "drift-screenshots"))
