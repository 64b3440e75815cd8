"""The deployer contract's release hooks: a backend runs only the modes it lists."""

import pytest

from core.errors import ConfigError
from integrations.zenml_adapters.deployer import DeployerContract, check_release, release_modes


def test_a_deployer_refuses_a_release_mode_it_does_not_run():
    class NoReleases(DeployerContract):
        NAME = "Plain"

    class CanaryOnly(DeployerContract):
        NAME = "Canaries"
        RELEASE_MODES = ("canary",)

    plain = object.__new__(NoReleases)
    canary = object.__new__(CanaryOnly)
    assert release_modes(plain) == () and release_modes(canary) == ("canary",)
    with pytest.raises(ConfigError, match=r"Plain runs no releases .*a canary release"):
        check_release(plain, "canary", 10)
    with pytest.raises(ConfigError, match=r"Canaries runs only canary releases; a shadow"):
        check_release(canary, "shadow", 0)
    with pytest.raises(ConfigError, match="above 0 and below 100 percent; 100 was given"):
        check_release(canary, "canary", 100)
    check_release(canary, "canary", 10)  # runs
    with pytest.raises(ConfigError, match="runs no releases"):
        plain.release_end("m", "abort", "me", "test")
    assert plain.release_state("m") is None
    assert release_modes(object()) == ()


def test_the_refusal_says_why_a_backend_does_not_run_a_mode():
    class NoShadow(DeployerContract):
        NAME = "Cluster"
        RELEASE_MODES = ("canary",)
        RELEASE_REFUSALS = {"shadow": "it has no shadow (upstream issue #1)."}

    with pytest.raises(ConfigError, match=r"Cluster runs only canary releases: it has no shadow \(upstream issue #1\)\.$"):  # fmt: skip
        check_release(object.__new__(NoShadow), "shadow", 0)
