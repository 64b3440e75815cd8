"""The application layer between the CLI and the pipelines (console policy for now)."""
