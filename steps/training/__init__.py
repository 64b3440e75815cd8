"""Training steps: fit and evaluate."""

from steps.training.evaluate import evaluate_model
from steps.training.train import train_model

__all__ = ["evaluate_model", "train_model"]
