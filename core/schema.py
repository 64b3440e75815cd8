"""The input schema contract of a model: which columns, of which kind, and what they predict.

Every registered version records one; promotion and deployment compare the candidate's
with the champion's, so a model of another schema never silently takes over an endpoint.
"""

from __future__ import annotations

import re
import warnings

import pandas as pd
from pydantic import BaseModel, Field

NUMERIC = "numeric"
CATEGORICAL = "categorical"
DATETIME = "datetime"

# Names listed per kind of change before "… and N more".
SHOWN = 4


def looks_like_dates(values: pd.Series, sample: int = 500) -> bool:
    """True when a text column holds dates (≥ 90% of a sample parses, and not plain numbers)."""
    sample_values = values.dropna().astype(str).head(sample)
    if sample_values.empty:
        return False
    if pd.to_numeric(sample_values, errors="coerce").notna().mean() > 0.5:
        return False  # numbers (or numeric codes) are not dates
    # Dates need a separator; this keeps words like "May" or "today" categorical.
    if not sample_values.str.contains(r"\d[-/.:T ]\d|\d{4}-\d", regex=True).mean() >= 0.9:
        return False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parsed = pd.to_datetime(sample_values, errors="coerce", format="mixed", utc=True)
    return bool(parsed.notna().mean() >= 0.9)


def column_kind(values: pd.Series) -> str:
    """numeric, datetime or categorical for one feature column."""
    if pd.api.types.is_bool_dtype(values):
        return CATEGORICAL
    if pd.api.types.is_datetime64_any_dtype(values):
        return DATETIME
    if pd.api.types.is_numeric_dtype(values):
        return NUMERIC
    return DATETIME if looks_like_dates(values) else CATEGORICAL


# pandas names the index it wrote into a CSV (`to_csv` without index=False) like this.
UNNAMED_INDEX = re.compile(r"^Unnamed: \d+$")
# Below this many rows, distinct values in every row are no sign of an identifier.
MIN_ROWS_FOR_ID = 50


def id_like_columns(frame: pd.DataFrame, target: str | None) -> dict[str, str]:
    """Columns that identify rows rather than describe them -> why they look so.

    A model that learns from them learns nothing that carries to new rows, and every
    client would have to send them: a pandas index written to a CSV (`Unnamed: 0`), or
    whole numbers or text with a different value in every row (`PID`, `Order`, a name).
    """
    found = {}
    for name in frame.columns:
        if name == target:
            continue
        values = frame[name]
        if UNNAMED_INDEX.match(str(name)):
            found[str(name)] = "a pandas index written into the file"
            continue
        if len(values) < MIN_ROWS_FOR_ID or values.isna().any():
            continue
        whole = pd.api.types.is_integer_dtype(values) and not pd.api.types.is_bool_dtype(values)
        # Text of words (names, codes); mostly numbers with a stray word is a broken numeric
        # column, which validation names.
        text = (
            column_kind(values) == CATEGORICAL
            and not pd.api.types.is_bool_dtype(values)
            and pd.to_numeric(values, errors="coerce").notna().mean() < 0.5
        )
        if (whole or text) and values.nunique() == len(values):
            found[str(name)] = "a different value in every row"
    return found


def infer_kinds(frame: pd.DataFrame, target: str | None) -> dict[str, str]:
    """Column -> kind for every feature column (the target excluded)."""
    return {str(c): column_kind(frame[c]) for c in frame.columns if c != target}


class SchemaColumn(BaseModel):
    """One input column.

    Attributes:
        name: column name as clients send it.
        kind: numeric, categorical or datetime.
        nullable: whether the training data had missing values here (the model imputes
            missing values in any column; this records what it was trained with).
    """

    name: str
    kind: str
    nullable: bool = False


class InputSchema(BaseModel):
    """What a model takes and predicts.

    Attributes:
        columns: the input columns in the model's order.
        target: the label column it was trained to predict ("" when unknown).
        task: classification or regression ("" when unknown).
        ignored_columns: columns of the training file the model does not take: row
            identifiers, and columns data.features did not list (a request or a batch
            may still hold them; they are ignored).
    """

    columns: list[SchemaColumn] = Field(default_factory=list)
    target: str = ""
    task: str = ""
    ignored_columns: list[str] = Field(default_factory=list)

    @classmethod
    def of(
        cls,
        frame: pd.DataFrame,
        kinds: dict[str, str],
        target: str,
        task: str,
        ignored: list[str] | None = None,
    ) -> InputSchema:
        return cls(
            columns=[
                SchemaColumn(name=name, kind=kind, nullable=bool(frame[name].isna().any()))
                for name, kind in kinds.items()
            ],
            target=target,
            task=task,
            ignored_columns=list(ignored or []),
        )

    @property
    def kinds(self) -> dict[str, str]:
        return {c.name: c.kind for c in self.columns}


class SchemaDiff(BaseModel):
    """How a candidate's schema differs from the champion's (empty when compatible)."""

    added: list[str] = Field(default_factory=list)
    removed: list[str] = Field(default_factory=list)
    retyped: list[str] = Field(default_factory=list)  # "name (numeric → categorical)"
    other: list[str] = Field(default_factory=list)  # target or task changes

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.retyped or self.other)

    def describe(self) -> str:
        parts = []
        for label, names in (
            ("added", self.added),
            ("removed", self.removed),
            ("retyped", self.retyped),
        ):
            if names:
                shown = ", ".join(names[:SHOWN])
                more = f" and {len(names) - SHOWN} more" if len(names) > SHOWN else ""
                parts.append(f"{len(names)} column(s) {label}: {shown}{more}")
        return "; ".join(parts + self.other)


def diff_schemas(champion: InputSchema, candidate: InputSchema) -> SchemaDiff:
    """What changed from champion to candidate; column order and nullability do not count."""
    old, new = champion.kinds, candidate.kinds
    diff = SchemaDiff(
        added=[n for n in new if n not in old],
        removed=[n for n in old if n not in new],
        retyped=[f"{n} ({old[n]} → {new[n]})" for n in new if n in old and old[n] != new[n]],
    )
    if champion.target and candidate.target and champion.target != candidate.target:
        diff.other.append(f"the target changed from '{champion.target}' to '{candidate.target}'")
    if champion.task and candidate.task and champion.task != candidate.task:
        diff.other.append(f"the task changed from {champion.task} to {candidate.task}")
    return diff
