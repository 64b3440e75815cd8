"""Under a canary/shadow release mode, the gate's pass does not move the champion."""

from integrations.mlflow.registry import RegisteredModel
from steps.registry.gate import PromotionDecision
from steps.registry.promote import hold_for_release

CHAMPION = RegisteredModel(name="m", version="3", model_uri="", artifact_location="")


def passed(promoted: bool = True) -> PromotionDecision:
    return PromotionDecision(promoted=promoted, reason="f1=0.9 beats 0.8", metric="f1", candidate_score=0.9)  # fmt: skip


def test_a_pass_awaits_its_release_and_the_champion_stays():
    held = hold_for_release(passed(), "canary", CHAMPION)
    assert (held.promoted, held.release) == (False, "canary")
    assert held.reason.startswith("f1=0.9 beats 0.8; it passed the gate and awaits a canary")
    assert "champion v3" in held.reason


def test_swap_a_refusal_and_a_first_champion_are_as_before():
    assert hold_for_release(passed(), "swap", CHAMPION).promoted
    assert hold_for_release(passed(), "shadow", None).promoted  # nothing to release beside
    refused = hold_for_release(passed(False), "canary", CHAMPION)
    assert (refused.promoted, refused.release) == (False, "")
