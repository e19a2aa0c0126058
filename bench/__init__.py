"""Benchmarks: `python -m bench` runs them and prints figures with ratios (not part of tests)."""
