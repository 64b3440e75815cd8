"""`serve repair`: put right, under the model's lock, what an interrupted or killed command
left, in order: the champion (its alias, stage and history entry), a cut-off release
(app/release.py `settle`), then the deployer's unfinished records and their servers."""

from __future__ import annotations


def repair(model_name: str | None, echo=print) -> list[str]:
    """Put right what an interrupted or crashed command left (see
    integrations/zenml_adapters/deployer.py); says what it fixed and returns it."""
    from app.config import model_name as resolve_name
    from app.release import settle
    from core.champion import locks
    from integrations.mlflow import champion
    from integrations.zenml_adapters import deployer

    name = resolve_name(model_name)
    with locks.model_lock(name, "serve repair", echo):
        fixed = champion.repair(name)
        # a cut-off release: its champion, traffic, records and watcher
        fixed += settle(name, echo, revive_watcher=True)
        fixed += deployer.repair(deployer.active_deployer(), name)
    for line in fixed or [f"Nothing to repair for '{name}': champion, records and servers agree."]:
        echo(line)
    return fixed
