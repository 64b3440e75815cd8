"""zenkube's ZenML flavors and adapters (MLflow registry, Evidently, Seldon, Kubeflow)."""
