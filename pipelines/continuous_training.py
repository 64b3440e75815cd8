"""Continuous training: monitor a batch → decide → retrain on reference + batch → gate → deploy.

One pipeline, so the loop runs as one KFP run (and one recurring run) on Kubeflow. When
monitoring decides there is nothing to retrain, the retraining steps run and say
"skipped: …" (KFP has no conditional tasks through ZenML).
"""

from zenml import pipeline

from core.specs import GateSpec, MonitoringThresholds, SplitSpec, TrainerSpec
from steps.data import split_data
from steps.deployment import deploy_if_promoted
from steps.monitoring import (
    check_quality,
    decide_action,
    detect_drift,
    load_batch,
    load_reference,
    predict_batch,
    retraining_data,
)
from steps.registry import promote_if_better, register_model
from steps.training import evaluate_model, train_model


@pipeline(enable_cache=False)
def continuous_training_pipeline(
    model_name: str,
    batch: str,
    thresholds: MonitoringThresholds,
    retrain: bool,
    split: SplitSpec,
    trainer: TrainerSpec,
    gate: GateSpec,
    protocol: str = "seldon",
    timeout: int = 300,
    deploy: bool = True,
) -> None:
    """Watch the champion on a batch; on a labelled alert retrain, gate and redeploy."""
    reference, champion_report = load_reference(model_name)
    current = load_batch(batch, reference)
    predictions = predict_batch(current, model_name)
    drift = detect_drift(reference, current, thresholds)
    quality = check_quality(current, predictions, champion_report)
    decision = decide_action(drift, quality, thresholds)
    data = retraining_data(decision, reference, current, retrain)
    train, valid, test = split_data(data, split)
    model, search = train_model(train, valid, trainer)
    report = evaluate_model(model, test, search)
    registered = register_model(model, train, report, trainer, model_name)
    promotion = promote_if_better(registered, report, test, gate)
    deploy_if_promoted(promotion, model_name, protocol, timeout, deploy)
