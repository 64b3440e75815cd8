"""No two registered model names meet on one cluster object or one traffic folder.

The names come from hypothesis (any text MLflow could hold) and from the attacks that
broke the earlier rule: another name's hashed form taken literally (`my_model` →
`zenkube-my-model-535d4cfe`, and a model named `my-model-535d4cfe`), names that differ
only in case or punctuation, and `X.shadow` beside X's Seldon shadow folder.
"""

from __future__ import annotations

import random

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.traffic.rows import FOLDER, folder_name
from integrations.k8s import names as k8s_names
from integrations.kserve.manifest import service_name
from integrations.kubeflow.seldon_manifest import SHADOW_FOLDER, predictor_name

NAMES = st.text(min_size=1, max_size=80).filter(lambda s: s.strip() and "/" not in s)
NAMES |= st.from_regex(r"[A-Za-z0-9_. -]{1,70}", fullmatch=True)


def maps(name: str) -> dict[str, str]:
    """Everything a model name becomes on the cluster."""
    return {
        "inferenceservice": service_name(name, "zenkube"),
        "predictor": predictor_name(name),
        "folder": folder_name(name),
    }


def assert_injective(names: set[str]) -> None:
    for kind in ("inferenceservice", "predictor", "folder"):
        seen: dict[str, str] = {}
        for name in names:
            target = maps(name)[kind]
            assert seen.setdefault(target, name) == name, (kind, target, seen[target], name)
    # a model's folder never is another model's shadow folder
    folders = {folder_name(n) for n in names}
    shadows = {folder_name(n) + SHADOW_FOLDER for n in names}
    assert not folders & shadows
    for folder in folders | shadows:
        assert FOLDER.fullmatch(folder), folder  # what the traffic sink accepts


def adversarial(base: list[str]) -> set[str]:
    """`base` with every name's own images taken as names (the collisions issue #35 found)."""
    found = set(base)
    for name in base:
        found |= {service_name(name).removeprefix("zenkube-"), predictor_name(name)}
        found |= {folder_name(name), folder_name(name) + SHADOW_FOLDER}
        found |= {name.upper(), name.lower(), name.replace("_", "-"), name.replace("-", ".")}
    return found


def test_the_names_issue_35_found_colliding_no_longer_do():
    assert service_name("my_model") == "zenkube-my-model-535d4cfe"  # unchanged for it
    assert service_name("my-model-535d4cfe") != service_name("my_model")
    assert predictor_name("my-model-535d4cfe") != predictor_name("my_model")
    assert folder_name("X.shadow") != folder_name("X") + SHADOW_FOLDER
    assert predictor_name("house-prices") == "house-prices"  # plain names stay themselves
    assert folder_name("house_prices") == "house_prices"
    for name in ("my-model-535d4cfe", "0123abcd", "a-deadbeef"):
        assert not k8s_names.problems(predictor_name(name))
        assert predictor_name(name) != name  # looks hashed: hashed again


def test_ten_thousand_random_and_adversarial_names_never_collide():
    rng = random.Random(35)
    alphabet = "abcXYZ019_-. ~é/"
    base = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 70))) for _ in range(3000)]
    base = [b for b in base if b.strip()]
    names = adversarial(base)
    assert len(names) >= 10_000
    assert_injective(names)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(NAMES, min_size=2, max_size=50, unique=True))
def test_distinct_names_map_to_distinct_objects_and_folders(names):
    assert_injective(adversarial(names))


def test_the_sink_writes_where_monitor_reads_and_refuses_other_paths():
    """The logger URL's last segment is the folder itself: the sink never maps it again
    (an injective map applied twice would move a hashed folder)."""
    import asyncio

    import pytest
    from aiohttp import web

    from core.traffic.rows import model_folder
    from core.traffic.sink import Sink
    from integrations.kubeflow.seldon_manifest import logger_url

    async def run():
        sink = Sink("root", 2**20, 60)
        for model in ("house_prices", "House Prices", "my.model", "X.shadow"):
            for shadow in (False, True):
                segment = logger_url("http://sink", model, shadow).rsplit("/", 1)[1]
                folder = model_folder("root", model) + (SHADOW_FOLDER if shadow else "")
                assert str(sink.buffer(segment).log.folder) == folder
        for bad in ("..", "a b", "x.y", "my.model.shadow.0123456789abcdef"):
            with pytest.raises(web.HTTPNotFound):
                sink.buffer(bad)
        for task in sink.tasks:
            task.cancel()

    asyncio.run(run())
