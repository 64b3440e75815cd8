"""Data steps: load, validate, split."""

from steps.data.load import load_data
from steps.data.split import split_data
from steps.data.validate import validate_data

__all__ = ["load_data", "split_data", "validate_data"]
