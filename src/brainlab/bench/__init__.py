"""Benchmarks: each prints a table and writes JSON + a PNG (`python -m brainlab.bench.<name>`)."""
