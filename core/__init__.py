"""The bottom layer: shared types that every other package may import; imports nothing of ours."""
