"""Kubeflow: compile ZenML pipelines to KFP v2 IR YAML without a cluster, validate it, fix defects."""
