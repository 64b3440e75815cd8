"""`run.py predict --output`: a file scored in process by the batch_inference pipeline, chunk
by chunk, with the model version and a drift report; refusals write nothing; labels that
arrive later join by row id for `monitor`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.conftest import cli_in

MODEL = "batch-model"
FEATURES = [f"x{i}" for i in range(5)]


def sample(rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({c: rng.normal(size=rows) for c in FEATURES})
    frame["label"] = (frame["x0"] + frame["x1"] > 0).astype(int)
    return frame


@pytest.fixture(scope="module")
def cli(tmp_path_factory):
    """A champion trained through the CLI, and configs that keep the runs small."""
    root = tmp_path_factory.mktemp("batch")
    run = cli_in(root)
    sample(600, seed=0).to_csv(root / "train.csv", index=False)
    (root / "training.yaml").write_text(
        "parameters:\n  trainer:\n    params: {max_iter: 20, random_state: 0}\n    search: {}\n"
    )
    (root / "batch.yaml").write_text("parameters:\n  chunk_rows: 700\n  drift_rows: 1000\n")
    trained = run(
        "train", "--config", str(root / "training.yaml"), "--dataset", str(root / "train.csv"),
        "--target", "label", "--model-name", MODEL,
    )  # fmt: skip
    assert trained.returncode == 0, trained.stdout + trained.stderr
    run.root = root
    return run


def test_predict_writes_one_prediction_per_row_with_the_model_version_and_a_drift_report(cli):
    batch = sample(2500, seed=1).drop(columns=["label"])
    batch.loc[5, "x2"] = np.nan  # a missing cell: the model fills it in
    batch.to_parquet(cli.root / "big.parquet", index=False)
    out = cli.root / "scored.parquet"
    result = cli(
        "predict", "--input", str(cli.root / "big.parquet"), "--output", str(out),
        "--model-name", MODEL, "--config", str(cli.root / "batch.yaml"),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "✓ score_batch (" in result.stdout and "✓ detect_drift (" in result.stdout
    scored = pd.read_parquet(out)
    assert len(scored) == len(batch) and scored["row_id"].tolist() == list(range(len(batch)))
    assert set(scored["model_version"]) == {"1"} and set(scored["model_name"]) == {MODEL}
    assert scored["probability"].between(0.5, 1.0).all()  # the predicted class's probability
    assert set(scored["prediction"]) <= {0, 1} and scored["scored_at"].nunique() == 1
    assert scored[FEATURES].equals(batch[FEATURES])
    assert "Scored:       2,500 rows" in result.stdout and "(2,500 rows" not in result.stdout
    report = result.stdout.split("Drift report:")[1].split()[0]
    assert "drift" in open(report).read().lower()
    assert "sample of 1,000 rows" in result.stdout  # drift_rows bounds the drift check


def test_a_row_the_served_model_would_refuse_stops_the_run_and_writes_nothing(cli):
    batch = sample(2000, seed=2).drop(columns=["label"])
    batch["x3"] = batch["x3"].astype(object)
    batch.loc[1500, "x3"] = "lots"
    batch.to_csv(cli.root / "bad.csv", index=False)
    out = cli.root / "kept.parquet"
    pd.DataFrame({"earlier": [1]}).to_parquet(out)
    result = cli(
        "predict", "--input", str(cli.root / "bad.csv"), "--output", str(out),
        "--model-name", MODEL, "--config", str(cli.root / "batch.yaml"),
    )  # fmt: skip
    assert result.returncode == 2
    assert "Rows 1,400–1,999 of" in result.stderr
    assert "column 'x3' expects numbers; row 1500 has 'lots'" in result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert list(pd.read_parquet(out).columns) == ["earlier"]  # the earlier file stays
    assert not list(cli.root.glob("kept.parquet.partial-*"))


def test_labels_that_arrive_later_join_by_row_id_and_the_loop_checks_quality(cli):
    batch = sample(900, seed=3)
    batch["customer"] = [f"c-{i}" for i in range(len(batch))]
    batch.drop(columns=["label"]).to_csv(cli.root / "ids.csv", index=False)
    out = cli.root / "ids-scored.parquet"
    result = cli(
        "predict", "--input", str(cli.root / "ids.csv"), "--output", str(out),
        "--model-name", MODEL, "--id-column", "customer",
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert pd.read_parquet(out)["row_id"].tolist() == batch["customer"].tolist()
    labels = batch[["customer", "label"]].iloc[::2].copy()  # half the labels came in
    labels.loc[labels.index[:3], "customer"] = ["nobody-1", "nobody-2", "nobody-3"]
    labels.to_csv(cli.root / "labels.csv", index=False)
    result = cli("monitor", "--predictions", str(out), "--labels", str(cli.root / "labels.csv"))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{len(labels) - 3:,} scored rows of {out} labelled" in result.stdout
    assert "3 labels matched no scored row" in result.stdout
    assert "Quality:      f1=" in result.stdout
    assert "Decision:     no threshold breached" in result.stdout
    labels.rename(columns={"customer": "id"}).to_csv(cli.root / "bad-labels.csv", index=False)
    result = cli("monitor", "--predictions", str(out), "--labels", str(cli.root / "bad-labels.csv"))
    assert result.returncode == 2
    assert "needs the row id column 'customer' and the label column 'label'" in result.stderr
