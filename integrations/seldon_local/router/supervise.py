"""Who watches whom: the front restarts the model servers behind it, its keeper above
it, and the release watcher beside it; and keeps the logs small.

- Each replica of a model server this front serves (the champion, and an active
  release's candidate; its record `server.json` and launch specs `server.launch.json`,
  `standby<i>.launch.json` in its folder: replicas.py) is restarted when it dies (what
  its process group still holds is killed at once first), on the same port, with backoff (1 s doubling to 60 s; reset after 60 s up); meanwhile the
  front sends requests to another ready replica (proxy.py `targets`). Restarts are
  counted in zenkube_server_restarts_total and in the control answer, ready replicas in
  zenkube_ready_replicas. A damaged model copy (digest mismatch) is not restarted.
- The keeper (keeper.py) restarts this front; this front starts a new keeper when it
  died (kill -9), which adopts this process and the serving socket.
- While a release is active, a dead `release watch` is started again (front.py
  `ModelFront.spawn_watcher`, as `release start` starts the first).
- This front's log and the servers' are kept under ZENKUBE_LOG_MAX_BYTES each (default
  10 MiB; the previous part is kept as `<log>.1`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from aiohttp import ClientError, ClientTimeout

from integrations.seldon_local import process, replicas
from integrations.seldon_local.front import ModelFront, watcher_alive
from integrations.seldon_local.router.record import read_json, write_json
from integrations.seldon_local.router.wire import HEALTH, HOST

log = logging.getLogger("zenkube.front")
LOG_MAX_BYTES = int(os.environ.get("ZENKUBE_LOG_MAX_BYTES", str(10 * 2**20)))
KEEPER = Path(__file__).resolve().parents[1] / "keeper.py"
DOWN_SECONDS = 1.0  # a replica that refused a connection is tried last for this long
RESTART_FLAGS = {"--listen-fd": 1, "--keeper": 1, "--restore": 0}  # what a keeper adds
# seconds a restarted server has to become healthy when its launch spec says none
# (the deployer's default start_timeout, flavor.py)
START_TIMEOUT = 120.0


def cap_log(path: Path, max_bytes: int = LOG_MAX_BYTES) -> bool:
    """Keep a log a process appends to (O_APPEND) under `max_bytes`: copy it to `<log>.1`
    and truncate it in place; the writer's next line lands at the start. True if cut."""
    try:
        if path.stat().st_size <= max_bytes:
            return False
        kept = path.with_name(path.name + ".1")
        with open(path, "rb") as src, open(kept, "wb") as dst:
            src.seek(max(0, path.stat().st_size - max_bytes))
            dst.write(src.read(max_bytes))
        os.truncate(path, 0)
        return True
    except OSError:
        return False


