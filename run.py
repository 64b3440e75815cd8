"""zenkube command line: train, serve and monitor scikit-learn models with ZenML.

Run from the repository root. With no command, runs the whole loop on the local stack.
This file parses options and prints results; the work is done in `app/`.
"""

from __future__ import annotations

import click

from app.console import ZenkubeGroup
from stacks.env import prepare_environment

prepare_environment()

MODEL_NAME_HELP = (
    "Registered model name (default: the config's model_name). Each name has its own champion "
    "and endpoint; use a new name for data with other columns."
)
PROTOCOLS = click.Choice(["seldon", "v2"])


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
        ctx.invoke(loop_cmd)


def _ready(stack: str = "local", runs_on_stack: bool = True) -> None:
    from stacks.env import ensure_zenml_ready, require_server_for_remote_stack

    click.echo(f"zenkube: preparing the ZenML store and the '{stack}' stack...")
    ensure_zenml_ready(stack)
    if runs_on_stack:
        require_server_for_remote_stack()


@cli.command("loop")
def loop_cmd() -> None:
    """The whole loop on the local stack: train (and promote), deploy, monitor."""
    _ready()
    result = _train(None, {})
    _deploy(None, {"model_name": result.registered.name})
    _monitor(None, result.registered.name, None, False)


def _train(config, overrides):
    from app import render, runner

    click.echo("zenkube: running the training pipeline...")
    result = runner.train(config, overrides)
    render.training(result, click.secho)
    return result


@cli.command("train")
@click.option(
    "--config", type=click.Path(), help="ZenML run config (default: configs/training.yaml)."
)
@click.option(
    "--dataset",
    help="Bundled dataset (breast_cancer, wine, iris, diabetes) or a CSV/Parquet path/URI.",
)
@click.option("--target", help="Label column (required for your own files).")
@click.option("--model-name", help=MODEL_NAME_HELP)
def train_cmd(config, dataset, target, model_name) -> None:
    """Train, evaluate and register a model; promote it if it beats the champion.

    The gate fails closed: a champion with another input schema, or one that cannot be
    scored on the new test rows, is never replaced (see gate.allow_schema_change).
    """
    _ready()
    # None keeps the config's value.
    _train(config, {"data.source": dataset, "data.target": target, "model_name": model_name})


def _deploy(config, overrides):
    from app import render, runner

    protocol = overrides.get("protocol") or "configured"
    click.echo(f"zenkube: deploying the champion ({protocol} protocol)...")
    render.deployment(runner.deploy(config, overrides), click.secho)


@cli.command("deploy")
@click.option("--config", type=click.Path(), help="Run config (default: configs/deployment.yaml).")
@click.option(
    "--protocol",
    type=PROTOCOLS,
    help="seldon: Seldon Core v1 REST (/api/v1.0/predictions); v2: Open Inference Protocol.",
)
@click.option("--model-name", help="Registered model to serve (its champion).")
def deploy_cmd(config, protocol, model_name) -> None:
    """Serve the champion with the stack's model deployer (health + smoke checked).

    Each model name has its own endpoint; deploying one never touches another's.
    """
    _ready()
    _deploy(config, {"protocol": protocol, "model_name": model_name})


def _monitor(config, model_name, input_path, simulate_drift, traffic=None):
    from app import loop, render
    from app.config import model_name as model_name_for

    if traffic is not None:
        since, min_rows = traffic
        name = model_name_for(model_name, path=config)
        input_path, what = loop.traffic_batch_file(name, since, min_rows)
        click.echo(f"zenkube: monitoring served traffic of '{name}': {what}")
    elif input_path is None:
        name = model_name_for(model_name, path=config)
        input_path, shifted = loop.batch_file(name, simulate_drift)
        click.echo(render.batch(input_path, shifted))
    else:
        click.echo(f"zenkube: monitoring {input_path}...")
    result = loop.monitor(config, {"batch": input_path, "model_name": model_name}, echo=click.echo)
    render.monitoring(result, click.secho)


