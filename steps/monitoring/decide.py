"""Quality on labelled batches, and the decision: alert, retrain or carry on."""

from __future__ import annotations

import logging
import re
from typing import Annotated

from pydantic import BaseModel, Field, computed_field
from zenml import step

from core.metrics import TASK_METRICS, lower_is_better, metric_in
from core.specs import MonitoringThresholds
from integrations.mlflow import registry as mlflow_registry
from materializers.dataset import Dataset
from materializers.drift_report import DriftReport
from materializers.evaluation_report import EvaluationReport
from steps.monitoring.batch import PREDICTION
from steps.training.metrics import prediction_metrics, primary_metric

logger = logging.getLogger(__name__)


class QualityReport(BaseModel):
    """The champion's quality on a labelled batch against its own test score.

    Attributes:
        labelled: whether the batch had labels (no labels: nothing else is set).
        metrics: metrics on the batch.
        metric: the compared metric.
        current / reference: its value on the batch and on the champion's test split.
        drop: how much worse the batch is (positive = worse), in the metric's units.
        relative_drop: `drop` as a share of the test score (None when that score is 0).
    `drop` and `relative_drop` follow from the others (saved with them, as fields).
    """

    labelled: bool
    metrics: dict[str, float] = Field(default_factory=dict)
    metric: str = ""
    current: float | None = None
    reference: float | None = None

    @computed_field
    @property
    def drop(self) -> float | None:
        current, reference = self.current, self.reference
        if current is None or reference is None:
            return None
        return current - reference if lower_is_better(self.metric) else reference - current

    @computed_field
    @property
    def relative_drop(self) -> float | None:
        drop = self.drop
        return drop / abs(self.reference) if drop is not None and self.reference else None


class MonitoringDecision(BaseModel):
    """What monitoring concluded.

    Attributes:
        alert: a threshold was breached.
        retrain: retraining should start (an alert on a labelled batch).
        reasons: one readable sentence per breach.
        drift_share / drifted_columns / quality_drop: the figures behind it.
        model_version: the champion's MLflow version the batch was checked against ("":
            not known), so a history marks which model each run watched.
    """

    alert: bool
    retrain: bool
    reasons: list[str]
    drift_share: float
    drifted_columns: list[str]
    quality_drop: float | None = None
    model_version: str = ""


def measure_quality(
    batch: Dataset, predictions: Dataset, champion: EvaluationReport
) -> QualityReport:
    """Compare the champion's batch predictions with the batch labels."""
    if batch.labels is None:
        return QualityReport(labelled=False)
    metrics = prediction_metrics(batch.task, batch.labels, predictions.frame[PREDICTION])
    metric = metric_in(primary_metric(batch.task), metrics)
    return QualityReport(
        labelled=True,
        metrics=metrics,
        metric=metric,
        current=metrics[metric],
        reference=champion.metrics.get(metric),
    )


def quality_breach(quality: QualityReport, thresholds: MonitoringThresholds) -> str:
    """Why the batch's quality is an alert ("" when it is not), in the metric's direction:
    an error "rose", a score "fell"."""
    current, reference = quality.current, quality.reference
    if quality.drop is None or current is None or reference is None:
        return ""
    task = "regression" if quality.metric in TASK_METRICS["regression"] else "classification"
    limit = thresholds.max_quality_drop_for(task)
    # Relative to the test score; in the metric's units when asked (or the score is 0).
    relative = thresholds.quality_drop_units == "relative" and reference != 0
    worse = quality.drop / abs(reference) if relative else quality.drop
    if worse <= limit:
        return ""
    moved = "rose" if current > reference else "fell"
    if relative:
        detail = (
            f"{(current - reference) / abs(reference):+.1%} against the champion's test "
            f"score; the alert is at more than {limit:.1%} worse"
        )
    else:
        detail = f"{current - reference:+.4f}; the alert is at more than {limit} worse"
    return f"{quality.metric} {moved} from {reference:.4f} to {current:.4f} ({detail})"


