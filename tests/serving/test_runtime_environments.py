"""The model-server environments are built with their packages' bytecode (environments.py):
with PYTHONDONTWRITEBYTECODE set, as on these machines, a server start would otherwise
compile its whole import tree from source every time (7.0 s of imports instead of 2.4 s
for a V2 server)."""

from __future__ import annotations

import sys

import pytest

from integrations.seldon_local import environments

# the package each runtime serves with, and one it loads every model with
PACKAGES = {"seldon": ("seldon_core", "mlflow"), "v2": ("mlserver", "mlflow")}


@pytest.mark.parametrize("protocol", sorted(environments.PROTOCOL_LOCKS))
def test_a_runtime_environment_holds_the_bytecode_of_what_its_server_imports(protocol):
    python = environments.runtime_python(protocol, echo=lambda *_: None)
    site = python.parent.parent / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    tag = sys.implementation.cache_tag
    for package in PACKAGES[protocol]:
        folder = site / "site-packages" / package
        sources = sorted(folder.rglob("*.py"))
        assert sources, folder
        missing = [
            s for s in sources if not (s.parent / "__pycache__" / f"{s.stem}.{tag}.pyc").exists()
        ]
        assert missing == [], f"{len(missing)} of {len(sources)} {package} modules uncompiled"


def test_the_build_recipe_is_part_of_the_environment_key(tmp_path, monkeypatch):
    """An environment built before bytecode was compiled at the build is not reused: the
    recipe is hashed into its folder's name."""
    lock = tmp_path / "x.lock"
    lock.write_text("numpy==2.0.0\n")
    before = environments.env_key(lock)
    monkeypatch.setattr(environments, "RECIPE", environments.RECIPE + "-other")
    assert environments.env_key(lock) != before
