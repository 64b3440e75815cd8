"""zenkube's reusable ZenML steps, grouped by lifecycle stage."""
