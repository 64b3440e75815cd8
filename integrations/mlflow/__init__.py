"""MLflow: the model registry and the champion (alias + stage + history)."""
