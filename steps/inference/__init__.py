"""Batch-inference steps: choose the scoring model, score a file chunk by chunk."""

from steps.inference.choose import choose_model
from steps.inference.score import score_batch

__all__ = ["choose_model", "score_batch"]
