"""Typed parameters shared by steps and pipelines (validated before any run starts)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.protocol import DEFAULT_PROTOCOL, Protocol

Task = Literal["classification", "regression"]

# The registered MLflow model, the ZenML Model and the served endpoint share this name.
DEFAULT_MODEL_NAME = "zenkube-model"
MODEL_NAME_MAX = 100
MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
ModelName = Annotated[str, Field(pattern=MODEL_NAME_PATTERN, max_length=MODEL_NAME_MAX)]


def check_model_name(name: str) -> str:
    """`name` when it can name a registered model, its endpoint and folders; else a
    ValueError that says what a name may hold."""
    import re

    if len(name) > MODEL_NAME_MAX or not re.match(MODEL_NAME_PATTERN, name):
        shown = name if len(name) <= 40 else f"{name[:40]}… ({len(name)} characters)"
        raise ValueError(
            f"the model name '{shown}' cannot be used: a model name has at most "
            f"{MODEL_NAME_MAX} characters, letters, digits, '_', '.' and '-', and starts "
            "with a letter or digit"
        )
    return name


BUNDLED_DATASETS: dict[str, Task] = {
    "breast_cancer": "classification",
    "wine": "classification",
    "iris": "classification",
    "diabetes": "regression",
}


class _Strict(BaseModel):
    # A misspelt key in a config file must fail loudly, not be ignored.
    model_config = ConfigDict(extra="forbid")


class DataSpec(_Strict):
    """Where the data comes from and what to predict.

    Attributes:
        source: a bundled scikit-learn dataset name (breast_cancer, wine, iris,
            diabetes) or a CSV/Parquet file path or artifact-store URI.
        target: the label column; bundled datasets use `target`.
        task: classification, regression, or auto (inferred from the target).
        features: optional list of feature columns to use; all others except the
            target are dropped. Unknown names are a validation error.
        min_rows: fewer rows than this is a validation error.
        drop_id_columns: leave out columns that identify rows (a pandas index written
            into a CSV such as `Unnamed: 0`, or whole numbers or text different in every
            row), with a warning naming them; columns named in `features` are kept.
    """

    source: str = "breast_cancer"
    target: str | None = None
    task: Literal["auto", "classification", "regression"] = "auto"
    features: list[str] | None = None
    min_rows: int = Field(30, ge=2)
    drop_id_columns: bool = True


class SplitSpec(_Strict):
    """Seeded train/validation/test split (stratified for classification).

    Attributes:
        valid_size: share of rows for validation (used by the search only).
        test_size: share of rows for the final, untouched test evaluation.
        seed: random seed.
        batch_test_size: when retraining on the champion's training rows plus a new
            labelled batch, the share of the batch held out as the test rows: neither
            the champion nor the candidate trains on them, so the gate compares the two
            fairly (the latest rows when the data has a date column).
    """

    valid_size: float = Field(0.2, gt=0, lt=0.5)
    test_size: float = Field(0.2, gt=0, lt=0.5)
    seed: int = 42
    batch_test_size: float = Field(0.5, gt=0, lt=1)


def _per_task(value, task: str):
    """A setting given once for both tasks, or as {classification: …, regression: …}."""
    if isinstance(value, dict) and set(value) <= {"classification", "regression"} and value:
        return value.get(task)
    return value


class TrainerSpec(_Strict):
    """The estimator to fit, by class path, and an optional small search.

    Each of `class_path` and `params` is either one value for any task or a mapping
    `{classification: …, regression: …}`; left out, the task decides
    (HistGradientBoostingClassifier or HistGradientBoostingRegressor).

    Attributes:
        class_path: dotted path of a scikit-learn compatible estimator class.
        params: keyword arguments for the estimator.
        search: parameter name -> candidate values; every combination is fitted on
            train and scored on validation (never test); the best one is kept.
    """

    class_path: str | dict[Task, str] | None = None
    params: dict[str, Any] | None = None
    search: dict[str, list[Any]] = Field(default_factory=dict)

    @field_validator("class_path")
    @classmethod
    def _dotted(cls, value):
        paths = value.values() if isinstance(value, dict) else [value]
        for path in paths:
            if path is not None and "." not in path:
                raise ValueError(
                    "must be a dotted path such as sklearn.ensemble.RandomForestClassifier"
                )
        return value

    def for_task(self, task: str) -> tuple[str, dict[str, Any]]:
        """(class path, params) for this task, with the task's defaults filled in."""
        from core.metrics import DEFAULT_ESTIMATOR, DEFAULT_PARAMS

        class_path = _per_task(self.class_path, task)
        params = _per_task(self.params, task)
        if class_path is None:
            return DEFAULT_ESTIMATOR[task], dict(DEFAULT_PARAMS if params is None else params)
        return class_path, dict(params or {})


