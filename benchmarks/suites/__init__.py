"""Benchmark suite definitions: each module defines `SUITES: dict[str, list[Suite]]`."""
