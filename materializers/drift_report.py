"""Drift report: per-column tests, the drifted share and Evidently's HTML report."""

from __future__ import annotations

import html
from typing import Any, ClassVar

from pydantic import BaseModel, Field
from zenml.enums import VisualizationType

from core.drift_history import p_text
from materializers.json_model import JsonModelMaterializer


class ColumnDrift(BaseModel):
    """One column's drift test.

    Attributes:
        column: column name.
        kind: numeric or categorical.
        test: `ks` (two-sample Kolmogorov-Smirnov) or `chi2` (chi-square on frequencies).
        statistic: the test statistic.
        p_value: the test's p-value.
        effect: the effect size: `wasserstein_norm` (numbers, dates: the Wasserstein
            distance over the reference's standard deviation) or `jensenshannon` (the
            Jensen–Shannon distance of the category shares); None in reports made before
            effect sizes were recorded.
        effect_name: which of the two.
        p_threshold / min_effect: this column's thresholds.
        significant: p_value below p_threshold (the p-value-only rule's verdict).
        drifted: significant AND effect at least min_effect.
        histogram: drifted columns only: `labels` (bin starts or categories) and the
            `reference` and `current` shares per label, for the report's charts.
    """

    column: str
    kind: str
    test: str
    statistic: float
    p_value: float
    effect: float | None = None
    effect_name: str = ""
    p_threshold: float | None = None
    min_effect: float | None = None
    significant: bool | None = None
    drifted: bool
    histogram: dict[str, list] | None = None


class DriftReport(BaseModel):
    """Drift of a current batch against the champion's training data.

    Attributes:
        columns: one entry per feature column.
        drift_share: share of columns that drifted.
        threshold: p-value below which a column's test is significant.
        min_effect: the minimum effect size per kind (`numeric`, `categorical`); columns
            may have their own (see each column's `min_effect`).
        reference_rows / current_rows: sizes compared.
        share_threshold: the dataset drifts when at least this share of columns drifted.
        critical_columns: the dataset drifts when any of these drifted.
        html: Evidently's interactive HTML report, configured with the same tests and
            thresholds (built on a bounded sample when data is large).
        html_note: what the HTML was built on.
    """

    columns: list[ColumnDrift]
    drift_share: float
    threshold: float
    min_effect: dict[str, float] = Field(default_factory=dict)
    reference_rows: int
    current_rows: int
    share_threshold: float = 0.3
    critical_columns: list[str] = Field(default_factory=list)
    html: str = Field("", repr=False)
    html_note: str = ""

    @property
    def drifted_columns(self) -> list[str]:
        return [c.column for c in self.columns if c.drifted]

    def summary(self) -> dict[str, Any]:
        return self.model_dump(exclude={"html"})

    def verdict(self) -> tuple[bool, str]:
        """Whether the dataset drifted by zenkube's thresholds, and why, in one sentence."""
        drifted = self.drifted_columns
        counted = f"{len(drifted)} of {len(self.columns)} columns drifted ({self.drift_share:.0%}"
        critical = [c for c in self.critical_columns if c in drifted]
        if self.drift_share >= self.share_threshold and self.columns:
            return True, f"{counted} ≥ {self.share_threshold:.0%} drift share)"
        if critical:
            return True, f"critical column(s) drifted: {', '.join(critical)} ({counted}))"
        return False, f"{counted} < {self.share_threshold:.0%} drift share)"

    def to_html(self, evidently_path: str = "") -> str:
        """A report with no script: renders in ZenML's sandboxed iframe and in the KFP UI.
        `evidently_path`: where Evidently's report is stored, named in the footer."""
        drifted, why = self.verdict()
        headline = "Dataset drift detected" if drifted else "No dataset drift"
        color = "#b42318" if drifted else "#067647"
        ordered = sorted(self.columns, key=lambda c: (not c.drifted, c.p_value, c.column))
        shaded = " style='background:#fef3f2'"
        rows = "".join(
            f"<tr{shaded if c.drifted else ''}>"
            f"<td>{html.escape(c.column)}</td><td>{c.kind}</td><td>{c.test}</td>"
            f"<td>{p_text(c.p_value)}</td><td>{_effect(c)}</td><td>{_column_verdict(c)}</td></tr>"
            for c in ordered
        )
        charts = "".join(_histogram_svg(c) for c in ordered if c.drifted and c.histogram)
        small = [c.column for c in self.columns if c.significant and not c.drifted]
        dismissed = (
            f"<p>{len(small)} column(s) changed significantly but by less than their minimum "
            f"effect, so they do not count as drifted: {html.escape(', '.join(small[:12]))}"
            f"{' …' if len(small) > 12 else ''}.</p>"
            if small
            else ""
        )
        return (
            "<!doctype html><html><head><meta charset='utf-8'><title>Drift report</title></head>"
            "<body style='font-family:sans-serif;max-width:60em'>"
            f"<h2 style='color:{color}'>{headline}</h2>"
            f"<p>{html.escape(why)}. {html.escape(self.rule())} {self.reference_rows} "
            f"reference rows (the champion's training data) against {self.current_rows} current "
            "rows, all rows tested. This is the drift part of the monitoring decision; with "
            "labels, the decision also checks the model's quality.</p>"
            f"{dismissed}"
            f"{f'<h3>Drifted columns</h3>{charts}' if charts else ''}"
            "<h3>Every column (drifted first)</h3><table border=1 cellpadding=3 "
            "style='border-collapse:collapse'><tr><th>column</th><th>kind</th><th>test</th>"
            f"<th>p-value</th><th>effect size</th><th>verdict</th></tr>{rows}</table>"
            f"<p style='color:#555'>{html.escape(self.html_note)} {evidently_footer(evidently_path)}"
            "</p></body></html>"
        )

    def rule(self) -> str:
        """The per-column rule in one sentence, with the thresholds used."""
        if not self.min_effect:  # a report made before effect sizes
            return f"A column drifts when its test's p-value is below {self.threshold}."
        numeric, categorical = self.min_effect.get("numeric"), self.min_effect.get("categorical")
        own = [
            c.column
            for c in self.columns
            if (c.p_threshold is not None and c.p_threshold != self.threshold)
            or (
                c.min_effect is not None
                and c.min_effect
                != self.min_effect.get("categorical" if c.kind == "categorical" else "numeric")
            )
        ]
        return (
            f"A column drifts when its test's p-value is below {self.threshold} and its effect "
            f"size is at least {numeric:g} for numbers and dates (Wasserstein distance over the "
            f"reference's standard deviation) or {categorical:g} for categories (Jensen–Shannon "
            "distance of the category shares): with many rows, a p-value alone flags changes too "
            "small to matter." + (f" Own thresholds: {', '.join(own)}." if own else "")
        )


