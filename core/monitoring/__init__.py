"""Monitoring: what the latest monitoring run exposes to Prometheus."""
