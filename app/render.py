"""What the CLI prints after each command: results in zenkube's own words.

Every function takes `echo(text, fg=None)` (click.secho fits) so tests can capture it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

Echo = Callable[..., None]


def training(result, echo: Echo) -> None:
    from zenml.client import Client

    from core.paths import log_file

    d, r = result.decision, result.registered
    echo(f"\nTraining run: {result.run_name}")
    echo("Test metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in result.metrics.items()))
    echo(f"Registered:   {r.name} version {r.version} ({r.model_uri})")
    if left := left_out(r):
        echo(left, fg="yellow")
    if d.promoted:
        echo(f"Promoted:     yes: {d.reason}. It is now '{r.name}@champion'.", fg="green")
    elif getattr(d, "release", ""):
        echo(
            f"Promoted:     not yet: {d.reason}. Start its release: `python run.py deploy "
            f"--model-name {r.name}` (or `release start`).",
            fg="green",
        )
    else:
        after = (
            f"The champion stays v{d.champion_version}."
            if d.champion_version
            else f"'{r.name}' has no champion yet."
        )
        echo(f"Promoted:     no: {d.reason}. {after}", fg="yellow")
    tracker = Client().active_stack.experiment_tracker
    bin_dir = os.path.dirname(sys.executable)  # printed commands work without activating
    zen = f"ZENML_CONFIG_PATH={os.environ['ZENML_CONFIG_PATH']} {bin_dir}/zenml"
    echo("\nWhere to look:")
    echo(f"  MLflow UI:      {bin_dir}/mlflow ui --backend-store-uri {tracker.get_tracking_uri()}")
    echo(f"  ZenML:          {zen} login --local   (dashboard; `... pipeline runs list` to list)")
    echo(f"  Full log:       {log_file()}")


def left_out(registered) -> str | None:
    """The columns of the training file the model does not take (row identifiers, or
    columns data.features did not list)."""
    ignored = registered.input_schema.ignored_columns if registered.input_schema else []
    if not ignored:
        return None
    one = len(ignored) == 1
    them, they = ("it", "it identifies") if one else ("them", "they identify")
    return (
        f"Left out:     {', '.join(ignored)}: the model does not take {them} ({they} "
        f"rows, or data.features does not list {them}); requests and files may still hold "
        f"{them}: ignored (list {them} in data.features, or set data.drop_id_columns: "
        f"false, to keep {them})"
    )


def deployment(info, echo: Echo) -> None:
    """Where the model is served, a smoke prediction over REST, and a curl to try."""
    from app.serving import example_rows
    from integrations.seldon_local import client

    echo(f"\nServing:      {info.model_name} v{info.model_version} ({info.protocol} protocol)")
    echo(f"Endpoint:     {info.prediction_url}")
    echo(f"Health:       {info.health_url}")
    if info.details.get("LOG_FILE"):
        echo(f"Server log:   {info.details['LOG_FILE']}")
    if info.details.get("METRICS_URL"):
        echo(f"Metrics:      {info.details['METRICS_URL']}   (Prometheus)")
    if info.details.get("REPLICAS"):  # model-server processes: a primary and warm standbys
        echo(f"Replicas:     {info.details['REPLICAS']}")
    if info.details.get("PORT_NOTE"):
        echo(f"Port:         {info.details['PORT_NOTE']}", fg="yellow")
    if info.details.get("SCHEMA_CHANGE"):
        echo(f"Schema:       {info.details['SCHEMA_CHANGE']}", fg="yellow")
    if info.details.get("RELEASE"):
        echo(f"Release:      {info.details['RELEASE']}", fg="green")
    host = info.details.get("HOST_HEADER")  # KServe's ingress routes by it
    if host:
        echo(f"Host header:  {host}")
    rows = example_rows(info.model_name, 3)
    predictions = client.predict(info.prediction_url, info.protocol, rows, host=host, probe=True)
    echo(f"Smoke test:   3 rows → {predictions}")
    echo("Try it:       " + client.curl_command(info.prediction_url, info.protocol, rows, host))


def monitoring(result, echo: Echo) -> None:
    d, q = result.decision, result.quality
    drifted = f": {', '.join(d.drifted_columns)}" if d.drifted_columns else ""
    echo(f"\nMonitoring run: {result.run_name}")
    if result.outcome is not None:  # the run's tag: `zenml pipeline runs list --columns …`
        echo(f"Outcome:      {result.outcome.outcome} (run tag {result.outcome.tag})")
    echo(
        f"Drift:        {len(d.drifted_columns)} of {len(result.drift.columns)} columns "
        f"({d.drift_share:.0%}){drifted}"
    )
    if q.labelled:
        echo(f"Quality:      {q.metric}={q.current:.4f} (champion's test score {q.reference:.4f})")
    else:
        echo("Quality:      the batch has no labels; drift only")
    if d.alert:
        echo("Decision:     ALERT: " + "; ".join(d.reasons), fg="red")
    else:
        echo("Decision:     no threshold breached; nothing to do", fg="green")
    if result.retraining is not None:
        r = result.retraining
        verdict = "promoted" if r.decision.promoted else "not promoted"
        echo(f"Retraining:   {r.run_name}: {verdict} ({r.decision.reason})")
    elif d.alert:
        # the step's "skipped: no retraining (why)" reads "none (why)" here
        why = result.no_retraining.removeprefix("skipped: ").removeprefix("no retraining ")
        if not why.startswith("("):
            why = f"({why or 'needs a labelled batch'})"
        echo(f"Retraining:   none {why}")
    if result.deployment is not None and result.deployment.details.get("RELEASE"):
        echo(f"Release:      {result.deployment.details['RELEASE']}", fg="green")
    elif result.deployment is not None:
        deployed = result.deployment
        echo(f"Redeployed:   v{deployed.model_version} at {deployed.prediction_url}")
    echo(f"Drift report: {result.report_path}")
    evidently = os.path.join(os.path.dirname(result.report_path), "evidently.html")
    echo(f"Evidently:    {evidently}")
    if result.drift.html_note:
        echo(f"              ({result.drift.html_note})")
