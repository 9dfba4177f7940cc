"""Benchmarks: commands that print tables and write JSON + markdown under results/bench/ (never timed tests)."""
