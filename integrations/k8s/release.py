"""The release state (RELEASE-DESIGN.md) of a release on a cluster backend (KServe, Seldon).

A cluster release lives on its Kubernetes object: the object's `zenkube.io/release`
annotation holds what was started (mode, share, champion, candidate, thresholds, the
candidate's deployment request) and how it ended, so any process that reaches the API
server (the CLI on a laptop, a pipeline pod) reads the same state back.

There is no front on a cluster. The traffic sink's rows carry both versions' answers
(`_role`, `_version`, failed requests, latency; core/traffic/sink.py); `verdict`
reads them and judges them with the local gate's own code (core/release/gate.py `evidence_from_rows`
and `decide`, the release's thresholds): promote, abort, or inconclusive (None: look
again later; `decide` aborts once the budget is spent). The cluster's release watcher
(the release-check pipeline, steps/deployment/release.py `check_cluster_release`) acts on
it through the deployer's `release_end`; `release status` shows the same evidence.

`ClusterDeployer` holds what both cluster deployers do alike around their object: no
`deploy` while a release runs, and which `release_end` has a release to end.
"""

from __future__ import annotations

import time
from typing import ClassVar

from core.errors import ConfigError, ZenkubeError
from core.release import gate as release_gate
from core.release.running import refuse_while_running
from integrations.zenml_adapters.deployer import DeployerContract
from integrations.zenml_adapters.request import DeploymentRequest

DEFAULT_BUDGET_SECONDS = 1800.0  # core.specs.ReleaseThresholds' default


def started(
    request: DeploymentRequest,
    mode: str,
    percent: int,
    thresholds: dict,
    champion: dict,
    candidate: dict,
) -> dict:
    """The record of a release that starts now (stored on the object)."""
    return {
        "active": True,
        "state": "running",
        "mode": mode,
        "percent": float(percent) if mode == "canary" else 0.0,
        "champion": champion,
        "candidate": {"version": request.model_version, "model_uri": request.model_uri} | candidate,
        "started_at": time.time(),
        "ended_at": None,
        "thresholds": dict(thresholds or {}),
        "decision": None,
        "request": request.model_dump(mode="json"),
    }


def finished(release: dict, outcome: str, by: str, reason: str) -> dict:
    """The record once the release is promoted or aborted."""
    now = time.time()
    return release | {
        "active": False,
        "state": "promoted" if outcome == "promote" else "aborted",
        "ended_at": now,
        "decision": {
            "outcome": outcome,
            "by": by,
            "reasons": [reason] if reason else [],
            "at": now,
        },
    }


def budget_spent(release: dict, now: float | None = None) -> bool:
    budget = (release.get("thresholds") or {}).get("budget_seconds") or DEFAULT_BUDGET_SECONDS
    return bool(release.get("active")) and (now or time.time()) - release["started_at"] > budget


def state(release: dict, backend: dict, now: float | None = None) -> dict:
    """The release state the CLI prints, from the object's record and its status
    (`backend`: the object, the shares the operator reports, readiness)."""
    out = {k: v for k, v in release.items() if k != "request"}
    out["evidence"] = {}  # no front on a cluster: nothing measures the two versions
    out["backend"] = backend
    budget = (release.get("thresholds") or {}).get("budget_seconds") or DEFAULT_BUDGET_SECONDS
    if budget_spent(release, now):
        out["state"] = "decided"
        out["decision"] = {
            "outcome": "abort",
            "by": "budget",
            "reasons": [f"undecided after the budget of {budget:g} s"],
            "at": release["started_at"] + budget,
        }
        out["next"] = (
            "The time budget is spent, so the release ends as an abort: `release abort` (or "
            "the release watcher) takes the candidate's traffic away; the champion serves on."
        )
    elif release.get("active"):
        out["next"] = (
            "The release watcher (`python run.py release schedule`: a recurring run of the "
            "release-check pipeline) judges the traffic sink's rows each run and promotes or "
            "aborts (by hand: `release promote` or `release abort`); undecided after "
            f"{budget:g} s, the release ends as an abort."
        )
    else:
        out["next"] = "Nothing: the release is over."
    return out


