"""Every materializer round-trips through a local and a non-local artifact store."""

from __future__ import annotations

from datetime import datetime
from uuid import uuid4

import numpy as np
import pandas as pd
import pytest
from zenml.artifact_stores import LocalArtifactStore, LocalArtifactStoreConfig
from zenml.enums import StackComponentType

from materializers.dataset import Dataset, DatasetMaterializer
from materializers.evaluation_report import EvaluationReport, EvaluationReportMaterializer
from tests.memory_store import memory_artifact_store


def local_artifact_store(path):
    now = datetime.now()
    return LocalArtifactStore(
        name="local",
        id=uuid4(),
        config=LocalArtifactStoreConfig(path=str(path)),
        flavor="local",
        type=StackComponentType.ARTIFACT_STORE,
        user=None,
        created=now,
        updated=now,
    )


@pytest.fixture(params=["local", "memory"])
def artifact_store(request, tmp_path):
    return local_artifact_store(tmp_path) if request.param == "local" else memory_artifact_store()


def round_trip(materializer_class, data, store):
    """Save, check visualizations and metadata, load back; return (loaded, metadata, html)."""
    uri = f"{store.path}/{uuid4().hex}"
    store.makedirs(uri)
    materializer = materializer_class(uri=uri, artifact_store=store)
    materializer.save(data)
    visualizations = materializer.save_visualizations(data)
    assert visualizations, "every zenkube artifact has a visualization"
    html = "".join(store.open(path, "r").read() for path in visualizations)
    metadata = materializer.extract_metadata(data)
    loaded = materializer_class(uri=uri, artifact_store=store).load(type(data))
    return loaded, metadata, html


def test_dataset_round_trip(artifact_store):
    frame = pd.DataFrame({"a": np.arange(5.0), "color": list("rgbrg"), "label": [0, 1, 0, 1, 1]})
    data = Dataset(frame=frame, target="label", task="classification", name="demo")
    loaded, metadata, html = round_trip(DatasetMaterializer, data, artifact_store)
    pd.testing.assert_frame_equal(loaded.frame, frame)
    assert loaded.schema == {"a": "numeric", "color": "categorical"}
    assert (loaded.target, loaded.task) == ("label", "classification")
    assert metadata["rows"] == 5 and metadata["columns"] == 3
    assert metadata["schema_fingerprint"] == data.fingerprint == loaded.fingerprint
    assert "color" in html and "categorical" in html


def test_a_big_dataset_is_written_in_row_groups_and_read_back_equal(artifact_store, monkeypatch):
    import materializers.dataset as dataset

    monkeypatch.setattr(dataset, "CHUNK_ROWS", 7)  # 50 rows: eight row groups
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "a": rng.normal(size=50),
            "gaps": np.where(rng.random(50) < 0.2, np.nan, rng.normal(size=50)),
            "city": rng.choice(["Oslo", "Lima", None], 50),
            "n": np.arange(50),
            "label": rng.integers(0, 2, 50),
        }
    )
    data = Dataset(frame=frame, target="label", task="classification")
    loaded, metadata, _ = round_trip(DatasetMaterializer, data, artifact_store)
    pd.testing.assert_frame_equal(loaded.frame, frame)
    assert metadata["rows"] == 50


@pytest.mark.parametrize("index", ["filtered", "named"])
def test_a_parquet_file_with_a_stored_index_reads_like_pandas_reads_it(tmp_path, index):
    from materializers.dataset import read_parquet

    frame = pd.DataFrame({"a": np.arange(6.0), "b": list("xyzxyz"), "id": range(10, 16)})
    if index == "filtered":
        frame = frame[frame["a"] > 1]  # a non-range index: stored as __index_level_0__
    else:
        frame = frame.set_index("id")  # a named index: stored as a column, read as index
    path = tmp_path / "t.parquet"
    frame.to_parquet(path)
    expected = pd.read_parquet(path).reset_index(drop=True)
    pd.testing.assert_frame_equal(read_parquet(str(path)), expected)


def test_features_is_the_frame_itself_when_it_holds_only_features():
    frame = pd.DataFrame({"a": [1.0], "b": [2.0]})
    unlabelled = Dataset(frame=frame, target="y", task="classification")
    assert unlabelled.features is frame  # a 1M-row batch is not copied to be read
    labelled = Dataset(frame=frame.assign(y=1), target="y", task="classification")
    assert list(labelled.features.columns) == ["a", "b"]


def test_evaluation_report_round_trip(artifact_store):
    report = EvaluationReport(
        task="classification",
        metrics={"accuracy": 0.9, "f1": 0.85},
        rows=40,
        search=[{"params": {"max_depth": 4}, "score": 0.8}],
        estimator="x.Y",
    )
    loaded, metadata, html = round_trip(EvaluationReportMaterializer, report, artifact_store)
    assert loaded == report
    assert metadata["f1"] == 0.85 and metadata["rows"] == 40
    assert "0.8500" in html and "max_depth" in html


def test_drift_report_round_trip_keeps_html(artifact_store):
    from materializers.drift_report import ColumnDrift, DriftReport, DriftReportMaterializer

    report = DriftReport(
        columns=[
            ColumnDrift(
                column="a", kind="numeric", test="ks", statistic=0.4, p_value=0.001, drifted=True
            )
        ],
        drift_share=1.0,
        threshold=0.05,
        reference_rows=10,
        current_rows=5,
        html="<html><body>evidently drift report</body></html>",
        html_note="all rows",
    )
    loaded, metadata, html = round_trip(DriftReportMaterializer, report, artifact_store)
    assert loaded == report and loaded.drifted_columns == ["a"]
    assert "evidently drift report" in html
    assert metadata["drifted_columns"] == "a" and metadata["drift_share"] == 1.0
