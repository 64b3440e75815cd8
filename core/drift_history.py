"""Drift over time: every monitoring run's drift share, per-column effect and p-value, and
quality, as a table and a script-free HTML report with one trend chart per column.

Plain pydantic and the standard library (no ZenML): `monitor history` builds and renders
it without importing ZenML (issue #33); materializers/drift_history.py stores it as the
`drift_history` artifact."""

from __future__ import annotations

import html

from pydantic import BaseModel, Field


def p_text(p_value: float) -> str:
    """A p-value as it is, in scientific notation (1e-51 is `1.0e-51`, never a rounded 0);
    a test whose p-value underflowed to 0 says how small it is at least."""
    if p_value <= 0:
        return "< 1e-300"
    return f"{p_value:.1e}"


class ColumnPoint(BaseModel):
    """One column in one run.

    Attributes:
        p_value: its test's p-value.
        effect: its effect size (None for runs made before effect sizes were recorded).
        min_effect: the minimum effect that run used for it.
        drifted: that run's verdict.
    """

    p_value: float
    effect: float | None = None
    min_effect: float | None = None
    drifted: bool


class RunRecord(BaseModel):
    """What one monitoring run found.

    Attributes:
        run_name: the ZenML pipeline run.
        pipeline: monitoring_pipeline or continuous_training_pipeline.
        created: when the run started (ISO 8601, UTC).
        current_rows: rows in the batch.
        drift_share: share of columns that drifted.
        alert: whether the run alerted (drift or quality).
        columns: column -> its p-value, effect and verdict.
        quality_metric / quality / quality_reference: with labels, the gate metric on the
            batch and on the champion's test split (unset without labels).
        model_version: the champion version the run watched ("" for older runs).
    """

    run_name: str
    pipeline: str
    created: str
    current_rows: int
    drift_share: float
    alert: bool | None = None
    columns: dict[str, ColumnPoint]
    quality_metric: str = ""
    quality: float | None = None
    quality_reference: float | None = None
    model_version: str = ""

    @property
    def drifted_columns(self) -> list[str]:
        return [name for name, point in self.columns.items() if point.drifted]


