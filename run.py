"""zenkube command line: train, serve and monitor scikit-learn models with ZenML.

Run from the repository root. With no command, runs the whole loop on the local stack.
This file parses options and prints results; `app/` decides and does the work.
"""

from __future__ import annotations

import json

import click

from app import batch, champions, drift_history, loop, release_cli, repair, runner, serving, session
from app.compile import compile_and_check
from app.config import PIPELINES
from app.config import model_name as model_name_for
from app.console import ZenkubeGroup
from app.options import MODEL, config_option
from app.warm_cli import warm_group
from core.protocol import DESCRIPTIONS, PROTOCOLS

session.prepare(__name__)  # before ZenML is imported; a pipeline command may go to app/warm.py

MODEL_NAME_HELP = ("Registered model name (default: the config's model_name). Each name has its "
                   "own champion and endpoint; use a new name for data with other columns.")  # fmt: skip
PROTOCOL_HELP = "; ".join(f"{name}: {what}" for name, what in DESCRIPTIONS.items())


@click.group(cls=ZenkubeGroup, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})  # fmt: skip
@click.option("--debug", is_flag=True, help="Show full tracebacks of errors.")
@click.option("--verbose", is_flag=True, help="Show ZenML's and MLflow's logs on the console.")
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: bool) -> None:
    """zenkube: the train → serve → monitor loop for scikit-learn models on ZenML.

    With no command: set up the local stack, train and promote a model, serve it, and
    monitor held-out rows. Every command accepts --help. Library logs go to
    .zenkube/logs/zenkube.log unless --verbose.
    """
    if ctx.invoked_subcommand is None:
        ctx.invoke(loop_cmd)


@cli.command("loop")
def loop_cmd() -> None:
    """The whole loop on the local stack: train (and promote), deploy, monitor."""
    session.ready(click.echo)
    loop.whole_loop(click.secho)


@cli.command("train")
@config_option("training")
@click.option("--dataset", help="Bundled dataset (breast_cancer, wine, iris, diabetes) or a CSV/Parquet path/URI.")  # fmt: skip
@click.option("--target", help="Label column (required for your own files).")
@click.option("--model-name", help=MODEL_NAME_HELP)
def train_cmd(config, dataset, target, model_name) -> None:
    """Train, evaluate and register a model; promote it if it beats the champion. The gate
    fails closed: a champion with another input schema, or one that cannot be scored on the
    new test rows, is never replaced (see gate.allow_schema_change)."""
    session.ready(click.echo)
    # None keeps the config's value.
    overrides = {"data.source": dataset, "data.target": target, "model_name": model_name}
    runner.train_command(config, overrides, click.secho)


@cli.command("deploy")
@config_option("deployment")
@click.option("--protocol", type=click.Choice(PROTOCOLS), help=f"{PROTOCOL_HELP}. Default: the "
              "protocol the model is served with, else the config's default_protocol.")  # fmt: skip
@click.option("--model-name", help="Registered model to serve (its champion).")
@click.option("--dry-run", is_flag=True, help="Print what deploy would apply on a cluster (YAML).")
@click.option("--stack", "stack_spec", default="kubeflow", help="With --dry-run: the stack spec.")
@click.option("--model-uri", help="With --dry-run: the model's files (default: the champion's).")
def deploy_cmd(config, protocol, model_name, dry_run, stack_spec, model_uri) -> None:
    """Serve the champion with the stack's model deployer (health + smoke checked).

    Each model name has its own endpoint; deploying one never touches another's. A
    redeploy keeps the protocol being served unless --protocol switches it.
    """
    if dry_run:  # no cluster, no ZenML server: the objects deploy would send
        return runner.dry_run_command(config, model_name, protocol, stack_spec, model_uri, click.echo)  # fmt: skip
    session.ready(click.echo)
    runner.deploy_command(config, model_name, protocol, click.secho)


@cli.group("monitor", invoke_without_command=True)
@click.option("--input", "input_path", type=click.Path(), help="Current batch: a CSV/Parquet path or URI.")  # fmt: skip
@click.option("--simulate-drift", is_flag=True, help="Shift held-out rows: alert, retrain, gate, redeploy.")  # fmt: skip
@click.option("--from-traffic", is_flag=True, help="Check the traffic the endpoint served (and feedback).")  # fmt: skip
@click.option("--since", default="24h", help="With --from-traffic: how far back (30m, 24h, 7d).")
@click.option("--min-rows", type=click.IntRange(min=1), default=100, help="Labelled rows for quality (100).")  # fmt: skip
@config_option("monitoring")
@click.option("--predictions", type=click.Path(), help="A predictions file of `predict --output`; "
              "with --labels, its scored rows that have labels are the batch (the input is not "
              "read again).")  # fmt: skip
