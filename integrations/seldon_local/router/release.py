"""A release: a candidate model server beside the champion, and how the front keeps it.

`Release` holds one release's mode (canary: PERCENT % of predictions, sticky by the
caller's request id; shadow: a copy of each), its evidence per role, its state and the
gate's decision (core/release/gate.py judges the evidence). `ReleaseKeeping` is
the front's part: the gate's round every 0.5 s (an abort stops the candidate's traffic at
once; a promote marks it "decided" for the controller to end), release.json beside the
record (with the evidence in full, `stats`), and what a restarted front does with the
release its predecessor left (resumed after a keeper's restart, with its evidence;
recorded as aborted after a fresh start: fail closed).
Which server answers a prediction is routing.py's; the control API is control.py's.
"""

from __future__ import annotations

import asyncio
import collections
import json
import logging
import os
import time

from aiohttp import web

from core.protocol import seldon, v2, wire
from core.release import gate as release_gate
from integrations.seldon_local.router.record import read_json, write_json

log = logging.getLogger("zenkube.front")


def read_answer(protocol: str, text: bytes) -> tuple[str, list]:
    """(request id, one prediction per row) of a 200 answer, read by the protocol's codec;
    ("", []) when unreadable."""
    codec = v2 if protocol == "v2" else seldon
    try:
        request_id, values = codec.decode_response(wire.loads(text))
    except (ValueError, KeyError, IndexError, TypeError, AttributeError, RecursionError):
        return "", []
    return request_id, [v[0] if isinstance(v, list) and len(v) == 1 else v for v in values]


STICKY_BODY_BYTES = 256 * 1024  # a V2 body's "id" is read for stickiness up to this size


def sticky_id(protocol: str, request: web.Request, body: bytes) -> str | None:
    """The request id a caller sent, if any: Seldon's Seldon-Puid header; V2's
    X-Request-Id header or the body's "id" (bodies up to 256 KiB are read for it)."""
    if protocol != "v2":
        return request.headers.get("Seldon-Puid") or None
    if request.headers.get("X-Request-Id"):
        return request.headers["X-Request-Id"]
    if len(body) <= STICKY_BODY_BYTES and b'"id"' in body:
        try:
            return v2.request_id(wire.loads(body))
        except (ValueError, RecursionError):
            return None
    return None


MAX_SHADOW_INFLIGHT = int(os.environ.get("ZENKUBE_SHADOW_INFLIGHT", "32"))
MAX_REMEMBERED = 1_000_000  # predictions kept to join feedback labels to, per release


