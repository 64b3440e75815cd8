"""Promote the candidate only if it passes the gate and beats a comparable champion."""

from __future__ import annotations

import logging
from typing import Annotated, Any

from zenml import get_step_context, step

from core.errors import is_interrupt
from core.metrics import metric_in
from core.schema import diff_schemas
from core.specs import GateSpec, ReleaseSpec
from integrations.mlflow import champion
from integrations.mlflow import registry as mlflow_registry
from integrations.mlflow.registry import RegisteredModel
from materializers.dataset import Dataset
from materializers.evaluation_report import EvaluationReport
from steps.registry.gate import (
    COMPARED,
    INCOMPARABLE,
    NO_CHAMPION,
    ChampionComparison,
    PromotionDecision,
    decide_promotion,
)
from steps.registry.paired import compare_paired, row_outputs
from steps.registry.register import stored_at
from steps.training.metrics import compute_metrics

logger = logging.getLogger(__name__)

GATE_OUTCOME_TAG = "zenkube.gate_outcome"
GATE_REASON_TAG = "zenkube.gate_reason"


def compare_with_champion(
    candidate: RegisteredModel,
    test: Dataset,
    metric: str,
    champion: RegisteredModel | None,
    gate: GateSpec | None = None,
) -> ChampionComparison:
    """Score the champion on the candidate's test rows, with the paired comparison of the
    two on those rows (steps/registry/paired.py), or say why it cannot be compared.

    Only errors are caught: a Ctrl-C (KeyboardInterrupt, or ZenML's RunInterruptedException
    inside a step) and SystemExit stop the run.
    """
    if champion is None:
        return ChampionComparison(status=NO_CHAMPION)
    version = champion.version
    try:
        schema = mlflow_registry.read_input_schema(champion.model_uri)
    except Exception as exc:
        if is_interrupt(exc):  # ZenML raises a step's Ctrl-C as an Exception
            raise
        return ChampionComparison(
            status=INCOMPARABLE, version=version, error=f"its schema cannot be read: {exc}"
        )
    if schema is not None and candidate.input_schema is not None:
        change = diff_schemas(schema, candidate.input_schema)
        if change:
            return ChampionComparison(
                status=INCOMPARABLE, version=version, schema_change=change.describe()
            )
    try:
        model = mlflow_registry.load_model(champion.model_uri)
        score = compute_metrics(test.task, model, test.features, test.labels).get(metric)
        theirs = row_outputs(metric, model, test.features) if score is not None else None
    except Exception as exc:
        if is_interrupt(exc):
            raise
        return ChampionComparison(
            status=INCOMPARABLE, version=version, error=f"{type(exc).__name__}: {str(exc)[:300]}"
        )
    if score is None:
        return ChampionComparison(
            status=INCOMPARABLE, version=version, error=f"its {metric} could not be computed"
        )
    gate = gate or GateSpec()
    # The candidate as it is registered (what would be served), on the same rows.
    ours = row_outputs(metric, mlflow_registry.load_model(candidate.model_uri), test.features)
    paired = compare_paired(
        metric, test.labels, ours, theirs, gate.confidence, gate.resamples, seed=0
    )
    return ChampionComparison(status=COMPARED, version=version, score=score, paired=paired)


def hold_for_release(
    decision: PromotionDecision, mode: str, current: RegisteredModel | None
) -> PromotionDecision:
    """A passed candidate under a canary/shadow release mode: the champion stays (the
    release's promote moves it); the first champion of a model is promoted as ever."""
    if not decision.promoted or mode == "swap" or current is None:
        return decision
    return decision.model_copy(
        update={
            "promoted": False,
            "release": mode,
            "reason": f"{decision.reason}; it passed the gate and awaits a {mode} release "
            f"beside the champion v{current.version} (release.mode: {mode}), whose promote "
            "moves the champion",
        }
    )


def tag_gate_verdict(registered: RegisteredModel, decision: PromotionDecision) -> None:
    """Tag the version `zenkube.offline_gate` passed|failed (what `release start` picks
    from), with the gate's outcome and reason (what `history` lists)."""
    passed = decision.promoted or bool(decision.release)
    mlflow_registry.tag_version(
        registered.name,
        registered.version,
        {
            champion.OFFLINE_GATE_TAG: "passed" if passed else "failed",
            # whom it was judged against: `release start` takes a pass as proof only
            # while that version is still the champion
            champion.GATE_CHAMPION_TAG: decision.champion_version or "none",
            # promote / keep / inconclusive / reject, and why: what `history` shows
            GATE_OUTCOME_TAG: decision.outcome,
            GATE_REASON_TAG: decision.reason[:5000],
        },
    )


