"""Continuous training's retraining: one step that trains only when monitoring asks for it.

It learns from the champion's training rows plus the labelled batch. The batch rows are
marked (`new_rows`): the split holds part of them out, so the gate compares candidate and
champion on rows neither was trained on.

A run with nothing to retrain writes nothing that looks like a model or a data set: the
step's one declared output is its decision (`retraining_decision`, "skipped: …" with no
candidate), and the retraining's artifacts (`train_set`, `valid_set`, `test_set`, `model`,
`search_results`, `evaluation_report`, `registered_model`) are saved only when it trains,
into a ZenML Model version created then (not at run start, as a pipeline-level Model
would), so a quiet run adds no model version either. They are outputs of the step run,
like any other step's, in the dashboard and through `run.steps[...].outputs`.
"""

from __future__ import annotations

from typing import Annotated, Any

import pandas as pd
from zenml import get_step_context, log_metadata, step

from core.specs import GateSpec, SplitSpec, TrainerSpec
from materializers.dataset import Dataset
from steps.data.split import split_dataset
from steps.monitoring.decide import MonitoringDecision
from steps.registry.gate import PromotionDecision
from steps.registry.promote import gate_candidate
from steps.registry.register import register, version_metadata
from steps.skip import note_skipped
from steps.training.evaluate import evaluate
from steps.training.train import fit_model


def retraining_set(
    decision: MonitoringDecision, reference: Dataset, batch: Dataset, retrain: bool
) -> Dataset:
    """Reference + batch rows (the batch last, counted in `new_rows`) when monitoring asks
    for retraining; else an empty, skipped set."""
    if decision.retrain and retrain:
        frame = pd.concat(
            [reference.frame, batch.frame[reference.frame.columns]], ignore_index=True
        )
        return Dataset(
            frame=frame,
            target=reference.target,
            task=reference.task,
            name=f"{reference.name} + {batch.name}",
            schema=dict(reference.schema),
            new_rows=len(batch.frame),
            note=f"the new batch {batch.name}",
            ignored_columns=list(reference.ignored_columns),
        )
    if not decision.alert:
        why = "skipped: no retraining needed (no threshold breached)"
    elif not decision.retrain:
        why = "skipped: no retraining (the alert's batch has no labels)"
    else:
        why = "skipped: no retraining (retrain: false)"
    return Dataset(
        frame=reference.frame.iloc[0:0],
        target=reference.target,
        task=reference.task,
        name=reference.name,
        schema=dict(reference.schema),
        skipped=why,
    )


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


def keep(model_version: Any, **artifacts: Any) -> dict[str, Any]:
    """Save each artifact under its name as an output of this step run, linked to
    `model_version`; returns the saved versions by name."""
    from zenml import save_artifact
    from zenml.model.utils import link_artifact_version_to_model_version

    saved = {}
    for name, data in artifacts.items():
        saved[name] = save_artifact(data, name=name)
        link_artifact_version_to_model_version(saved[name], model_version)
    return saved


def retrain_candidate(
    data: Dataset,
    split: SplitSpec,
    trainer: TrainerSpec,
    gate: GateSpec,
    model_name: str,
    release_mode: str = "swap",
) -> PromotionDecision:
    """Split, fit, evaluate; then (only now) a ZenML Model version with the artifacts,
    the MLflow version, and the gate's decision (which may promote the candidate)."""
    train, valid, test = split_dataset(data, split)
    model, search = fit_model(train, valid, trainer)
    report = evaluate(model, test, search)
    version = new_model_version(model_name)
    saved = keep(
        version,
        train_set=train,
        valid_set=valid,
        test_set=test,
        model=model,
        search_results=search,
        evaluation_report=report,
    )
    run_name = get_step_context().pipeline_run.name
    registered = register(
        model, train, report, trainer, model_name, run_name, saved["train_set"].uri
    )
    figures = {"test_metrics": report.metrics, **({"search": search} if search else {})}
    log_metadata({**version_metadata(registered), **figures}, model_version_id=version.id)
    keep(version, registered_model=registered)
    return gate_candidate(
        registered, report, test, gate, version, saved["test_set"].uri, release_mode
    )


# What its saved artifacts show in the KFP UI (integrations/kubeflow/ui_outputs.py): the
# evaluation's metrics, confusion matrix and report, as the training pipeline's tasks do.
KFP_UI = {"kfp_ui": ["metrics", "classification", "report"]}


@step(enable_cache=False, experiment_tracker=True, extra=KFP_UI)
def retrain_if_needed(
    decision: MonitoringDecision,
    reference: Dataset,
    batch: Dataset,
    retrain: bool,
    split: SplitSpec,
    trainer: TrainerSpec,
    gate: GateSpec,
    model_name: str,
    release_mode: str = "swap",
) -> Annotated[PromotionDecision, "retraining_decision"]:
    """On a labelled alert: retrain on reference + batch, register, gate (see the module
    docstring for what is saved). Otherwise say why not, and save nothing else."""
    data = retraining_set(decision, reference, batch, retrain)
    if data.skipped:
        note_skipped("retrain_if_needed", data.skipped)
        return skipped_decision(data.skipped, model_name)
    return retrain_candidate(data, split, trainer, gate, model_name, release_mode)
