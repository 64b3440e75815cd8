"""The name a local V2 server is served under: the registered model's, or the one an older
server was launched with (it keeps answering under it until the next deploy)."""

from __future__ import annotations

import json
import uuid

from core.protocol import v2_model_name
from integrations.seldon_local.service import SeldonLocalService, SeldonLocalServiceConfig


def service(tmp_path, protocol: str) -> SeldonLocalService:
    config = SeldonLocalServiceConfig(
        model_name="house-prices", model_uri="m", protocol=protocol, state_dir=str(tmp_path)
    )
    return SeldonLocalService(uuid=uuid.uuid4(), config=config)


def test_a_v2_model_is_served_under_its_registered_name(tmp_path):
    v2 = service(tmp_path, "v2")
    assert v2.served_name == "house-prices"
    assert service(tmp_path, "seldon").served_name == "classifier"  # the graph node's name
    assert v2_model_name("a b/c") == "a_b_c" and v2_model_name(".x") == "_.x"


def test_a_server_launched_under_the_old_name_keeps_it(tmp_path):
    v2 = service(tmp_path, "v2")
    v2.workdir.mkdir(parents=True)
    launch = v2.log_file.with_name("server.launch.json")
    launch.write_text(json.dumps({"command": ["python", "x.py", "--model-name", "classifier"]}))
    assert v2.served_name == "classifier"
    launch.write_text("not json")
    assert v2.served_name == "house-prices"


def test_the_read_only_view_names_the_same_endpoint_as_the_service(tmp_path):
    """`serve status` reads service records without ZenML (local_records.LocalService):
    a V2 deployment's URL is the one deploy printed (the registered model's name), not
    /v2/models/classifier/."""
    from integrations.seldon_local.local_records import LocalService, _Config

    urls = {}
    for protocol in ("v2", "seldon"):
        served = service(tmp_path, protocol)
        served.workdir.mkdir(parents=True)
        (served.workdir / "server.json").write_text(json.dumps({"port": 4100}))
        view = LocalService(uuid=served.uuid, config=_Config(served.config.model_dump()), labels={})
        assert view.served_name == served.served_name
        urls[protocol] = view.prediction_url
    assert urls["v2"] == "http://127.0.0.1:4100/v2/models/house-prices/infer"
    assert urls["seldon"] == "http://127.0.0.1:4100/api/v1.0/predictions"
