"""The gate: how often it promotes a candidate that is no better, and how often it
promotes one that is.

Each trial draws, from one fixed synthetic population (make_classification's), a
champion's and a candidate's training rows (independent, the same size: equal models
but for the luck of their samples) and the reserved evaluation rows the gate decides on
(`--eval-rows`, a size the loop has). Both are fitted, the gate decides as the loop's
does (decide_promotion with the paired bootstrap of compare_paired, the default
gate.min_rows/confidence/resamples), and a big independent test set (`--truth-rows`,
never seen by the gate) says whether the candidate really is better.

- false promotions: promoted although it scores no better than the champion on the big
  test set; the rate over all trials of equal models (goal: at most 5%);
- the same for the old rule (promote whenever the candidate's score on the evaluation
  rows is higher), the baseline the paired gate replaces;
- power: the same gate when the candidate learned from 8x more rows (really better).
Prints a table; saves benchmarks/results/bench_gate.json.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import save, table
from sklearn.datasets import make_classification
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import f1_score

from core.specs import GateSpec
from steps.registry.gate import ChampionComparison, decide_promotion
from steps.registry.paired import compare_paired

POPULATION = dict(
    n_features=10, n_informative=5, n_redundant=2, flip_y=0.05, class_sep=0.8, random_state=7
)


def population(rows: int):
    x, y = make_classification(n_samples=rows, **POPULATION)
    return x, y


def fitted(x, y, seed: int):
    return HistGradientBoostingClassifier(max_iter=30, random_state=seed).fit(x, y)


def gate_decision(champion, candidate, x_eval, y_eval, gate: GateSpec):
    ours, theirs = candidate.predict(x_eval), champion.predict(x_eval)
    paired = compare_paired("f1", y_eval, ours, theirs, gate.confidence, gate.resamples)
    score = float(f1_score(y_eval, theirs))
    comparison = ChampionComparison(status="compared", version="1", score=score, paired=paired)
    metrics = {"f1": float(f1_score(y_eval, ours))}
    return decide_promotion("classification", metrics, comparison, gate), metrics["f1"]


def trials(count: int, train_rows: int, eval_rows: int, truth_rows: int, ratio: int):
    """(paired gate promotions, old-rule promotions, candidate really better) per trial."""
    x, y = population(train_rows * (1 + ratio) * count + eval_rows * count + truth_rows)
    x_truth, y_truth = x[-truth_rows:], y[-truth_rows:]
    gate, out, seconds = GateSpec(), [], 0.0
    bounds = np.cumsum([0] + [train_rows, train_rows * ratio, eval_rows] * count)
    parts = [(x[a:b], y[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    for trial in range(count):
        champion_rows, candidate_rows, (x_eval, y_eval) = parts[3 * trial : 3 * trial + 3]
        champion = fitted(*champion_rows, seed=trial)
        candidate = fitted(*candidate_rows, seed=trial + 1000)
        began = time.perf_counter()
        decision, candidate_score = gate_decision(champion, candidate, x_eval, y_eval, gate)
        seconds += time.perf_counter() - began
        truly = f1_score(y_truth, candidate.predict(x_truth)) - f1_score(
            y_truth, champion.predict(x_truth)
        )
        old_rule = candidate_score > decision.champion_score
        out.append((decision.promoted, old_rule, truly > 0, decision.outcome))
    return out, seconds / count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--train-rows", type=int, default=1000)
    parser.add_argument("--eval-rows", type=int, default=400)
    parser.add_argument("--truth-rows", type=int, default=200_000)
    args = parser.parse_args()
    rows, payload = [], {"args": vars(args)}
    for label, ratio in (("equal models", 1), ("candidate on 8x rows", 8)):
        found, per_gate = trials(
            args.trials, args.train_rows, args.eval_rows, args.truth_rows, ratio
        )
        promoted = sum(p for p, _, _, _ in found)
        false = sum(p and not better for p, _, better, _ in found)
        old_false = sum(o and not better for _, o, better, _ in found)
        better = sum(b for _, _, b, _ in found)
        outcomes = {
            o: sum(1 for *_, oc in found if oc == o) for o in ("promote", "keep", "inconclusive")
        }
        rows.append(
            [
                label,
                args.trials,
                better,
                f"{promoted / args.trials:.1%}",
                f"{false / args.trials:.1%}",
                f"{old_false / args.trials:.1%}",
                f"{outcomes['promote']}/{outcomes['keep']}/{outcomes['inconclusive']}",
                f"{per_gate * 1000:.0f} ms",
            ]
        )
        payload[label] = {
            "trials": args.trials,
            "really_better": better,
            "promoted": promoted,
            "false_promotions": false,
            "old_rule_false_promotions": old_false,
            "outcomes": outcomes,
            "seconds_per_gate": per_gate,
        }
    headers = [
        "trial kind", "trials", "really better", "promoted", "false promotions",
        "old rule: false promotions", "promote/keep/inconclusive", "gate time",
    ]  # fmt: skip
    title = (
        f"Gate on {args.eval_rows} evaluation rows, truth on {args.truth_rows:,} independent rows"
    )
    print(table(title, headers, rows))
    print(f"saved {save('bench_gate', payload)}")


if __name__ == "__main__":
    main()
