"""`run.py warm start|stop|status`: the warm worker's commands (app/warm.py does the work)."""

from __future__ import annotations

import click

from app import warm


@click.group("warm")
def warm_group() -> None:
    """Keep ZenML, MLflow and scikit-learn imported in a warm worker: train, deploy,
    monitor and the loop then start their first step seconds sooner (app/warm.py)."""


@warm_group.command("start")
def warm_start_cmd() -> None:
    """Start the warm worker for this environment (it stops after 30 idle minutes)."""
    warm.start(click.echo)


@warm_group.command("stop")
def warm_stop_cmd() -> None:
    """Stop the warm worker (pipeline commands then import everything themselves)."""
    warm.stop(click.echo)


@warm_group.command("status")
def warm_status_cmd() -> None:
    """Whether the warm worker runs and this shell's pipeline commands run in it (if not,
    the names of what differs from the worker's environment)."""
    warm.status(click.echo)