@cli.group("monitor", invoke_without_command=True)
@click.option(
    "--input",
    "input_path",
    type=click.Path(),
    help="Current batch (CSV/Parquet path or URI); with labels, quality is checked too. "
    "Default: the champion's held-out rows.",
)
@click.option(
    "--simulate-drift",
    is_flag=True,
    help="Shift 40% of the numeric features of the held-out rows to show the whole loop: "
    "alert, retraining, gate, redeploy.",
)
@click.option(
    "--from-traffic",
    is_flag=True,
    help="Check what the endpoint served: requests the model's front recorded, with labels "
    "where feedback arrived (POST /api/v1.0/feedback, or /v2/models/<name>/feedback).",
)
@click.option(
    "--since",
    default="24h",
    show_default=True,
    help="With --from-traffic: how far back to look (30m, 24h, 7d).",
)
@click.option(
    "--min-rows",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="With --from-traffic: rows needed; with this many labelled rows the batch is "
    "labelled (quality and retraining), otherwise drift only.",
)
@click.option("--config", type=click.Path(), help="Run config (default: configs/monitoring.yaml).")
@click.option("--model-name", help="Registered model to monitor.")
@click.pass_context
def monitor_cmd(
    ctx, input_path, simulate_drift, from_traffic, since, min_rows, config, model_name
) -> None:
    """Check a batch for drift (and quality, with labels); retrain and redeploy on a breach.

    The batch is a file (--input), the champion's held-out rows (the default; shifted with
    --simulate-drift), or the traffic the endpoint served (--from-traffic).
    `monitor history` lists the monitoring runs so far.
    """
    if ctx.invoked_subcommand is not None:
        return
    if sum(map(bool, (input_path, simulate_drift, from_traffic))) > 1:
        raise click.UsageError("use one of --input, --simulate-drift and --from-traffic")
    _ready()
    traffic = (since, min_rows) if from_traffic else None
    _monitor(config, model_name, input_path, simulate_drift, traffic)


@monitor_cmd.command("history")
@click.option("--model-name", help="Registered model (default: the monitoring config's).")
@click.option("--config", type=click.Path(), help="Run config (default: configs/monitoring.yaml).")
@click.option(
    "--last", type=click.IntRange(min=1), default=50, show_default=True, help="Runs to show."
)
@click.option("--column", help="Also list this column's effect size and p-value per run.")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    help="Folder for the HTML report (default: $ZENKUBE_HOME/reports).",
)
def monitor_history_cmd(model_name, config, last, column, out) -> None:
    """Drift over time: each monitoring run's drift share, per-column effect and p-value,
    and quality; writes an HTML report with a trend chart per column (also saved as the
    `drift_history` artifact, shown in the ZenML dashboard)."""
    from app import drift_history
    from app.config import model_name as model_name_for

    _ready()
    name = model_name_for(model_name, path=config)
    drift_history.render(drift_history.run(name, last, column, out), click.secho)


@cli.command("schedule")
@click.option("--cron", required=True, help='Cron expression, e.g. "0 * * * *" (hourly).')
@click.option(
    "--input",
    "input_path",
    required=True,
    help="The batch each run checks: a URI the pods can read, rewritten by your data job.",
)
@click.option(
    "--config", type=click.Path(), help="Monitoring config (default: configs/monitoring.yaml)."
)
@click.option("--model-name", help="Registered model to watch.")
def schedule_cmd(cron, input_path, config, model_name) -> None:
    """Run the whole loop (monitor → retrain → gate → deploy) on a schedule.

    On Kubeflow: a KFP recurring run of the continuous-training pipeline. Locally: prints
    the crontab line that runs the same loop.
    """
    from app import loop

    _ready()
    scheduled, message = loop.schedule(
        cron, config, {"batch": input_path, "model_name": model_name}
    )
    click.secho(message, fg="green" if scheduled else "yellow")


@cli.command("compile")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(),
    default="compiled",
    show_default=True,
    help="Folder for training.yaml, deployment.yaml, monitoring.yaml and continuous_training.yaml.",
)
@click.option(
    "--stack",
    default="kubeflow",
    show_default=True,
    help="Stack spec to compile on (stacks/<name>.yaml or a path).",
)
@click.option(
    "--zenml-url",
    help="ZenML server the pods report to (default: the connected server; offline, a "
    "placeholder to set).",
)
@click.option("--model-name", help="Registered model the pipelines train, serve and watch.")
@click.option(
    "--pipeline",
    "pipelines",
    multiple=True,
    type=click.Choice(["training", "deployment", "monitoring", "continuous_training"]),
    help="Compile only this pipeline (repeat for more; default: all four).",
)
def compile_cmd(out_dir, stack, zenml_url, model_name, pipelines) -> None:
    """Write KFP v2 IR YAML for all pipelines (no cluster, no Docker needed).

    Upload the files in the Kubeflow Pipelines UI, or run them with the stack active.
    """
    import time

    from zenml.client import Client

    from app.compile import compile_for_kubeflow
    from integrations.kubeflow.validate import check_pipeline_file

    _ready(runs_on_stack=False)  # compiling needs no server
    started = time.monotonic()
    written = compile_for_kubeflow(
        out_dir, stack, click.echo, zenml_url, model_name, list(pipelines) or None
    )
    for name, path in written.items():
        summary = check_pipeline_file(path)
        click.echo(f"  {name}: {summary.tasks} tasks, KFP checks passed ({path})")
    click.echo(f"Compiled in {time.monotonic() - started:.1f}s.")
    if Client().zen_store.is_local_store():
        click.echo(
            "Note: the stack and snapshot ids in the YAML are this machine's store's. To run on "
            f"a cluster, connect to your ZenML server (`zenml login https://...`), `stack up "
            f"{stack}` there and compile again; see docs/kubeflow.md."
        )


