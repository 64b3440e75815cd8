"""What a command that would move the champion or the endpoint says while a release runs:
it refuses, changing nothing, and names the two ways to end the release."""

from __future__ import annotations

from core.errors import ConfigError


def refuse_while_running(
    state: dict | None, model_name: str, command: str, where: str = ""
) -> None:
    """A ConfigError when `state` (a release state) is active: a `command` now would pull
    the champion (and the release's candidate) from under it. `where`: e.g. " on the
    cluster"."""
    if not (state or {}).get("active"):
        return
    version = (state.get("candidate") or {}).get("version")
    raise ConfigError(
        f"A {state.get('mode')} release of {model_name} v{version} is running{where}, so "
        f"this {command} changed nothing. End it first: `python run.py release promote "
        f"--model-name {model_name}` (v{version} becomes the champion and takes all "
        f"traffic) or `python run.py release abort --model-name {model_name}`; `python "
        f"run.py release status` shows its evidence."
    )
