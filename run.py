"""zenkube command line: train, serve and monitor scikit-learn models with ZenML.

Run from the repository root. With no command, runs the whole loop on the local stack.
"""

from __future__ import annotations

import os
import sys
import traceback

import click

from stacks.env import prepare_environment

prepare_environment()


def _log_file():
    from pathlib import Path

    return Path(os.environ["ZENKUBE_HOME"]) / "logs" / "zenkube.log"


def _fail(exc: BaseException, debug: bool) -> None:
    if debug:
        traceback.print_exception(exc)
    user_error = _user_error(exc)
    if user_error is not None:
        click.secho(f"Error: {user_error}", fg="red", err=True)
    else:
        click.secho(f"Unexpected error: {type(exc).__name__}: {exc}", fg="red", err=True)
        if not debug:
            click.echo(
                f"Run again with --debug to see the traceback (full log: {_log_file()}).",
                err=True,
            )
    sys.exit(2 if user_error is not None else 1)


def _user_error(exc: BaseException):
    """The ZenkubeError behind exc (ZenML may wrap a step's exception), or None."""
    from steps.errors import ZenkubeError

    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, ZenkubeError):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


class ZenkubeGroup(click.Group):
    """Turns every command's errors into one message (the only place that does)."""

    def invoke(self, ctx: click.Context):
        import contextlib

        from app.console import quiet

        verbose = bool(ctx.params.get("verbose"))
        try:
            with contextlib.nullcontext() if verbose else quiet(_log_file(), click.echo):
                return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            _fail(exc, bool(ctx.params.get("debug")))


