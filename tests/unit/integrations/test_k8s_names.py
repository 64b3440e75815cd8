"""Kubernetes names for registered models: valid DNS labels and label values, distinct for
names that differ only in case or punctuation, readable when nothing had to change."""

from __future__ import annotations

from integrations.k8s import names as k8s_names

NAMES = ["House_Prices", "house-prices", "house.prices", "HOUSE PRICES", "churn_v2", "my.model"]
NAMES += ["m" * 62, "m" * 63, "m" * 64, "x" * 62 + "-", "", "---", "9lives", "Ünïcode"]


def test_every_name_yields_a_distinct_dns_label():
    for prefix, rule in (("", "1123"), ("zenkube-", "1035")):
        labels = [k8s_names.dns_label(n, prefix, max_len=45) for n in NAMES]
        assert len(set(labels)) == len(NAMES)
        for label in labels:
            assert not k8s_names.problems(label, rule) and len(label) <= 45


def test_a_valid_name_stays_as_it_is_and_a_changed_one_gets_a_hash():
    assert k8s_names.dns_label("house-prices") == "house-prices"
    assert k8s_names.dns_label("m" * 62) == "m" * 62
    changed = k8s_names.dns_label("House_Prices")
    assert changed == f"house-prices-{k8s_names.short_hash('House_Prices')}"


def test_label_values_are_valid_and_never_end_in_punctuation():
    assert k8s_names.label_value("House_Prices") == "House_Prices"  # valid: unchanged
    for value in ["x" * 62 + "_y", "a" * 100, "model-", "-", "a b/c", "Ünïcode"]:
        label = k8s_names.label_value(value)
        assert not k8s_names.problems_label(label)
        assert label == "" or (label[0].isalnum() and label[-1].isalnum())
    assert k8s_names.label_value("a" * 100) != k8s_names.label_value("a" * 99)