def make_champion(
    registered: RegisteredModel, decision: PromotionDecision, zenml_model_version: Any
) -> None:
    """Move the MLflow alias and the ZenML stage together (see integrations/mlflow/champion.py);
    `zenml_model_version` is the ZenML Model version that registered the candidate."""
    tags = {mlflow_registry.REASON_TAG: decision.reason}
    if decision.schema_change:
        tags[mlflow_registry.SCHEMA_CHANGE_TAG] = "true"
    context = get_step_context()
    by = f"the gate ({context.pipeline_run.name})"
    champion.promote(registered.name, registered.version, zenml_model_version, tags, by)


def gate_figures(decision: PromotionDecision, report: EvaluationReport) -> dict[str, float]:
    """The gate's comparison as metrics: candidate, champion and baseline on the same rows."""
    metric = decision.metric
    figures = {
        f"gate.candidate_{metric}": decision.candidate_score,
        f"gate.champion_{metric}": decision.champion_score,
        f"gate.baseline_{metric}": report.baseline.get(metric),
        "gate.rows": float(report.rows),
        "gate.promoted": float(decision.promoted),
    }
    if decision.interval is not None:
        figures["gate.difference_low"], figures["gate.difference_high"] = decision.interval
    return {k: v for k, v in figures.items() if v is not None}


def gate_comparison_tags(registered: RegisteredModel, decision: PromotionDecision) -> dict:
    """What the gate's figures were compared against, as tags MLflow's compare view lists
    beside them (`gate.champion_<metric>` of v2 and of v3 are two different champions):
    the champion version ("none" when there was none) and, as the run's description, one
    sentence naming both versions and the rows."""
    against = decision.champion_version or "none"
    versus = (
        f"champion v{decision.champion_version}"
        if decision.champion_version
        else "no champion (the baseline and the threshold only)"
    )
    verdict = "promoted" if decision.promoted else "not promoted"
    rows = f" on {decision.compared_on}" if decision.compared_on else ""
    return {
        "gate.champion_version": against,
        "mlflow.note.content": (
            f"Gate: v{registered.version} against {versus}{rows}: {verdict}. {decision.reason}"
        ),
    }


def record_gate(
    registered: RegisteredModel, decision: PromotionDecision, report, test, source: str
) -> None:
    """Log the gate's figures and reason on the candidate's MLflow run (and its model), tied
    to the test rows (`source`: where the artifact store keeps them), so comparing
    versions in MLflow shows why one won."""
    dataset = mlflow_registry.dataset_of(test.frame, test.name, source, test.target)
    mlflow_registry.log_dataset(registered.run_id, dataset, "testing")
    tags = {
        "gate.metric": decision.metric,
        "gate.champion": decision.champion_status
        + (f" v{decision.champion_version}" if decision.champion_version else ""),
        "gate.reason": decision.reason,
        **gate_comparison_tags(registered, decision),
        "gate.outcome": decision.outcome,
    }
    mlflow_registry.log_figures(
        registered.run_id, gate_figures(decision, report), registered.model_uri, dataset, tags
    )


@step(experiment_tracker=True)
def promote_if_better(
    registered: RegisteredModel,
    report: EvaluationReport,
    test: Dataset,
    gate: GateSpec,
    release: ReleaseSpec | None = None,
) -> Annotated[PromotionDecision, "promotion_decision"]:
    """Set MLflow alias `champion` and ZenML stage `production` together, or say why not.

    With a canary or shadow `release` mode (the deployment's release spec; None: swap), a
    passed candidate is only tagged (zenkube.offline_gate=passed): the champion moves when
    its release is promoted."""
    model_version = get_step_context().model
    mode = release.mode if release else "swap"
    return gate_candidate(
        registered, report, test, gate, model_version, stored_at("test", test.name), mode
    )


def gate_candidate(
    registered: RegisteredModel,
    report: EvaluationReport,
    test: Dataset,
    gate: GateSpec,
    zenml_model_version: Any,
    test_source: str,
    release_mode: str = "swap",
) -> PromotionDecision:
    """Judge the candidate against the champion on its test rows and promote it when it
    wins (`zenml_model_version`: the ZenML Model version that registered it); under a
    canary/shadow `release_mode` a winner awaits its release instead (hold_for_release).
    Either way the version is tagged with the verdict."""
    current = champion.current(registered.name)
    metric = metric_in(gate.metric_for(report.task), report.metrics)
    comparison = compare_with_champion(registered, test, metric, current, gate)
    rows = test.note or f"the same {len(test.frame)} test rows"
    decision = decide_promotion(
        report.task, report.metrics, comparison, gate, registered.name, report.baseline, rows
    )
    decision.candidate_version = registered.version
    decision.model_name = registered.name
    record_gate(registered, decision, report, test, test_source)
    decision = hold_for_release(decision, release_mode, current)
    tag_gate_verdict(registered, decision)
    if decision.promoted:
        make_champion(registered, decision, zenml_model_version)
        log = logger.warning if decision.schema_change else logger.info
        log("Promoted %s v%s: %s", registered.name, registered.version, decision.reason)
    else:
        logger.info("Not promoted %s v%s: %s", registered.name, registered.version, decision.reason)
    return decision