@click.option("--labels", type=click.Path(), help="With --predictions: labels that arrived later, "
              "a CSV/Parquet file of row_id (or the --id-column) and the label column.")  # fmt: skip
@click.option("--model-name", help="Registered model to monitor.")
@click.pass_context
def monitor_cmd(ctx, input_path, simulate_drift, from_traffic, since, min_rows, config,
                predictions, labels, model_name) -> None:  # fmt: skip
    """Check a batch for drift (and quality, with labels); retrain and redeploy on a breach.

    The batch is a file (--input; with labels, quality is checked too), the champion's
    held-out rows (the default; --simulate-drift shifts 40% of their numeric columns),
    the traffic the endpoint served (--from-traffic, labelled by feedback: POST
    /api/v1.0/feedback or /v2/models/<name>/feedback; with --min-rows labelled rows,
    quality and retraining, else drift only), or scored rows of `predict --output` with
    labels that arrived later (--predictions P --labels L, joined by row id).
    `monitor history` lists the runs so far.
    """
    if ctx.invoked_subcommand is not None:
        return
    if sum(map(bool, (input_path, simulate_drift, from_traffic, predictions))) > 1:
        raise click.UsageError(
            "use one of --input, --simulate-drift, --from-traffic, --predictions"
        )
    if bool(predictions) != bool(labels):
        raise click.UsageError("--predictions and --labels go together")
    session.ready(click.echo)
    traffic = (since, min_rows) if from_traffic else None
    labelled = (predictions, labels) if predictions else None
    loop.monitor_command(config, model_name, input_path, simulate_drift, traffic, click.secho,
                         labelled)  # fmt: skip


@monitor_cmd.command("history")
@click.option("--model-name", help="Registered model (default: the monitoring config's).")
@config_option("monitoring")
@click.option("--last", type=click.IntRange(min=1), default=50, help="Runs to show (50).")
@click.option("--column", help="Also list this column's effect size and p-value per run.")
@click.option("--out", type=click.Path(file_okay=False), help="HTML report folder.")
def monitor_history_cmd(model_name, config, last, column, out) -> None:
    """Drift over time: each monitoring run's drift share, per-column effect and p-value,
    and quality; writes an HTML report with a trend chart per column (each monitoring run
    saves it as the `drift_history` artifact, shown in the ZenML dashboard)."""
    drift_history.command(model_name_for(model_name, path=config), last, column, out, click.secho)


@cli.command("schedule")
@click.option("--cron", required=True, help='Cron expression, e.g. "0 * * * *" (hourly).')
@click.option("--input", "input_path", required=True, help="The batch each run checks: a URI "
              "the pods can read, rewritten by your data job.")  # fmt: skip
@config_option("monitoring")
@click.option("--model-name", help="Registered model to watch.")
def schedule_cmd(cron, input_path, config, model_name) -> None:
    """Run the whole loop (monitor → retrain → gate → deploy) on a schedule: a KFP recurring
    run of the continuous-training pipeline on Kubeflow; locally, the crontab line to add."""
    session.ready(click.echo)
    scheduled, message = loop.schedule(
        cron, config, {"batch": input_path, "model_name": model_name}
    )
    click.secho(message, fg="green" if scheduled else "yellow")


@cli.command("compile")
@click.option("--out", "out_dir", type=click.Path(), default="compiled", help="Output folder.")
@click.option("--stack", default="kubeflow", help="Stack spec (stacks/<name>.yaml or a path).")
@click.option("--zenml-url", help="The ZenML server as pods reach it (default: login URL).")
@click.option("--model-name", help="Registered model the pipelines train, serve and watch.")
@click.option("--pipeline", "pipelines", multiple=True, type=click.Choice(PIPELINES), help="Only this one.")  # fmt: skip
def compile_cmd(out_dir, stack, zenml_url, model_name, pipelines) -> None:
    """Write KFP v2 IR YAML for all pipelines (no cluster or Docker; a ZenML server: the
    stack and snapshots the YAML loads are registered there, no run); upload them in KFP."""
    session.ready(click.echo, runs_on_stack=False)  # compiling needs no server
    compile_and_check(out_dir, stack, click.echo, zenml_url, model_name, list(pipelines) or None)


@cli.command("predict")
@click.option("--input", "input_path", required=True, help="Rows to score: a CSV or Parquet file, "
              "or a bucket URI (with --via-endpoint: a CSV or JSON file, a list of objects or "
              "{columns, data}).")  # fmt: skip
@click.option("--output", "output_path", help="Write predictions here as Parquet (path or URI): "
              "scored in process by the batch_inference pipeline, chunk by chunk, with a drift "
              "check.")  # fmt: skip
