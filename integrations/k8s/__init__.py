"""Kubernetes: names, patches, cluster releases and what a cluster can read."""
