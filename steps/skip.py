"""Steps of the continuous-training pipeline that have nothing to do say so and pass on.

KFP and ZenML's static pipelines run every task; when monitoring decides no retraining
is needed, the retraining steps receive a Dataset whose `skipped` says why, log one
line (`zenkube skipped <step>: <reason>`, which the console and the step's log show),
and return a placeholder that the next step recognises.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)
PREFIX = "zenkube skipped"


def note_skipped(step_name: str, reason: str) -> None:
    logger.info("%s %s: %s", PREFIX, step_name, reason)
