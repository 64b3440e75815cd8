"""Evidently: drift tests and reports."""