class Release:
    """A candidate model server beside the champion: its mode, share, evidence, state."""

    def __init__(self, wanted: dict, champion: tuple[str, int], model: str, protocol: str):
        mode = wanted.get("mode")
        if mode not in ("canary", "shadow"):
            raise ValueError('"mode" is "canary" or "shadow"')
        try:
            self.port = int(wanted["port"])
            percent = float(wanted.get("percent", 100.0 if mode == "shadow" else 10.0))
        except (KeyError, TypeError, ValueError):
            raise ValueError('"port" is the candidate server\'s port (a number)') from None
        if mode == "canary" and not 0 < percent <= 100:
            raise ValueError(f'"percent" of a canary is over 0 and at most 100, not {percent}')
        if self.port == champion[1]:
            raise ValueError("the candidate's port is the champion's: start it on its own port")
        if not isinstance(wanted.get("thresholds") or {}, dict):
            raise ValueError('"thresholds" is an object of release thresholds')
        try:
            self.thresholds = release_gate.thresholds(wanted.get("thresholds"))
        except release_gate.ThresholdError as exc:
            raise ValueError(str(exc)) from None
        columns = wanted.get("columns") or []
        try:
            self.columns = json.loads(columns) if isinstance(columns, str) else list(columns)
        except (ValueError, TypeError):
            raise ValueError('"columns" is a JSON list of the input columns') from None
        self.mode, self.percent = mode, 100.0 if mode == "shadow" else percent
        self.version = str(wanted.get("version") or "")
        task = str(wanted.get("task") or "")
        if task not in ("", *release_gate.TASKS):
            raise ValueError('"task" is "classification" or "regression" (or "": unknown)')
        self.task = task  # what the candidate predicts: how the gate judges its answers
        self.server_dir = str(wanted.get("server_dir") or "")
        self.model, self.protocol = model, protocol
        self.champion_version, self.champion_port = champion
        self.state, self.decision, self.next = "running", None, "starting"
        self.started_at, self.ended_at = time.time(), None
        self.allocator = release_gate.Allocator(self.percent)
        self.roles = {"champion": release_gate.RoleStats(), "candidate": release_gate.RoleStats()}
        self.answers: collections.OrderedDict[str, dict] = collections.OrderedDict()
        self.remembered = 0  # predictions held in `answers`
        self.shadow_inflight = 0
        self.shadow_skipped = 0
        self.shadow_tasks: set[asyncio.Task] = set()
        self.answered = collections.Counter()  # answers callers got, by role
        self.resumed_at: list[float] = []  # when a restarted front resumed it

    @classmethod
    def resumed(cls, state: dict, model: str, protocol: str) -> Release:
        """An active release a killed front process left (its release.json), resumed by
        the restarted front: the same candidate, mode, share, thresholds, start (the
        budget goes on), decision and the evidence gathered until its last write (`stats`,
        at most one gate round old); only the answers feedback labels would have been
        joined to are gone (they were in memory)."""
        candidate, champion = state.get("candidate") or {}, state.get("champion") or {}
        wanted = {
            "mode": state.get("mode"),
            "percent": state.get("percent"),
            "port": candidate.get("port"),
            "version": candidate.get("version"),
            "columns": candidate.get("columns") or [],
            "task": candidate.get("task") or "",
            "server_dir": candidate.get("server_dir"),
            "thresholds": state.get("thresholds") or {},
        }
        try:
            champ = (str(champion["version"]), int(champion["port"]))
        except (KeyError, TypeError, ValueError):
            raise ValueError("its champion has no port") from None
        release = cls(wanted, champ, model, protocol)
        release.started_at = float(state.get("started_at") or release.started_at)
        if state.get("state") == "decided" and state.get("decision"):
            release.state, release.decision = "decided", state["decision"]
        release.resumed_at = [*(state.get("resumed_at") or []), time.time()]
        stats = state.get("stats") or {}
        try:
            for role, kept in (stats.get("roles") or {}).items():
                if role in release.roles:
                    release.roles[role] = release_gate.RoleStats.restored(kept)
            release.answered.update({str(k): int(v) for k, v in stats.get("answered", {}).items()})
            release.shadow_skipped = int(stats.get("shadow_skipped") or 0)
        except (AttributeError, TypeError, ValueError):  # unreadable: the evidence restarts
            release.roles = {role: release_gate.RoleStats() for role in release.roles}
            release.answered.clear()
            log.warning("the release's evidence in release.json is unreadable: counted anew")
        release.next = "the front restarted: the release goes on with the evidence it had"
        return release

    def stats(self) -> dict:
        """The evidence in full, for release.json (what `resumed` reads back)."""
        return {
            "roles": {role: stats.state() for role, stats in self.roles.items()},
            "answered": dict(self.answered),
            "shadow_skipped": self.shadow_skipped,
        }

    @property
    def active(self) -> bool:
        return self.state in ("running", "decided")

    def port_of(self, role: str) -> int:
        return self.champion_port if role == "champion" else self.port

    def labels(self, role: str) -> tuple[str, str, str, str]:
        version = self.champion_version if role == "champion" else self.version
        return self.model, version, self.protocol, role

    def remember(self, request_id: str, role: str, predictions: list) -> None:
        """An answer's predictions, for the labels feedback brings later (the oldest
        are forgotten past MAX_REMEMBERED values)."""
        if not request_id or not predictions:
            return
        held = self.answers.setdefault(request_id, {})
        self.remembered += len(predictions) - len(held.get(role, ()))
        held[role] = predictions
        while self.remembered > MAX_REMEMBERED and self.answers:
            _, old = self.answers.popitem(last=False)
            self.remembered -= sum(len(p) for p in old.values())

    def labelled(self, frame) -> None:
        """Labels from one feedback message, joined to both roles' answers by request id."""
        for request_id, row, label in zip(
            frame["_request_id"], frame["_row"], frame["_label"], strict=True
        ):
            for role, predictions in self.answers.get(str(request_id), {}).items():
                if 0 <= int(row) < len(predictions):
                    self.roles[role].label(predictions[int(row)], label)
        for request_id in set(frame["_request_id"]):
            old = self.answers.pop(str(request_id), {})
            self.remembered -= sum(len(p) for p in old.values())

    def evidence(self) -> dict:
        found = release_gate.evidence(self.roles["champion"], self.roles["candidate"], self.task)
        total = sum(self.answered.values())
        found["answered"] = {
            "champion": self.answered["champion"],
            "candidate": self.answered["canary"],
            "candidate_share": round(self.answered["canary"] / total, 4) if total else None,
        }
        if self.mode == "shadow":
            found["shadow"] = {"inflight": self.shadow_inflight, "skipped": self.shadow_skipped}
        return found

    def judge(self, now: float | None = None) -> bool:
        """Run the gate once; True when the state changed (abort: at once, by itself)."""
        now = time.time() if now is None else now
        elapsed = now - self.started_at
        if self.state == "decided":
            decided_at = self.decision["at"]
            if now - decided_at >= release_gate.DECIDED_GRACE_SECONDS:
                reason = (
                    f"decided promote, but nobody ended it within "
                    f"{release_gate.DECIDED_GRACE_SECONDS:g} s (is `release watch` running?)"
                )
                self.finish("aborted", "budget", [reason], now)
                return True
            return False
        if self.state != "running":
            return False
        outcome, reasons, following = release_gate.decide(self.evidence(), self.thresholds, elapsed)
        self.next = following
        if outcome == "abort":
            by = "budget" if reasons and reasons[0].startswith("no decision within") else "gate"
            self.finish("aborted", by, reasons, now)
            return True
        if outcome == "promote":
            self.state = "decided"
            self.decision = {"outcome": "promote", "by": "gate", "reasons": reasons, "at": now}
            return True
        return False

    def finish(self, state: str, by: str, reasons: list[str], now: float | None = None) -> None:
        now = time.time() if now is None else now
        outcome = "promote" if state == "promoted" else "abort"
        gate = self.decision if self.decision and self.decision["outcome"] == outcome else None
        earlier = [r for r in (gate or {}).get("reasons", []) if r not in reasons]
        self.decision = {"outcome": outcome, "by": by, "reasons": [*reasons, *earlier], "at": now}
        self.state, self.ended_at = state, now
        self.next = (
            "promoted: the candidate is the backend"
            if state == "promoted"
            else "aborted: the candidate gets no more traffic"
        )

    def as_dict(self) -> dict:
        return {
            "active": self.active,
            "state": self.state,
            "mode": self.mode,
            "percent": self.percent,
            "champion": {"version": self.champion_version, "port": self.champion_port},
            "candidate": {
                "version": self.version,
                "port": self.port,
                "server_dir": self.server_dir,
                "columns": self.columns,
                "task": self.task,
            },
            "started_at": self.started_at,
            "resumed_at": self.resumed_at,
            "ended_at": self.ended_at,
            "thresholds": self.thresholds,
            "evidence": self.evidence(),
            "decision": self.decision,
            "next": self.next,
        }