@click.group(
    cls=ZenkubeGroup,
    invoke_without_command=True,
    context_settings={"help_option_names": ["-h", "--help"]},
)
@click.option("--debug", is_flag=True, help="Show full tracebacks of errors.")
@click.option(
    "--verbose",
    is_flag=True,
    help="Show ZenML's and MLflow's own logs on the console (by default they go to "
    ".zenkube/logs/zenkube.log and zenkube prints one line per step).",
)
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: bool) -> None:
    """zenkube: the train → serve → monitor loop for scikit-learn models on ZenML.

    With no command: set up the local stack, train and promote a model, serve it, and
    monitor held-out rows. Every command accepts --help. Library logs go to
    .zenkube/logs/zenkube.log unless --verbose.
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(loop)


def _ready(stack: str = "local") -> None:
    from stacks.env import ensure_zenml_ready

    click.echo(f"zenkube: preparing the ZenML store and the '{stack}' stack...")
    ensure_zenml_ready(stack)


@cli.command("loop")
def loop() -> None:
    """The whole loop on the local stack: train (and promote), deploy, predict."""
    _ready()
    result = _train(None, None, None)
    info = _deploy(None, None, result.registered.name)
    _monitor(None, None, False, result.registered.name)
    return info


def _train(config, dataset, target, model_name=None):
    from pipelines import runs

    # None keeps the config's value.
    overrides = {"data.source": dataset, "data.target": target, "model_name": model_name}
    click.echo("zenkube: running the training pipeline...")
    result = runs.train(config, overrides)
    _print_training(result)
    return result


def _print_training(result) -> None:
    from zenml.client import Client

    d, r = result.decision, result.registered
    click.echo(f"\nTraining run: {result.run_name}")
    click.echo("Test metrics: " + ", ".join(f"{k}={v:.4f}" for k, v in result.metrics.items()))
    click.echo(f"Registered:   {r.name} version {r.version} ({r.model_uri})")
    if d.promoted:
        click.secho(f"Promoted:     yes: {d.reason}. It is now '{r.name}@champion'.", fg="green")
    else:
        champion = f"v{d.champion_version}" if d.champion_version else "none"
        click.secho(f"Promoted:     no: {d.reason}. The champion stays {champion}.", fg="yellow")
    tracker = Client().active_stack.experiment_tracker
    click.echo("\nWhere to look:")
    bin_dir = os.path.dirname(sys.executable)  # works without activating the venv
    click.echo(
        f"  MLflow UI:      {bin_dir}/mlflow ui --backend-store-uri {tracker.get_tracking_uri()}"
    )
    zen = f"ZENML_CONFIG_PATH={os.environ['ZENML_CONFIG_PATH']} {bin_dir}/zenml"
    click.echo(f"  ZenML runs:     {zen} pipeline runs list")
    click.echo(f"  ZenML dashboard: {zen} login --local   (stop it: ... logout --local)")
    click.echo(f"  Full log:       {_log_file()}")


@cli.command("train")
@click.option(
    "--config",
    "config",
    type=click.Path(),
    default=None,
    help="ZenML run config (default: configs/local/training.yaml).",
)
@click.option(
    "--dataset",
    default=None,
    help="Bundled dataset (breast_cancer, wine, iris, diabetes) or a CSV/Parquet path/URI.",
)
@click.option("--target", default=None, help="Label column (required for your own files).")
@click.option(
    "--model-name",
    default=None,
    help="Registered model name (default: the config's model_name). Each name has its own "
    "champion and endpoint; use a new name for data with other columns.",
)
def train(config, dataset, target, model_name) -> None:
    """Train, evaluate and register a model; promote it if it beats the champion.

    The gate fails closed: a champion with another input schema, or one that cannot be
    scored on the new test rows, is never replaced (see gate.allow_schema_change).
    """
    _ready()
    _train(config, dataset, target, model_name)


def _deploy(config, protocol, model_name=None):
    from pipelines import runs

    click.echo(f"zenkube: deploying the champion ({protocol or 'configured'} protocol)...")
    info = runs.deploy(config, {"protocol": protocol, "model_name": model_name})
    click.echo(
        f"\nServing:      {info.model_name} v{info.model_version} ({info.protocol} protocol)"
    )
    click.echo(f"Endpoint:     {info.prediction_url}")
    click.echo(f"Health:       {info.health_url}")
    if info.details.get("LOG_FILE"):
        click.echo(f"Server log:   {info.details['LOG_FILE']}")
    if info.details.get("SCHEMA_CHANGE"):
        click.secho(f"Schema:       {info.details['SCHEMA_CHANGE']}", fg="yellow")
    _smoke(info)
    return info


def _smoke(info) -> None:
    from integrations.seldon_local import client
    from pipelines import runs

    rows = runs.example_rows(info.model_name, 3)
    predictions = client.predict(info.prediction_url, info.protocol, rows)
    click.echo(f"Smoke test:   3 rows → {predictions}")
    click.echo("\nTry it yourself:")
    click.echo("  " + client.curl_command(info.prediction_url, info.protocol, rows))


def _monitor(config, input_path, simulate_drift, model_name=None):
    from pipelines import runs

    name = model_name or "zenkube-model"
    shifted = []
    if input_path is None:
        input_path, shifted = runs.batch_file(name, simulate_drift)
        listed = ", ".join(shifted[:4]) + (
            f" and {len(shifted) - 4} more" if len(shifted) > 4 else ""
        )
        what = f"held-out rows with {listed} shifted" if shifted else "held-out rows"
        click.echo(f"zenkube: monitoring {what} ({input_path})...")
    else:
        click.echo(f"zenkube: monitoring {input_path}...")
    result = runs.monitor(config, {"batch": input_path, "model_name": model_name}, echo=click.echo)
    d, q = result.decision, result.quality
    click.echo(f"\nMonitoring run: {result.run_name}")
    click.echo(
        f"Drift:        {len(d.drifted_columns)} of {len(result.drift.columns)} columns "
        f"({d.drift_share:.0%}){': ' + ', '.join(d.drifted_columns) if d.drifted_columns else ''}"
    )
    if q.labelled:
        click.echo(
            f"Quality:      {q.metric}={q.current:.4f} (champion's test score {q.reference:.4f})"
        )
    else:
        click.echo("Quality:      the batch has no labels; drift only")
    if d.alert:
        click.secho("Decision:     ALERT: " + "; ".join(d.reasons), fg="red")
    else:
        click.secho("Decision:     no threshold breached; nothing to do", fg="green")
    if result.retraining is not None:
        r = result.retraining
        verdict = "promoted" if r.decision.promoted else "not promoted"
        click.echo(f"Retraining:   {r.run_name}: {verdict} ({r.decision.reason})")
    elif d.alert:
        click.echo("Retraining:   none (needs a labelled batch)")
    if result.deployment is not None:
        click.echo(
            f"Redeployed:   v{result.deployment.model_version} at {result.deployment.prediction_url}"
        )
    click.echo(f"Drift report: {result.report_path}")
    if result.drift.html_note:
        click.echo(f"              ({result.drift.html_note})")
    return result


@cli.command("monitor")
@click.option(
    "--input",
    "input_path",
    type=click.Path(),
    default=None,
    help="Current batch (CSV/Parquet path or URI); with labels, quality is checked too. "
    "Default: the champion's held-out rows.",
)
@click.option(
    "--simulate-drift",
    is_flag=True,
    help="Shift 40% of the numeric features of the held-out rows to show the whole loop: alert, "
    "retraining, gate, redeploy.",
)
@click.option(
    "--config",
    type=click.Path(),
    default=None,
    help="Run config (default: configs/local/monitoring.yaml).",
)
@click.option("--model-name", default=None, help="Registered model to monitor.")
def monitor(input_path, simulate_drift, config, model_name) -> None:
    """Check a batch for drift (and quality, with labels); retrain and redeploy on a breach."""
    if input_path and simulate_drift:
        raise click.UsageError("use either --input or --simulate-drift")
    _ready()
    _monitor(config, input_path, simulate_drift, model_name)


@cli.command("compile")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(),
    default="compiled",
    show_default=True,
    help="Folder for training.yaml, deployment.yaml and monitoring.yaml.",
)
@click.option(
    "--stack",
    "stack",
    default="kubeflow",
    show_default=True,
    help="Stack spec to compile on (stacks/<name>.yaml or a path).",
)
def compile_cmd(out_dir, stack) -> None:
    """Write KFP v2 IR YAML for all three pipelines (no cluster, no Docker needed).

    Upload the files in the Kubeflow Pipelines UI, or run them with the stack active.
    """
    import time

    from zenml.client import Client

    from integrations.kubeflow.validate import check_pipeline_file
    from pipelines import runs

    _ready()
    started = time.monotonic()
    written = runs.compile_for_kubeflow(out_dir, stack, echo=click.echo)
    for name, path in written.items():
        summary = check_pipeline_file(path)
        click.echo(f"  {name}: {summary.tasks} tasks, KFP checks passed ({path})")
    click.echo(f"Compiled in {time.monotonic() - started:.1f}s.")
    if Client().zen_store.is_local_store():
        click.echo(
            "Note: compiled against this machine's ZenML store. To run on a cluster, connect "
            "to a ZenML server first (`zenml login https://...`) and compile again; see "
            "docs/kubeflow.md."
        )


@cli.group("stack")
def stack_group() -> None:
    """Register and inspect zenkube's stacks (specs in stacks/*.yaml)."""


