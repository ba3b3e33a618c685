"""The neutral core every layer may import: errors, config checks, paths, small helpers.

It imports nothing of brainlab above it (held by the import-linter contracts in `pyproject.toml`).
"""
