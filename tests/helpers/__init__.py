"""Shared test helpers: format-true fixture writers (NAB corpora, Minari datasets) that production code never needs."""