class GateSpec(_Strict):
    """When a new model may replace the champion.

    `metric` and `threshold` are one value or `{classification: …, regression: …}`.

    Attributes:
        metric: the metric compared (accuracy, f1, roc_auc | rmse, mae, r2); default
            f1 for classification, rmse for regression.
        threshold: the candidate must reach this (at most this for error metrics).
        min_improvement: how much better than the champion the candidate must be.
        allow_schema_change: replace a champion whose input schema differs (other
            columns, kinds, target or task). Off by default: such a champion cannot be
            compared, so nothing is promoted.
        beat_baseline: the candidate must score better than a model that ignores its
            inputs (the mean of the test labels for regression, the most frequent class
            for classification) on the same test rows. On by default, so a model that
            learned nothing (R² ≤ 0) never becomes the first champion.
        min_rows: against a champion, the fewest evaluation rows a decision is taken on;
            with fewer the outcome is "inconclusive" and the champion stays.
        confidence: the paired bootstrap interval of (candidate − champion) on the same
            rows: promote when all of it is above `min_improvement`, keep the champion
            when all of it is at or below, else "inconclusive" (the champion stays).
        resamples: bootstrap resamples of that interval.
    """

    metric: str | dict[Task, str] | None = None
    threshold: float | dict[Task, float] | None = None
    min_improvement: float = 0.0
    allow_schema_change: bool = False
    beat_baseline: bool = True
    min_rows: int = Field(100, ge=1)
    confidence: float = Field(0.95, gt=0.5, lt=1)
    resamples: int = Field(1000, ge=100)

    def metric_for(self, task: str) -> str:
        from core.metrics import primary_metric

        return _per_task(self.metric, task) or primary_metric(task)

    def threshold_for(self, task: str) -> float | None:
        return _per_task(self.threshold, task)


RELEASE_SPEC_MODES = ("swap", "canary", "shadow")


class ReleaseThresholds(_Strict):
    """When the live-evidence gate decides a release (core/release/gate.py).

    Attributes:
        min_requests: candidate answers before rates, latency and shift are judged.
        max_5xx_increase: the candidate's share of 5xx answers minus the champion's.
        max_4xx_increase: the same for 4xx answers.
        max_p95_latency_ratio: the candidate's p95 latency over the champion's (the two
            must also be at least 20 ms apart before it counts).
        max_p50_latency_increase_ms: the candidate's median latency minus the champion's,
            in ms (a difference holds on a busy machine, where a ratio shrinks).
        max_prediction_shift: distance between the two versions' prediction distributions.
        min_labelled: labelled answers per version before quality is judged.
        max_quality_drop: relative drop of the quality metric (accuracy, MAE/RMSE).
        budget_seconds: a release still undecided after this long is aborted.
        budget_requests: or after this many candidate requests.
        require_labels: promote only on labelled evidence (`min_labelled` feedback-labelled
            answers per version, quality not clearly worse); without it the budget aborts
            the release. Always so for a version that did not pass the offline gate
            (released with `release start --version N --force`).
    """

    min_requests: int = Field(200, ge=1)
    max_5xx_increase: float = Field(0.01, ge=0, le=1)
    max_4xx_increase: float = Field(0.05, ge=0, le=1)
    max_p95_latency_ratio: float = Field(1.5, ge=1)
    max_p50_latency_increase_ms: float = Field(30, ge=0)
    max_prediction_shift: float = Field(0.2, ge=0)
    min_labelled: int = Field(50, ge=1)
    max_quality_drop: float = Field(0.02, ge=0)
    budget_seconds: float = Field(1800, gt=0)
    budget_requests: int = Field(20_000, ge=1)
    require_labels: bool = False

    @model_validator(mode="after")
    def _budget_holds_the_evidence(self):
        if self.budget_requests < self.min_requests:
            raise ValueError(
                f"budget_requests ({self.budget_requests}) is below min_requests "
                f"({self.min_requests}): every release would be aborted before the gate "
                "could judge it; raise budget_requests or lower min_requests"
            )
        return self


