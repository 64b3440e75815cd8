"""Release rules: the live-evidence gate."""