def _effect(column: ColumnDrift) -> str:
    if column.effect is None:
        return "–"
    label = "W/σ" if column.effect_name == "wasserstein_norm" else "JS"
    return f"{label} {column.effect:.3g} (min {column.min_effect:g})"


def _column_verdict(column: ColumnDrift) -> str:
    if column.drifted:
        return "drifted"
    if column.significant:
        return "significant, small effect"
    return "ok"


def evidently_footer(path: str = "") -> str:
    """Where Evidently's report is: a file to open, never a dashboard visualization (it needs
    scripts, and ZenML's dashboard shows visualizations in an iframe that runs none)."""
    where = f" ({html.escape(path)})" if path else ""
    return (
        "Evidently's interactive report (same tests, rule and thresholds) needs JavaScript, which "
        "the ZenML dashboard does not run, so it is not shown there: open evidently.html, "
        f"stored beside this report{where}, in a browser; <code>monitor</code> prints its path as "
        "<code>Evidently:</code>. There, a column's “Drift Score” is its test's p-value "
        "rounded to 6 decimals by Evidently (so every p-value below 5e-7 reads 0, as "
        "strong a drift as any), and its small per-column charts draw reference and "
        "current each on its own x-axis, which can hide a shift; the p-values above are "
        "exact, and the histograms above draw both on one axis."
    )