@stack_group.command("up")
@click.argument("name", default="local")
def stack_up_cmd(name) -> None:
    """Register stack NAME (local, kubeflow or a YAML path) idempotently and activate it."""
    from stacks.env import prepare_zenml
    from stacks.manage import stack_up

    prepare_zenml()
    changes = stack_up(name)
    if changes.changed:
        click.echo(
            f"Stack '{changes.stack}': created {changes.created or '-'}, updated {changes.updated or '-'}."
        )
    else:
        click.echo(f"Stack '{changes.stack}' is already registered as specified: no change.")
    click.echo(f"Active stack: {changes.stack}")


@stack_group.command("show")
def stack_show_cmd() -> None:
    """Print the active stack and its components."""
    from zenml.client import Client

    from stacks.env import prepare_zenml

    prepare_zenml()
    stack = Client().active_stack_model
    click.echo(f"Active stack: {stack.name}")
    for ctype, components in stack.components.items():
        for component in components:
            click.echo(f"  {ctype.value:20s} {component.name} ({component.flavor_name})")


@cli.command("deploy")
@click.option(
    "--config",
    type=click.Path(),
    default=None,
    help="Run config (default: configs/local/deployment.yaml).",
)
@click.option(
    "--protocol",
    type=click.Choice(["seldon", "v2"]),
    default=None,
    help="seldon: Seldon Core v1 REST (/api/v1.0/predictions); v2: Open Inference Protocol.",
)
@click.option("--model-name", default=None, help="Registered model to serve (its champion).")
def deploy(config, protocol, model_name) -> None:
    """Serve the champion with the stack's model deployer (health + smoke checked).

    Each model name has its own endpoint; deploying one never touches another's.
    """
    _ready()
    _deploy(config, protocol, model_name)


