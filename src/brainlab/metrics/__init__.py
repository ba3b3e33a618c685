"""Metrics no library has (NAB score)."""
