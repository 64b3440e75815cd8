"""A release's live evidence and the decision taken from it (plain Python, no imports
beyond the standard library: the model's front runs it in its own process).

While a release runs, the front (seldon_local/router/) keeps, per role (`champion`,
`candidate`), what the traffic showed: requests, answers by status, fallbacks, latency
percentiles from a bounded reservoir, rows scored, the predictions' distribution, and the
quality of the answers that feedback labels arrived for. `decide` turns that evidence
into promote, abort or "not yet", with the reasons and what decides next.

The effect sizes are the drift check's (steps/monitoring/drift.py): the Jensen–Shannon
distance (natural log) of class shares, and the Wasserstein distance over the champion's
standard deviation for numbers. They are written here in plain Python because the front
does not import scipy and integrations/ does not import steps/.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections import Counter

# Keys and defaults; configs/deployment.yaml `release:` holds the same keys.
DEFAULTS: dict[str, float] = {
    "min_requests": 200,  # candidate answers before rates, latency and shift are judged
    "max_5xx_increase": 0.01,  # candidate 5xx share minus the champion's
    "max_4xx_increase": 0.05,
    "max_p95_latency_ratio": 1.5,  # candidate p95 / champion p95 (and at least +20 ms)
    "max_p50_latency_increase_ms": 30,  # candidate median latency minus the champion's
    "max_prediction_shift": 0.2,  # distance between the two roles' predictions
    "min_labelled": 50,  # labelled answers per role before quality is judged
    "max_quality_drop": 0.02,  # relative drop of accuracy (or rise of MAE)
    "budget_seconds": 1800,  # undecided after this: abort
    "budget_requests": 20000,  # or after this many candidate requests: abort
    # 1: promoted only once quality is judged on labelled answers (set for a candidate
    # that did not pass the offline gate: errors, latency and shift do not say it is right)
    "require_labels": 0,
}
FLAGS = ("require_labels",)  # thresholds that are true (1) or false (0)
LATENCY_MARGIN_MS = 20.0  # a p95 ratio over the bound counts only this far apart
EARLY_REQUESTS = 20  # a rate can abort from this many candidate requests when clearly over
# "Clearly": beyond three standard errors. The gate looks again every 0.5 s as evidence
# grows, and at 1.96 (95%) those repeated looks aborted good candidates by chance.
Z = 3.0
# A release decided promote that nobody ends (the watcher killed, say) is aborted this
# long after the decision: fail closed, and soon, rather than at the end of the budget.
DECIDED_GRACE_SECONDS = 300.0


class ThresholdError(ValueError):
    pass


def thresholds(given: dict | None) -> dict[str, float]:
    """The defaults with `given` on top; an unknown key or a value that is not a
    non-negative number is a ThresholdError saying which."""
    merged = dict(DEFAULTS)
    for key, value in (given or {}).items():
        if key not in DEFAULTS:
            raise ThresholdError(f"unknown release threshold {key!r}; known: {', '.join(DEFAULTS)}")
        if key in FLAGS:
            if value not in (True, False):  # 1 and 0 (and 1.0, 0.0) are True and False
                raise ThresholdError(f"release threshold {key} is true or false, not {value!r}")
            merged[key] = float(value)
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise ThresholdError(f"release threshold {key} must be a number >= 0, not {value!r}")
        merged[key] = float(value)
    return merged


# -- where a prediction goes ---------------------------------------------------------------
class Allocator:
    """Which predictions a canary's candidate answers: `percent` % of them.

    A request with an id goes where the id hashes (BLAKE2b, so the same id lands on the
    same side in every front process and run: sticky; CRC-32 is linear, and ids that
    differ in a counter, "req-1", "req-2", were far from the share); a request without one goes by a
    smooth weighted counter, which keeps the share exact over any run of requests (pure
    randomness would drift by ±√n)."""

    def __init__(self, percent: float):
        self.share = max(0.0, min(100.0, float(percent))) / 100.0
        self.credit = 0.0

    def to_candidate(self, request_id: str | None = None) -> bool:
        if request_id:
            digest = hashlib.blake2b(request_id.encode(), digest_size=8).digest()
            return int.from_bytes(digest, "big") % 10000 < self.share * 10000
        self.credit += self.share
        if self.credit >= 1.0 - 1e-9:
            self.credit -= 1.0
            return True
        return False


# -- what one role's answers showed --------------------------------------------------------
class Reservoir:
    """A uniform sample of at most `size` values of a stream (Vitter's algorithm R)."""

    def __init__(self, size: int = 2000, seed: int = 0):
        self.size, self.seen, self.values = size, 0, []
        self.random = random.Random(seed)

    def add(self, value: float) -> None:
        self.seen += 1
        if len(self.values) < self.size:
            self.values.append(value)
        else:
            slot = self.random.randrange(self.seen)
            if slot < self.size:
                self.values[slot] = value

    def state(self) -> dict:
        return {"seen": self.seen, "values": list(self.values)}

    def restore(self, state: dict) -> None:
        """What `state` held (a new front process goes on with the sample it had)."""
        self.seen = int(state.get("seen") or 0)
        self.values = [float(v) for v in state.get("values") or []][: self.size]

    def percentile(self, q: float) -> float | None:
        if not self.values:
            return None
        ordered = sorted(self.values)
        return ordered[min(len(ordered) - 1, max(0, math.ceil(q / 100 * len(ordered)) - 1))]


MAX_CLASSES = 1000  # distinct predicted classes kept per role; more go to one bucket
MAX_CLASSES_FOR_SHIFT = 50  # more distinct numeric predictions: compared as numbers


class RoleStats:
    """One role's evidence: counts, latency, rows, predictions and labelled quality."""

    def __init__(self):
        self.requests = self.ok = self.c4xx = self.c5xx = self.fallbacks = self.rows = 0
        self.latency = Reservoir()
        self.classes: Counter = Counter()
        self.numbers = Reservoir(seed=1)
        self.labelled = 0
        self.hits = 0  # labelled answers that were the right class
        self.numeric_labels = 0  # labelled answers where both were numbers
        self.error_sum = self.error_sq = 0.0  # their absolute errors

    def answered(self, status: int, seconds: float | None, predictions: list | None = None) -> None:
        """One answer of this role (status 599: it could not be reached; `seconds` None:
        its latency is not known, as in a logged row without one)."""
        self.requests += 1
        if status == 200:
            self.ok += 1
            if seconds is not None:
                self.latency.add(seconds * 1000)
            for value in predictions or []:
                self.prediction(value)
            self.rows += len(predictions or [])
        elif 400 <= status < 500:
            self.c4xx += 1
        elif status >= 500:
            self.c5xx += 1

    def prediction(self, value) -> None:
        number = None if isinstance(value, bool) else as_number(value)
        if number is not None and math.isfinite(number):
            self.numbers.add(number)
        key = str(value) if len(self.classes) < MAX_CLASSES or str(value) in self.classes else "…"
        self.classes[key] += 1

    def label(self, prediction, label) -> None:
        """A prediction of this role and its true label, from feedback: a hit when they
        are the same class; the absolute error too when both are numbers."""
        self.labelled += 1
        self.hits += int(str(prediction) == str(label) or _same_number(prediction, label))
        x, y = as_number(prediction), as_number(label)
        if x is not None and y is not None and math.isfinite(x) and math.isfinite(y):
            error = abs(x - y)
            self.numeric_labels += 1
            self.error_sum += error
            self.error_sq += error * error

    def quality(self, metric: str | None = None) -> dict | None:
        """{metric, value, se, n} on the labelled answers (None: none yet): accuracy, or
        the mean absolute error when every label and prediction was a number and
        `metric` is "mae" (None: "mae" for numbers with more than 50 distinct values)."""
        if not self.labelled:
            return None
        n = self.labelled
        if metric is None:
            many = len(self.classes) > MAX_CLASSES_FOR_SHIFT
            metric = "mae" if many and self.numeric_labels == n else "accuracy"
        if metric == "mae" and self.numeric_labels == n:
            mean = self.error_sum / n
            var = max(0.0, self.error_sq / n - mean * mean)
            return {"metric": "mae", "value": mean, "se": math.sqrt(var / n), "n": n}
        p = self.hits / n
        return {"metric": "accuracy", "value": p, "se": math.sqrt(p * (1 - p) / n), "n": n}

    COUNTS = ("requests", "ok", "c4xx", "c5xx", "fallbacks", "rows", "labelled", "hits")
    SUMS = ("numeric_labels", "error_sum", "error_sq")

    def state(self) -> dict:
        """All this role's evidence, as JSON (`restored` reads it back): a front restarted
        mid-release goes on with the evidence its predecessor had."""
        return {
            **{key: getattr(self, key) for key in (*self.COUNTS, *self.SUMS)},
            "latency": self.latency.state(),
            "numbers": self.numbers.state(),
            "classes": dict(self.classes),
        }

    @classmethod
    def restored(cls, state: dict) -> RoleStats:
        stats = cls()
        for key in stats.COUNTS:
            setattr(stats, key, int(state.get(key) or 0))
        stats.numeric_labels = int(state.get("numeric_labels") or 0)
        stats.error_sum = float(state.get("error_sum") or 0.0)
        stats.error_sq = float(state.get("error_sq") or 0.0)
        stats.latency.restore(state.get("latency") or {})
        stats.numbers.restore(state.get("numbers") or {})
        stats.classes.update({str(k): int(v) for k, v in (state.get("classes") or {}).items()})
        return stats

    def as_dict(self, metric: str | None = None) -> dict:
        quality = self.quality(metric)
        return {
            "requests": self.requests,
            "ok": self.ok,
            "4xx": self.c4xx,
            "5xx": self.c5xx,
            "fallbacks": self.fallbacks,
            "latency_ms": {f"p{q}": _round(self.latency.percentile(q)) for q in (50, 95, 99)},
            "rows": self.rows,
            "labelled": self.labelled,
            "quality": None if quality is None else round(quality["value"], 4),
        }


def as_number(value) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _same_number(a, b) -> bool:
    x, y = as_number(a), as_number(b)
    return x is not None and y is not None and x == y


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


# -- the distance between the two roles' predictions --------------------------------------
def jensen_shannon(p: Counter, q: Counter) -> float | None:
    """The Jensen–Shannon distance (natural log; scipy's `jensenshannon`) of two class
    counts: 0 for the same shares, up to √ln2 ≈ 0.83 for disjoint ones."""
    total_p, total_q = sum(p.values()), sum(q.values())
    if not total_p or not total_q:
        return None
    divergence = 0.0
    for key in set(p) | set(q):
        a, b = p.get(key, 0) / total_p, q.get(key, 0) / total_q
        m = (a + b) / 2
        divergence += (a * math.log(a / m) if a else 0.0) + (b * math.log(b / m) if b else 0.0)
    return math.sqrt(max(0.0, divergence / 2))


def normed_wasserstein(reference: list[float], current: list[float]) -> float | None:
    """The Wasserstein-1 distance between two samples over the reference's standard
    deviation (ddof 0, as the drift check's `wasserstein_norm`)."""
    if not reference or not current:
        return None
    a, b = sorted(reference), sorted(current)
    points = sorted(set(a) | set(b))
    distance, i, j = 0.0, 0, 0
    for left, right in zip(points, points[1:], strict=False):
        while i < len(a) and a[i] <= left:
            i += 1
        while j < len(b) and b[j] <= left:
            j += 1
        distance += abs(i / len(a) - j / len(b)) * (right - left)
    mean = sum(a) / len(a)
    sd = math.sqrt(sum((x - mean) ** 2 for x in a) / len(a))
    return distance / sd if sd > 0 else (0.0 if distance == 0 else math.inf)


TASKS = ("classification", "regression")  # what a model predicts (core/schema.py `task`)


def shift(champion: RoleStats, candidate: RoleStats, task: str = "") -> dict:
    """{metric, value}: how far apart the two roles' predictions are. Class shares
    (Jensen–Shannon) for a classifier; for a regression (numbers), Wasserstein over the
    champion's σ (class shares of many values differ by sampling alone). `task` is what
    the model recorded at registration; without one, numbers with more than 50 distinct
    values are taken for a regression."""
    numeric = champion.numbers.values and candidate.numbers.values
    numeric = numeric and champion.numbers.seen == sum(champion.classes.values())
    if numeric and _regression(champion, candidate, task):
        value = normed_wasserstein(champion.numbers.values, candidate.numbers.values)
        metric = "wasserstein_norm"
    else:
        value = jensen_shannon(champion.classes, candidate.classes)
        metric = "jensenshannon"
    return {"metric": metric, "value": None if value is None else round(value, 4)}


def _regression(champion: RoleStats, candidate: RoleStats, task: str) -> bool:
    """Whether the two roles answer as a regression: the recorded task says so, or (none
    recorded) their predictions take more than 50 distinct values."""
    if task in TASKS:
        return task == "regression"
    return len(set(champion.classes) | set(candidate.classes)) > MAX_CLASSES_FOR_SHIFT


def quality_metric(champion: RoleStats, candidate: RoleStats, task: str = "") -> str:
    """The metric both roles are judged on: the mean absolute error for a regression
    whose labels and predictions are all numbers, else accuracy."""
    numbers = all(r.numeric_labels == r.labelled for r in (champion, candidate))
    return "mae" if numbers and _regression(champion, candidate, task) else "accuracy"


def quality(champion: RoleStats, candidate: RoleStats, task: str = "") -> dict:
    """The two roles' quality on labelled answers and the candidate's relative drop
    (positive: worse), with its standard error."""
    metric = quality_metric(champion, candidate, task)
    a, b = champion.quality(metric), candidate.quality(metric)
    if a is None or b is None:
        return {"metric": metric, "drop": None, "se": None}
    scale = abs(a["value"]) or 1.0
    worse = b["value"] - a["value"] if metric == "mae" else a["value"] - b["value"]
    se = math.sqrt(a["se"] ** 2 + b["se"] ** 2) / scale
    return {
        "metric": metric,
        "champion": round(a["value"], 4),
        "candidate": round(b["value"], 4),
        "drop": round(worse / scale, 4),
        "se": round(se, 4),
    }


def evidence(champion: RoleStats, candidate: RoleStats, task: str = "") -> dict:
    """Both roles' figures, their prediction shift and their quality. `task`: the
    candidate's recorded task (classification or regression; "" when it recorded none:
    then inferred from the predictions, see `shift`)."""
    metric = quality_metric(champion, candidate, task)
    return {
        "champion": champion.as_dict(metric),
        "candidate": candidate.as_dict(metric),
        "shift": shift(champion, candidate, task),
        "quality": quality(champion, candidate, task),
    }


# -- the same evidence from logged rows (a release on a cluster) ---------------------------
ROW_ROLES = {"champion": "champion", "canary": "candidate", "shadow": "candidate"}


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def evidence_from_rows(rows, task: str = "") -> dict:
    """The evidence of a release from served rows, as the cluster's traffic sink writes them
    (core/traffic/rows.py `release_rows`: one dict per scored row with `_role`,
    `_request_id`, `_row`, `_prediction`, `_label` when feedback rated it, and `_status` /
    `_latency_ms` when known): the rows of one request are one answer of its role, fed to
    the same RoleStats the local front fills, so `decide` judges a cluster release with the
    same thresholds and gives the same outputs. `canary` and `shadow` rows are the
    candidate's. A request without `_status` was answered (200); without `_latency_ms`, its
    latency is unknown and not judged."""
    answers: dict[tuple[str, str], dict] = {}
    for row in rows:
        role = ROW_ROLES.get(str(row.get("_role") or "champion"))
        if role is None:
            continue
        held = answers.setdefault(
            (role, str(row.get("_request_id"))),
            {"status": 200, "latency": None, "predictions": {}, "labels": {}},
        )
        if not _missing(row.get("_status")):
            held["status"] = int(row["_status"])
        if not _missing(row.get("_latency_ms")):
            held["latency"] = float(row["_latency_ms"])
        index = 0 if _missing(row.get("_row")) else int(row["_row"])
        if "_prediction" in row and not _missing(row["_prediction"]):
            held["predictions"][index] = row["_prediction"]
        if not _missing(row.get("_label")):
            held["labels"][index] = row["_label"]
    roles = {"champion": RoleStats(), "candidate": RoleStats()}
    for (role, _), held in answers.items():
        predictions = held["predictions"]
        seconds = None if held["latency"] is None else held["latency"] / 1000
        status = held["status"]
        roles[role].answered(status, seconds, [predictions[i] for i in sorted(predictions)])
        for index, label in sorted(held["labels"].items()):
            if status == 200 and index in predictions:
                roles[role].label(predictions[index], label)
    return evidence(roles["champion"], roles["candidate"], task)


# -- the decision --------------------------------------------------------------------------
def _rate(stats: dict, key: str) -> float:
    return stats[key] / stats["requests"] if stats["requests"] else 0.0


def _wilson_low(hits: int, n: int) -> float:
    """The lower end of the Wilson interval (±Z) of a rate: the rate is clearly above it."""
    if not n:
        return 0.0
    p = hits / n
    centre = p + Z * Z / (2 * n)
    spread = Z * math.sqrt(p * (1 - p) / n + Z * Z / (4 * n * n))
    return max(0.0, (centre - spread) / (1 + Z * Z / n))


Z_SHOWN = 1.645  # one-sided 95%: the non-inferiority margin is max_quality_drop


def _shown_within(q: dict, t: dict) -> bool:
    """Labelled answers show the candidate's quality drop within the bound, as a
    non-inferiority test does: the one-sided 95% upper bound of the drop (drop + 1.645
    standard errors) is at or below `max_quality_drop`; "not clearly worse" is not enough.
    What `require_labels` asks before a promotion."""
    if q.get("drop") is None or q.get("se") is None:
        return False
    return q["drop"] + Z_SHOWN * q["se"] <= t["max_quality_drop"]


def decide(evidence: dict, limits: dict, elapsed_s: float) -> tuple[str | None, list[str], str]:
    """(outcome, reasons, next) from a release's evidence: "abort", "promote" or None.

    Abort as soon as one figure is clearly outside its bound:
    - the candidate's 5xx (or 4xx) share over the champion's by more than the bound:
      judged on the share itself from `min_requests` candidate requests, and earlier (from
      20) when even the low end of its interval (3 standard errors) is over (a candidate failing half its
      requests is aborted within a few dozen, not after 200);
    - from `min_requests`: p95 latency over `max_p95_latency_ratio` × the champion's and at
      least 20 ms more; the median latency over the champion's by more than
      `max_p50_latency_increase_ms` (a difference, not a ratio: a busy machine slows both
      roles alike, which shrinks a ratio but not a difference); the prediction shift over
      `max_prediction_shift`;
    - from `min_labelled` labelled answers per role: quality worse by more than
      `max_quality_drop` (relative) beyond 3 standard errors of noise (canary roles
      answer different requests, so a small drop alone is not clear);
    - the budget: `budget_seconds` or `budget_requests` spent without a decision.
    Promote once `min_requests` candidate requests were answered and every judged figure
    is inside its bound; when labels have started to arrive, only once `min_labelled`
    per role did and quality is not clearly worse. With `require_labels` (a candidate that
    did not pass the offline gate), only once labels show its quality within the bound
    (`_shown_within`: absence of proof that it is worse is not enough): without that it
    is never promoted here, and the budget ends it as an abort (fail closed)."""
    t = {**DEFAULTS, **(limits or {})}
    champ, cand = evidence["champion"], evidence["candidate"]
    n = cand["requests"]
    enough = n >= t["min_requests"]
    reasons: list[str] = []
    for key, bound in (("5xx", "max_5xx_increase"), ("4xx", "max_4xx_increase")):
        base = _rate(champ, key)
        rate = _rate(cand, key)
        over = rate - base > t[bound] if enough else False
        clear = n >= EARLY_REQUESTS and _wilson_low(cand[key], n) - base > t[bound]
        if over or clear:
            reasons.append(
                f"candidate {key} share {rate:.1%} vs champion {base:.1%} "
                f"(over by more than {t[bound]:.1%}) after {n} requests"
            )
    p95, p95_base = cand["latency_ms"]["p95"], champ["latency_ms"]["p95"]
    if enough and p95 is not None and p95_base is not None:
        if p95 > t["max_p95_latency_ratio"] * p95_base and p95 - p95_base >= LATENCY_MARGIN_MS:
            reasons.append(
                f"candidate p95 latency {p95:.0f} ms vs champion {p95_base:.0f} ms "
                f"(over {t['max_p95_latency_ratio']:g}×)"
            )
    p50, p50_base = cand["latency_ms"]["p50"], champ["latency_ms"]["p50"]
    if enough and p50 is not None and p50_base is not None:
        if p50 - p50_base > t["max_p50_latency_increase_ms"]:
            reasons.append(
                f"candidate median latency {p50:.0f} ms vs champion {p50_base:.0f} ms "
                f"(+{p50 - p50_base:.0f} ms, bound +{t['max_p50_latency_increase_ms']:g} ms)"
            )
    moved = (evidence.get("shift") or {}).get("value")
    if enough and moved is not None and moved > t["max_prediction_shift"]:
        metric = evidence["shift"]["metric"]
        reasons.append(f"predictions shifted: {metric} {moved:.3f} > {t['max_prediction_shift']:g}")
    judged_quality = min(champ["labelled"], cand["labelled"]) >= t["min_labelled"]
    q = evidence.get("quality") or {}
    if judged_quality and q.get("drop") is not None:
        if q["drop"] - Z * (q["se"] or 0.0) > t["max_quality_drop"]:
            reasons.append(
                f"{q['metric']} {q['candidate']:.3f} vs champion {q['champion']:.3f}: "
                f"worse by {q['drop']:.1%} (bound {t['max_quality_drop']:.1%}) on "
                f"{cand['labelled']} labelled answers"
            )
    if reasons:
        return "abort", reasons, "aborted: the candidate gets no more traffic"
    if elapsed_s >= t["budget_seconds"]:
        return "abort", [f"no decision within the budget of {t['budget_seconds']:g} s"], ""
    if n >= t["budget_requests"]:
        return "abort", [f"no decision within {t['budget_requests']:g} candidate requests"], ""
    labels_due = min(champ["labelled"], cand["labelled"])
    if enough and 0 < labels_due < t["min_labelled"]:
        return (
            None,
            [],
            f"labels are arriving: {int(t['min_labelled'] - labels_due)} more labelled "
            "answers per role before quality is judged and the release decided",
        )
    if enough and t["require_labels"] and not (judged_quality and _shown_within(q, t)):
        left = max(0, int(t["min_labelled"] - labels_due))
        so_far = (
            f"{left} more feedback-labelled answers per version before quality is judged"
            if not judged_quality or q.get("drop") is None
            else f"{q['metric']} {q['candidate']:.3f} vs champion {q['champion']:.3f} on "
            f"{cand['labelled']} labelled answers is not yet shown within the bound "
            f"({t['max_quality_drop']:.1%} worse at most): more labels narrow it"
        )
        return (
            None,
            [],
            f"promoted only on labelled evidence (require_labels: the candidate did not pass "
            f"the offline gate, or the config asks it): {so_far}; undecided after the budget "
            f"({max(0.0, t['budget_seconds'] - elapsed_s):.0f} s left): aborted",
        )
    if enough:
        inside = [
            f"after {n} candidate requests every judged figure is inside its bound "
            "(5xx, 4xx, latency, prediction shift"
            + (", quality)" if judged_quality and q.get("drop") is not None else ")")
        ]
        return "promote", inside, "decided: promote once the champion records move"
    left = int(t["min_requests"] - n)
    remaining = max(0.0, t["budget_seconds"] - elapsed_s)
    return (
        None,
        [],
        f"{left} more candidate requests before it is judged (abort earlier on a clear "
        f"5xx/4xx excess or a quality drop); budget: {remaining:.0f} s left",
    )
