"""The latest monitoring figures of a model as Prometheus gauges on its serving front.

After each monitoring run (and `monitor history`) the CLI writes the run's drift share and
quality to `$ZENKUBE_HOME/monitoring/<model>.json`; the model's front (the local
deployer's `router/` package) registers `MonitoringGauges`, which reads that file whenever
Prometheus scrapes /metrics, so the gauges are current without a restart and the front
needs no ZenML. Standard library and prometheus_client only (the front imports this).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.paths import zenkube_home


def latest_file(model_name: str) -> Path:
    return zenkube_home() / "monitoring" / f"{model_name}.json"


def write_latest(
    model_name: str,
    drift_share: float,
    quality: float | None,
    metric: str,
    run_name: str,
    model_version: str = "",
) -> Path:
    """Record the latest run's figures (atomically: a scrape never reads half a file)."""
    path = latest_file(model_name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(
        json.dumps(
            {
                "drift_share": drift_share,
                "quality": quality,
                "metric": metric,
                "run_name": run_name,
                "model_version": model_version,
                "written": time.time(),
            }
        )
    )
    tmp.replace(path)
    return path


class MonitoringGauges(Collector):
    """zenkube_drift_share, zenkube_quality{metric} and zenkube_monitoring_run_timestamp_seconds
    for one model, read from its latest-monitoring file at each scrape (nothing before the
    first monitoring run; no quality gauge when that run had no labels). Each is labelled
    with the model and the champion `version` that run watched ("" for a file written
    before versions were recorded), so a dashboard sees a champion change as a new series."""

    def __init__(self, model_name: str):
        self.model_name = model_name

    def collect(self):
        try:
            latest = json.loads(latest_file(self.model_name).read_text())
        except (OSError, ValueError):
            return
        share = GaugeMetricFamily(
            "zenkube_drift_share",
            "Share of feature columns that drifted in the latest monitoring run.",
            labels=["model", "version"],
        )
        ours = [self.model_name, str(latest.get("model_version") or "")]
        share.add_metric(ours, float(latest.get("drift_share", 0.0)))
        yield share
        if latest.get("quality") is not None:
            quality = GaugeMetricFamily(
                "zenkube_quality",
                "The gate metric on the latest labelled monitoring batch.",
                labels=["model", "version", "metric"],
            )
            quality.add_metric([*ours, str(latest.get("metric", ""))], latest["quality"])
            yield quality
        when = GaugeMetricFamily(
            "zenkube_monitoring_run_timestamp_seconds",
            "When the latest monitoring figures were recorded (Unix time).",
            labels=["model", "version"],
        )
        when.add_metric(ours, float(latest.get("written", 0.0)))
        yield when
