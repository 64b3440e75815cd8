"""The gate on equal models (issue #32): over many trials in which the candidate is, by
construction, exactly as good as the champion, the default gate promotes in at most 5%
of them; the same trials under the old rule ("promote when its score is higher") promote
about half the time, and a candidate that is really better is promoted, so the bound is
not met by a gate that never promotes.

The two "models" are per-row answers drawn with the same chance of being right on each
row (a row's difficulty is shared, as two models trained on one population share the
rows they find hard), so their true quality is equal and every promotion is a false
one. The gate is the loop's own: compare_paired's bootstrap at the default
GateSpec, then decide_promotion. benchmarks/bench_gate.py measures the same with fitted
models and a big independent test set (docs/performance.md §15).
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import f1_score

from core.specs import GateSpec
from steps.registry.gate import (
    COMPARED,
    INCONCLUSIVE,
    PROMOTE,
    ChampionComparison,
    decide_promotion,
)
from steps.registry.paired import compare_paired

TRIALS = 200
EVALUATION_ROWS = 400  # about what the loop reserves after a few labelled batches


def answers(labels: np.ndarray, right: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A model's binary answers: right on each row with that row's chance."""
    hit = rng.random(len(labels)) < right
    return np.where(hit, labels, 1 - labels)


def gate(labels, candidate, champion, spec: GateSpec):
    paired = compare_paired(
        "f1", labels, candidate, champion, spec.confidence, spec.resamples, seed=0
    )
    score = float(f1_score(labels, champion))
    comparison = ChampionComparison(status=COMPARED, version="1", score=score, paired=paired)
    metrics = {"f1": float(f1_score(labels, candidate))}
    return decide_promotion("classification", metrics, comparison, spec)


def trials(advantage: float, rows: int = EVALUATION_ROWS, count: int = TRIALS, seed: int = 7):
    """(gate's decisions, old rule's promotions) over `count` trials; the candidate is
    right `advantage` more often than the champion on every row (0: equal models)."""
    rng = np.random.default_rng(seed)
    spec, decisions, old_rule = GateSpec(), [], 0
    for _ in range(count):
        labels = rng.integers(0, 2, rows)
        difficulty = rng.beta(4, 1.5, rows)  # mostly easy rows, some hard: mean ~0.73
        champion = answers(labels, difficulty, rng)
        candidate = answers(labels, np.clip(difficulty + advantage, 0, 1), rng)
        decisions.append(gate(labels, candidate, champion, spec))
        old_rule += f1_score(labels, candidate) > f1_score(labels, champion)
    return decisions, old_rule


def test_equal_models_are_promoted_in_at_most_five_percent_of_trials():
    decisions, old_rule = trials(advantage=0.0)
    promoted = sum(d.promoted for d in decisions)
    assert promoted <= 0.05 * TRIALS, f"{promoted} false promotions in {TRIALS} trials"
    # The old rule on the very same trials promotes about half of them: the bound bites.
    assert old_rule > 0.3 * TRIALS
    # Every decision is on enough rows, with its interval recorded.
    assert all(d.evaluation_rows == EVALUATION_ROWS and d.interval for d in decisions)


def test_a_really_better_candidate_is_promoted_in_most_trials():
    decisions, _ = trials(advantage=0.12, count=60)
    promoted = [d for d in decisions if d.promoted]
    assert len(promoted) >= 0.8 * len(decisions)
    assert all(d.outcome == PROMOTE and d.interval[0] > 0 for d in promoted)


def test_too_few_rows_is_inconclusive_even_for_a_better_candidate():
    few = GateSpec().min_rows - 1
    decisions, _ = trials(advantage=0.2, rows=few, count=20)
    assert {d.outcome for d in decisions} == {INCONCLUSIVE}
    assert not any(d.promoted for d in decisions)
    assert all(f"{few} evaluation rows are fewer than gate.min_rows" in d.reason for d in decisions)
