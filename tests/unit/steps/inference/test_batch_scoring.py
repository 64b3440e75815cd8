"""Batch scoring's plain parts: chunked answers equal one predict, the one-pass probability,
a bounded uniform drift sample, and an output that appears only when every row is scored."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import GradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline

from core.errors import DataValidationError
from integrations.seldon_local.runtime.validation import Column
from steps.inference.score import Scorer, ScoringModel, UniformSample, score_file

COLUMNS = [f"c{i}" for i in range(4)]


def data(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(rows, len(COLUMNS))), columns=COLUMNS)


@pytest.fixture(scope="module")
def model():
    x = data(400)
    y = np.where(x["c0"] + x["c1"] > 0, "yes", "no")
    fitted = make_pipeline(SimpleImputer(), RandomForestClassifier(n_estimators=15, random_state=0))
    return ScoringModel(fitted.fit(x, y), [Column(c, True) for c in COLUMNS], "m", "3")


@pytest.mark.parametrize("estimator", [RandomForestClassifier, GradientBoostingClassifier])
def test_the_probability_is_the_predicted_classs_and_predictions_are_predicts(estimator):
    x = data(300)
    y = (x["c0"] > 0).astype(int)
    fitted = estimator(random_state=0).fit(x, y)
    predictions, probability = Scorer(fitted).predict(x)
    assert (predictions == fitted.predict(x)).all()
    proba = fitted.predict_proba(x)
    assert np.allclose(probability, proba[np.arange(len(x)), predictions])


def test_chunks_give_the_answers_of_one_predict_and_every_row_once(model, tmp_path):
    x = data(2_345, seed=1)
    x.loc[7, "c2"] = np.nan
    x.to_parquet(tmp_path / "in.parquet", index=False)
    seen = []
    scored, sample = score_file(
        model,
        str(tmp_path / "in.parquet"),
        str(tmp_path / "out.parquet"),
        chunk_rows=500,
        drift_rows=300,
        progress=lambda rows, chunks, seconds: seen.append((rows, chunks)),
    )
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert out["prediction"].tolist() == model.model.predict(x).tolist()
    assert out["row_id"].tolist() == list(range(len(x)))
    assert (scored.rows, scored.chunks, scored.model_version) == (len(x), 5, "3")
    assert seen[-1] == (len(x), 5) and len(sample) == 300
    assert sample.columns.tolist() == COLUMNS


def test_the_drift_sample_is_bounded_and_uniform_over_the_stream():
    sample = UniformSample(1_000, seed=1)
    for start in range(0, 50_000, 3_000):
        sample.add(pd.DataFrame({"i": np.arange(start, min(start + 3_000, 50_000))}))
    kept = sample.frame["i"].to_numpy()
    assert len(kept) == 1_000 and (np.diff(kept) > 0).all()  # in file order, no repeats
    counts = np.histogram(kept, bins=5, range=(0, 50_000))[0]
    assert counts.min() > 150  # every part of the file is represented (200 expected each)


def test_a_refused_chunk_leaves_no_output_and_names_the_files_row(model, tmp_path):
    x = data(1_000)
    x["c1"] = x["c1"].astype(object)
    x.loc[812, "c1"] = "oops"
    x.to_csv(tmp_path / "in.csv", index=False)
    out = tmp_path / "out.parquet"
    with pytest.raises(DataValidationError, match=r"Rows 800–999 of .* row 812 has 'oops'"):
        score_file(model, str(tmp_path / "in.csv"), str(out), chunk_rows=200)
    assert list(tmp_path.iterdir()) == [tmp_path / "in.csv"]  # no output, no partial file


def test_an_empty_file_is_refused(model, tmp_path):
    data(0).to_parquet(tmp_path / "in.parquet", index=False)
    with pytest.raises(DataValidationError, match="no rows to score"):
        score_file(model, str(tmp_path / "in.parquet"), str(tmp_path / "out.parquet"))
    assert not (tmp_path / "out.parquet").exists()


@pytest.mark.parametrize(
    "content,says",
    [
        ("", "is empty: it has no header row and no rows to score. Give a CSV whose first "
         "line is a header row of the model's columns (c0, c1, c2, c3), then one row per line"),
        ("\n\n", "is empty: it has no header row"),
        ("age,city\n", "has a header row (age, city) but no rows to score under it. Give a CSV "
         "whose first line is a header row of the model's columns (c0, c1, c2, c3)"),
        ("c0,c1,c2,c3\n", "has a header row but no rows to score under it. Add the rows to "
         "score under the header, one per line"),
    ],
)  # fmt: skip
def test_a_csv_with_no_rows_is_refused_saying_what_it_needs(model, tmp_path, content, says):
    (tmp_path / "in.csv").write_text(content)
    with pytest.raises(DataValidationError) as raised:
        score_file(model, str(tmp_path / "in.csv"), str(tmp_path / "out.parquet"))
    message = str(raised.value)
    assert message.startswith(f"{tmp_path / 'in.csv'} ") and says in message
    assert message.endswith(f"Nothing was written to {tmp_path / 'out.parquet'}.")
    assert not (tmp_path / "out.parquet").exists()


def test_the_columns_the_model_left_out_are_passed_over_and_others_refused(model, tmp_path):
    from dataclasses import replace

    x = data(30, seed=2)
    file = x.assign(Order=range(30), PID=[f"p{i}" for i in range(30)], label="yes")
    file.to_csv(tmp_path / "in.csv", index=False)
    knowing = replace(model, passed_over=("label", "Order", "PID"))
    score_file(knowing, str(tmp_path / "in.csv"), str(tmp_path / "out.parquet"), chunk_rows=7)
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert out["prediction"].tolist() == model.model.predict(x).tolist()
    assert "Order" not in out.columns  # not features: not in the predictions file
    with pytest.raises(DataValidationError, match="unknown column\\(s\\): Order, PID, label"):
        score_file(model, str(tmp_path / "in.csv"), str(tmp_path / "out2.parquet"))
