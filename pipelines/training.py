"""Training: load → validate → split → train → evaluate → register → promote."""

from zenml import pipeline

from core.specs import DataSpec, GateSpec, ReleaseSpec, SplitSpec, TrainerSpec
from steps.data import load_data, split_data, validate_data
from steps.registry import promote_if_better, register_model
from steps.training import evaluate_model, train_model


@pipeline(enable_cache=False)
def training_pipeline(
    model_name: str,
    data: DataSpec,
    split: SplitSpec,
    trainer: TrainerSpec,
    gate: GateSpec,
    release: ReleaseSpec | None = None,
) -> None:
    """Train a candidate and promote it only if it beats the champion (with a canary or
    shadow `release` mode, a champion is not moved: the passed version awaits its release)."""
    raw = load_data(data)
    validated = validate_data(raw, data)
    train, valid, test = split_data(validated, split)
    model, search = train_model(train, valid, trainer)
    report = evaluate_model(model, test, search)
    registered = register_model(model, train, report, trainer, model_name)
    promote_if_better(registered, report, test, gate, release)
