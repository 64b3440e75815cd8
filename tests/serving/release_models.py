"""Real MLflow scikit-learn models for the release tests: a champion, a candidate as good
as it, one trained on flipped labels (wrong answers), and one that fails on some rows (a
server error, as a model with a bug would). Saved as the registry saves them (cloudpickle,
a signature); this module is pickled by value, as zenkube's own code is in its models."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

COLUMNS = ["f0", "f1", "f2", "f3"]


class FailsOnSomeRows(BaseEstimator, ClassifierMixin):
    """`model`'s answers, except that a request holding a row with `column` above `above`
    raises RuntimeError (the model server answers 500)."""

    def __init__(self, model=None, column: str = "f0", above: float = 0.0):
        self.model, self.column, self.above = model, column, above

    def fit(self, X, y):
        return self

    def predict(self, X):
        if (pd.DataFrame(X, columns=COLUMNS)[self.column] > self.above).any():
            raise RuntimeError("this candidate fails on these rows")
        return self.model.predict(X)


def data(rows: int = 1200) -> tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import make_classification

    X, y = make_classification(
        n_samples=rows, n_features=4, n_informative=3, n_redundant=0, random_state=0
    )
    return pd.DataFrame(X, columns=COLUMNS), pd.Series(y, name="label")


def save(model, folder: Path, X: pd.DataFrame) -> Path:
    import cloudpickle
    import mlflow.sklearn
    from mlflow.models import infer_signature

    from integrations.mlflow.registry import _model_requirements

    cloudpickle.register_pickle_by_value(__import__(__name__, fromlist=["_"]))
    example = X.head(5)
    mlflow.sklearn.save_model(
        model,
        str(folder),
        signature=infer_signature(example, model.predict(X.head(5).assign(f0=-5.0))),
        input_example=example,
        serialization_format="cloudpickle",
        pip_requirements=_model_requirements(),
    )
    return folder


NAMES = ("champion", "good", "wrong", "failing")


def models(root: Path, names: tuple[str, ...] = NAMES) -> dict[str, Path]:
    """{name: MLflow model folder} for champion, good (as good as the champion), wrong
    (trained on flipped labels) and failing (the champion, raising on rows with f0 > 0.5)."""
    return {name: folder for name, (folder, _) in fitted_models(root, names).items()}


def fitted_models(root: Path, names: tuple[str, ...] = NAMES) -> dict[str, tuple[Path, object]]:
    """{name: (MLflow model folder, the fitted model)}, as `models` saves them."""
    from sklearn.linear_model import LogisticRegression

    X, y = data()
    champion = LogisticRegression().fit(X, y)
    fitted = {
        "champion": champion,
        "good": LogisticRegression(C=0.1).fit(X, y),  # 0.3% of answers differ
        "wrong": LogisticRegression().fit(X, 1 - y),
        "failing": FailsOnSomeRows(champion, "f0", 0.5),
    }
    return {name: (save(fitted[name], root / name, X), fitted[name]) for name in names}