def judge(release: dict, rows: list[dict], now: float | None = None) -> dict:
    """The gate's look at a cluster release from the sink's rows (`rows`: as
    `traffic.release_rows` reads them): {evidence, outcome, reasons, next}, where outcome
    is "promote", "abort" or None (inconclusive: not enough evidence yet; `decide` aborts
    once the budget is spent). Only rows of the release's two versions count (a row
    without a version, from a logger configured before rows carried one, counts as its
    role's); the thresholds are the release's own, on top of the gate's defaults; the
    candidate's recorded task (its deployment request's) says how its answers are judged."""
    versions = {
        str((release.get(role) or {}).get("version") or "") for role in ("champion", "candidate")
    }
    mine = [r for r in rows if str(r.get("_version") or "") in versions | {"", "nan", "None"}]
    task = str((release.get("request") or {}).get("task") or "")
    evidence = release_gate.evidence_from_rows(mine, task)
    limits = {**release_gate.DEFAULTS, **(release.get("thresholds") or {})}
    elapsed = (now or time.time()) - float(release.get("started_at") or 0)
    outcome, reasons, following = release_gate.decide(evidence, limits, elapsed)
    return {"evidence": evidence, "outcome": outcome, "reasons": reasons, "next": following}


def release_folders(model_name: str) -> list[str]:
    """Where the cluster's traffic sink writes a release's rows: the model's folder in the
    stack's artifact store, and a Seldon shadow's `<folder>.shadow`."""
    from core.traffic.rows import stack_folder

    folder = stack_folder(model_name)
    return [folder, folder + ".shadow"]


def verdict(model_name: str, release: dict, now: float | None = None) -> dict:
    """`judge` on the rows the sink wrote since the release started."""
    from core.traffic.rows import release_rows

    rows = release_rows(release_folders(model_name), release.get("started_at"))
    return judge(release, rows, now)


def refuse_start(
    request: DeploymentRequest, backend: str, body: dict | None, last: dict | None, champion
) -> None:
    """The checks both cluster deployers make before a release starts: a served champion
    (`body`: its object), no release running (`last`), a version other than the served one."""
    model = request.model_name
    if body is None:
        raise ConfigError(
            f"{model} is not served by {backend}, so a release has no champion to run "
            "beside. `deploy` it first, then start the release."
        )
    if last and last.get("active"):
        raise ConfigError(
            f"{model} already has a {last['mode']} release of version "
            f"{last['candidate']['version']} running; one release per model at a "
            "time. End it with `release promote` or `release abort` first."
        )
    if champion.config.model_uri == request.model_uri:
        raise ConfigError(
            f"Version {request.model_version} of {model} is the served version "
            "already; a release needs another version (--version N)."
        )


def refuse_deploy(state: dict | None, model_name: str) -> None:
    """A ConfigError while a release of `model_name` runs: a swap now would pull the
    champion (and the release's object) from under it."""
    refuse_while_running(state, model_name, "deploy", " on the cluster")


def why(error: BaseException) -> str:
    """A failed release start's reason, for the record."""
    if isinstance(error, ZenkubeError):
        return str(error)[:500]
    return f"the release start was cut off ({type(error).__name__})"


def to_end(release: dict | None, model_name: str, outcome: str, backend: str) -> bool:
    """Whether `release` (the object's record) runs, so `outcome` can end it; False for an
    abort of an aborted release (the caller answers its state: idempotent); otherwise a
    ConfigError: there is nothing to end."""
    if release and release.get("active"):
        return True
    if outcome == "abort" and release and release.get("state") == "aborted":
        return False
    raise ConfigError(
        f"{model_name} has no release running on {backend}, so there is nothing to "
        f"{outcome}. `release status` shows the last one."
    )


class ClusterDeployer(DeployerContract):
    """The deployer contract for a backend whose releases live on a Kubernetes object."""

    BACKEND: ClassVar[str]  # how errors name it: KServe, Seldon Core

    def deploy(self, request: DeploymentRequest, timeout: int = 300):
        """`deploy`, refused while a release of the model runs (its promote deploys the
        candidate through the contract's own `deploy`)."""
        refuse_deploy(self.release_state(request.model_name), request.model_name)
        return DeployerContract.deploy(self, request, timeout)
