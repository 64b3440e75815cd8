"""Evaluation report of a model on the test split: JSON plus an HTML visualization."""

from __future__ import annotations

import html
from typing import Any, ClassVar

from pydantic import BaseModel, Field
from zenml.enums import VisualizationType

from materializers.json_model import JsonModelMaterializer


class EvaluationReport(BaseModel):
    """Metrics of one model on one labelled dataset.

    Attributes:
        task: classification or regression.
        metrics: metric name -> value.
        rows: how many labelled rows were scored.
        dataset_fingerprint: schema fingerprint of the scored data.
        search: validation scores of the hyperparameter search, if any: `params`, `score`
            and `chosen` (the candidate the model was fitted with).
        search_metric: the validation metric the search compared ("" without a search).
        estimator: public class path of the estimator (`sklearn.ensemble.RandomForestClassifier`).
        baseline: the same metrics for a model that ignores its inputs (mean of the
            labels, or the most frequent class) on the same rows.
        class_names: classifiers only: label value -> its name, where the data names its
            classes (the bundled datasets do); empty when the values are the names.
        confusion: classifiers only: `labels` and `matrix` (rows: true, columns: predicted).
        roc: binary classifiers only: `fpr`, `tpr`, `thresholds` of the ROC curve.
        roc_curves: classifiers only: one ROC curve per positive class (`label`, `fpr`,
            `tpr`, `auc`): the positive class for a binary model, one-vs-rest per class for
            a multiclass one.
    """

    task: str
    metrics: dict[str, float]
    rows: int
    dataset_fingerprint: str = ""
    search: list[dict[str, Any]] = Field(default_factory=list)
    search_metric: str = ""
    estimator: str = ""
    baseline: dict[str, float] = Field(default_factory=dict)
    class_names: dict[str, str] = Field(default_factory=dict)
    confusion: dict[str, list] | None = None
    roc: dict[str, list[float]] | None = None
    roc_curves: list[dict[str, Any]] = Field(default_factory=list)

    def class_label(self, value: Any) -> str:
        """`name (value)` where the class has a name, else the value itself."""
        name = self.class_names.get(str(value))
        return f"{name} ({value})" if name and name != str(value) else str(value)

    def to_html(self) -> str:
        """Script-free HTML (tables and inline SVG): renders in ZenML's sandboxed iframe,
        the KFP UI and MLflow's artifact view alike."""
        # Side by side (wrapping on a narrow page): the metrics and confusion matrix beside
        # the ROC curve, so all three fit the dashboard's visualization frame (384 px high)
        # without scrolling; the search table, longer, follows.
        parts = [
            "<!doctype html><html><head><meta charset='utf-8'><title>Evaluation report</title>"
            "<style>h3{margin:0 0 6px}h4{margin:8px 0 4px}</style>"
            "</head><body style='font-family:sans-serif;max-width:70em;margin:8px'>",
            f"<h3>{html.escape(self.estimator or 'model')} on {self.rows} test rows "
            f"({self.task})</h3>",
            "<div style='display:flex;flex-wrap:wrap;gap:8px 28px;align-items:flex-start'>",
            f"<div>{self._metrics_html()}{self.confusion_html()}</div>",
            f"<div>{self.roc_html()}</div>" if self.roc_curves else "",
            "</div>",
            self._search_html(),
            "</body></html>",
        ]
        return "".join(parts)

    def _metrics_html(self) -> str:
        def baseline(name: str) -> str:
            value = self.baseline.get(name)
            return "" if value is None else f"{value:.4f}"

        rows = "".join(
            f"<tr><td>{html.escape(k)}</td><td>{v:.4f}</td><td>{baseline(k)}</td></tr>"
            for k, v in self.metrics.items()
        )
        return (
            f"<table {_TABLE}><tr><th>metric (test rows)</th><th>value</th>"
            f"<th>baseline (ignores the inputs)</th></tr>{rows}</table>"
        )

    def _search_html(self) -> str:
        if not self.search:
            return ""
        names = list(dict.fromkeys(k for s in self.search for k in s["params"]))
        metric = html.escape(self.search_metric or "score")
        head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
        rows = []
        for s in self.search:
            cells = "".join(f"<td>{html.escape(str(s['params'].get(n)))}</td>" for n in names)
            mark = "<td><b>chosen</b></td>" if s.get("chosen") else "<td></td>"
            shade = " style='background:#ecfdf3'" if s.get("chosen") else ""
            rows.append(f"<tr{shade}>{cells}<td>{s['score']:.4f}</td>{mark}</tr>")
        scores = [s["score"] for s in self.search]
        tie = (
            " Candidates with equal scores: the first one in the grid is kept."
            if len(set(scores)) < len(scores)
            else ""
        )
        return (
            f"<h4>Hyper-parameter search: {metric} on the validation split</h4>"
            f"<table {_TABLE}><tr>{head}<th>validation {metric}</th><th></th></tr>"
            f"{''.join(rows)}</table><p style='color:#555'>Each candidate was fitted on the train split; "
            f"the best {metric} on validation was chosen, and it is the model scored above on "
            f"the test rows.{tie}</p>"
        )

    def confusion_html(self) -> str:
        """The confusion matrix as a table with a colour scale (no script)."""
        if not self.confusion:
            return ""
        labels = [html.escape(self.class_label(v)) for v in self.confusion["labels"]]
        matrix = self.confusion["matrix"]
        top = max((max(row, default=0) for row in matrix), default=0) or 1
        head = "".join(f"<th>{label}</th>" for label in labels)

        def cell(value: int) -> str:
            alpha = 0.1 + 0.8 * value / top
            return (
                f"<td style='background:rgba(21,112,239,{alpha:.2f});text-align:right;"
                f"color:{'#fff' if alpha > 0.5 else '#000'}'>{value}</td>"
            )

        body = "".join(
            f"<tr><th>{label}</th>{''.join(cell(v) for v in row)}</tr>"
            for label, row in zip(labels, matrix, strict=True)
        )
        return (
            "<h4>Confusion matrix</h4>"
            f"<table {_TABLE}><tr><th style='font-weight:normal;font-size:12px'>"
            f"true ↓ predicted →</th>{head}</tr>{body}</table>"
        )

    def roc_html(self) -> str:
        """ROC curves as inline SVG: the positive class, or one-vs-rest per class."""
        if not self.roc_curves:
            return ""
        binary = len(self.roc_curves) == 1
        title = (
            f"ROC curve (positive class: {html.escape(self.class_label(self.roc_curves[0]['label']))})"
            if binary
            else "ROC curves, one class against the rest"
        )
        return f"<h4>{title}</h4>{roc_svg(self.roc_curves, self.class_label)}"

    def confusion_json(self) -> dict[str, Any] | None:
        """The confusion matrix with class names, for files outside the report."""
        if not self.confusion:
            return None
        return {
            "labels": [self.class_label(v) for v in self.confusion["labels"]],
            "matrix": self.confusion["matrix"],
            "rows": "true class",
            "columns": "predicted class",
        }


