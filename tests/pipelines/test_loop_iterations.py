"""Ten iterations of the loop on labelled batches, some shifted, on one real store: the
rows a retraining learns from never shrink, every gate decision is taken on at least
`gate.min_rows` reserved rows (or says "inconclusive"), reserved rows over the cap retire
into the rows to train on, and a plain `monitor` right after a promotion watches rows no
model trained on, so it does not alert."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from app import champions, drift_history, loop
from core.specs import GateSpec
from integrations.mlflow import registry as mlflow_registry
from steps.data import pool
from tests.conftest import FAST_TRAINER
from tests.serving.helpers import trained_on

MODEL = "looped"
FEATURES = [f"x{i}" for i in range(6)]
MIN_ROWS = GateSpec().min_rows
CAP = 400  # retrain.max_evaluation_rows: reached at the fifth batch, so rows retire


def sample(rows: int, seed: int, world: str = "calm") -> pd.DataFrame:
    """Labelled rows: `calm` as trained; `covariate`: x2 and x4 moved, same rule; `new`:
    x3 moved far and there the label follows another rule (what a retraining must learn)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({c: rng.normal(size=rows) for c in FEATURES})
    noise = 0.3 * rng.normal(size=rows)
    frame["label"] = (frame["x0"] + frame["x1"] + noise > 0).astype(int)
    if world == "covariate":
        frame["x2"] += 1.5
        frame["x4"] -= 1.5
    elif world == "new":
        frame["x3"] += 3.0
        frame["label"] = (frame["x0"] - frame["x1"] + noise > 0).astype(int)
    return frame


# What each iteration's batch is (160 labelled rows each).
WORLDS = ["calm", "covariate", "calm", "new", "calm", "covariate", "calm", "new", "calm", "calm"]


def kept_rows() -> tuple[int, int]:
    """(rows to train on, reserved evaluation rows) the loop keeps for MODEL."""
    kept = pool.latest_pool(MODEL)
    if kept is None:
        return 0, 0
    return len(pool.part_of(kept, pool.TRAIN).frame), len(pool.part_of(kept, pool.EVALUATION).frame)


def train_rows(version: str) -> int:
    from mlflow.tracking import MlflowClient

    mlflow_registry.configure_from_stack()  # a pipeline run leaves its own tracking URI
    client = MlflowClient()
    run_id = client.get_model_version(MODEL, version).run_id
    params = client.get_run(run_id).data.params
    return int(params["data.train_rows"])


def monitor(path: str):
    return loop.monitor(
        None,
        {"model_name": MODEL, "batch": path, "retrain.max_evaluation_rows": CAP},
        training_overrides=FAST_TRAINER,
        redeploy=False,
        echo=lambda *_: None,
    )


@pytest.fixture(scope="module")
def iterations(module_store, tmp_path_factory):
    folder = tmp_path_factory.mktemp("batches")
    trained = trained_on(MODEL, sample(400, seed=0), folder / "train.csv", "label")
    mlflow_registry.configure_from_stack()
    record = {"first_train_rows": train_rows(trained.registered.version), "runs": []}
    for i, world in enumerate(WORLDS):
        path = folder / f"batch-{i}-{world}.csv"
        sample(160, seed=100 + i, world=world).to_csv(path, index=False)
        before = kept_rows()
        result = monitor(str(path))
        entry = {"world": world, "result": result, "kept_before": before, "kept": kept_rows()}
        retraining = result.retraining
        if retraining is not None:
            entry["train_rows"] = train_rows(retraining.registered.version)
            if retraining.decision.promoted:  # a plain `monitor` right after it
                held_out, _ = loop.batch_file(MODEL, simulate_drift=False)
                entry["plain"] = monitor(held_out)
        record["runs"].append(entry)
    return record


def test_every_labelled_row_is_kept_and_training_rows_never_decrease(iterations):
    runs = iterations["runs"]
    for entry in runs:
        # Before the first labelled batch the loop keeps the first champion's rows: 320
        # (train + validation) to train on and its 80 test rows reserved.
        (train_before, eval_before) = entry["kept_before"] if entry["kept_before"][0] else (320, 80)
        train_after, eval_after = entry["kept"]
        # Each batch's 160 new rows are kept: half reserved for evaluation, half to train on;
        # reserved rows over CAP retire, oldest first, into the rows to train on (not lost).
        assert train_after + eval_after - train_before - eval_before == 160
        assert eval_after == min(eval_before + 80, CAP)
    assert runs[-1]["kept"] == (320 + 10 * 80 + (80 + 10 * 80 - CAP), CAP)
    retrained = [entry["train_rows"] for entry in runs if "train_rows" in entry]
    assert len(retrained) >= 3  # the shifted batches alerted and retrained
    assert retrained == sorted(retrained)
    assert retrained[0] >= iterations["first_train_rows"]


