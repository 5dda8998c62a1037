"""Benchmark suite for the task API: `uv run python -m bench` (see bench/README.md)."""
