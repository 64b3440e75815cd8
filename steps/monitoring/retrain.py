"""Continuous training's retraining: one step that keeps a labelled batch's rows and
trains only when monitoring asks for it.

Every labelled row the loop sees is kept (steps/data/pool.py: the ZenML artifact
`labelled_rows`, tagged with the model): a held-back slice of each new batch joins the
reserved evaluation rows, the rest the rows to train on; above
`retrain.max_evaluation_rows` the oldest evaluation rows are retired into the rows to train
on. A retraining learns from the rows to train on (`retrain.window`: all of them by
default, so never fewer than the champion's; the newest N; or those of the last D days),
and the gate scores candidate and champion on all the evaluation rows, which neither was
trained on.

A run with nothing to retrain writes nothing that looks like a model: the step's one
declared output is its decision (`retraining_decision`, "skipped: …" with no
candidate); `labelled_rows` is saved only when the batch brought labelled rows the loop
did not hold yet, and by a retraining only once its candidate is registered and gated
(an interrupted retraining leaves the batch's rows new for the next run). The retraining's artifacts (`train_set`, `valid_set`, `test_set`,
`model`, `search_results`, `evaluation_report`, `registered_model`) are saved only when
it trains, into a ZenML Model version created then (not at run start, as a
pipeline-level Model would), so a quiet run adds no model version either. They are
outputs of the step run, like any other step's, in the dashboard and through
`run.steps[...].outputs`.
"""

from __future__ import annotations

from typing import Annotated, Any

from sklearn.model_selection import train_test_split
from zenml import get_step_context, log_metadata, step

from core.specs import GateSpec, RetrainSpec, SplitSpec, TrainerSpec
from materializers.dataset import Dataset
from steps.data import pool as kept
from steps.data.split import _part, _stratify
from steps.monitoring.decide import MonitoringDecision
from steps.registry.gate import PromotionDecision
from steps.registry.promote import gate_candidate
from steps.registry.register import register, version_metadata
from steps.skip import note_skipped
from steps.training.evaluate import evaluate
from steps.training.train import fit_model


def why_not(decision: MonitoringDecision, batch: Dataset, retrain: RetrainSpec, added: int):
    """Why this run trains nothing ("" when it retrains)."""
    if not decision.alert:
        return "skipped: no retraining needed (no threshold breached)"
    if batch.labels is None or not decision.retrain:
        return "skipped: no retraining (the alert's batch has no labels)"
    if not retrain.enabled:
        return "skipped: no retraining (retrain: false)"
    if not added:
        return (
            "skipped: no retraining (no new labelled rows: the loop already keeps every row "
            "of this batch, so a retraining would learn nothing new)"
        )
    return ""


def current_pool(model_name: str, reference: Dataset) -> Dataset:
    """The rows the loop keeps for this champion's data: the newest `labelled_rows` of
    the model, or (none yet, or another schema) a start from the champion's own splits."""
    from integrations.mlflow import champion

    pool = kept.latest_pool(model_name)
    if kept.usable(pool, reference):
        return pool
    current = champion.require_champion(model_name, "retrain")
    splits = (current.zenml_version.get_artifact(n).load() for n in ("train_set", "valid_set"))
    test = current.zenml_version.get_artifact("test_set").load()
    return kept.start_pool(*splits, test, current.registered.version)


def train_and_valid(rows: Dataset, split: SplitSpec) -> tuple[Dataset, Dataset]:
    """The rows to learn from, split into train (fit) and validation (search only)."""
    stratify = _stratify(rows.frame, rows, split.valid_size)
    train, valid = train_test_split(
        rows.frame, test_size=split.valid_size, random_state=split.seed, stratify=stratify
    )
    train, valid = _part(rows, train, "train"), _part(rows, valid, "valid")
    train.batches = valid.batches = list(rows.batches)
    return train, valid


def skipped_decision(why: str, model_name: str) -> PromotionDecision:
    """The decision of a run that trained nothing: no candidate, no champion compared."""
    return PromotionDecision(
        promoted=False,
        reason=why,
        metric="",
        candidate_score=None,
        champion_status="",
        model_name=model_name,
    )


def new_model_version(model_name: str) -> Any:
    """A new version of the ZenML Model `model_name` (the Model made if missing), linked to
    this step's run, as ZenML links a pipeline-level Model's version when a run starts."""
    from zenml.client import Client
    from zenml.models import ModelVersionPipelineRunRequest

    client = Client()
    try:
        client.get_model(model_name)
    except KeyError:
        client.create_model(name=model_name)
    version = client.create_model_version(model_name)
    client.zen_store.create_model_version_pipeline_run_link(
        ModelVersionPipelineRunRequest(
            model_version=version.id, pipeline_run=get_step_context().pipeline_run.id
        )
    )
    return version


def keep(model_version: Any, artifacts: dict[str, Any]) -> dict[str, Any]:
    """Save each artifact under its name (the names the training pipeline's outputs have)
    as an output of this step run, linked to `model_version`; returns the saved versions by
    name."""
    from zenml import save_artifact
    from zenml.model.utils import link_artifact_version_to_model_version

    saved = {}
    for name, data in artifacts.items():
        saved[name] = save_artifact(data, name=name)
        link_artifact_version_to_model_version(saved[name], model_version)
    return saved


