"""Batch scoring answers what the served endpoint answers: the same rows (missing cells,
unseen categories, dates, booleans, columns in any order) written to a file and scored in
process get the endpoint's predictions on both protocols, and a file holding a request the
servers refuse is refused with the same reason. Reuses test_conformance's served models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import batch
from core.errors import DataValidationError
from integrations.mlflow import registry as mlflow_registry
from integrations.seldon_local import client
from steps.inference.score import load_scoring_model, score_file
from tests.serving import test_conformance as conformance
from tests.serving.test_conformance import BAD, GOOD, SELDON, in_process_frame, row

served = conformance.served  # the module fixture: its own trained, served models here

COLUMNS = ["age", "score", "city", "signup", "member"]
# Missing cells in every column, an unseen category, a whole row missing.
AWKWARD = [
    GOOD,
    {**GOOD, "city": "Atlantis", "age": None},
    {"age": None, "score": None, "city": None, "signup": None, "member": None},
    {**GOOD, "member": None, "signup": None, "score": 1234567.5},
    {**GOOD, "city": "Rome", "member": False, "age": 3},
]


@pytest.fixture(scope="module")
def champion(served):
    mlflow_registry.configure_from_stack()
    return load_scoring_model(mlflow_registry.get_champion(SELDON))


def endpoint_answers(served, frame: pd.DataFrame) -> list:
    answers = [client.predict(served[p], p, frame) for p in ("seldon", "v2")]
    assert answers[0] == answers[1]
    return answers[0]


def scored(champion, path, tmp_path) -> list:
    out = tmp_path / "scored.parquet"
    score_file(champion, str(path), str(out), chunk_rows=2)  # several chunks, as a big file
    return pd.read_parquet(out)["prediction"].tolist()


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(rows=st.lists(row, min_size=1, max_size=6), order=st.permutations(COLUMNS))
def test_a_scored_parquet_file_gets_the_endpoints_answers(served, champion, tmp_path, rows, order):
    frame = in_process_frame(rows)[list(order)]
    path = tmp_path / "rows.parquet"
    frame.to_parquet(path, index=False)
    assert scored(champion, path, tmp_path) == endpoint_answers(served, frame)


def test_missing_cells_and_unseen_categories_get_the_endpoints_answers_from_csv_too(
    served, champion, tmp_path
):
    frame = in_process_frame(AWKWARD)
    frame.to_csv(tmp_path / "rows.csv", index=False)
    frame.to_parquet(tmp_path / "rows.parquet", index=False)
    expected = endpoint_answers(served, frame)
    assert scored(champion, tmp_path / "rows.csv", tmp_path) == expected
    assert scored(champion, tmp_path / "rows.parquet", tmp_path) == expected


def test_the_batch_pipeline_scores_with_the_served_version(served, tmp_path):
    frame = in_process_frame(AWKWARD * 3)
    frame["ticket"] = [f"t{i}" for i in range(len(frame))]
    frame.to_parquet(tmp_path / "rows.parquet", index=False)
    result = batch.predict(
        None,
        {
            "model_name": SELDON,
            "input_path": str(tmp_path / "rows.parquet"),
            "output_path": str(tmp_path / "out.parquet"),
            "id_column": "ticket",
            "chunk_rows": 4,
        },
    )
    out = pd.read_parquet(tmp_path / "out.parquet")
    assert out["prediction"].tolist() == endpoint_answers(served, frame[COLUMNS])
    assert out["row_id"].tolist() == frame["ticket"].tolist()
    assert result.scored.rows == len(frame) and result.scored.chunks == 4
    assert result.scored.model_version == mlflow_registry.get_champion(SELDON).version
    assert {c.column for c in result.drift.columns} == set(COLUMNS)


# The kinds of bad request a file can hold too (the others are about HTTP bodies).
FILE_KINDS = [
    "text in a numeric column",
    "a numeric string",
    "a number in a text column",
    "an unknown column",
    "a missing column",
    "infinity",
]


@pytest.mark.parametrize("kind", FILE_KINDS)
def test_a_file_the_servers_would_refuse_is_refused_with_their_reason(champion, tmp_path, kind):
    frame = pd.DataFrame([GOOD, GOOD])
    if kind == "text in a numeric column":
        frame["age"] = ["old", "old"]
    elif kind == "a numeric string":
        frame["score"] = ["1.5", "1.5"]
    elif kind == "a number in a text column":
        frame["city"] = [7, 7]
    elif kind == "an unknown column":
        frame = frame.rename(columns={"age": "years"})
    elif kind == "a missing column":
        frame = frame.drop(columns=["age"])
    elif kind == "infinity":
        frame["age"] = [np.inf, np.inf]
    frame.to_parquet(tmp_path / "bad.parquet", index=False)
    with pytest.raises(DataValidationError) as caught:
        score_file(champion, str(tmp_path / "bad.parquet"), str(tmp_path / "out.parquet"))
    assert BAD[kind][1] in str(caught.value)
    assert not (tmp_path / "out.parquet").exists()
