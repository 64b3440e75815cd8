"""Release rules: the live-evidence gate (gate.py), and what a command says while a release runs (running.py)."""
