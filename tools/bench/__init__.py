"""Benchmarks, run by hand (`python -m tools.bench.NAME`): speed and quality figures for the
README and the weight cards. Tests do not import these modules."""