@cli.command("predict")
@click.option(
    "--input",
    "input_path",
    required=True,
    type=click.Path(),
    help="CSV or JSON file of feature rows (JSON: a list of objects or {columns, data}).",
)
@click.option("--protocol", type=PROTOCOLS, help="Use the deployment that speaks this protocol.")
@click.option("--model-name", help="Registered model name (default: any).")
def predict_cmd(input_path, protocol, model_name) -> None:
    """Send rows to the served model over REST and print predictions as JSON."""
    import json

    from app.serving import current_service, read_rows
    from integrations.seldon_local import client

    _ready()
    frame = read_rows(input_path)
    service = current_service(model_name, protocol)
    click.echo(json.dumps(client.predict(service.prediction_url, service.config.protocol, frame)))


@cli.command("history")
@click.option("--model-name", help="Registered model (default: the config's model_name).")
def history_cmd(model_name) -> None:
    """Champion changes, newest first: when, which version, who or what, and why."""
    from app.config import model_name as resolve
    from integrations import champion

    _ready()
    name = resolve(model_name)
    current = champion.current(name)
    click.echo(f"Champion of '{name}': {'v' + current.version if current else 'none yet'}")
    for event in champion.history(name):
        click.echo(f"  {event['at']}  v{event['version']:<4} {event['by']:<45} {event['reason']}")


@cli.command("rollback")
@click.option("--model-name", help="Registered model (default: the config's model_name).")
@click.option("--to", "to", help="Version to bring back (default: the previous champion).")
def rollback_cmd(model_name, to) -> None:
    """Bring back the previous champion (or --to VERSION) and serve it with no downtime."""
    import getpass

    from app.config import model_name as resolve
    from app.serving import served_protocol
    from integrations import champion

    _ready()
    name = resolve(model_name)
    chosen, replaced = champion.rollback(name, to, getpass.getuser())
    click.secho(f"Champion of '{name}': v{replaced} → v{chosen.version}", fg="green")
    _deploy(None, {"model_name": name, "protocol": served_protocol(name)})


@cli.group("champion")
def champion_group() -> None:
    """Move a model's champion by hand (MLflow alias and ZenML stage, always together)."""


@champion_group.command("set")
@click.option("--model-name", help="Registered model (default: the config's model_name).")
@click.option("--version", required=True, help="MLflow version to make the champion.")
def champion_set_cmd(model_name, version) -> None:
    """Make VERSION the champion by hand (outside the gate); `deploy` then serves it."""
    import getpass

    from app.config import model_name as resolve
    from integrations import champion

    _ready()
    chosen = champion.set_by_hand(resolve(model_name), version, getpass.getuser())
    click.echo(
        f"Champion of '{chosen.name}' is now v{chosen.version}. Serve it: python run.py deploy"
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
        created, updated = changes.created or "-", changes.updated or "-"
        click.echo(f"Stack '{changes.stack}': created {created}, updated {updated}.")
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


@cli.group("serve")
def serve_group() -> None:
    """Inspect or stop local model servers."""


@serve_group.command("status")
@click.option("--model-name", help="Only this registered model's deployment.")
def serve_status_cmd(model_name) -> None:
    """List deployments: model, protocol, state, endpoint, log file."""
    from app.serving import served_services

    _ready()
    deployer, services = served_services(model_name)
    if not services:
        click.echo("No deployments. Run `python run.py deploy`.")
    for service in services:
        state = "up" if service.is_running else "down"
        info = deployer.get_model_server_info(service)
        where = (
            f"log: {info['LOG_FILE']}"
            if info.get("LOG_FILE")
            else f"InferenceService: {info.get('INFERENCE_SERVICE')}"  # KServe: kubectl logs
        )
        click.echo(
            f"{service.config.model_name} v{service.config.model_version} "
            f"[{info.get('PROTOCOL')}] {state}  {info.get('PREDICTION_URL')}\n"
            f"    {where}   id: {service.uuid}"
        )
        if info.get("HOST_HEADER"):
            click.echo(f"    Host header: {info['HOST_HEADER']}")
        if info.get("METRICS_URL") and state == "up":
            click.echo(f"    metrics: {info['METRICS_URL']}")
        if state == "down":
            why = service.status.last_error or "not running"
            click.echo(f"    why: {why}\n    restore it with: python run.py deploy")


@serve_group.command("stop")
@click.option("--model-name", help="Only this registered model's server (default: all).")
def serve_stop_cmd(model_name) -> None:
    """Stop local model servers, their worker processes and fronts (the records stay;
    `deploy` restarts them)."""
    from app.serving import served_services

    _ready()
    deployer, services = served_services(model_name)
    for service in services:
        deployer.stop_model_server(service.uuid, timeout=30)
        click.echo(f"stopped {service.config.model_name} v{service.config.model_version}")


if __name__ == "__main__":
    cli()