def _histogram_svg(column: ColumnDrift, width: int = 460, height: int = 150) -> str:
    """Reference (grey) and current (orange) shares per bin or category, as inline SVG,
    with both axes labelled: the share of rows (0 and the top share) and the column's
    values (every category, or the range's ends and middle)."""
    hist = column.histogram or {}
    labels, ref, cur = hist.get("labels", []), hist.get("reference", []), hist.get("current", [])
    if not labels:
        return ""
    top = max(max(ref, default=0), max(cur, default=0)) or 1.0
    left, right, base, plot_h = 46, width - 4, height - 34, height - 44
    slot = (right - left) / len(labels)
    bar = max(slot / 2 - 1, 1)
    bars = []
    for i, (r, c) in enumerate(zip(ref, cur, strict=True)):
        for offset, share, fill in ((0, r, "#98a2b3"), (bar, c, "#f79009")):
            h = plot_h * share / top
            bars.append(
                f"<rect x='{left + i * slot + offset:.1f}' y='{base - h:.1f}' "
                f"width='{bar:.1f}' height='{h:.1f}' fill='{fill}'/>"
            )
    tick = f"font-size='10' y='{base + 12}'"
    if column.kind == "categorical":  # every category named under its bars
        ticks = "".join(
            f"<text x='{left + (i + 0.5) * slot:.1f}' {tick} text-anchor='middle'>"
            f"{html.escape(str(label)[:12])}</text>"
            for i, label in enumerate(labels)
        )
        x_title = f"{column.column} (category)"
    else:  # the range's two ends and its middle bin
        middle = len(labels) // 2
        ticks = (
            f"<text x='{left}' {tick}>{html.escape(str(labels[0]))}</text>"
            f"<text x='{left + (middle + 0.5) * slot:.1f}' {tick} text-anchor='middle'>"
            f"{html.escape(str(labels[middle]))}</text>"
            f"<text x='{right}' {tick} text-anchor='end'>{html.escape(str(labels[-1]))}</text>"
        )
        x_title = f"{column.column} (start of each bin)"
    axes = (
        f"<line x1='{left}' x2='{left}' y1='{base - plot_h}' y2='{base}' stroke='#98a2b3'/>"
        f"<line x1='{left}' x2='{right}' y1='{base}' y2='{base}' stroke='#98a2b3'/>"
        f"<text x='{left - 3}' y='{base - plot_h + 8}' font-size='10' text-anchor='end'>"
        f"{top:.0%}</text>"
        f"<text x='{left - 3}' y='{base}' font-size='10' text-anchor='end'>0%</text>"
        f"<text x='10' y='{base - plot_h / 2:.1f}' font-size='10' text-anchor='middle' "
        f"transform='rotate(-90 10 {base - plot_h / 2:.1f})'>share of rows</text>"
        f"{ticks}<text x='{(left + right) / 2:.1f}' y='{height - 3}' font-size='10' "
        f"text-anchor='middle' fill='#475467'>{html.escape(x_title[:80])}</text>"
    )
    return (
        f"<h4>{html.escape(column.column)} <small>({column.test} p={p_text(column.p_value)}"
        f"{'; ' + _effect(column) if column.effect is not None else ''}; "
        "grey: reference, orange: current)</small></h4>"
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' "
        f"role='img' aria-label='{html.escape(column.column)} histogram'>{''.join(bars)}{axes}"
        "</svg>"
    )


class DriftReportMaterializer(JsonModelMaterializer):
    """Stores `summary.json`, `report.html` (zenkube's script-free report, the visualization:
    it renders in ZenML's sandboxed iframe) and `evidently.html` (a file to open in a browser:
    it needs scripts, which that iframe does not run)."""

    ASSOCIATED_TYPES: ClassVar[tuple[type[Any], ...]] = (DriftReport,)
    FILE: ClassVar[str] = "summary.json"
    # What a Kubeflow task with this output shows in the KFP UI (integrations/kubeflow/ui_outputs)
    KFP_UI: ClassVar[tuple[str, ...]] = ("metrics", "report")

    def load(self, data_type: type[Any]) -> DriftReport:
        report = super().load(data_type)
        html_path = self.path("evidently.html")
        if self.artifact_store.exists(html_path):
            with self.artifact_store.open(html_path, "r") as f:
                report.html = f.read()
        return report

    def save(self, data: DriftReport) -> None:
        super().save(data.model_copy(update={"html": ""}))
        evidently = self.path("evidently.html")
        self.write("report.html", data.to_html(evidently))
        self.write("evidently.html", data.html or "<html><body>No Evidently report.</body></html>")

    # Columns whose figures go into the metadata (the KFP UI's metrics): the drifted ones
    # and the biggest effects first, so a wide table does not flood the store.
    METADATA_COLUMNS: ClassVar[int] = 20

    def extract_metadata(self, data: DriftReport) -> dict[str, Any]:
        metadata: dict[str, Any] = {
            "drift_share": data.drift_share,
            "drifted_columns": ", ".join(data.drifted_columns) or "none",
            "current_rows": data.current_rows,
        }
        ranked = sorted(data.columns, key=lambda c: (not c.drifted, -(c.effect or 0.0)))
        for column in ranked[: self.METADATA_COLUMNS]:
            if column.effect is not None:
                metadata[f"effect.{column.column}"[:250]] = column.effect
            metadata[f"p_value.{column.column}"[:250]] = column.p_value
        return metadata

    def save_visualizations(self, data: DriftReport) -> dict[str, VisualizationType]:
        # Only what renders in the dashboard's script-free iframe: evidently.html is a file.
        return {self.path("report.html"): VisualizationType.HTML}
