"""A store prepared before a flavor's module moved (issue #37 moved
integrations/shared_volume.py into integrations/zenml_adapters/) still works after the
pull: the record is found stale and preparing again points the flavor at its new source.
ZenML loads a flavor by the source path it stored, so the old path would fail every
command on a stack that uses it."""

from __future__ import annotations

import json

from zenml.client import Client
from zenml.enums import StackComponentType
from zenml.stack.flavor import Flavor

from app import session
from integrations.zenml_adapters.shared_volume import SharedVolumeArtifactStoreFlavor
from stacks.manage import ZENKUBE_FLAVORS, ensure_flavors, flavor_modules

OLD_SOURCE = "integrations.shared_volume.SharedVolumeArtifactStoreFlavor"


def stored_flavor():
    return Client().get_flavor_by_name_and_type("shared_volume", StackComponentType.ARTIFACT_STORE)


def test_a_flavor_stored_by_its_old_path_is_pointed_where_it_lives_now(zenml_store):
    store = Client().zen_store
    store.delete_flavor(stored_flavor().id)  # registered by the fixture's preparation
    before = SharedVolumeArtifactStoreFlavor().to_model(integration="custom", is_custom=True)
    before.source = OLD_SOURCE  # as a store prepared before the move holds it
    store.create_flavor(before)
    assert stored_flavor().source == OLD_SOURCE

    ensure_flavors()

    assert stored_flavor().source == ZENKUBE_FLAVORS["shared_volume"][1]
    assert Flavor.from_model(stored_flavor()).name == "shared_volume"  # loads again


def test_a_record_naming_a_flavor_module_that_is_gone_prepares_again(zenml_store):
    record = session.write_record("local")
    assert record["flavor_modules"] == flavor_modules()
    assert "integrations/zenml_adapters/shared_volume.py" in record["flavor_modules"]
    assert session.prepared("local") == record

    record["flavor_modules"].append("integrations/shared_volume.py")  # where it was
    session.record_path().write_text(json.dumps(record))
    assert session.prepared("local") is None

    record["key"]["record"] = 1  # a record written before the list existed
    del record["flavor_modules"]
    session.record_path().write_text(json.dumps(record))
    assert session.prepared("local") is None