class DriftHistory(BaseModel):
    """The monitoring runs of one model, oldest first."""

    model_name: str
    runs: list[RunRecord] = Field(default_factory=list)

    @property
    def column_names(self) -> list[str]:
        names: dict[str, None] = {}
        for run in self.runs:
            names.update(dict.fromkeys(run.columns))
        return list(names)

    def table(self) -> list[str]:
        """One line per run, for the terminal."""
        # ZenML's run names differ only in their timestamp, at the end: never cut them
        width = max([len("run"), *(len(run.run_name) for run in self.runs)])
        lines = [
            f"{'started (UTC)':<17} {'run':<{width}} {'model':>6} {'rows':>8} {'drift':>6} "
            f"{'quality':>16}  drifted"
        ]
        previous = None
        for run in self.runs:
            quality = (
                f"{run.quality_metric}={run.quality:.4f}"
                if run.quality is not None
                else "no labels"
            )
            drifted = ", ".join(run.drifted_columns) or "-"
            model = f"v{run.model_version}" if run.model_version else "-"
            changed = previous is not None and run.model_version != previous
            previous = run.model_version
            lines.append(
                f"{run.created[:16].replace('T', ' '):<17} {run.run_name:<{width}} {model:>6} "
                f"{run.current_rows:>8} {run.drift_share:>6.0%} {quality:>16}  {drifted}"
                f"{'  ALERT' if run.alert else ''}"
                f"{f'  (new champion {model})' if changed else ''}"
            )
        return lines

    def column_lines(self, column: str) -> list[str]:
        """A column's effect and p-value in every run, for the terminal."""
        lines = []
        for run in self.runs:
            point = run.columns.get(column)
            if point is None:
                continue
            effect = "-" if point.effect is None else f"{point.effect:.4f}"
            lines.append(
                f"{run.created[:16].replace('T', ' '):<17} effect {effect:>8}  p {p_text(point.p_value):<10}"
                f"{'drifted' if point.drifted else ''}"
            )
        return lines

    def to_html(self) -> str:
        """A report with no script: renders in ZenML's sandboxed iframe and in the KFP UI."""
        name = html.escape(self.model_name)
        if not self.runs:
            return (
                "<!doctype html><html><head><meta charset='utf-8'><title>Drift history</title>"
                f"</head><body style='font-family:sans-serif'><h2>Drift history of {name}</h2>"
                "<p>No monitoring runs yet.</p></body></html>"
            )
        last = self.runs[-1]
        shares = [run.drift_share for run in self.runs]
        overview = _trend_svg(
            "drift share",
            shares,
            [run.alert or False for run in self.runs],
            None,
            self._dates(),
            **self._axis(),
        )
        quality = [run.quality for run in self.runs]
        quality_chart = ""
        if any(q is not None for q in quality):
            metric = next(run.quality_metric for run in self.runs if run.quality is not None)
            quality_chart = f"<h4>Quality ({html.escape(metric)} on labelled batches)</h4>" + (
                _trend_svg(
                    metric,
                    quality,
                    [False] * len(quality),
                    None,
                    self._dates(),
                    from_zero=False,
                    **self._axis(),
                )
            )
        charts = []
        for column in self.column_names:
            points = [run.columns.get(column) for run in self.runs]
            effects = [p.effect if p else None for p in points]
            minimum = next((p.min_effect for p in reversed(points) if p and p.min_effect), None)
            drifted = [bool(p and p.drifted) for p in points]
            latest = points[-1]
            caption = (
                f"latest: effect {latest.effect:.3g}, p={p_text(latest.p_value)}"
                if latest and latest.effect is not None
                else (f"latest: p={p_text(latest.p_value)}" if latest else "not in the latest run")
            )
            charts.append(
                f"<h4>{html.escape(column)} <small>({caption}; drifted in {sum(drifted)} of "
                f"{len(points)} runs)</small></h4>"
                + _trend_svg(
                    f"{column} effect size",
                    effects,
                    drifted,
                    minimum,
                    self._dates(),
                    y_title="effect size",
                    **self._axis(),
                )
            )
        rows = "".join(
            f"<tr{' style=background:#fef3f2' if run.alert else ''}><td>{run.created[:16]}</td>"
            f"<td>{html.escape(run.run_name)}</td>"
            f"<td>{'v' + html.escape(run.model_version) if run.model_version else '-'}</td>"
            f"<td>{run.current_rows}</td>"
            f"<td>{run.drift_share:.0%}</td><td>"
            + (f"{run.quality:.4f}" if run.quality is not None else "no labels")
            + f"</td><td>{html.escape(', '.join(run.drifted_columns) or '-')}</td></tr>"
            for run in reversed(self.runs)
        )
        return (
            "<!doctype html><html><head><meta charset='utf-8'><title>Drift history</title></head>"
            "<body style='font-family:sans-serif;max-width:60em'>"
            f"<h2>Drift history of {name}</h2>"
            f"<p>{len(self.runs)} monitoring run(s), {self.runs[0].created[:10]} to "
            f"{last.created[:10]}. The latest drifted {last.drift_share:.0%} of its columns. "
            "Each chart is one column's effect size per run (Wasserstein distance over the "
            "reference's standard deviation for numbers and dates, Jensen–Shannon distance for "
            "categories); the dashed line is its minimum effect, red points are runs where the "
            "column drifted (significant and at least that big). A column creeping up towards "
            "its line is drifting slowly. Runs sit at their time; a purple line marks where "
            "the champion changed (each model's runs are a line of their own: each is "
            "compared with its own training data).</p>"
            f"<h4>Drift share per run (red: the run alerted)</h4>{overview}{quality_chart}"
            f"<h3>Columns</h3>{''.join(charts)}"
            "<h3>Runs (newest first)</h3><table border=1 cellpadding=3 "
            "style='border-collapse:collapse'><tr><th>started (UTC)</th><th>run</th><th>model</th>"
            "<th>rows</th>"
            f"<th>drift share</th><th>quality</th><th>drifted columns</th></tr>{rows}</table>"
            "</body></html>"
        )

    def _dates(self) -> list[str]:
        return [run.created[:16].replace("T", " ") for run in self.runs]

    def _axis(self) -> dict[str, list]:
        """The charts' x axis: each run at its time, and the model version it watched
        (a line per version, a mark where the champion changed)."""
        from datetime import datetime

        times = []
        for run in self.runs:
            try:
                times.append(datetime.fromisoformat(run.created).timestamp())
            except ValueError:
                return {"versions": [run.model_version for run in self.runs]}
        return {"times": times, "versions": [run.model_version for run in self.runs]}