class ReleaseSpec(_Strict):
    """How a new version reaches traffic (the `release:` block of configs/deployment.yaml).

    Attributes:
        mode: swap (the gate-passed version replaces the champion at once, after its
            health + smoke checks), canary (it answers `canary_percent` % of live
            requests beside the champion until the live-evidence gate promotes or
            aborts it) or shadow (it gets a copy of every request; its answers are
            recorded and compared, never returned).
        canary_percent: the candidate's share of requests in a canary, above 0 and below 100.
        thresholds: when the live evidence promotes or aborts (ReleaseThresholds).
    """

    mode: Literal["swap", "canary", "shadow"] = "swap"
    canary_percent: float = Field(10.0, gt=0, lt=100)
    thresholds: ReleaseThresholds = Field(default_factory=ReleaseThresholds)

    @field_validator("mode", mode="before")
    @classmethod
    def _known_mode(cls, value):
        if value not in RELEASE_SPEC_MODES:
            raise ValueError(
                f"'{value}' is not a release mode: use swap (replace the champion at once), "
                "canary (a share of live requests) or shadow (a copy of every request)"
            )
        return value


class TrainingParams(_Strict):
    """All parameters of the training pipeline (the `parameters:` block of its config)."""

    model_name: ModelName = DEFAULT_MODEL_NAME
    data: DataSpec = Field(default_factory=DataSpec)
    split: SplitSpec = Field(default_factory=SplitSpec)
    trainer: TrainerSpec = Field(default_factory=TrainerSpec)
    gate: GateSpec = Field(default_factory=GateSpec)
    # How a gate-passed version reaches traffic; left out: configs/deployment.yaml's
    # `release:` (swap: the gate moves the champion; canary/shadow: it only tags the version).
    release: ReleaseSpec | None = None


class ServingSpec(_Strict):
    """How the champion is served: the deploy steps' one parameter for it.

    Its fields stand at the top of configs/deployment.yaml's `parameters:` (the deployment
    and continuous-training parameters are ServingSpecs with more fields); a pipeline gets
    them as one `serving` argument (app/config.py `pipeline_kwargs`).

    Attributes:
        protocol: asked for (`deploy --protocol`); None keeps the protocol being served
            (core/protocol/).
        default_protocol: the protocol of a model that is not served yet.
        timeout: seconds a new server has to pass its health + smoke checks.
        release: swap (default): deploy replaces the served version; canary/shadow: deploy
            starts a release of the newest gate-passed version beside the champion instead.
    """

    protocol: Protocol | None = None
    default_protocol: Protocol = DEFAULT_PROTOCOL
    timeout: int = Field(300, gt=0)
    release: ReleaseSpec = Field(default_factory=ReleaseSpec)

    def serving(self) -> ServingSpec:
        """Only the serving fields (of parameters that hold more)."""
        return ServingSpec.model_validate(self.model_dump(include=set(ServingSpec.model_fields)))


class DeploymentParams(ServingSpec):
    """Parameters of the deployment pipeline: the model, and how it is served."""

    model_name: ModelName = DEFAULT_MODEL_NAME