class ReleaseKeeping:
    """The release part of `Front` (proxy.py): uses its record, model, protocol, release,
    release_written and write_record."""

    async def judge_release(self, every: float = 0.5) -> None:
        """Run the release gate on the evidence every `every` seconds while a release
        runs (an abort stops the candidate's traffic at once), and keep release.json."""
        while True:
            await asyncio.sleep(every)
            release = self.release
            if release is None:
                continue
            try:
                if release.judge():
                    log.warning(
                        "release of version %s: %s (%s)", release.version, release.state,
                        "; ".join((release.decision or {}).get("reasons", [])),
                    )  # fmt: skip
                self.write_release()
            except Exception:  # noqa: BLE001 - the gate must outlive one bad round
                log.exception("the release gate failed a round")

    def restored_release(self, resume: bool = False) -> dict:
        """The release a previous front process left in release.json. One that was still
        active is resumed when this front is its restart (`resume`: the keeper restarted
        it): the same candidate, mode, share, budget and decision, with the evidence
        gathered from now on. After a fresh start it is over (fail closed: this front
        sends that candidate nothing), recorded as aborted; the controller finishes it."""
        target = self.record.with_name("release.json")
        state = read_json(target)
        if not state:
            return {}
        stats = state.pop("stats", None)  # the evidence in full: only a resume reads it
        if state.get("active") and resume:
            try:
                self.release = Release.resumed({**state, "stats": stats}, self.model, self.protocol)
            except ValueError as exc:
                log.warning("the release in %s cannot be resumed: %s", target, exc)
            else:
                log.warning(
                    "release of version %s resumed after a front restart (%s)",
                    self.release.version, self.release.state,
                )  # fmt: skip
                self.write_release()
                return {}
        if state.get("active"):
            now = time.time()
            reason = "the front restarted during the release; the candidate gets no traffic"
            state.update(active=False, state="aborted", ended_at=now, next=reason)
            state["decision"] = {"outcome": "abort", "by": "front", "reasons": [reason], "at": now}
            tmp = target.with_suffix(".tmp")
            tmp.write_text(json.dumps({**state, "stats": stats}, default=str))
            tmp.replace(target)
        return state

    def write_release(self) -> None:
        """fronts/<model>/release.json, written atomically when what it says changed."""
        release = self.release
        if release is None:
            return
        state = release.as_dict()
        changes = {k: v for k, v in state.items() if k != "next"}
        fingerprint = json.dumps(changes, sort_keys=True, default=str)
        if fingerprint == self.release_written:
            return
        write_json(self.record.with_name("release.json"), {**state, "stats": release.stats()})
        self.release_written = fingerprint
        self.write_record()  # the served record's release part
