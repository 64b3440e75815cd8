"""Monitoring end to end on a real store: no drift, drift → retraining, quality alert, bad input."""

from __future__ import annotations

import json
from html import escape

import numpy as np
import pandas as pd
import pytest

from app import loop, runner
from core.errors import DataValidationError
from integrations.mlflow import registry as mlflow_registry
from tests.conftest import FAST_TRAINER

MODEL = "monitored"
FEATURES = [f"x{i}" for i in range(6)]


def sample(rows: int, seed: int, shift: dict[str, float] | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({c: rng.normal(size=rows) for c in FEATURES})
    frame["label"] = (frame["x0"] + frame["x1"] + 0.3 * rng.normal(size=rows) > 0).astype(int)
    for column, amount in (shift or {}).items():
        frame[column] += amount
    return frame


def write(frame: pd.DataFrame, folder, name: str) -> str:
    path = folder / name
    frame.to_csv(path, index=False)
    return str(path)


@pytest.fixture(scope="module")
def champion(module_store, tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    path = write(sample(1200, seed=0), folder, "train.csv")
    result = runner.train(
        None,
        {
            "model_name": MODEL,
            **FAST_TRAINER,
            "data.source": path,
            "data.target": "label",
        },
    )
    assert result.decision.promoted
    return result, folder


def monitor(path: str):
    return loop.monitor(
        None,
        {"model_name": MODEL, "batch": path},
        training_overrides=FAST_TRAINER,
        redeploy=False,
        echo=lambda *_: None,
    )


def champion_version() -> str:
    mlflow_registry.configure_from_stack()
    return mlflow_registry.get_champion(MODEL).version


def training_runs() -> int:
    """How many versions training registered (the loop retrains inside its own run)."""
    from mlflow.tracking import MlflowClient

    mlflow_registry.configure_from_stack()
    return len(MlflowClient().search_model_versions(f"name = '{MODEL}'"))


def outcome_tags(run_name: str) -> list[str]:
    from zenml.client import Client

    tags = Client().get_pipeline_run(run_name).tags
    return [t.name for t in tags if t.name.startswith("zenkube:")]


def zenml_counts() -> dict[str, int]:
    """How many ZenML Model versions of MODEL, and versions of the artifacts a retraining
    writes, the store holds."""
    from zenml.client import Client

    client = Client()
    counts = {"model versions": client.list_model_versions(model=MODEL, size=1).total}
    for name in ("model", "train_set", "test_set", "evaluation_report", "promotion_decision"):
        counts[name] = client.list_artifact_versions(artifact=name, size=1).total
    return counts


def test_held_out_rows_raise_no_alert_and_the_run_looks_like_nothing_happened(champion):
    """What `monitor` checks by default, the champion's held-out rows: no alert, so no model,
    data set or ZenML Model version is written, and the runs list says why."""
    from zenml.client import Client

    from steps.monitoring import retrain_if_needed

    before, registered = zenml_counts(), training_runs()
    held_out, shifted = loop.batch_file(MODEL, simulate_drift=False)
    assert shifted == [] and held_out.endswith("held-out.csv")
    result = monitor(held_out)
    assert result.drift.drifted_columns == []
    assert not result.decision.alert and result.retraining is None
    assert training_runs() == registered and zenml_counts() == before
    # The retraining step wrote its decision only: no candidate, no champion compared.
    outputs = Client().get_pipeline_run(result.run_name).steps[retrain_if_needed.name].outputs
    assert set(outputs) == {"retraining_decision"}
    decision = outputs["retraining_decision"][0].load()
    assert decision.reason.startswith("skipped: no retraining needed") and not decision.promoted
    assert result.no_retraining == decision.reason  # what run.py's summary says
    assert decision.candidate_score is None and decision.champion_status == ""
    # `zenml pipeline runs list --columns name,status,tags` tells this run apart (its tag).
    assert outcome_tags(result.run_name) == ["zenkube:nothing-to-do"]
    (listed,) = (
        Client()
        .list_pipeline_runs(name=result.run_name, tags=["zenkube:nothing-to-do"], hydrate=True)
        .items
    )
    assert listed.run_metadata["outcome"] == "nothing to do"
    # ... and so does run.py's summary
    from app import render

    lines = []
    render.monitoring(result, lambda text, **_: lines.append(text))
    assert "Outcome:      nothing to do (run tag zenkube:nothing-to-do)" in lines
    # MLflow: the figures are on the pipeline's run itself, which has no empty parent or
    # child (a nested monitoring run left a parent run with no metrics each quiet check)
    from mlflow.tracking import MlflowClient

    mlflow_registry.configure_from_stack()
    client = MlflowClient()
    (run,) = client.search_runs(
        [e.experiment_id for e in client.search_experiments()],
        f"tags.zenml_run = '{result.run_name}'",
    )
    assert run.data.tags["zenkube.kind"] == "monitoring" and "drift_share" in run.data.metrics
    assert "mlflow.parentRunId" not in run.data.tags
    assert not client.search_runs(
        [run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{run.info.run_id}'"
    )
    assert run.info.run_name == result.run_name  # ZenML's name: its later steps find it by it


def test_two_shifted_columns_are_flagged_and_retraining_runs(champion):
    from zenml.client import Client

    first, folder = champion
    before, counts = training_runs(), zenml_counts()
    result = monitor(
        write(sample(400, seed=12, shift={"x2": 1.5, "x4": -1.5}), folder, "drift.csv")
    )
    assert result.drift.drifted_columns == ["x2", "x4"]
    assert result.decision.alert and result.decision.retrain
    assert result.retraining is not None and training_runs() == before + 1
    # One ZenML Model version, made by the retraining, holds what it trained and registered.
    after = zenml_counts()
    assert {k: after[k] - counts[k] for k in counts} == {
        "model versions": 1, "model": 1, "train_set": 1, "test_set": 1,
        "evaluation_report": 1, "promotion_decision": 0,
    }  # fmt: skip
    (version,) = Client().list_model_versions(model=MODEL, sort_by="desc:number", size=1).items
    assert version.run_metadata["mlflow_version"] == result.retraining.registered.version
    assert version.get_model_artifact("model") is not None
    assert result.run_name in [run.name for run in version.pipeline_runs.values()]
    promoted = result.retraining.decision.promoted
    assert outcome_tags(result.run_name) == [f"zenkube:{'promoted' if promoted else 'retrained'}"]
    decision = result.retraining.decision
    assert decision.reason and decision.champion_version == first.registered.version
    expected = decision.candidate_version if decision.promoted else first.registered.version
    assert champion_version() == expected
    assert "<html" in result.drift.html.lower()
    html = open(result.report_path).read()
    assert "x2" in html and "x4" in html and "<script" not in html.lower()
    drifted, why = result.drift.verdict()  # the report's headline agrees with the decision
    assert drifted and "Dataset drift detected" in html and escape(why) in html
    assert any("columns drifted" in reason for reason in result.decision.reasons)
    evidently = open(result.report_path.replace("report.html", "evidently.html")).read()
    assert evidently == result.drift.html


def test_degraded_labels_raise_a_quality_alert(champion):
    _, folder = champion
    batch = sample(400, seed=13)
    batch["label"] = 1 - batch["label"]  # the world changed its mind
    result = loop.monitor(
        None,
        {"model_name": MODEL, "batch": write(batch, folder, "flipped.csv"), "retrain": False},
        echo=lambda *_: None,
    )
    assert result.drift.drifted_columns == []
    assert result.quality.labelled and result.quality.drop > 0.5
    assert result.decision.alert and any("fell from" in r for r in result.decision.reasons)


# `monitor history` on a local store, in a process of its own: what it imports and found.
READER = """
import json, sys
from app import drift_history
result = drift_history.run(sys.argv[1], out=sys.argv[2], store_file=sys.argv[3])
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"zenml", "mlflow", "sklearn"})
print(json.dumps({"heavy": heavy, "history": result.history.model_dump(),
                  "html": result.html_path, "artifact": result.artifact_id}))
"""


def test_history_shows_the_runs_so_far_with_effects_and_quality(champion, tmp_path):
    """The three monitoring runs of the tests above (held-out rows, two shifted columns, flipped
    labels), read back from the store as `monitor history` does: without ZenML, from the
    store's SQLite file and the artifacts' files, the same history ZenML reads; the
    `drift_history` artifact is the one the latest monitoring run saved (an output of its
    decision step) and holds the same; the gauges file holds the latest run's figures.
    (Reads those runs: run it with the module.)"""
    import subprocess
    import sys

    from zenml.client import Client

    from app import drift_history
    from core.drift_history import DriftHistory
    from core.monitoring.gauges import latest_file
    from tests.conftest import REPO_ROOT

    store_file = drift_history._store_file()
    saved_before = Client().list_artifact_versions(artifact="drift_history").total
    read = subprocess.run(
        [sys.executable, "-c", READER, MODEL, str(tmp_path), store_file],
        cwd=REPO_ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    found = json.loads(read.stdout.splitlines()[-1])
    assert found["heavy"] == []  # neither ZenML nor MLflow imported
    result = DriftHistory.model_validate(found["history"])
    assert result == drift_history.history(MODEL)  # what ZenML reads from the same runs
    runs = result.runs
    assert len(runs) == 3, "the runs come from the tests above: run the whole module"
    same, shifted, flipped = runs
    assert [r.drift_share for r in runs] == [0.0, pytest.approx(2 / 6), 0.0]
    assert shifted.drifted_columns == ["x2", "x4"] and shifted.alert
    assert shifted.columns["x2"].effect == pytest.approx(1.5, abs=0.25)  # SDs moved
    assert shifted.columns["x2"].p_value < 1e-10 and same.columns["x2"].effect < 0.2
    assert flipped.quality_metric == "f1" and flipped.quality < same.quality - 0.5
    assert all(r.pipeline == "continuous_training_pipeline" for r in runs)
    page = open(found["html"]).read()
    assert "<script" not in page.lower() and page.count("<svg") == 2 + len(FEATURES)
    assert page == result.to_html()
    # saved by the latest monitoring run (each saves it), reachable from its run page
    assert Client().list_artifact_versions(artifact="drift_history").total == saved_before
    artifact = Client().get_artifact_version(found["artifact"])
    assert artifact.load() == result and artifact.visualizations
    step = Client().get_pipeline_run(flipped.run_name).steps["decide_action"]
    assert str(step.outputs["drift_history"][0].id) == found["artifact"]
    latest = json.loads(latest_file(MODEL).read_text())
    assert latest["run_name"] == flipped.run_name and latest["quality"] == flipped.quality


BAD_BATCHES = {  # kind: (what is done to a good batch, what the refusal says)
    "missing": (lambda batch: batch.drop(columns="x3"), "missing columns: x3"),
    "extra": (lambda batch: batch.assign(surprise=1), "unexpected columns: surprise"),
    "wrong type": (
        lambda batch: batch.assign(x1="high"),
        "column 'x1' should be numeric but is text",
    ),
    "empty": (lambda batch: batch.head(0), "the batch has no rows"),
}


@pytest.mark.parametrize("kind", BAD_BATCHES)
def test_bad_batch_is_refused_and_nothing_changes(champion, kind):
    _, folder = champion
    spoil, message = BAD_BATCHES[kind]
    batch = spoil(sample(50, seed=14))
    version, before = champion_version(), training_runs()
    with pytest.raises(DataValidationError) as info:
        monitor(write(batch, folder, f"bad-{kind}.csv"))
    assert message in str(info.value)
    assert champion_version() == version and training_runs() == before


def test_a_promoted_retraining_shows_the_gate_in_mlflow_and_monitoring_on_its_own_run(
    champion,
):
    """The loop `monitor --simulate-drift` runs, on a batch where the world changed (x3 moved
    and the label follows another rule there), so the retrained candidate must win: its
    MLflow run shows it beating the champion on the same rows, and the monitoring figures
    are on a run of their own."""
    from mlflow.tracking import MlflowClient

    _, folder = champion
    batch = sample(1200, seed=21, shift={"x3": 3.0})
    batch["label"] = (batch["x0"] - batch["x1"] > 0).astype(int)
    watched = champion_version()
    # The reserved evaluation rows hold the old world too (where the new rule is wrong),
    # so the candidate's f1 on all of them stays under the default threshold of 0.8; it
    # beats the champion on them all the same.
    result = loop.monitor(
        None,
        {"model_name": MODEL, "batch": write(batch, folder, "new-world.csv")},
        training_overrides={**FAST_TRAINER, "gate.threshold": 0.6},
        redeploy=False,
        echo=lambda *_: None,
    )
    decision = result.retraining.decision
    assert decision.promoted and decision.champion_status == "compared", decision.reason
    mlflow_registry.configure_from_stack()
    client = MlflowClient()
    decision_version = client.get_model_version(MODEL, decision.candidate_version)
    run = client.get_run(decision_version.run_id)
    metrics, params, metric = run.data.metrics, run.data.params, decision.metric
    candidate, champ = metrics[f"gate.candidate_{metric}"], metrics[f"gate.champion_{metric}"]
    assert (candidate, champ) == pytest.approx((decision.candidate_score, decision.champion_score))
    assert candidate > champ and metrics[f"gate.baseline_{metric}"] < candidate
    assert metrics[f"test_{metric}"] == pytest.approx(candidate)  # the candidate's test rows
    assert metrics["gate.rows"] == int(params["data.test_rows"]) and metrics["gate.promoted"] == 1
    assert run.data.tags["gate.reason"] == decision.reason
    assert not [k for k in metrics if k.startswith("p_value.") or k in ("alert", "drift_share")]
    # The gate's figures are tied to the test rows, an input of the run beside the training rows.
    contexts = {
        {t.key: t.value for t in i.tags}["mlflow.data.context"]: i.dataset
        for i in run.inputs.dataset_inputs
    }
    assert set(contexts) == {"training", "testing"}
    assert json.loads(contexts["testing"].profile)["num_rows"] == metrics["gate.rows"]
    model_id = mlflow_registry.model_id_of(decision_version.source)
    linked = {m.key: m for m in client.get_logged_model(model_id).metrics}
    assert linked[f"gate.champion_{metric}"].dataset_digest == contexts["testing"].digest
    # What was chosen, what was counted, and the evaluation beside the model.
    assert params["estimator.max_iter"] == "20" and "estimator.max_depth" in params
    assert int(params["data.train_rows"]) > metrics["gate.rows"]
    # at the run's root, where MLflow's compare view looks for files common to two runs
    files = {a.path for a in client.list_artifacts(run.info.run_id) if not a.is_dir}
    assert {"evaluation_report.html", "confusion_matrix.json", "confusion_matrix.html"} <= files
    # the champion the gate's figures were compared against, by version
    assert run.data.tags["gate.champion_version"] == watched
    note = run.data.tags["mlflow.note.content"]
    assert f"v{decision.candidate_version} against champion v{watched}" in note
    # Monitoring: a run of its own, nested in the loop's run, naming the version it watched.
    (watch,) = client.search_runs(
        [run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{run.info.run_id}'"
    )
    assert watch.data.tags["zenkube.model_version"] == watched
    assert watch.data.metrics["alert"] == 1 and "p_value.000_x0" in watch.data.metrics
    tags = mlflow_registry.version_tags(MODEL, watched)
    assert tags[mlflow_registry.MONITORING_RUN_TAG] == watch.info.run_id


def test_the_local_dashboard_asks_nothing_before_showing_the_workspace(module_store):
    """What ZenML's dashboard reads before showing its survey and checklist is answered by
    zenkube's set-up (the store under test was made by it), and answering again is a no-op."""
    from zenml.client import Client
    from zenml.constants import FINISHED_ONBOARDING_SURVEY_KEY

    from stacks.env import settle_local_dashboard

    store = Client().zen_store
    user = store.get_user(Client().active_user.id, hydrate=True)
    assert user.email_opted_in is False and not user.email
    assert user.user_metadata[FINISHED_ONBOARDING_SURVEY_KEY] is True
    settings = store.get_server_settings()
    assert not (settings.enable_analytics or settings.display_announcements)
    assert not settings.display_updates
    assert "oss_onboarding_completed" in store.get_onboarding_state()
    assert settle_local_dashboard() == []


def test_retraining_on_an_unshifted_batch_compares_on_rows_neither_model_saw(champion):
    from zenml.client import Client

    _, folder = champion
    batch = sample(400, seed=15)  # the champion's own distribution
    result = loop.monitor(
        None,
        {
            "model_name": MODEL,
            "batch": write(batch, folder, "calm.csv"),
            # An alert on a batch that did not move: every column counts as drifted.
            "thresholds.p_value": 0.999,
            "thresholds.min_effect": {"numeric": 0.0, "categorical": 0.0},
        },
        training_overrides=FAST_TRAINER,
        redeploy=False,
        echo=lambda *_: None,
    )
    assert result.decision.retrain and result.retraining is not None
    steps = Client().get_pipeline_run(result.run_name).steps
    split = steps["retrain_if_needed"].outputs  # saved when it trains
    test, train, valid = (split[n][0].load() for n in ("test_set", "train_set", "valid_set"))
    # The champion the gate compared with, and the rows it was trained on.
    champion_train = steps["load_reference"].outputs["reference_set"][0].load()

    def rows(frame: pd.DataFrame) -> set[float]:
        return set(frame["x0"].round(9))  # a row's key (CSV keeps ~15 digits)

    # The reserved evaluation rows: the first champion's test rows and a held-back half of
    # every labelled batch so far, this one's included; the rows to train on: all the rest.
    held_out, learned = rows(test.frame), rows(train.frame) | rows(valid.frame)
    assert len(held_out & rows(batch)) == 200 and len(learned & rows(batch)) == 200
    assert len(learned) >= len(rows(champion_train.frame))  # never fewer rows than before
    assert not held_out & rows(champion_train.frame)  # the champion never saw them
    assert not held_out & learned  # nor the candidate
    assert "calm.csv (200)" in train.batches[-1]["batch"] + f" ({train.batches[-1]['rows']})"
    decision = result.retraining.decision
    assert decision.champion_status == "compared" and decision.evaluation_rows == len(held_out)
    # (Which rows: the reason says so when it compares; the earlier tests' batches, the
    # flipped labels among them, are kept too, so the threshold may refuse it first.)
    assert f"the {len(held_out)} reserved evaluation rows" in decision.compared_on
    assert "neither the candidate nor the champion" in decision.compared_on
    assert decision.outcome in ("promote", "keep", "inconclusive", "reject")
    assert decision.interval and decision.evaluation_rows >= 100