def retrain_candidate(
    rows: Dataset,
    evaluation: Dataset,
    split: SplitSpec,
    trainer: TrainerSpec,
    gate: GateSpec,
    model_name: str,
    release_mode: str = "swap",
    pool: Dataset | None = None,
    kept_rows: dict[str, int] | None = None,
) -> PromotionDecision:
    """Split the rows to learn from into train/validation, fit, evaluate on the reserved
    evaluation rows; then (only now) a ZenML Model version with the artifacts (and the
    kept rows, `pool`, for lineage), the MLflow version, and the gate's decision (which
    may promote the candidate)."""
    train, valid = train_and_valid(rows, split)
    model, search = fit_model(train, valid, trainer)
    report = evaluate(model, evaluation, search)
    version = new_model_version(model_name)
    saved = keep(
        version,
        {
            "train_set": train,
            "valid_set": valid,
            "test_set": evaluation,
            "model": model,
            "search_results": search,
            "evaluation_report": report,
        },
    )
    run_name = get_step_context().pipeline_run.name
    registered = register(
        model, train, report, trainer, model_name, run_name, saved["train_set"].uri
    )
    figures = {"test_metrics": report.metrics, **({"search": search} if search else {})}
    figures["trained_on"] = kept.lineage(train.batches)
    log_metadata({**version_metadata(registered), **figures}, model_version_id=version.id)
    keep(version, {"registered_model": registered})
    decision = gate_candidate(
        registered, report, evaluation, gate, version, saved["test_set"].uri, release_mode
    )
    if pool is not None:  # only now: see save_pool
        from zenml.model.utils import link_artifact_version_to_model_version

        link_artifact_version_to_model_version(save_pool(pool, model_name, kept_rows), version)
    return decision


def save_pool(pool: Dataset, model_name: str, kept_rows: dict[str, int] | None) -> Any:
    """Save the kept rows with a batch's new rows in them. A retraining saves them only
    after its candidate is registered and gated: the batch's rows count as seen from then
    on, so a run interrupted (or failing) while it trains leaves them new, and the next
    run with that batch trains on them (saved first, they read as "already kept" and the
    retraining they called for would never happen)."""
    from zenml import save_artifact

    saved = save_artifact(pool, name=kept.POOL_ARTIFACT, tags=[model_name])
    if kept_rows:
        log_metadata({"kept_rows": kept_rows})
    return saved


# What its saved artifacts show in the KFP UI (integrations/kubeflow/ui_outputs.py): the
# evaluation's metrics, confusion matrix and report, as the training pipeline's tasks do.
KFP_UI = {"kfp_ui": ["metrics", "classification", "report"]}


@step(enable_cache=False, experiment_tracker=True, extra=KFP_UI)
def retrain_if_needed(
    decision: MonitoringDecision,
    reference: Dataset,
    batch: Dataset,
    retrain: RetrainSpec,
    split: SplitSpec,
    trainer: TrainerSpec,
    gate: GateSpec,
    model_name: str,
    release_mode: str = "swap",
) -> Annotated[PromotionDecision, "retraining_decision"]:
    """Keep a labelled batch's new rows; on a labelled alert retrain on the kept rows,
    register, gate on the reserved evaluation rows (see the module docstring for what is
    saved). Otherwise say why not."""
    added, grown, pool, kept_rows = 0, None, None, None
    if batch.labels is not None:
        pool = current_pool(model_name, reference)
        run_name = get_step_context().pipeline_run.name
        pool, added, reserved = kept.add_batch(pool, batch, split, run_name)
        pool, retired = kept.retire_evaluation(pool, retrain.max_evaluation_rows, run_name)
        if added or reserved or retired:
            grown = pool
            kept_rows = {"train": added, "evaluation": reserved, "retired": retired}
        added += reserved
    why = why_not(decision, batch, retrain, added)
    if why:
        if grown is not None:  # a labelled batch with no retraining: its rows are kept now
            save_pool(grown, model_name, kept_rows)
        note_skipped("retrain_if_needed", why)
        return skipped_decision(why, model_name)
    rows = kept.in_window(kept.part_of(pool, kept.TRAIN, "rows to train on"), retrain.window)
    if rows.frame.empty:  # a window of days that no kept batch arrived in
        why = (
            f"skipped: no retraining (no rows to train on arrived within retrain.window "
            f"{retrain.window}: widen it)"
        )
        save_pool(grown, model_name, kept_rows)  # the batch's rows are kept all the same
        note_skipped("retrain_if_needed", why)
        return skipped_decision(why, model_name)
    evaluation = kept.part_of(pool, kept.EVALUATION, "evaluation rows")
    evaluation.note = (
        f"the {len(evaluation.frame)} reserved evaluation rows ({kept.lineage(evaluation.batches)}), "
        "which neither the candidate nor the champion was trained on"
    )
    return retrain_candidate(
        rows, evaluation, split, trainer, gate, model_name, release_mode, grown, kept_rows
    )
