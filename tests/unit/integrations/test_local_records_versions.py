"""`history` lists every version with its gate outcome and the batches it trained on; the
ZenML-free reader (integrations/seldon_local/local_records.py) reads them from MLflow's own SQLite
file as MLflow's client does."""

from __future__ import annotations

from integrations.seldon_local.local_records import Registry


def test_version_tags_read_from_the_file_match_mlflows_client(tmp_path):
    from mlflow.tracking import MlflowClient

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri, registry_uri=uri)
    client.create_registered_model("m")
    tags = [
        {"zenkube.gate_outcome": "promote", "zenkube.trained_on": "v1 training rows (320)"},
        {"zenkube.gate_outcome": "inconclusive", "zenkube.gate_reason": "inconclusive: …"},
        {},
    ]
    for version_tags in tags:
        client.create_model_version("m", str(tmp_path), tags=version_tags)
    read = Registry(uri).version_tags("m")
    assert read == [("3", {}), ("2", tags[1]), ("1", tags[0])]
    assert read == Registry(uri)._client_version_tags("m")
    assert Registry(uri).version_tags("other") == []
