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


def trained_report(dataset: str, search: dict | None = None) -> EvaluationReport:
    from core.specs import DataSpec, SplitSpec, TrainerSpec
    from steps.data.load import load_dataset
    from steps.data.split import split_dataset
    from steps.training.evaluate import evaluate
    from steps.training.train import fit_model

    train, valid, test = split_dataset(load_dataset(DataSpec(source=dataset)), SplitSpec())
    spec = TrainerSpec(
        class_path="sklearn.ensemble.RandomForestClassifier",
        params={"n_estimators": 10, "random_state": 0},
        search=search or {},
    )
    model, results = fit_model(train, valid, spec)
    return evaluate(model, test, results)


def test_evaluation_report_names_classes_estimator_and_the_search_winner():
    report = trained_report("breast_cancer", {"max_depth": [1, 3, None]})
    html = report.to_html()
    assert report.estimator == "sklearn.ensemble.RandomForestClassifier"
    assert "malignant (0)" in html and "benign (1)" in html and "_forest" not in html
    assert "f1 on the validation split" in html and "validation f1" in html
    (chosen,) = [s for s in report.search if s["chosen"]]
    best = max(s["score"] for s in report.search)
    assert chosen["score"] == best and chosen is next(
        s for s in report.search if s["score"] == best
    )
    assert "<script" not in html.lower()


def test_binary_report_has_one_roc_curve_and_multiclass_one_per_class():
    binary = trained_report("breast_cancer")
    assert [c["label"] for c in binary.roc_curves] == ["1"]
    assert binary.roc_curves[0]["auc"] == pytest.approx(binary.metrics["roc_auc"])
    assert "ROC curve (positive class: benign (1))" in binary.to_html()
    multi = trained_report("iris")
    assert [c["label"] for c in multi.roc_curves] == ["0", "1", "2"]
    html = multi.to_html()
    assert "one class against the rest" in html and html.count("<polyline") == 3
    assert "virginica (2) (AUC" in html
    # the ROC curve sits beside the metrics and confusion matrix, above the search table,
    # so the dashboard's 384 px frame shows it without scrolling
    row = html[html.index("display:flex") : html.index("</svg></div></div>")]
    assert "metric (test rows)" in row and "Confusion matrix" in row and "<polyline" in row


def test_search_ties_mark_only_the_candidate_the_model_was_fitted_with():
    from sklearn.tree import DecisionTreeClassifier

    from steps.training.evaluate import mark_chosen

    model = DecisionTreeClassifier(max_depth=4)
    search = [
        {"params": {"max_depth": 2}, "score": 0.9},
        {"params": {"max_depth": 4}, "score": 0.95},
        {"params": {"max_depth": None}, "score": 0.95},
    ]
    assert [s["chosen"] for s in mark_chosen(model, search)] == [False, True, False]
    html = EvaluationReport(
        task="classification", metrics={}, rows=1, search=mark_chosen(model, search)
    ).to_html()
    assert "equal scores: the first one in the grid is kept" in html


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
    # Evidently's report needs scripts: a stored file the footer points to, not a visualization.
    assert "evidently drift report" not in html and "<script" not in html
    assert "evidently.html" in html and "needs JavaScript" in html
    assert metadata["drifted_columns"] == "a" and metadata["drift_share"] == 1.0
