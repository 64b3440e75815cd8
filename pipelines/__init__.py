"""zenkube's pipelines: compositions of steps, no logic."""
