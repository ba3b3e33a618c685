"""Run plumbing: instantiation helpers, run records, Hydra callbacks."""
