"""The promotion gate: a plain decision, unit-tested without any store.

It fails closed: a champion that exists but cannot be compared with the candidate
(another input schema, or an error while scoring it) is never treated as "no champion".
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel

from core.metrics import lower_is_better, metric_in, score_is_better
from core.specs import GateSpec
from steps.registry.paired import PairedComparison

PROMOTE, KEEP, INCONCLUSIVE, REJECT = "promote", "keep", "inconclusive", "reject"
NO_CHAMPION = "no_champion"
COMPARED = "compared"
INCOMPARABLE = "incomparable"


class ChampionComparison(BaseModel):
    """What the gate knows about the current champion.

    Attributes:
        status: no_champion; compared (scored on the candidate's test rows); or
            incomparable (another input schema, or it could not be scored).
        version: the champion's registry version (None without one).
        score: its score on the candidate's test rows (only when compared).
        schema_change: how the schemas differ ("" when they do not).
        error: why scoring failed ("" when it did not).
        paired: the paired comparison of the two on the same rows (candidate − champion,
            positive = candidate better), its bootstrap interval and how many rows it is
            on (steps/registry/paired.py); None when not compared.
    """

    status: Literal["no_champion", "compared", "incomparable"]
    version: str | None = None
    score: float | None = None
    schema_change: str = ""
    error: str = ""
    paired: PairedComparison | None = None


class PromotionDecision(BaseModel):
    """Whether a candidate became the champion, and why.

    Attributes:
        promoted: True when the candidate is now the champion.
        reason: what the gate decided and why, readable by a user.
        metric: the metric compared.
        candidate_score: the candidate's score on the test split (None: no candidate,
            continuous training that had nothing to retrain).
        champion_score: the previous champion's score on the same rows (None if not scored).
        champion_status: no_champion, compared or incomparable (see ChampionComparison);
            "" when no candidate was judged.
        schema_change: how the input schema differs from the champion's ("" if not).
        candidate_version / champion_version: MLflow registry versions.
        compared_on: which test rows the scores are on (how many, where from).
        release: the release mode (canary, shadow) the candidate awaits: it passed the
            gate, but the champion moves only when its release is promoted ("": none).
        outcome: promote; keep (the champion is better or as good, with confidence);
            inconclusive (too few rows, or an interval that cannot tell: the champion
            stays); reject (the candidate fails on its own: threshold, baseline,
            schema); "" when no candidate was judged.
        interval: [low, high] of the paired difference against the champion (None when
            not compared); evaluation_rows: the rows it is on.
    """

    promoted: bool
    reason: str
    metric: str
    candidate_score: float | None
    champion_score: float | None = None
    champion_status: str = NO_CHAMPION
    schema_change: str = ""
    candidate_version: str = ""
    champion_version: str | None = None
    model_name: str = ""
    compared_on: str = ""
    release: str = ""
    outcome: str = ""
    interval: list[float] | None = None
    evaluation_rows: int = 0


def decide_promotion(
    task: str,
    candidate_metrics: dict[str, float],
    champion: ChampionComparison,
    gate: GateSpec,
    model_name: str = "the model",
    baseline: dict[str, float] | None = None,
    rows: str = "the same test rows",
) -> PromotionDecision:
    """Promote only on a positive decision: threshold passed, the baseline beaten (a model
    that ignores its inputs, scored on the same rows) and the champion beaten (or absent).
    `rows` says which rows both were scored on (how many, and where they came from).
    """
    metric = metric_in(gate.metric_for(task), candidate_metrics)

    def decision(promoted: bool, reason: str, score: float, outcome: str = "") -> PromotionDecision:
        paired = champion.paired if champion.status == COMPARED else None
        return PromotionDecision(
            promoted=promoted,
            outcome=outcome or (PROMOTE if promoted else REJECT),
            interval=[paired.low, paired.high] if paired else None,
            evaluation_rows=paired.rows if paired else 0,
            reason=reason,
            metric=metric,
            candidate_score=score,
            champion_score=champion.score,
            champion_status=champion.status,
            schema_change=champion.schema_change,
            champion_version=champion.version,
            compared_on=rows,
        )

    score = candidate_metrics.get(metric)
    if score is None or math.isnan(score):
        have = ", ".join(candidate_metrics)
        return decision(False, f"gate metric '{metric}' was not computed (have: {have})", math.nan)
    threshold = gate.threshold_for(task)
    lower = lower_is_better(metric)
    if threshold is not None and (score > threshold if lower else score < threshold):
        word = "above" if lower else "below"
        return decision(False, f"{metric}={score:.4f} is {word} the threshold {threshold}", score)
    replace_on_purpose = bool(champion.schema_change) and gate.allow_schema_change
    if champion.status == INCOMPARABLE and not replace_on_purpose:
        return decision(False, incomparable_reason(champion, model_name), score)
    floor = (baseline or {}).get(metric)
    if gate.beat_baseline and floor is not None and not score_is_better(metric, score, floor, 0.0):
        what = "the mean of the labels" if task == "regression" else "the most frequent class"
        return decision(
            False,
            f"{metric}={score:.4f} does not beat {floor:.4f}, the score of always predicting "
            f"{what} on {rows}: the model learned nothing useful from its "
            "features. Check the target and the features, or set gate.beat_baseline: false "
            "to allow it",
            score,
        )
    if champion.status == INCOMPARABLE:  # only when replaced on purpose, see above
        return decision(
            True,
            f"{metric}={score:.4f} passes the gate and REPLACES champion v{champion.version} "
            f"although its input schema differs ({champion.schema_change}), because "
            "gate.allow_schema_change is true; clients must send the new columns",
            score,
        )
    if champion.status == COMPARED:
        return compared_decision(metric, score, champion, gate, rows, decision)
    return decision(
        True, f"{metric}={score:.4f} passes the gate and there is no champion yet", score
    )


def compared_decision(metric, score, champion: ChampionComparison, gate: GateSpec, rows, decision):
    """Promote, keep or inconclusive, from the paired comparison on the same rows; fails
    closed: no paired comparison, or too few rows, keeps the champion as "inconclusive"."""
    assert champion.score is not None
    versus = f"{metric}={score:.4f} against the champion's {champion.score:.4f} on {rows}"
    margin = gate.min_improvement
    paired = champion.paired
    if paired is None:
        return decision(
            False,
            f"inconclusive: {versus}, but no paired comparison of the two was made, so the "
            "champion stays",
            score,
            INCONCLUSIVE,
        )
    if paired.rows < gate.min_rows:
        return decision(
            False,
            f"inconclusive: {versus}: {paired.rows} evaluation rows are fewer than "
            f"gate.min_rows ({gate.min_rows}), so the champion stays. What would decide it: "
            f"at least {gate.min_rows - paired.rows} more labelled rows (monitor labelled "
            "batches: each reserves a slice for evaluation), or a lower gate.min_rows",
            score,
            INCONCLUSIVE,
        )
    interval = paired.interval(metric)
    if paired.low > margin:
        return decision(
            True,
            f"{metric}={score:.4f} beats the champion's {champion.score:.4f} on {rows} "
            f"({interval}, all above {margin})",
            score,
            PROMOTE,
        )
    if paired.high <= margin:
        return decision(
            False,
            f"{metric}={score:.4f} does not beat the champion's {champion.score:.4f} on {rows} "
            f"(needs an improvement over {margin}; {interval}): the champion stays",
            score,
            KEEP,
        )
    return decision(
        False,
        f"inconclusive: {versus}: {interval} holds both an improvement over {margin} and "
        f"none, so the champion stays. What would decide it: more labelled rows "
        f"({rows_to_decide(paired, margin)})",
        score,
        INCONCLUSIVE,
    )


def rows_to_decide(paired: PairedComparison, margin: float) -> str:
    """About how many evaluation rows an interval this wide would need to fall on one
    side of `margin` (its width shrinks as 1/sqrt(rows))."""
    gap = abs(paired.difference - margin)
    half = (paired.high - paired.low) / 2
    if not (math.isfinite(gap) and math.isfinite(half)):  # e.g. roc_auc on rows of one class
        return "the metric cannot be computed on these rows: more rows of every class would"
    if gap <= 1e-12:
        return "the two score the same: no number of rows is likely to tell them apart"
    needed = int(paired.rows * (half / gap) ** 2) + 1
    if needed > 100 * paired.rows:  # a figure like 2,700,433 says only "about the same"
        return (
            f"over 100 times these {paired.rows} rows: the two score about the same "
            f"(difference {paired.difference:+.4f})"
        )
    return f"about {needed} evaluation rows if the difference stays {paired.difference:+.4f}"


def incomparable_reason(champion: ChampionComparison, model_name: str) -> str:
    """Why the candidate cannot be judged against the champion, and what to do."""
    if champion.schema_change:
        return (
            f"champion v{champion.version} of '{model_name}' cannot be compared with this "
            f"candidate: the input schema differs ({champion.schema_change}). Train it under "
            "its own name with --model-name NEW, or set gate.allow_schema_change: true to "
            "replace the champion on purpose"
        )
    return (
        f"champion v{champion.version} of '{model_name}' could not be scored on the candidate's "
        f"test rows ({champion.error}), so the candidate cannot be shown to be better. Fix what "
        "the error says, or train under another name with --model-name NEW"
    )
