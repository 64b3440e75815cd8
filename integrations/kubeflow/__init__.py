"""Kubeflow: compile ZenML pipelines to KFP v2 IR YAML offline, validate it, fix defects."""
