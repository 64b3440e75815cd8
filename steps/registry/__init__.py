"""Registry steps: register in MLflow + ZenML, promote behind the gate."""

from steps.registry.promote import promote_if_better
from steps.registry.register import register_model

__all__ = ["promote_if_better", "register_model"]