def decide(
    drift: DriftReport, quality: QualityReport, thresholds: MonitoringThresholds
) -> MonitoringDecision:
    """Alert on too much drift, a critical column's drift or a quality drop."""
    reasons = []
    drifted = drift.drifted_columns
    if drift.drift_share >= thresholds.drift_share:
        reasons.append(
            f"{len(drifted)} of {len(drift.columns)} columns drifted ({drift.drift_share:.0%} ≥ "
            f"{thresholds.drift_share:.0%}): {', '.join(drifted)}"
        )
    critical = [c for c in thresholds.critical_columns if c in drifted]
    if critical:
        reasons.append(f"critical column(s) drifted: {', '.join(critical)}")
    breach = quality_breach(quality, thresholds)
    if breach:
        reasons.append(breach)
    alert = bool(reasons)
    return MonitoringDecision(
        alert=alert,
        retrain=alert and quality.labelled,
        reasons=reasons,
        drift_share=drift.drift_share,
        drifted_columns=drifted,
        quality_drop=quality.drop,
    )


def column_keys(names: list[str]) -> dict[str, str]:
    """Column name -> an MLflow key part for it: its index among the names in sorted
    order (the same in every run of a model, whatever order a report lists them in) and
    the name with every character MLflow refuses in a key (`( ) ? ' # $ , [ ]`, emoji,
    ...) made `_`, e.g. `bill length (mm)` -> `000_bill_length_mm`. The index keeps two
    names that clean to the same text apart; the real name is the tag `column.000`."""
    width = max(3, len(str(len(names))))
    keys = {}
    for index, name in enumerate(sorted(names, key=str)):
        clean = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(name)).strip("_")
        keys[name] = f"{index:0{width}d}_{clean}"[:200].rstrip("_")
    return keys


def record_monitoring(
    model_name: str,
    metrics: dict[str, float],
    decision: MonitoringDecision,
    columns: dict[str, str] | None = None,
    retraining: bool = False,
) -> str:
    """The figures go on a run tagged with the champion version it watched: the pipeline's
    run when nothing retrains, else a run nested in it, never on a training run, where
    they would sit beside (and be mistaken for) the candidate's own metrics. Returns that
    version."""
    from zenml import get_step_context

    version = None
    if model_name:
        current = mlflow_registry.get_champion(model_name)
        version = current.version if current else None
    tags = {
        "zenml_run": get_step_context().pipeline_run.name,
        "monitoring.decision": "; ".join(decision.reasons) or "no threshold breached",
        **(columns or {}),
    }
    mlflow_registry.log_monitoring_run(
        model_name or "unknown", version, metrics, tags, retraining=retraining
    )
    return version or ""


@step(enable_cache=False)
def check_quality(
    batch: Dataset, predictions: Dataset, champion_report: EvaluationReport
) -> Annotated[QualityReport, "quality_report"]:
    """With labels: the champion's metrics on the batch against its own test score."""
    return measure_quality(batch, predictions, champion_report)


@step(enable_cache=False, experiment_tracker=True)
def decide_action(
    drift: DriftReport,
    quality: QualityReport,
    thresholds: MonitoringThresholds,
    model_name: str = "",
    retrains: bool = False,
) -> Annotated[MonitoringDecision, "monitoring_decision"]:
    """Turn the figures into a decision; alerts go to the log and to MLflow (`retrains`: a
    later step of this pipeline retrains when the decision asks)."""
    decision = decide(drift, quality, thresholds)
    mlflow_registry.configure_from_stack()
    metrics = {"drift_share": drift.drift_share, "alert": float(decision.alert)}
    if quality.drop is not None:
        metrics["quality_drop"] = quality.drop
    if quality.relative_drop is not None:
        metrics["quality_drop_share"] = quality.relative_drop
    keys = column_keys([c.column for c in drift.columns])
    metrics.update({f"p_value.{keys[c.column]}": c.p_value for c in drift.columns})
    # The real names by the same index, as tags (any text; MLflow refuses it in a key).
    columns = {f"column.{key.split('_', 1)[0]}": name[:500] for name, key in keys.items()}
    decision.model_version = record_monitoring(
        model_name, metrics, decision, columns, retrains and decision.retrain
    )
    if decision.alert:
        for reason in decision.reasons:
            logger.warning("MONITORING ALERT: %s", reason)
        if not decision.retrain:
            logger.warning("The batch has no labels: no retraining, only this alert.")
    else:
        logger.info(
            "Monitoring: no threshold breached (drift share %.0f%%).", drift.drift_share * 100
        )
    return decision
