"""The command-line options several zenkube commands share (run.py, app/release_cli.py)."""

from __future__ import annotations

import click

MODEL = click.option("--model-name", help="Registered model (default: the config's model_name).")


def config_option(pipeline: str):
    """`--config`: the run config of `pipeline` (configs/<pipeline>.yaml by default)."""
    return click.option("--config", type=click.Path(), help=f"Run config (default: configs/{pipeline}.yaml).")  # fmt: skip
