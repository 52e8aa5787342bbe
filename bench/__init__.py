"""Benchmark harness and the baselines pckernels is compared against."""