class Supervision:
    """The supervising part of `Front` (proxy.py): uses its server_dir, backend, release,
    session, metrics, labels, restart counters, keeper, listen_fd, record and log_file."""

    def server_record(self) -> dict:
        return read_json(self.server_dir / "server.json") if self.server_dir else {}

    def supervised(self) -> list[tuple[str, Path, int]]:
        """(role, server folder, port) of each model server this front restarts when it
        dies: the champion, and an active release's candidate."""
        found = []
        if self.server_dir is not None:
            found.append(("champion", self.server_dir, self.backend))
        release = self.release
        if release is not None and release.active and release.server_dir:
            found.append(("candidate", Path(release.server_dir), release.port))
        return found

    def watching(self, server_dir: Path, port: int) -> bool:
        """Whether the server in `server_dir` on `port` is still one this front serves."""
        return any(d == server_dir and p == port for _, d, p in self.supervised())

    def learn_replicas(self) -> None:
        """Which replicas each served server has (server.json), before the next round:
        at the front's start and when it is told of a new server."""
        for _, server_dir, port in self.supervised():
            record = read_json(server_dir / "server.json")
            if record.get("port") == port:
                self.replica_ports[port] = [r.port for r in replicas.of(record)]

    async def supervise(self, every: float = 0.5) -> None:
        """Restart each replica of a model server this front serves (champion or
        candidate) when it dies, with backoff (1 s doubling to 60 s; reset after 60 s
        up); keep which replicas each has and how many are ready (proxy.py `targets`)."""
        backoff: dict[tuple[str, int], list[float]] = {}  # -> [failures, up since, next try]
        running: dict[tuple[str, int], asyncio.Task] = {}
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(every)
            now = time.monotonic()
            for role, server_dir, port in self.supervised():
                record = read_json(server_dir / "server.json")
                if record.get("port") != port:
                    continue  # not ours to watch (being replaced, or not told)
                members = replicas.of(record)
                self.replica_ports[port] = [r.port for r in members]
                ready = 0
                for replica in members:
                    key = (str(server_dir), replica.port)
                    if key in running and not running[key].done():
                        self.down[replica.port] = now  # being restarted: not asked
                        continue
                    failures, up_since, next_try = backoff.setdefault(key, [0, now, 0.0])
                    if key in running:  # a restart just ended
                        if running.pop(key).result():
                            backoff[key] = [0, now, 0.0]
                            if role == "champion":
                                self.restart_note = ""
                        else:
                            failures += 1
                            backoff[key] = [failures, up_since, now + min(60.0, 2.0**failures)]
                        continue
                    if not replica.pid:
                        continue  # stopped (`serve stop`, a deploy retiring it)
                    if process.is_alive(replica.pid):
                        if now - up_since > 60:
                            backoff[key][0] = 0
                        ready += now - self.down.get(replica.port, -1e9) > DOWN_SECONDS
                        continue
                    self.down[replica.port] = now  # dead: not asked until it is back
                    if now < next_try:
                        continue
                    if role == "champion":
                        which = f"replica {replica.index + 1} " if len(members) > 1 else ""
                        self.restart_note = f"{which}restarting (attempt {int(failures) + 1})"
                    running[key] = loop.create_task(
                        self.restart(record, role, server_dir, port, replica.index)
                    )
                self.ready[port] = (ready, len(members))
                if role == "champion":
                    self.metrics.set_replicas(self.labels, ready, len(members))

    async def restart(
        self, record: dict, role: str, server_dir: Path, port: int, index: int = 0
    ) -> bool:
        """Start the dead replica `index` of the server on `port` again from its launch
        spec; True once it is healthy (or no longer this front's to serve)."""
        try:
            return await self.restart_once(record, role, server_dir, port, index)
        except Exception as exc:  # noqa: BLE001 - logged; the next round retries
            log.warning("could not restart the %s's model server: %s", role, exc)
            return False

    async def restart_once(
        self, record: dict, role: str, server_dir: Path, port: int, index: int = 0
    ) -> bool:
        (replica,) = [r for r in replicas.of(record) if r.index == index]
        loop = asyncio.get_running_loop()
        # its leader is dead, its workers may still hold the port and a request: the whole
        # group goes first, with SIGKILL (process.py `kill_group` says why not SIGTERM)
        await loop.run_in_executor(None, process.kill_group, replica.pid)
        spec_file = server_dir / replica.spec
        champion = role == "champion"
        if not spec_file.exists() or not (server_dir / "model").exists():
            if champion:
                self.restart_note = "cannot restart: its launch record or model copy is gone"
            return False
        spec = json.loads(spec_file.read_text())
        if not await loop.run_in_executor(None, self.copy_is_intact, server_dir):
            if champion:
                self.restart_note = (
                    "not restarted: the served model copy does not match its digest; "
                    "`python run.py deploy` fetches it again"
                )
            log.warning("the model server died and its model copy is damaged: %s", server_dir)
            return False
        current = read_json(server_dir / "server.json")

        def pid_now() -> int | None:
            mine = [
                r for r in replicas.of(read_json(server_dir / "server.json")) if r.index == index
            ]
            return mine[0].pid if mine else None

        if not self.watching(server_dir, port) or pid_now() != replica.pid:
            return True  # a deploy replaced it meanwhile
        what = f"the {role}'s model server" + (f" (replica {index + 1})" if index else "")
        log.warning("%s (pid %s) died; starting it again", what, replica.pid)
        pid = process.spawn(spec["command"], Path(spec["log"]), spec.get("env", {}), False)
        # Recorded at once: `serve stop` and `deploy` find (and end) the new process.
        self.write_server_record(replicas.with_pid(current, index, pid), server_dir)
        protocol = record.get("protocol") or self.protocol
        health = f"http://{HOST}:{replica.port}{HEALTH.get(protocol, HEALTH['seldon'])}"
        deadline = time.monotonic() + float(spec.get("start_timeout", START_TIMEOUT))
        while (
            time.monotonic() < deadline
            and process.is_alive(pid)
            and self.watching(server_dir, port)
        ):
            if pid_now() != pid:  # a deploy's own
                await loop.run_in_executor(None, process.stop_group, pid, 10.0)
                return True
            try:
                async with self.session.get(health, timeout=ClientTimeout(total=2)) as answer:
                    if answer.status == 200:
                        labels = self.labels
                        if champion:
                            self.restarts += 1
                            self.last_restart = time.time()
                            self.restart_note = ""
                            self.write_record()  # the count outlives this front too
                        elif self.release is not None:
                            labels = self.release.labels("canary")[:3]
                        self.metrics.restarts.labels(*labels).inc()
                        self.down.pop(replica.port, None)
                        log.warning("%s is back (pid %s)", what, pid)
                        return True
            except (TimeoutError, ClientError):
                pass
            await asyncio.sleep(0.25)
        await loop.run_in_executor(None, process.stop_group, pid, 10.0)  # unhealthy or unused
        return not self.watching(server_dir, port)

    @staticmethod
    def copy_is_intact(server_dir: Path) -> bool:
        """The served model copy still matches the digest taken when it was fetched."""
        digest_file = server_dir / "model.sha256"
        if not digest_file.exists():
            return True  # a copy from before digests were kept
        return process.tree_digest(server_dir / "model") == digest_file.read_text().strip()

    def write_server_record(self, record: dict, server_dir: Path | None = None) -> None:
        write_json((server_dir or self.server_dir) / "server.json", record)

    # -- who watches the watchers -----------------------------------------------------
    async def watch_keeper(self, every: float = 0.2) -> None:
        """The keeper restarts this front; this front restarts its keeper (kill -9 of
        it): a new one adopts this process and the serving socket, in the same process
        group (a group stop still ends both). A front whose state folder is removed
        (`make clean`) stops."""
        while not self.stopping:
            await asyncio.sleep(every)
            if not self.record.parent.exists():
                log.warning("the front's folder %s is gone: stopping", self.record.parent)
                os.kill(os.getpid(), signal.SIGTERM)
                return
            if self.keeper is None or self.listen_fd is None or process.is_alive(self.keeper):
                continue
            if self.stopping:
                return
            self.keeper = spawn_keeper(self.listen_fd, self.record)
            log.warning("the front's keeper died: a new one (pid %s) keeps it", self.keeper)
            self.write_record()

    async def watch_watcher(self, every: float = 1.0) -> None:
        """While a release is active, the `release watch` process that finishes it
        (started by `release start`, its pid in release-watch.pid) is started again when
        it died (kill -9); a watcher that ended by itself removes its pid file."""
        watcher = ModelFront(self.record.parent.parent.parent, self.model)
        missing_since = None
        while True:
            await asyncio.sleep(every)
            release = self.release
            pid = watcher.watcher_pid()
            if pid is None or release is None or not release.active or watcher_alive(pid):
                missing_since = None
                continue
            missing_since = missing_since or time.monotonic()
            if time.monotonic() - missing_since < 2 * every:
                continue  # seen dead twice: not one that is just being replaced
            missing_since = None
            new = watcher.spawn_watcher()
            log.warning("the release watcher (pid %s) died: a new one runs as pid %s", pid, new)

    async def keep_logs_small(self, every: float = 1.0) -> None:
        while True:
            await asyncio.sleep(every)
            logs = [self.log_file]
            for _, server_dir, _ in self.supervised():
                logs += [server_dir / replicas.log_name(i) for i in range(replicas.MAX_REPLICAS)]
            for path in logs:
                if path is not None and path.exists():
                    cap_log(path)


def base_command(argv: list[str]) -> list[str]:
    """This front's command line without what its keeper added (to hand a new keeper)."""
    out, skip = [], 0
    for arg in argv:
        if skip:
            skip -= 1
        elif arg in RESTART_FLAGS:
            skip = RESTART_FLAGS[arg]
        else:
            out.append(arg)
    return out


def spawn_keeper(listen_fd: int, record: Path) -> int:
    """A new keeper (keeper.py) for this running front: it adopts this process and the
    serving socket, in this process group."""
    command = [
        sys.executable, str(KEEPER), "--listen-fd", str(listen_fd), "--adopt", str(os.getpid()),
        "--record", str(record), "--", sys.executable, *base_command(sys.argv),
    ]  # fmt: skip
    child = subprocess.Popen(
        command, pass_fds=(listen_fd,), stdin=subprocess.DEVNULL, process_group=os.getpgid(0)
    )
    return child.pid
