"""The champion's rules: one move at a time per model."""
