"""zenkube command line: train, serve and monitor scikit-learn models with ZenML.

Run from the repository root. With no command, runs the whole loop on the local stack.
"""

from __future__ import annotations

import sys
import traceback

import click

from stacks.env import prepare_environment

prepare_environment()


class Context:
    debug: bool = False


def _fail(exc: BaseException, debug: bool) -> None:
    from steps.errors import ZenkubeError

    if debug:
        traceback.print_exception(exc)
    user_error = _user_error(exc)
    if user_error is not None:
        click.secho(f"Error: {user_error}", fg="red", err=True)
    else:
        click.secho(f"Unexpected error: {type(exc).__name__}: {exc}", fg="red", err=True)
        if not debug:
            click.echo("Run again with --debug to see the traceback.", err=True)
    del ZenkubeError
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


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Show full tracebacks and ZenML's own logs.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """zenkube: the train → serve → monitor loop for scikit-learn models on ZenML.

    With no command: set up the local stack, train and promote a model, and say where
    to look. Every command accepts --help.
    """
    ctx.obj = Context()
    ctx.obj.debug = debug
    if ctx.invoked_subcommand is None:
        ctx.invoke(loop)


def _ready(stack: str = "local") -> None:
    from stacks.env import ensure_zenml_ready

    click.echo(f"zenkube: preparing the ZenML store and the '{stack}' stack...")
    ensure_zenml_ready(stack)


@cli.command("loop")
@click.pass_obj
def loop(obj: Context) -> None:
    """The whole loop on the local stack: train (and promote)."""
    try:
        _ready()
        _train(None, None, None)
    except Exception as exc:  # one place turns errors into messages
        _fail(exc, obj.debug)


def _train(config, dataset, target):
    from pipelines import runs

    overrides = {"data.source": dataset, "data.target": target}
    if dataset and target is None and not _is_bundled(dataset):
        overrides["data.target"] = None
    click.echo("zenkube: running the training pipeline...")
    result = runs.train(config, overrides)
    _print_training(result)
    return result


def _is_bundled(name: str) -> bool:
    from steps.specs import BUNDLED_DATASETS

    return name in BUNDLED_DATASETS


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
    click.echo(f"  MLflow UI:      mlflow ui --backend-store-uri {tracker.get_tracking_uri()}")
    click.echo("  ZenML runs:     zenml pipeline runs list   (dashboard: zenml login --local)")


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
@click.pass_obj
def train(obj: Context, config, dataset, target) -> None:
    """Train, evaluate and register a model; promote it if it beats the champion."""
    try:
        _ready()
        _train(config, dataset, target)
    except Exception as exc:
        _fail(exc, obj.debug)


if __name__ == "__main__":
    cli()