class MinEffect(_Strict):
    """How big a significant change must be before a column counts as drifted.

    Attributes:
        numeric: numbers and dates: the Wasserstein distance between the two samples over
            the reference's standard deviation (a shift of the mean by 0.1 standard
            deviations is 0.1; Evidently's `wasserstein` test uses the same measure).
        categorical: categories: the Jensen–Shannon distance of the category shares
            (natural log, 0 to 0.83; one of two equally common categories growing to
            64% is 0.1; Evidently's `jensenshannon`).
    """

    numeric: float = Field(0.1, ge=0)
    categorical: float = Field(0.1, ge=0)


class ColumnThresholds(_Strict):
    """One column's own drift thresholds (unset: the dataset-wide value).

    Attributes:
        p_value: its test must have a p-value below this.
        min_effect: and its effect size must be at least this.
    """

    p_value: float | None = Field(None, gt=0, lt=1)
    min_effect: float | None = Field(None, ge=0)


# A batch's metric is noisier for errors in target units than for F1: regression alerts
# when RMSE/MAE rose (or R² fell) by more than 10% of the test score, classification
# when F1/accuracy/ROC-AUC fell by more than 5% of it.
DEFAULT_QUALITY_DROP: dict[str, float] = {"classification": 0.05, "regression": 0.1}


class MonitoringThresholds(_Strict):
    """When monitoring raises an alert (and retrains, if the batch has labels).

    Attributes:
        p_value: a column drifted when its test's p-value is below this ...
        min_effect: ... and its effect size is at least this (per kind of column); with
            big batches a p-value alone flags shifts too small to matter.
        columns: per-column `p_value` / `min_effect` overrides, by column name.
        drift_share: alert when at least this share of columns drifted.
        critical_columns: alert when any of these drifted, whatever the share.
        max_quality_drop: alert when the task's metric got worse than the champion's
            recorded test score by more than this: a share of that score (0.1: an RMSE
            10% above the test RMSE, an F1 10% below the test F1) by default, or in
            the metric's own units with `quality_drop_units: metric`. One value, or
            per task `{classification: …, regression: …}`.
        quality_drop_units: relative (a share of the test score) or metric (its units).
        html_max_rows: Evidently's HTML is built on at most this many rows per side.
    """

    p_value: float = Field(0.05, gt=0, lt=1)
    min_effect: MinEffect = Field(default_factory=MinEffect)
    columns: dict[str, ColumnThresholds] = Field(default_factory=dict)
    drift_share: float = Field(0.3, gt=0, le=1)
    critical_columns: list[str] = Field(default_factory=list)
    max_quality_drop: float | dict[Task, float] = Field(
        default_factory=lambda: dict(DEFAULT_QUALITY_DROP)
    )
    quality_drop_units: Literal["relative", "metric"] = "relative"
    html_max_rows: int = Field(20_000, gt=100)

    def for_column(self, name: str, kind: str) -> tuple[float, float]:
        """(p-value threshold, minimum effect) of one column; kind: numeric, datetime or
        categorical (dates are measured like numbers)."""
        own = self.columns.get(name) or ColumnThresholds()
        effect = self.min_effect.categorical if kind == "categorical" else self.min_effect.numeric
        return (
            self.p_value if own.p_value is None else own.p_value,
            effect if own.min_effect is None else own.min_effect,
        )

    @field_validator("max_quality_drop")
    @classmethod
    def _not_negative(cls, value):
        values = value.values() if isinstance(value, dict) else [value]
        if any(v < 0 for v in values):
            raise ValueError("must be zero or more (how much worse the metric may get)")
        return value

    def max_quality_drop_for(self, task: str) -> float:
        value = _per_task(self.max_quality_drop, task)
        return DEFAULT_QUALITY_DROP[task] if value is None else value


