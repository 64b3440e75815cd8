"""What every command does first: the process environment, the ZenML store, the stack."""

from __future__ import annotations

from collections.abc import Callable


def prepare() -> None:
    """Point ZenML and MLflow at zenkube's state folder (before ZenML is imported)."""
    from stacks.env import prepare_environment

    prepare_environment()


def ready(echo: Callable[[str], None], stack: str = "local", runs_on_stack: bool = True) -> None:
    """The ZenML repository and `stack` registered (unless another is active); with
    `runs_on_stack`, a stack whose steps run in pods needs a ZenML server."""
    from stacks.env import ensure_zenml_ready, require_server_for_remote_stack

    echo(f"zenkube: preparing the ZenML store and the '{stack}' stack...")
    ensure_zenml_ready(stack)
    if runs_on_stack:
        require_server_for_remote_stack()


def stack_up(name: str, echo: Callable[[str], None] = print) -> None:
    """Register stack NAME idempotently and activate it; say what changed."""
    from stacks.env import prepare_zenml
    from stacks.manage import stack_up as register

    prepare_zenml()
    changes = register(name)
    if changes.changed:
        created, updated = changes.created or "-", changes.updated or "-"
        said = f"Stack '{changes.stack}': created {created}, updated {updated}."
    else:
        said = f"Stack '{changes.stack}' is already registered as specified: no change."
    echo(said)
    echo(f"Active stack: {changes.stack}")


def stack_show(echo: Callable[[str], None] = print) -> None:
    """Print the active stack and its components, one line each."""
    from zenml.client import Client

    from stacks.env import prepare_zenml

    prepare_zenml()
    stack = Client().active_stack_model
    echo(f"Active stack: {stack.name}")
    for ctype, components in stack.components.items():
        for component in components:
            echo(f"  {ctype.value:20s} {component.name} ({component.flavor_name})")