def test_every_gate_decision_is_on_enough_reserved_rows_or_inconclusive(iterations):
    decisions = [
        entry["result"].retraining.decision
        for entry in iterations["runs"]
        if entry["result"].retraining is not None
    ]
    for decision in decisions:
        assert decision.champion_status == "compared", decision.reason
        assert decision.outcome in ("promote", "keep", "inconclusive", "reject")
        assert decision.evaluation_rows >= MIN_ROWS or decision.outcome == "inconclusive"
        if decision.outcome != "reject":
            low, high = decision.interval
            assert (
                f"[{low:+.4f}, {high:+.4f}] on {decision.evaluation_rows} rows" in decision.reason
            )
    # The new world, learnable only from its own rows, wins at least once.
    assert any(decision.promoted for decision in decisions)


def test_a_plain_monitor_right_after_a_promotion_does_not_alert_on_the_champions_rows(
    iterations,
):
    """The plain monitor watches the rows reserved at the first training: none of them is
    in the new champion's training rows, so quality is never measured on its own rows, and
    they are kept already, so an alert on them retrains nothing. What may still drift is
    only what the champion learned from shifted batches (its reference holds them)."""
    from zenml.client import Client

    plain = [entry for entry in iterations["runs"] if "plain" in entry]
    assert plain
    for entry in plain:
        result = entry["plain"]
        version = entry["result"].retraining.registered.version
        assert result.decision.model_version == version  # it watched the new champion
        steps = Client().get_pipeline_run(result.run_name).steps
        watched = steps["load_batch"].outputs["current_batch"][0].load().frame
        trained = steps["load_reference"].outputs["reference_set"][0].load().frame
        keys = [*FEATURES, "label"]
        own = watched[keys].round(6).merge(trained[keys].round(6), how="inner")
        assert own.empty  # not one of the champion's own training rows
        assert result.quality.drop is None or not any(
            "fell from" in reason for reason in result.decision.reasons
        )
        assert set(result.drift.drifted_columns) <= {"x2", "x3", "x4"}  # the shifted ones
        assert result.retraining is None
        if result.decision.alert:
            reason = steps["retrain_if_needed"].outputs["retraining_decision"][0].load().reason
            assert "no new labelled rows" in reason
            from app import render

            lines: list[str] = []
            render.monitoring(result, lambda text, _lines=lines, **_: _lines.append(text))
            assert any(
                line.startswith("Retraining:   none (no new labelled rows") for line in lines
            ), lines


def test_history_and_monitor_history_show_each_versions_gate_rows_and_watched_version(
    iterations,
):
    said: list[str] = []
    champions.history(MODEL, echo=said.append)
    text = "\n".join(said)
    assert "gate: promote" in text and "trained on v1 training rows (320)" in text
    assert "batch-1-covariate.csv (80)" in text
    found = drift_history.history(MODEL)
    versions = [run.model_version for run in found.runs]
    assert versions[0] == "1" and len(set(versions)) > 1  # the champion changed on the way
    assert any("(new champion v" in line for line in found.table())


def test_a_retraining_that_fails_while_it_trains_leaves_the_batchs_rows_new(
    iterations, tmp_path, monkeypatch
):
    """The batch's rows count as kept only once its candidate is registered and gated: a
    retraining killed or failing mid-fit leaves them new, so the next run on the same
    batch retrains on them (saved first, they read "already kept" and it never would)."""
    from steps.monitoring import retrain

    path = tmp_path / "late-new-world.csv"
    sample(160, seed=999, world="new").to_csv(path, index=False)
    before = kept_rows()

    def broken_fit(*_args, **_kwargs):
        raise RuntimeError("the training machine went away")

    monkeypatch.setattr(retrain, "fit_model", broken_fit)
    with pytest.raises(Exception, match="the training machine went away"):
        monitor(str(path))
    assert kept_rows() == before  # nothing counted as seen

    monkeypatch.undo()
    result = monitor(str(path))
    assert result.retraining is not None, result.decision.reasons  # it trains now
    train, evaluation = kept_rows()  # 80 more of each, less what the cap retires
    assert train + evaluation == sum(before) + 160 and evaluation == min(before[1] + 80, CAP)