class RetrainSpec(_Strict):
    """Whether and on which rows the loop retrains.

    Attributes:
        enabled: on an alert with labels, train a candidate (False: alert only).
        window: which of the labelled rows the loop keeps a retraining learns from: `all`
            (the default: every row kept so far, so never fewer than the champion's
            training rows), a number N (the newest N training rows) or `Dd` (the rows
            whose batch arrived in the last D days, e.g. `30d`).
        max_evaluation_rows: the reserved evaluation rows kept; above it, the oldest are
            retired into the rows to train on (never dropped). At least `gate.min_rows`.
    """

    enabled: bool = True
    window: int | str = "all"
    max_evaluation_rows: int = Field(10_000, gt=0)

    @field_validator("window", mode="before")
    @classmethod
    def _window(cls, value):
        import re

        if value == "all":
            return value
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
        text = str(value).strip().lower().replace(" ", "") if isinstance(value, str) else ""
        if text.isdigit() and int(text) > 0:
            return int(text)
        days = re.match(r"^([1-9][0-9]*)(d|day|days)$", text)
        if days:
            return f"{int(days.group(1))}d"
        raise ValueError(
            f"{value!r} is not a training window. Use `all` (every labelled row kept so far, "
            "the default), a number of rows N (the newest N rows to train on, e.g. 5000) or "
            "a number of days `Dd` (the rows whose batch arrived in the last D days, e.g. "
            "`30d`)"
        )

    @model_validator(mode="before")
    @classmethod
    def _bool_is_enabled(cls, value):
        return {"enabled": value} if isinstance(value, bool) else value


class MonitoringParams(_Strict):
    """Parameters of the monitoring pipeline."""

    model_name: ModelName = DEFAULT_MODEL_NAME
    batch: str = ""
    thresholds: MonitoringThresholds = Field(default_factory=MonitoringThresholds)
    retrain: RetrainSpec = Field(default_factory=RetrainSpec)


class ContinuousTrainingParams(ServingSpec):
    """Parameters of the continuous-training pipeline: monitoring's, training's and
    deployment's (how it serves: ServingSpec's fields).

    They are not written again: zenkube composes them from configs/monitoring.yaml,
    configs/training.yaml and configs/deployment.yaml.
    """

    model_name: ModelName = DEFAULT_MODEL_NAME
    batch: str = ""
    thresholds: MonitoringThresholds = Field(default_factory=MonitoringThresholds)
    retrain: RetrainSpec = Field(default_factory=RetrainSpec)
    split: SplitSpec = Field(default_factory=SplitSpec)
    trainer: TrainerSpec = Field(default_factory=TrainerSpec)
    gate: GateSpec = Field(default_factory=GateSpec)
    deploy: bool = True  # False: retrain and gate, but leave serving alone

    @model_validator(mode="after")
    def _evaluation_rows_can_decide(self):
        if self.retrain.max_evaluation_rows < self.gate.min_rows:
            raise ValueError(
                f"retrain.max_evaluation_rows ({self.retrain.max_evaluation_rows}) is below "
                f"gate.min_rows ({self.gate.min_rows}): every gate would be inconclusive. "
                "Raise retrain.max_evaluation_rows (configs/monitoring.yaml) or lower "
                "gate.min_rows (configs/training.yaml)"
            )
        return self


class ReleaseCheckParams(_Strict):
    """Parameters of the release-check pipeline (the cluster's release watcher, scheduled
    by `python run.py release schedule`): the model whose running release each run judges."""

    model_name: ModelName = DEFAULT_MODEL_NAME


class BatchInferenceParams(_Strict):
    """Parameters of the batch-inference pipeline (`python run.py predict --output`).

    Attributes:
        model_name: the registered model that scores the file.
        version: the MLflow version that scores it; "" for the champion.
        input_path: the CSV/Parquet file (local path or artifact-store URI) to score.
        output_path: where the predictions go: a Parquet file, written in row groups and
            put in place only when every row is scored.
        id_column: the input column that identifies rows (labels join on it later); ""
            for the row's position in the file, from 0.
        chunk_rows: rows read, checked, scored and written at a time (bounds memory).
        drift_rows: the drift check uses at most this many rows, a uniform sample of the
            file (all rows when there are fewer).
        thresholds: drift thresholds; left out, monitoring's (configs/monitoring.yaml).
    """

    model_name: ModelName = DEFAULT_MODEL_NAME
    version: str = ""
    input_path: str = ""
    output_path: str = ""
    id_column: str = ""
    chunk_rows: int = Field(100_000, ge=1)
    drift_rows: int = Field(100_000, ge=100)
    thresholds: MonitoringThresholds | None = None