def _trend_svg(
    label: str,
    values: list[float | None],
    marked: list[bool],
    line: float | None,
    dates: list[str],
    width: int = 560,
    height: int = 120,
    from_zero: bool = True,
    y_title: str = "",
    times: list[float] | None = None,
    versions: list[str] | None = None,
) -> str:
    """Values per run as a polyline with a point per run (red where marked), an optional
    dashed threshold line, the scale's top and bottom, the first and last run's date, and
    a title on each axis (`y_title`, else `label`; the runs). Each point's
    <title> (a native tooltip, no script) names the run's date, model version and value.

    With `times` (epoch seconds) runs sit at their time, not their index; with `versions`
    (the champion each run watched) the line breaks where the version changes, marked by
    a vertical line labelled with the new version: two models are never drawn as one."""
    y_title = y_title or label
    known = [v for v in values if v is not None]
    if not known:
        return "<p style='color:#555'>No values recorded.</p>"
    top = max(known + ([line * 1.25] if line else [])) or 1.0
    low = 0.0
    if not from_zero:  # a metric: its own range, padded
        pad = (top - min(known)) * 0.2 or 0.01
        low, top = min(known) - pad, top + pad
    left, bottom, plot_h = 54, height - 18, height - 30
    span = width - left - 10
    versions = versions or [""] * len(values)

    def x(i: int) -> float:
        if len(values) <= 1:
            return left + span / 2
        if times and times[-1] > times[0]:
            return left + span * (times[i] - times[0]) / (times[-1] - times[0])
        return left + i * span / (len(values) - 1)

    def y(v: float) -> float:
        return bottom - plot_h * (v - low) / (top - low)

    segments: list[list[str]] = [[]]
    dots, changes = [], []
    for i, (value, mark) in enumerate(zip(values, marked, strict=True)):
        if i and versions[i] != versions[i - 1]:
            segments.append([])  # another model: a line of its own
            changes.append(
                f"<line x1='{x(i):.1f}' x2='{x(i):.1f}' y1='{bottom - plot_h}' y2='{bottom}' "
                "stroke='#7a5af8' stroke-dasharray='2 2'/>"
                f"<text x='{x(i) + 2:.1f}' y='{bottom - plot_h + 8}' font-size='10' "
                f"fill='#7a5af8'>v{html.escape(versions[i] or '?')}</text>"
            )
        if value is None:
            continue
        segments[-1].append(f"{x(i):.1f},{y(value):.1f}")
        model = f" (v{html.escape(versions[i])})" if versions[i] else ""
        dots.append(
            f"<circle cx='{x(i):.1f}' cy='{y(value):.1f}' r='3.5' fill='{'#d92d20' if mark else '#1570ef'}'>"
            f"<title>{html.escape(dates[i])}{model}: {value:.4g}</title></circle>"
        )
    lines = "".join(
        f"<polyline points='{' '.join(points)}' fill='none' stroke='#1570ef' stroke-width='1.5'/>"
        for points in segments
        if points
    )
    threshold = (
        f"<line x1='{left}' x2='{width - 10}' y1='{y(line):.1f}' y2='{y(line):.1f}' "
        f"stroke='#667085' stroke-dasharray='4 3'/>"
        f"<text x='{width - 10}' y='{y(line) - 3:.1f}' font-size='10' text-anchor='end' "
        f"fill='#667085'>min {line:g}</text>"
        if line
        else ""
    )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width}' height='{height}' role='img' "
        f"aria-label='{html.escape(label)} per run'>"
        f"<line x1='{left}' x2='{left}' y1='{bottom - plot_h}' y2='{bottom}' stroke='#98a2b3'/>"
        f"<line x1='{left}' x2='{width - 10}' y1='{bottom}' y2='{bottom}' stroke='#98a2b3'/>"
        f"<text x='{left - 4}' y='{bottom - plot_h + 8}' font-size='10' text-anchor='end'>"
        f"{top:.3g}</text><text x='{left - 4}' y='{bottom}' font-size='10' text-anchor='end'>"
        f"{low:.3g}</text>"
        f"<text x='10' y='{bottom - plot_h / 2:.1f}' font-size='10' text-anchor='middle' "
        f"transform='rotate(-90 10 {bottom - plot_h / 2:.1f})'>{html.escape(y_title)}</text>"
        f"<text x='{(left + width - 10) / 2:.1f}' y='{height - 4}' font-size='10' "
        "text-anchor='middle' fill='#475467'>monitoring run (start, UTC)</text>"
        f"{threshold}{''.join(changes)}{lines}{''.join(dots)}"
        f"<text x='{left}' y='{height - 4}' font-size='10'>{html.escape(dates[0])}</text>"
        f"<text x='{width - 10}' y='{height - 4}' font-size='10' text-anchor='end'>"
        f"{html.escape(dates[-1])}</text></svg>"
    )