@click.option("--model-name", help="Registered model name (default: the config's; with "
              "--via-endpoint: any served model).")  # fmt: skip
@click.option("--version", help="With --output: this MLflow version (default: the champion).")
@click.option("--id-column", help="With --output: the input column that identifies rows.")
@config_option("batch_inference")
@click.option("--via-endpoint", is_flag=True, help="Send the rows to the served model over REST, "
              "print JSON (the default without --output).")  # fmt: skip
@click.option("--protocol", type=click.Choice(PROTOCOLS), help="With --via-endpoint: the "
              "deployment that speaks this one.")  # fmt: skip
def predict_cmd(input_path, output_path, model_name, version, id_column, config, via_endpoint,
                protocol) -> None:  # fmt: skip
    """Score a file with the champion in process (--output), or send rows to the endpoint.

    With --output: the batch_inference pipeline reads the file in chunks, checks each as
    the served model would, scores it with the champion (or --version), writes row id,
    prediction, probability, model and version as Parquet, and checks drift.
    """
    if output_path and via_endpoint:
        raise click.UsageError("--via-endpoint prints the predictions; leave out --output")
    if not output_path and (version or id_column or config):
        raise click.UsageError("--version, --id-column and --config need --output")
    if output_path and protocol:
        raise click.UsageError("--protocol goes with --via-endpoint")
    session.ready(click.echo)
    if not output_path:
        click.echo(json.dumps(serving.predict(input_path, protocol, model_name)))
        return
    batch.predict_command(config, input_path, output_path, model_name, version, id_column,
                          click.secho)  # fmt: skip


@cli.command("history")
@MODEL
def history_cmd(model_name) -> None:
    """Champion changes and releases, newest first: when, which version, who or what, why."""
    champions.history(model_name, click.echo, champions.registry_for_reading(click.echo))


@cli.command("rollback")
@MODEL
@click.option("--to", "to", help="Version to bring back (default: the previous champion).")
def rollback_cmd(model_name, to) -> None:
    """Bring back the previous champion (the newest other version in `history`, or --to
    VERSION) and serve it with no downtime (no gate; refused while a release runs)."""
    session.ready(click.echo)
    champions.rollback(model_name, to, click.secho)


@cli.group("champion")
def champion_group() -> None:
    """Move a model's champion by hand (MLflow alias and ZenML stage, always together);
    `history` lists every change with who made it and why, `rollback` undoes the last."""


@champion_group.command("set")
@MODEL
@click.option("--version", required=True, help="MLflow version to make the champion.")
def champion_set_cmd(model_name, version) -> None:
    """Make VERSION the champion by hand (outside the gate); `deploy` then serves it."""
    session.ready(click.echo)
    champions.set_by_hand(model_name, version, click.secho)


@cli.group("stack")
def stack_group() -> None:
    """Register and inspect zenkube's stacks (specs in stacks/*.yaml)."""


@stack_group.command("up")
@click.argument("name", default="local")
def stack_up_cmd(name) -> None:
    """Register stack NAME (local, kubeflow or a YAML path) idempotently and activate it."""
    session.stack_up(name, click.echo)


@stack_group.command("show")
def stack_show_cmd() -> None:
    """Print the active stack and its components."""
    session.stack_show(click.echo)


@stack_group.command("check")
@click.pass_context
def stack_check_cmd(ctx) -> None:
    """Preflight of the active Kubeflow stack: may KFP's pipeline-runner do what our pods
    do (SubjectAccessReviews for the shipped Role), are the CRD, the storage secret and the
    MLflow/ZenML servers there? One line per check with its fix; exit 1 if any fails."""
    if not session.stack_check(click.echo):
        ctx.exit(1)


@cli.group("serve")
def serve_group() -> None:
    """Inspect, stop or repair model servers."""


@serve_group.command("status")
@click.option("--model-name", help="Only this registered model's deployment.")
def serve_status_cmd(model_name) -> None:
    """List deployments: model, protocol, state, endpoint, log file."""
    serving.status(model_name, click.echo, serving.view_for_reading(click.echo))


@serve_group.command("stop")
@click.option("--model-name", help="Only this registered model's server (default: all).")
def serve_stop_cmd(model_name) -> None:
    """Stop local model servers, their workers and fronts (records stay; `deploy` restarts)."""
    session.ready(click.echo)
    serving.stop(model_name, click.echo)


@serve_group.command("repair")
@MODEL
def serve_repair_cmd(model_name) -> None:
    """Put right what a cut-off command left (records, servers, history, releases): said."""
    session.ready(click.echo)
    repair.repair(model_name, click.echo)


for group in (release_cli.release_group, warm_group):
    cli.add_command(group)
if __name__ == "__main__":
    cli()