def _current_service(model_name, protocol=None):
    from pipelines import runs
    from steps.errors import ZenkubeError

    _, services = runs.served_services(model_name)
    if protocol:
        services = [s for s in services if getattr(s.config, "protocol", "seldon") == protocol]
    if not services:
        raise ZenkubeError("Nothing is deployed yet. Run `python run.py deploy` first.")
    return services[0]


@cli.command("predict")
@click.option(
    "--input",
    "input_path",
    required=True,
    type=click.Path(),
    help="CSV or JSON file of feature rows (JSON: a list of objects or {columns, data}).",
)
@click.option(
    "--protocol",
    type=click.Choice(["seldon", "v2"]),
    default=None,
    help="Use the deployment that speaks this protocol.",
)
@click.option("--model-name", default=None, help="Registered model name (default: any).")
def predict(input_path, protocol, model_name) -> None:
    """Send rows to the served model over REST and print predictions as JSON."""
    import json

    from integrations.seldon_local import client

    _ready()
    frame = _read_rows(input_path)
    service = _current_service(model_name, protocol)
    predictions = client.predict(service.prediction_url, service.config.protocol, frame)
    click.echo(json.dumps(predictions))


def _read_rows(path):
    import json
    from pathlib import Path

    import pandas as pd

    from steps.errors import ConfigError

    file = Path(path)
    if not file.exists():
        raise ConfigError(f"Input file not found: {path}")
    if file.suffix.lower() == ".json":
        data = json.loads(file.read_text())
        if isinstance(data, dict) and "columns" in data:
            return pd.DataFrame(data["data"], columns=data["columns"])
        if isinstance(data, list):
            return pd.DataFrame(data)
        raise ConfigError(f"{path}: use a list of row objects or {{columns, data}}.")
    return pd.read_csv(file)


@cli.group("serve")
def serve() -> None:
    """Inspect or stop local model servers."""


@serve.command("status")
@click.option("--model-name", default=None, help="Only this registered model's deployment.")
def serve_status(model_name) -> None:
    """List deployments: model, protocol, state, endpoint, log file."""
    from pipelines import runs

    _ready()
    deployer, services = runs.served_services(model_name)
    if not services:
        click.echo("No deployments. Run `python run.py deploy`.")
    for service in services:
        state = "up" if service.is_running else "down"
        info = deployer.get_model_server_info(service)
        click.echo(
            f"{service.config.model_name} v{service.config.model_version} "
            f"[{info.get('PROTOCOL')}] {state}  {info.get('PREDICTION_URL')}\n"
            f"    log: {info.get('LOG_FILE')}   id: {service.uuid}"
        )
        if state == "down":
            click.echo("    restore it with: python run.py deploy")


@serve.command("stop")
def serve_stop() -> None:
    """Stop every local model server (their records stay; `deploy` restarts them)."""
    from pipelines import runs

    _ready()
    deployer, services = runs.served_services()
    for service in services:
        deployer.stop_model_server(service.uuid, timeout=30)
        click.echo(f"stopped {service.config.model_name} v{service.config.model_version}")


if __name__ == "__main__":
    cli()