_TABLE = "border=1 cellpadding=3 style='border-collapse:collapse'"
_COLORS = ("#1570ef", "#f79009", "#12b76a", "#d92d20", "#7a5af8", "#0e9384", "#667085")


def roc_svg(curves: list[dict[str, Any]], name=str, size: int = 230) -> str:
    """ROC curves on a unit square with the chance diagonal and a legend (inline SVG)."""
    pad = 30
    inner = size - 2 * pad

    def point(x: float, y: float) -> str:
        return f"{pad + x * inner:.1f},{pad + (1 - y) * inner:.1f}"

    lines, legend, longest = [], [], 0
    for i, curve in enumerate(curves):
        color = _COLORS[i % len(_COLORS)]
        fpr, tpr = _thin(curve["fpr"], curve["tpr"])
        points = " ".join(point(x, y) for x, y in zip(fpr, tpr, strict=True))
        lines.append(f"<polyline points='{points}' fill='none' stroke='{color}' stroke-width='2'/>")
        auc = curve.get("auc")
        text = html.escape(name(curve["label"])) + (f" (AUC {auc:.3f})" if auc is not None else "")
        legend.append(  # under the chart: the report stays narrow enough to sit beside
            f"<text x='{pad}' y='{size + 14 + 16 * i}' font-size='12' fill='{color}'>{text}</text>"
        )
        longest = max(longest, len(text))
    frame = (
        f"<rect x='{pad}' y='{pad}' width='{inner}' height='{inner}' fill='none' stroke='#98a2b3'/>"
        f"<line x1='{pad}' y1='{pad + inner}' x2='{pad + inner}' y2='{pad}' stroke='#d0d5dd' "
        "stroke-dasharray='4'/>"
        f"<text x='{pad + inner / 2}' y='{size - 6}' font-size='11' text-anchor='middle'>"
        "false positive rate</text>"
        f"<text x='10' y='{pad + inner / 2}' font-size='11' text-anchor='middle' "
        f"transform='rotate(-90 10 {pad + inner / 2})'>true positive rate</text>"
        f"<text x='{pad}' y='{pad + inner + 12}' font-size='10' text-anchor='middle'>0</text>"
        f"<text x='{pad + inner}' y='{pad + inner + 12}' font-size='10' text-anchor='middle'>1"
        "</text>"
        f"<text x='{pad - 4}' y='{pad + 4}' font-size='10' text-anchor='end'>1</text>"
    )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{max(size, pad + 7 * longest)}' "
        f"height='{size + 16 * len(curves) + 4}' "
        f"role='img' aria-label='ROC curves'>{frame}{''.join(lines)}{''.join(legend)}</svg>"
    )


def _thin(xs: list[float], ys: list[float], most: int = 400) -> tuple[list, list]:
    """At most `most` points of a curve (its ends kept), so a big test set stays a small SVG."""
    if len(xs) <= most:
        return xs, ys
    step = len(xs) / (most - 1)
    keep = sorted({int(i * step) for i in range(most - 1)} | {len(xs) - 1})
    return [xs[i] for i in keep], [ys[i] for i in keep]


class EvaluationReportMaterializer(JsonModelMaterializer):
    """Stores an `EvaluationReport` as `report.json`; metrics become artifact metadata."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (EvaluationReport,)
    FILE: ClassVar[str] = "report.json"
    # What a Kubeflow task with this output shows in the KFP UI (integrations/kubeflow/ui_outputs)
    KFP_UI: ClassVar[tuple[str, ...]] = ("metrics", "classification", "report")

    def extract_metadata(self, data: EvaluationReport) -> dict[str, Any]:
        return {**data.metrics, "rows": data.rows}

    def save_visualizations(self, data: EvaluationReport) -> dict[str, VisualizationType]:
        self.write("report.html", data.to_html())
        return {self.path("report.html"): VisualizationType.HTML}
