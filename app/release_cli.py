"""`run.py release ...`: the release commands' options and help (run.py adds the group);
what each does is app/release.py's."""

from __future__ import annotations

import click

from app.options import MODEL
from app.release import abort, check, promote, schedule, start, status, watch


@click.group("release")
def release_group() -> None:
    """Serve a new version beside the champion (canary or shadow) until live evidence
    promotes or aborts it. The local stack's front gathers the evidence (errors,
    latency, prediction shift, quality once feedback arrives) and decides with the
    thresholds of configs/deployment.yaml's `release:` block."""


@release_group.command("start")
@click.option("--shadow", is_flag=True, help="The candidate gets a copy of every request; its answers are compared, never returned.")  # fmt: skip
@click.option("--canary", type=click.FloatRange(0, 100, min_open=True, max_open=True), metavar="PCT",
              help="The candidate answers PCT % of requests (sticky per request id).")  # fmt: skip
@click.option("--version", help="MLflow version to release (default: the newest that passed the "
              "offline gate, tagged zenkube.offline_gate=passed, and is not the champion).")  # fmt: skip
@click.option("--force", is_flag=True, help="Release a --version that did not pass the offline "
              "gate anyway; it is then promoted only on labelled evidence (or by hand).")  # fmt: skip
@MODEL
def start_cmd(shadow, canary, version, force, model_name) -> None:
    """Start a release beside the served champion (default: configs/deployment.yaml's
    release mode, else a canary at its canary_percent). The candidate is health- and
    smoke-checked first; a detached watcher promotes or aborts it once the evidence is
    clear (log: the model's front folder, release-watch.log). A version that did not pass
    the offline gate is refused unless --force."""
    from app import session

    if shadow and canary is not None:
        raise click.UsageError("--shadow and --canary PCT exclude each other: pick one.")
    session.ready(click.echo)
    mode = "shadow" if shadow else ("canary" if canary is not None else None)
    start(model_name, mode, canary, version, click.echo, force=force)


@release_group.command("status")
@MODEL
def status_cmd(model_name) -> None:
    """Shares, request counts, the evidence so far, the decision and what decides next."""
    from app import serving

    status(model_name, click.echo, serving.view_for_reading(click.echo))


@release_group.command("promote")
@MODEL
def promote_cmd(model_name) -> None:
    """Promote now: the candidate becomes the champion (alias + stage, in `history`)
    and takes all traffic; the old server stops."""
    from app import session

    session.ready(click.echo)
    promote(model_name, click.echo)


@release_group.command("abort")
@click.option("--reason", help="Why (recorded in `history`).")
@MODEL
def abort_cmd(reason, model_name) -> None:
    """Abort now: the candidate gets no more traffic and stops; the champion never moved."""
    from app import session

    session.ready(click.echo)
    abort(model_name, reason, click.echo)


@release_group.command("check")
@MODEL
def check_cmd(model_name) -> None:
    """On a cluster: judge the running release on the traffic sink's rows now and promote
    or abort it if the gate decides (what each scheduled release-check run does)."""
    from app import session

    session.ready(click.echo)
    check(model_name, click.echo)


@release_group.command("schedule")
@click.option("--cron", default="*/5 * * * *", show_default=True,
              help="When the release-check pipeline runs (cron expression).")  # fmt: skip
@MODEL
def schedule_cmd(cron, model_name) -> None:
    """On a Kubeflow stack: run the release-check pipeline on a schedule (a KFP recurring
    run), the cluster's release watcher: each run promotes or aborts the model's running
    release once the gate decides, and does nothing when none runs."""
    from app import session

    session.ready(click.echo)
    schedule(model_name, cron, click.echo)


@release_group.command("watch", hidden=True)
@click.option("--model-name", required=True)
@click.option("--state-dir", required=True, type=click.Path())
@click.option("--interval", type=float, default=0.5)
def watch_cmd(model_name, state_dir, interval) -> None:
    """Finish the model's release once its front decides it (spawned by `release start`)."""
    watch(model_name, state_dir, interval, click.echo)
