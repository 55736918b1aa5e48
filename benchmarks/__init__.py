"""Benchmarks: each ``benchmarks/<name>.py`` runs as ``python -m benchmarks.<name> [--quick]``,
prints its table and writes ``benchmarks/results/<name>.md``; ``python -m benchmarks.run_all``
runs them all and assembles ``BENCHMARKS.md``. Shared helpers live in :mod:`benchmarks.common`.
"""
