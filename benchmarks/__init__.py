"""Shoplake's benchmarks: ``make bench SCALE=S`` runs the suite (``python -m benchmarks.pipeline``) and
regenerates docs/performance.md (``python -m benchmarks.report``). The measuring lives in
``benchmarks.harness``; results are JSON files in ``benchmarks/results/``."""
