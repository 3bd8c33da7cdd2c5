"""rsc-tune: hyper-parameter sweeps with Ray Tune over walk-forward validation.

``space`` reads and validates a search-space file (no Ray), ``trial`` is what one Tune trial
runs (sequential trainer per fold and seed), ``sweep`` drives Tune and the final test-period
score, ``report`` writes the Markdown + PNG report.
"""
