"""Model-server environments: built once from a committed lock file, cached by its hash.

The Seldon and MLServer runtimes cannot share zenkube's environment (seldon-core 1.18
pins protobuf<4, numpy<2, Flask<3; MLServer pins fastapi<0.116), exactly as in a
cluster where each is its own image. Each is a venv built in place (venvs are not
relocatable) under a folder keyed by sha256(lock file + Python version), with a
completion marker written last, so an interrupted build is redone, never half-used.

The packages' bytecode is compiled at the build (`--compile-bytecode`), as pip does in an
image: uv compiles none by default, and with PYTHONDONTWRITEBYTECODE set (as on these
machines) every server start compiled mlflow, MLServer, pandas... from source again
(importing a V2 server's packages: 7.0 s without .pyc, 2.4 s with; Seldon's 9.7 s / 2.9 s).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from core.errors import ZenkubeError

REQUIREMENTS = Path(__file__).resolve().parent / "requirements"
PROTOCOL_LOCKS = {"seldon": "seldon.lock", "v2": "v2.lock"}
MARKER = ".zenkube-complete"
# how an environment is built, part of its key: an environment built another way (before
# bytecode was compiled at the build) is built again once, in a new folder
RECIPE = "uv-no-deps-compile-bytecode"


def cache_root() -> Path:
    default = (
        Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "zenkube" / "runtimes"
    )
    return Path(os.environ.get("ZENKUBE_RUNTIME_CACHE", default))


def env_key(lock: Path) -> str:
    digest = hashlib.sha256(lock.read_bytes())
    digest.update(f"{sys.version_info.major}.{sys.version_info.minor}".encode())
    digest.update(RECIPE.encode())
    return digest.hexdigest()[:16]


def _uv() -> str:
    candidate = Path(sys.executable).parent / "uv"
    return str(candidate) if candidate.exists() else (shutil.which("uv") or "uv")


def runtime_python(protocol: str, echo=print) -> Path:
    """The python of the runtime env for `protocol`, building it first if needed."""
    if protocol not in PROTOCOL_LOCKS:
        raise ZenkubeError(
            f"Unknown protocol '{protocol}'; use one of {', '.join(PROTOCOL_LOCKS)}."
        )
    lock = REQUIREMENTS / PROTOCOL_LOCKS[protocol]
    target = cache_root() / f"{protocol}-{env_key(lock)}"
    python = target / "bin" / "python"
    if (target / MARKER).exists():
        return python
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target.parent / f".{target.name}.lock", "w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)  # one builder at a time; others wait, then reuse
        if (target / MARKER).exists():
            return python
        _build(protocol, lock, target, echo)
    return python


def _build(protocol: str, lock: Path, target: Path, echo) -> None:
    started = time.monotonic()
    echo(f"zenkube: building the '{protocol}' model-server environment (once; cached in {target})")
    if target.exists():
        shutil.rmtree(target)
    base_python = getattr(sys, "_base_executable", sys.executable)
    steps = [
        (
            "creating the virtualenv",
            [_uv(), "venv", "--quiet", "--python", base_python, str(target)],
        ),
        (
            f"installing {sum(1 for line in lock.read_text().splitlines() if '==' in line)} pinned packages",
            [
                _uv(),
                "pip",
                "install",
                "--python",
                str(target / "bin" / "python"),
                "--no-deps",
                "--compile-bytecode",
                "-r",
                str(lock),
            ],
        ),
        (
            "checking dependencies",
            [_uv(), "pip", "check", "--python", str(target / "bin" / "python")],
        ),
    ]
    for i, (what, command) in enumerate(steps, 1):
        echo(f"zenkube:   [{i}/{len(steps)}] {what}...")
        result = subprocess.run(command, capture_output=True, text=True)
        if result.returncode != 0:
            raise ZenkubeError(
                f"Building the '{protocol}' model-server environment failed while {what}:\n"
                f"{(result.stderr or result.stdout)[-2000:]}\nFix the lock file {lock} or the "
                "network access to the package index, then deploy again."
            )
    (target / MARKER).write_text(lock.name)
    echo(f"zenkube:   ready in {time.monotonic() - started:.1f}s")
